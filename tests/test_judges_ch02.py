"""Chapter 02's judges: the solution passes; plausible mistakes fail with a message naming them."""

from __future__ import annotations

import pytest

from judge_helpers import failure, mutate, run, solution_namespace
from tfs.nn import scaled_dot_product_attention

CHAPTER = "02-multihead-attention"
USES = {"split_heads_shapes": ["split_heads"], "split_heads_values": ["split_heads"], "merge_heads": ["merge_heads"],
        "mha_shapes": ["MultiHeadAttention"], "mha_parity": ["MultiHeadAttention"], "mha_masks": ["MultiHeadAttention"],
        "mha_gradients": ["MultiHeadAttention"], "mha_context_shapes": ["MultiHeadAttention"],
        "mha_context_parity": ["MultiHeadAttention"]}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(CHAPTER, scaled_dot_product_attention=scaled_dot_product_attention)


def objects(namespace: dict, test: str) -> dict:
    return {name: namespace[name] for name in USES[test]}


@pytest.mark.parametrize("test", list(USES))
def test_solution_passes(solution, test):
    assert run(f"ch02.{test}", **objects(solution, test)).startswith("✓")


@pytest.mark.parametrize("exercise, old, new, test, words", [
    ("split_heads", ".transpose(1, 2)", "", "split_heads_shapes", "shape"),
    ("split_heads", "x.reshape(batch, length, n_heads, d_model // n_heads).transpose(1, 2)",
     "x.reshape(batch, n_heads, length, d_model // n_heads)", "split_heads_values", "without the transpose"),
    ("merge_heads", "x.transpose(1, 2).reshape", "x.reshape", "merge_heads", "without transposing the heads back"),
    ("multi_head_attention", "self.qkv = nn.Linear(d_model, 3 * d_model)",
     "self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)", "mha_shapes", "parameters"),
    ("multi_head_attention", "return self.out(merge_heads(heads)), (weights if need_weights else None)",
     "return merge_heads(heads), (weights if need_weights else None)", "mha_parity", "the output projection self.out left out"),
    ("multi_head_attention", "heads, weights = scaled_dot_product_attention(q, k, v, mask)",
     "heads, weights = scaled_dot_product_attention(q, k, v)", "mha_masks", "values differ"),
    ("multi_head_attention", "(weights if need_weights else None)",
     "(weights.mean(dim=1) if need_weights else None)", "mha_shapes", "weights"),
    ("multi_head_attention", "q, k, v = self.qkv(x).chunk(3, dim=-1)", "q, k, v = self.qkv(x).detach().chunk(3, dim=-1)",
     "mha_gradients", "no gradient reached"),
    ("multi_head_attention", "k, v = F.linear(context, w_kv, b_kv).chunk(2, dim=-1)",
     "k, v = F.linear(x, w_kv, b_kv).chunk(2, dim=-1)", "mha_context_parity", "instead of context"),
    ("multi_head_attention", "(weights if need_weights else None)", "weights", "mha_context_shapes", "expected None"),
    ("multi_head_attention", "heads, weights = scaled_dot_product_attention(q, k, v, mask)",
     "heads, weights = scaled_dot_product_attention(q, k, v, mask if context is None else None)",
     "mha_context_parity", "padded context"),
    ("multi_head_attention", "w_q, w_kv = self.qkv.weight.split([self.d_model, 2 * self.d_model])",
     "w_kv, w_q = self.qkv.weight.split([2 * self.d_model, self.d_model])", "mha_context_parity", "values differ"),
])
def test_mutant_fails_with_its_mistake_named(solution, exercise, old, new, test, words):
    mutant = mutate(solution, exercise, old, new, CHAPTER)
    message = failure(f"ch02.{test}", **objects(mutant, test))
    assert words in message, message


@pytest.mark.parametrize("answer, old, new", [
    ("split_heads", "x.reshape(batch, length, n_heads, d_model // n_heads).transpose(1, 2)",
     "x.reshape(batch, n_heads, length, d_model // n_heads)"),
    ("merge_heads", "x.transpose(1, 2).reshape(batch, length, n_heads * d_head)",
     "x.transpose(1, 2).view(batch, length, n_heads * d_head)"),
])
@pytest.mark.parametrize("test", ["ch02.mha_shapes", "ch02.mha_parity", "ch02.mha_masks", "ch02.mha_gradients",
                                  "ch02.mha_context_shapes", "ch02.mha_context_parity"])
def test_wrong_heads_cost_no_layer_points(solution, answer, old, new, test):
    """Issue 31 (b): the layer's judges run it with reference split_heads and merge_heads."""
    mutant = mutate(solution, answer, old, new, CHAPTER)
    assert run(test, MultiHeadAttention=mutant["MultiHeadAttention"]).startswith("✓")
