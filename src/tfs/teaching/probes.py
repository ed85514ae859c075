"""Diagnostic probes: the usual wrong answers, computed on purpose, so a failure can name them.

Each function returns ``{description: wrong_result}`` for the inputs a test uses. A check
(:func:`tfs.teaching.checks.check_close`) compares the learner's result with the right answer from an
independent oracle and, when it is wrong, with each of these; a match is reported as
"this looks like <description>". Nothing here is an oracle: these are deliberately wrong.
"""

from __future__ import annotations

import math

import torch


def softmax_mistakes(x: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> dict[str, torch.Tensor]:
    """Wrong softmaxes of ``x / temperature`` along ``dim``."""
    scaled = x / temperature
    dim = dim % x.dim()
    mistakes = {
        f"softmax over dim={other} instead of dim={dim}": torch.softmax(scaled, other)
        for other in range(x.dim())
        if other != dim and x.shape[other] > 1
    }
    mistakes["exp without dividing by the sum (not normalised)"] = torch.exp(scaled)
    mistakes["normalising by the sum over the whole tensor, not along one dimension"] = (
        torch.exp(scaled - scaled.max()) / torch.exp(scaled - scaled.max()).sum()
    )
    if temperature != 1.0:
        mistakes["the temperature ignored"] = torch.softmax(x, dim)
        mistakes["logits multiplied by the temperature instead of divided"] = torch.softmax(x * temperature, dim)
    return mistakes


def causal_mask_mistakes(size: int) -> dict[str, torch.Tensor]:
    """Wrong ``(size, size)`` causal masks, in the course's convention (True = may attend)."""
    ones = torch.ones(size, size, dtype=torch.bool)
    return {
        "an off-by-one mask that hides the diagonal (a token must see itself)": torch.tril(ones, diagonal=-1),
        "an off-by-one mask that lets each token see one future token": torch.tril(ones, diagonal=1),
        "an upper-triangular mask: each token sees the future instead of the past": torch.triu(ones),
        "an inverted mask: True should mean 'may attend', not 'blocked'": ~torch.tril(ones),
    }


def _attention(q, k, v, mask, scale, softmax_dim=-1, mask_after_softmax=False):
    scores = q @ k.transpose(-2, -1) * scale
    if mask is not None and not mask_after_softmax:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=softmax_dim).nan_to_num(0.0)
    if mask is not None and mask_after_softmax:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def attention_mistakes(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    d_model: int | None = None,
    which: str = "output",
) -> dict[str, torch.Tensor]:
    """Wrong scaled dot-product attentions of ``q (..., Lq, d_k)``, ``k (..., Lk, d_k)``, ``v``.

    ``which`` selects whether the mistakes are for the ``"output"`` or the ``"weights"``.
    ``d_model``, when given and different from ``d_k``, adds "scaled by √d_model".
    """
    d_k = q.shape[-1]
    variants = {
        "no scaling (the scores must be divided by √d_k)": dict(scale=1.0),
        "dividing by d_k instead of √d_k": dict(scale=1.0 / d_k),
        "multiplying by √d_k instead of dividing": dict(scale=math.sqrt(d_k)),
        "a softmax over the queries (dim=-2) instead of over the keys (dim=-1)": dict(
            scale=1.0 / math.sqrt(d_k), softmax_dim=-2
        ),
    }
    if d_model is not None and d_model != d_k:
        variants["scaling by √d_model instead of √d_k (the head size)"] = dict(scale=1.0 / math.sqrt(d_model))
    if mask is not None:
        variants["the mask applied after the softmax (the weights no longer sum to 1)"] = dict(
            scale=1.0 / math.sqrt(d_k), mask_after_softmax=True
        )
    position = 0 if which == "output" else 1
    mistakes = {name: _attention(q, k, v, mask, **kw)[position] for name, kw in variants.items()}
    if mask is not None:
        mistakes["an inverted mask (True should mean 'may attend')"] = _attention(
            q, k, v, ~mask, 1.0 / math.sqrt(d_k)
        )[position]
        mistakes["the mask ignored"] = _attention(q, k, v, None, 1.0 / math.sqrt(d_k))[position]
    return mistakes
