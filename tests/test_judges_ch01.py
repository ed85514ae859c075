"""Chapter 01's judges: the solution passes; plausible mistakes fail with a message naming them."""

from __future__ import annotations

import pytest

from judge_helpers import failure, mutate, run, solution_namespace

CHAPTER = "01-attention"
SOFTMAX = ["ch01.softmax_values", "ch01.softmax_large_logits", "ch01.softmax_temperature"]
MASK = ["ch01.causal_mask_values", "ch01.causal_mask_dtype"]
ATTENTION = ["ch01.attention_shapes", "ch01.attention_values", "ch01.attention_masks", "ch01.attention_gradients"]


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(CHAPTER)


def objects(namespace: dict, test: str) -> dict:
    name = {"softmax": "softmax_stable", "causal": "causal_mask"}.get(test.split(".")[1].split("_")[0],
                                                                       "scaled_dot_product_attention")
    return {name: namespace[name]}


@pytest.mark.parametrize("test", SOFTMAX + MASK + ATTENTION)
def test_solution_passes(solution, test):
    assert run(test, **objects(solution, test)).startswith("✓")


@pytest.mark.parametrize("exercise, old, new, test, words", [
    ("softmax_stable", "z = z - z.amax(dim=dim, keepdim=True)", "z = z", "ch01.softmax_large_logits", "values differ"),
    ("softmax_stable", "z.amax(dim=dim, keepdim=True)", "z.amax(dim=-1, keepdim=True)", "ch01.softmax_values", "values differ"),
    ("softmax_stable", "z = x / temperature", "z = x / temperature; dim = -1", "ch01.softmax_values",
     "this looks like softmax over dim=1 instead of dim=0"),
    ("softmax_stable", "z = x / temperature", "z = x * temperature", "ch01.softmax_temperature",
     "multiplied by the temperature"),
    ("softmax_stable", "z = x / temperature", "z = x", "ch01.softmax_temperature", "the temperature ignored"),
    ("softmax_stable", "return exp / exp.sum(dim=dim, keepdim=True)",
     "return (exp / exp.sum(dim=dim, keepdim=True)).detach()", "ch01.softmax_temperature", "RuntimeError"),
    ("causal_mask", ".tril()", ".tril(-1)", "ch01.causal_mask_values", "hides the diagonal"),
    ("causal_mask", ".tril()", ".triu()", "ch01.causal_mask_values", "upper-triangular"),
    ("causal_mask", "dtype=torch.bool", "dtype=torch.float32", "ch01.causal_mask_dtype", "expected dtype torch.bool"),
    ("scaled_dot_product_attention", "/ math.sqrt(d_k)", "", "ch01.attention_values", "no scaling"),
    ("scaled_dot_product_attention", "/ math.sqrt(d_k)", "/ d_k", "ch01.attention_values", "dividing by d_k"),
    ("scaled_dot_product_attention", ".nan_to_num(0.0)", "", "ch01.attention_masks", "NaN"),
    ("scaled_dot_product_attention", "scores.masked_fill(~mask", "scores.masked_fill(mask", "ch01.attention_masks",
     "inverted mask"),
    ("scaled_dot_product_attention", "return weights @ v, weights", "return weights @ v", "ch01.attention_shapes",
     "tuple of 2"),
    ("scaled_dot_product_attention", "return weights @ v, weights", "return weights.detach() @ v, weights",
     "ch01.attention_gradients", "no finite gradient reached q"),
])
def test_mutant_fails_with_its_mistake_named(solution, exercise, old, new, test, words):
    mutant = mutate(solution, exercise, old, new, CHAPTER)
    message = failure(test, **objects(mutant, test))
    assert words in message, message
