"""Reference building blocks that later chapters import.

Chapter 01 asks the learner to write these; chapter 02 onwards uses them, so that a learner who
struggled earlier can still go on. Tests never use them as oracles: they are checked here, like
the learner's code, against ``torch.nn.functional``.
"""

from __future__ import annotations

import math

import torch


def softmax(x: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> torch.Tensor:
    """Numerically stable softmax of ``x / temperature`` along ``dim``; same shape as ``x``."""
    z = x / temperature
    z = z - z.amax(dim=dim, keepdim=True)  # exp(z) <= 1: no overflow
    exp = torch.exp(z)
    return exp / exp.sum(dim=dim, keepdim=True)


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(size, size)`` bool mask, True where query ``i`` may attend to key ``j`` (``j <= i``)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of ``q (..., Lq, d_k)`` over ``k (..., Lk, d_k)``, ``v (..., Lk, d_v)``.

    ``mask`` is bool, broadcastable to ``(..., Lq, Lk)``, True where attending is allowed.
    Returns ``(output (..., Lq, d_v), weights (..., Lq, Lk))``; a fully masked query row gets
    zero weights and a zero output.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # fully masked rows: 0/0 -> 0
    return weights @ v, weights
