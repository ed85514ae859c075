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
    # issue 31: mistakes the judges now name (the visible tests use the same probes)
    ("softmax_stable", "    z = z - z.amax(dim=dim, keepdim=True)", "    pass", "ch01.softmax_large_logits",
     "without subtracting the maximum"),
    ("softmax_stable", "z.amax(dim=dim, keepdim=True)", "z.max()", "ch01.softmax_large_logits",
     "one maximum for the whole tensor"),
    ("causal_mask", ", device=device)", ")", "ch01.causal_mask_dtype", "on the device asked for"),
    ("scaled_dot_product_attention", 'float("-inf")', "0.0", "ch01.attention_masks", "set to 0 instead of -inf"),
    ("scaled_dot_product_attention", 'float("-inf")', "-1e9", "ch01.attention_masks", "large negative number"),
    ("scaled_dot_product_attention", "k.transpose(-2, -1)", "k.transpose(1, 2)", "ch01.attention_values",
     "RuntimeError"),  # the (4, 4, 4, 4) case alone would run: the visible test names it there

    ("scaled_dot_product_attention", "d_k = q.shape[-1]", "d_k = v.shape[-1]", "ch01.attention_values", "√d_v"),
])
def test_mutant_fails_with_its_mistake_named(solution, exercise, old, new, test, words):
    mutant = mutate(solution, exercise, old, new, CHAPTER)
    message = failure(test, **objects(mutant, test))
    assert words in message, message


@pytest.mark.parametrize("old, new", [
    ("exp.sum(dim=dim, keepdim=True)", "exp.sum(dim=dim)"),                       # softmax raises
    ("exp = torch.exp(z)", "exp = torch.exp(z.double())"),                        # softmax in float64
    ("    z = z - z.amax(dim=dim, keepdim=True)  # now every exponent is <= 0\n", ""),   # softmax overflows
])
@pytest.mark.parametrize("test", ATTENTION)
def test_a_wrong_softmax_costs_no_attention_points(solution, old, new, test):
    """Issue 31 (b): the attention judges run the learner's attention with torch.softmax as softmax_stable."""
    mutant = mutate(solution, "softmax_stable", old, new, CHAPTER)
    assert run(test, scaled_dot_product_attention=mutant["scaled_dot_product_attention"]).startswith("✓")
