"""Layers of a Transformer block: LayerNorm, the position-wise feed-forward network, positions (sinusoidal, rotary).

Chapter 03 asks the learner to write these. Parameter names follow ``torch.nn``
(``nn.LayerNorm.weight``/``bias``, ``nn.TransformerEncoderLayer.linear1``/``linear2``), so weights
copy one to one (:mod:`tfs.convert`).
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ACTIVATIONS", "FeedForward", "LayerNorm", "apply_rope", "rope_tables", "rotate_pairs",
           "sinusoidal_positions"]

# BERT uses the exact GELU; GPT-2 the tanh approximation ("gelu_new" in transformers); the 2017 paper ReLU.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


class LayerNorm(nn.Module):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last dimension (biased variance).

    ``bias=False`` drops the shift (as some recent models do).
    """

    def __init__(self, d_model: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        normed = (x - mean) / torch.sqrt(var + self.eps) * self.weight
        return normed if self.bias is None else normed + self.bias


class FeedForward(nn.Module):
    """``linear2(activation(linear1(x)))``: ``d_model -> d_ff -> d_model``, applied to each position alone.

    ``activation`` is a key of :data:`ACTIVATIONS` (``"gelu"``, ``"gelu_tanh"``, ``"relu"``).
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", bias: bool = True):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; received {activation!r}")
        self.activation = activation
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(ACTIVATIONS[self.activation](self.linear1(x)))


def sinusoidal_positions(length: int, d_model: int, base: float = 10000.0,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(length, d_model)``: ``PE[p, 2i] = sin(p / base^(2i/d))``, ``PE[p, 2i+1] = cos(p / base^(2i/d))``."""
    if d_model % 2:
        raise ValueError(f"d_model={d_model} must be even")
    position = torch.arange(length, dtype=torch.float64)[:, None]
    frequency = torch.exp(-math.log(base) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = position * frequency  # (length, d_model / 2)
    encoding = torch.empty(length, d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles)
    return encoding.to(dtype)


def apply_rope(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (RoFormer, Su et al. 2021) of ``x (..., L, d)``, ``d`` even; same shape and dtype.

    Pairing "rotate half" (GPT-NeoX, LLaMA, ``transformers``): feature ``j`` and feature ``j + d/2`` form pair
    ``j = 0, ..., d/2 - 1``, rotated by the angle ``position * base^(-2j/d)``. ``positions`` (default
    ``arange(L)``) has shape ``(L,)`` or any shape that broadcasts against ``x.shape[:-1]`` and ends in ``L``.
    """
    *_, length, d = x.shape
    if d % 2:
        raise ValueError(f"apply_rope: the feature dimension d={d} must be even (features are rotated in pairs)")
    if positions is None:
        positions = torch.arange(length, device=x.device)
    if positions.shape[-1] != length:
        raise ValueError(f"apply_rope: positions {tuple(positions.shape)} must end in L={length}")
    return rotate_pairs(x, *rope_tables(positions, d, base, x.dtype))


def rope_tables(positions: torch.Tensor, d: int, base: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cos, sin)`` of the angles ``position * base^(-2j/d)``, shape ``(*positions.shape, d/2)``, computed in float64
    and cast to ``dtype``: the tables :func:`rotate_pairs` applies."""
    angles = positions.to(torch.float64)[..., None] * _frequencies(d, float(base), positions.device)  # (..., L, d/2)
    return torch.cos(angles).to(dtype), torch.sin(angles).to(dtype)


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn pair ``(j, j + d/2)`` of ``x (..., L, d)`` by the angle whose ``cos`` and ``sin`` are given (they broadcast
    to ``(..., L, d/2)``): ``x cos + rotate_half(x) sin``."""
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)


@functools.lru_cache(maxsize=32)
def _frequencies(d: int, base: float, device: torch.device) -> torch.Tensor:
    """``base^(-2j/d)`` for the pairs ``j = 0 .. d/2 - 1``, in float64 (computed once per size, base and device)."""
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)
