"""Chapter 00's usual mistakes, computed: ``{description: wrong_result}`` like :mod:`tfs.teaching.probes`.

Each entry is a deliberately wrong answer; :func:`tfs.teaching.checks.check_close` names the mistake when a
learner's result matches one of them (``mistakes=``).
"""

from __future__ import annotations

import math

import torch

__all__ = ["batched_scores_mistakes", "first_loss_mistakes", "fit_line_mistakes", "standardize_mistakes"]


def standardize_mistakes(x: torch.Tensor, eps: float = 1e-5) -> dict[str, torch.Tensor]:
    """Wrong standardisations of the columns of ``x (n_samples, n_features)``."""
    mean = x.mean(dim=0, keepdim=True)                      # (1, n_features)
    var = x.var(dim=0, correction=0, keepdim=True)          # (1, n_features)
    return {
        "the sample standard deviation (dividing by n - 1, correction=1); use the population one (correction=0)":
            (x - mean) / torch.sqrt(x.var(dim=0, correction=1, keepdim=True) + eps),
        "statistics of each row (dim=1); a feature is a column, so reduce over dim=0":
            (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, correction=0, keepdim=True) + eps),
        "the mean of each row (dim=1); a feature is a column, so reduce over dim=0":
            (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(var + eps),
        "the mean not subtracted: centre each column before dividing by its standard deviation":
            x / torch.sqrt(var + eps),
        "one variance for the whole tensor; each column needs its own (dim=0)":
            (x - mean) / torch.sqrt(x.var(correction=0) + eps),
        "one mean and variance for the whole tensor; each column needs its own (dim=0)":
            (x - x.mean()) / torch.sqrt(x.var(correction=0) + eps),
        "eps added after the square root; it goes inside it, sqrt(var + eps) (a column that barely varies shows it)":
            (x - mean) / (torch.sqrt(var) + eps),
        "no eps: a constant column gives 0 / 0 = nan; divide by sqrt(var + eps)":
            (x - mean) / torch.sqrt(var),
    }


def _tried(product) -> torch.Tensor | None:
    try:
        return product()
    except RuntimeError:  # a wrong product whose shapes do not fit these inputs: nothing to compare with
        return None


def batched_scores_mistakes(queries: torch.Tensor, keys: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong batched dot products of ``queries (batch, n, d)`` with ``keys (batch, m, d)``, those these shapes allow.

    With ``batch = n = m = d`` every one of them runs and has the right shape: only its values tell it apart.
    """
    wrong = {
        "keys.transpose(0, 1) swaps the batch and key dimensions; transpose the last two, keys.transpose(-2, -1)":
            lambda: queries @ keys.transpose(0, 1),
        "keys.T reverses every dimension of a 3-D tensor; transpose only the last two (keys.transpose(-2, -1) or keys.mT)":
            lambda: queries @ keys.permute(2, 1, 0),
        "the keys not transposed: queries @ keys pairs a query's features with a key's positions; transpose the "
        "keys' last two dimensions": lambda: queries @ keys,
        "the scores transposed, [b, j, i] instead of [b, i, j]: keys @ queries^T instead of queries @ keys^T":
            lambda: keys @ queries.transpose(-2, -1),
        "scores divided by √d: that scaling belongs to attention (chapter 01), not to the dot products":
            lambda: queries @ keys.transpose(-2, -1) / math.sqrt(queries.shape[-1]),
    }
    return {description: result for description, product in wrong.items() if (result := _tried(product)) is not None}


def _descend(x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, *, zero_grad: bool = True,
             update_b: bool = True) -> torch.Tensor:
    """``(w, b)`` after gradient descent on the mean squared error, with one step of it done wrong."""
    w = torch.zeros((), requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    for _ in range(steps):
        ((w * x + b - y) ** 2).mean().backward()
        with torch.no_grad():
            w -= lr * w.grad
            if update_b:
                b -= lr * b.grad
        if zero_grad:
            w.grad.zero_()
            b.grad.zero_()
    return torch.tensor([w.item(), b.item()])


def fit_line_mistakes(x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> dict[str, torch.Tensor]:
    """Wrong ``(w, b)`` of ``fit_line(x, y, steps, lr)``."""
    return {
        "gradients never zeroed: .backward() adds to .grad, so each step used the sum of every gradient so far "
        "(zero w.grad and b.grad after each update)": _descend(x, y, steps, lr, zero_grad=False),
        "the intercept b never updated: step both parameters, b -= lr * b.grad too":
            _descend(x, y, steps, lr, update_b=False),
    }


def first_loss_mistakes(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong first losses (at ``w = b = 0``) of the mean squared error on ``(x, y)``."""
    return {"the sum of the squared errors, not their mean: the MSE divides by n (.mean())": (y ** 2).sum()}
