"""Reference Transformer layers that later chapters (BERT, GPT) import.

Chapters 02 and 03 ask the learner to write these; later chapters use them, so that a learner who
struggled earlier can still go on. They follow ``torch.nn``'s parameter layout, so weights copy
one to one (``tests/test_layers.py`` checks them against ``nn.MultiheadAttention``,
``nn.LayerNorm`` and ``nn.TransformerEncoderLayer``):

=========================  ===============================================================
``split_heads``            ``(batch, L, d_model)`` -> ``(batch, heads, L, d_head)``
``merge_heads``            the inverse
``MultiHeadAttention``     one fused QKV projection ``Linear(d_model, 3 d_model)``, ``out``
``LayerNorm``              normalise the last dimension, then scale and shift
``FeedForward``            ``Linear -> GELU -> Linear``
``TransformerBlock``       post-LN ``LN(x + f(x))`` or pre-LN ``x + f(LN(x))``
``Encoder``                a stack of blocks (pre-LN adds a final LayerNorm)
``sinusoidal_positions``   the fixed position encodings of Vaswani et al. (2017)
=========================  ===============================================================

Masks follow the course's convention: bool, True = may attend.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tfs.blocks import scaled_dot_product_attention

__all__ = [
    "Encoder",
    "FeedForward",
    "LayerNorm",
    "MultiHeadAttention",
    "TransformerBlock",
    "merge_heads",
    "sinusoidal_positions",
    "split_heads",
]


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """``(batch, L, d_model)`` -> ``(batch, n_heads, L, d_model // n_heads)``."""
    batch, length, d_model = x.shape
    if d_model % n_heads:
        raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
    return x.reshape(batch, length, n_heads, d_model // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(batch, n_heads, L, d_head)`` -> ``(batch, L, n_heads * d_head)``."""
    batch, n_heads, length, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, length, n_heads * d_head)


def _head_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A mask for ``(batch, heads, Lq, Lk)`` scores: a 3-D ``(batch, Lq, Lk)`` mask gets a head axis."""
    if mask is not None and mask.dim() == 3:
        return mask[:, None]
    return mask


class MultiHeadAttention(nn.Module):
    """Multi-head attention with one fused QKV projection, as in ``nn.MultiheadAttention``.

    ``qkv.weight`` is ``in_proj_weight`` (rows: W^Q, W^K, W^V) and ``out`` is ``out_proj``.

    ``forward(x, context=None, mask=None)``: queries from ``x (batch, Lq, d_model)``, keys and values
    from ``context (batch, Lk, d_model)`` (``x`` itself when ``None``: self-attention). ``mask`` is bool,
    True = may attend, broadcastable to ``(batch, heads, Lq, Lk)``; a 3-D ``(batch, Lq, Lk)`` mask
    applies to every head. Returns ``(output (batch, Lq, d_model), weights (batch, heads, Lq, Lk))``.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model, self.n_heads = d_model, n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if context is None:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            w_q, w_kv = self.qkv.weight.split([self.d_model, 2 * self.d_model])
            b_q, b_kv = (None, None) if self.qkv.bias is None else self.qkv.bias.split([self.d_model, 2 * self.d_model])
            q = nn.functional.linear(x, w_q, b_q)
            k, v = nn.functional.linear(context, w_kv, b_kv).chunk(2, dim=-1)
        q, k, v = (split_heads(t, self.n_heads) for t in (q, k, v))
        heads, weights = scaled_dot_product_attention(q, k, v, _head_mask(mask))
        return self.out(merge_heads(heads)), weights


class LayerNorm(nn.Module):
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last dimension (biased variance)."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))
        self.bias = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


class FeedForward(nn.Module):
    """``linear2(GELU(linear1(x)))``: ``d_model -> d_ff -> d_model``, applied to each position alone."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(nn.functional.gelu(self.linear1(x)))


class TransformerBlock(nn.Module):
    """Self-attention and feed-forward sublayers with residuals and LayerNorm.

    ``norm_first=False`` (post-LN, the 2017 paper, BERT): ``x = LN(x + f(x))`` for each sublayer.
    ``norm_first=True`` (pre-LN, GPT-2): ``x = x + f(LN(x))``.
    ``forward(x (batch, L, d_model), mask=None) -> (batch, L, d_model)``; the last attention weights
    ``(batch, heads, L, L)`` stay in ``self.attention_weights`` (detached) for plotting.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False, eps: float = 1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ff = FeedForward(d_model, d_ff)
        self.norm1 = LayerNorm(d_model, eps)
        self.norm2 = LayerNorm(d_model, eps)
        self.attention_weights: torch.Tensor | None = None

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        output, weights = self.attn(x, mask=mask)
        self.attention_weights = weights.detach()
        return output

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            x = x + self._attend(self.norm1(x), mask)
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self._attend(x, mask))
        return self.norm2(x + self.ff(x))


class Encoder(nn.Module):
    """``n_layers`` blocks; a pre-LN stack ends with a LayerNorm (``final_norm``), a post-LN one does not."""

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False,
                 eps: float = 1e-5):
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, norm_first, eps) for _ in range(n_layers))
        self.final_norm = LayerNorm(d_model, eps) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return self.final_norm(x)


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
