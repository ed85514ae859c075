"""Chapter 00's judges: the solution passes; plausible mistakes fail with a message naming them."""

from __future__ import annotations

import pytest
import torch

from judge_helpers import failure, mutate, run, solution_namespace

CHAPTER = "00-welcome"


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(CHAPTER)


def test_solution_passes_every_judge(solution):
    assert run("ch00.standardize", standardize=solution["standardize"]).startswith("✓")
    assert run("ch00.batched_scores", batched_scores=solution["batched_scores"]).startswith("✓")
    assert run("ch00.fit_line", fit_line=solution["fit_line"]).startswith("✓")


@pytest.mark.parametrize("old, new, words", [
    ("correction=0", "correction=1", "values differ"),          # sample instead of population variance
    ("dim=0, keepdim", "dim=1, keepdim", "values differ"),      # rows instead of columns
    ("var + eps", "var + 1e-5", "eps=0.001"),                   # eps ignored: only the hidden batch catches it
])
def test_standardize_mutants_fail(solution, old, new, words):
    mutant = mutate(solution, "standardize", old, new, CHAPTER)
    assert words in failure("ch00.standardize", standardize=mutant["standardize"])


def test_standardize_wrong_dtype_and_stub_fail():
    message = failure("ch00.standardize", standardize=lambda x, eps=1e-5: ((x - x.mean(0)) / (x.var(0, correction=0) + eps).sqrt()).float())
    assert "wrong dtype" in message
    def stub(x, eps=1e-5):
        raise NotImplementedError()
    assert failure("ch00.standardize", standardize=stub) == "raised NotImplementedError"


def test_batched_scores_mutants_fail(solution):
    assert "values differ" in failure("ch00.batched_scores", batched_scores=lambda q, k: q @ k.transpose(-2, -1) * 0.5)
    assert "shape" in failure("ch00.batched_scores", batched_scores=lambda q, k: q @ k.transpose(-2, -1)[:1])
    # a hard-coded answer of the right shape for the visible test only
    assert "values differ" in failure("ch00.batched_scores", batched_scores=lambda q, k: torch.zeros(q.shape[0], q.shape[1], k.shape[1]))


@pytest.mark.parametrize("old, new, words", [
    ("w.grad.zero_()\n        b.grad.zero_()", "pass", "gradients never zeroed"),   # gradients accumulate
    ("return w.item(), b.item(), losses", "return w, b, losses", "Python floats"),
    ("losses.append(loss.item())", "losses.append(loss)", "Python floats"),
    ("w -= lr * w.grad", "w += lr * w.grad", "did not go down"),
])
def test_fit_line_mutants_fail(solution, old, new, words):
    mutant = mutate(solution, "fit_line", old, new, CHAPTER)
    assert words in failure("ch00.fit_line", fit_line=mutant["fit_line"])


@pytest.mark.parametrize("answer, old, new, words", [
    ("standardize", "correction=0", "correction=1", "sample standard deviation"),
    ("standardize", "return (x - mean) /", "return x /", "mean not subtracted"),
    ("standardize", "x.var(dim=0, correction=0, keepdim=True)", "x.var(correction=0)", "whole tensor"),
    ("standardize", "var + eps", "var", "no eps"),                         # the constant column: 0 / 0
    ("standardize", "torch.sqrt(var + eps)", "(torch.sqrt(var) + eps)", "after the square root"),
    ("batched_scores", "return queries @ keys.transpose(-2, -1)", "return keys @ queries.transpose(-2, -1)",
     "scores transposed"),
    ("batched_scores", "keys.transpose(-2, -1)", "keys.transpose(-2, -1) / 2", "values differ"),
    ("fit_line", "            b -= lr * b.grad\n", "", "intercept b never updated"),
    ("fit_line", "** 2).mean()", "** 2).sum()", "sum of the squared errors"),
])
def test_mistakes_named_by_the_judges(solution, answer, old, new, words):
    """Issue 31: the judges name the usual mistakes (the visible tests use the same probes)."""
    mutant = mutate(solution, answer, old, new, CHAPTER)
    assert words in failure(f"ch00.{answer}", **{answer: mutant[answer]})
