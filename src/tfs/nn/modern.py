"""The layers of a LLaMA-style decoder (chapter 12): RMSNorm, RoPE at a model's theta, SwiGLU, grouped-query attention.

Chapter 12 asks the learner to write these; later chapters and the package's LLaMA (:mod:`tfs.models.llama`)
import them from here. Tests compare them with ``torch.nn.RMSNorm`` and ``transformers``' LLaMA modules
(``tests/test_llama.py``), never with themselves.

- :class:`RMSNorm`: ``x / sqrt(mean(x^2) + eps) * weight`` over the last dimension (no mean, no bias).
- :func:`rope`: chapter 03's :func:`tfs.nn.apply_rope` ("rotate half" pairs ``(j, j + d/2)``) with a base
  ``theta`` and one row of position ids per sequence, so a left-padded row is rotated as it is alone.
- :class:`SwiGLU`: ``down(silu(gate(x)) * up(x))``, no biases; :func:`swiglu_hidden` is LLaMA's width rule.
- :func:`repeat_kv` and :class:`GroupedQueryAttention`: ``n_kv_heads`` key/value heads, each shared by
  ``n_heads / n_kv_heads`` consecutive query heads; the KV cache stores the key/value heads only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tfs.nn.attention import KVCache, causal_mask, check_mask
from tfs.nn.layers import rope_tables, rotate_pairs

__all__ = ["GroupedQueryAttention", "RMSNorm", "SwiGLU", "repeat_kv", "rope", "swiglu_hidden"]


class RMSNorm(nn.Module):
    """Root-mean-square normalisation (Zhang & Sennrich 2019): ``x / sqrt(mean(x^2) + eps) * weight``.

    Over the last dimension; unlike LayerNorm no mean is subtracted and there is no bias. ``weight`` starts at 1.
    """

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)  # the formula above, in one fused call


def rope(x: torch.Tensor, position_ids: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotary embedding of ``x (batch, heads, T, d_head)`` at ``position_ids (batch, T)``, base ``theta``.

    Pair ``j`` is features ``(j, j + d_head/2)`` (``transformers``' LLaMA layout), turned by the angle
    ``position * theta^(-2j/d_head)``. Same shape and dtype as ``x``; a ``ValueError`` for an odd ``d_head``.
    The cosines and sines of the last ``position_ids`` tensor seen are kept: every layer of a forward pass, queries
    and keys alike, rotates by the same positions, so they are computed once per pass.
    """
    if x.dim() != 4 or position_ids.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"rope: x must be (batch, heads, T, d_head) and position_ids (batch, T); received "
                         f"{tuple(x.shape)} and {tuple(position_ids.shape)}")
    if x.shape[-1] % 2:
        raise ValueError(f"rope: the head size {x.shape[-1]} is odd, so its features cannot be paired for rotation")
    key = (position_ids._version, x.shape[-1], float(theta), x.dtype)
    if _TABLES.get("positions") is not position_ids or _TABLES.get("key") != key:
        cos, sin = rope_tables(position_ids[:, None, :], x.shape[-1], theta, x.dtype)   # (batch, 1, T, d/2)
        _TABLES.update(positions=position_ids, key=key, tables=(cos, sin))           # the tensor is kept: its id
    return rotate_pairs(x, *_TABLES["tables"])                                        # cannot be reused meanwhile


_TABLES: dict = {}  # rope's last tables: the position_ids tensor they belong to, its version, d_head, theta, dtype


def swiglu_hidden(d_model: int, multiple_of: int = 256) -> int:
    """LLaMA's SwiGLU width: ``8 d / 3`` (the parameters of a ``4 d`` two-matrix MLP spread over three matrices),
    rounded up to a multiple of ``multiple_of``."""
    hidden = int(2 * (4 * d_model) / 3)
    return multiple_of * -(-hidden // multiple_of)


class SwiGLU(nn.Module):
    """The gated feed-forward network of LLaMA (Shazeer 2020): ``down(silu(gate(x)) * up(x))``, no biases."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.gate = nn.Linear(d_model, d_ff, bias=False)
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """``(batch, n_kv_heads, T, d)`` -> ``(batch, n_kv_heads * n_rep, T, d)``: query head ``h`` gets key/value head
    ``h // n_rep`` (each KV head repeated ``n_rep`` times in a row, as ``torch.repeat_interleave`` on dim 1)."""
    if n_rep == 1:
        return x
    batch, n_kv, length, d = x.shape
    return x[:, :, None].expand(batch, n_kv, n_rep, length, d).reshape(batch, n_kv * n_rep, length, d)


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with ``n_kv_heads`` key/value heads shared by groups of query heads (Ainslie et al. 2023).

    ``q = Linear(d_model, n_heads * d_head)``, ``k``, ``v = Linear(d_model, n_kv_heads * d_head)``,
    ``out = Linear(n_heads * d_head, d_model)``, no biases; ``d_head = d_model // n_heads``. RoPE at ``theta``
    turns queries and keys before attention. ``n_heads = n_kv_heads`` is multi-head attention, ``n_kv_heads = 1``
    multi-query attention.

    ``forward(x (batch, T, d_model), position_ids (batch, T), mask=None, cache=None, layer=0) -> (batch, T, d_model)``.
    ``mask``: bool, True = may attend, broadcastable to ``(batch, 1, T, L)`` (a padding mask ``(batch, 1, 1, L)``),
    combined with the causal mask. With a :class:`tfs.nn.KVCache`, the keys and values of this call (the
    ``n_kv_heads`` heads, after RoPE) are appended to entry ``layer``, and the queries, the last ``T`` of ``L``
    positions, attend over all of them.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, theta: float = 10000.0):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads={n_heads} is not divisible by n_kv_heads={n_kv_heads}: each key/value head "
                             "serves a whole group of query heads")
        self.n_heads, self.n_kv_heads, self.theta = n_heads, n_kv_heads, theta
        self.d_head = d_model // n_heads
        if self.d_head % 2:
            raise ValueError(f"head size {self.d_head} = {d_model} / {n_heads} is odd: RoPE rotates pairs of features")
        self.q = nn.Linear(d_model, n_heads * self.d_head, bias=False)
        self.k = nn.Linear(d_model, n_kv_heads * self.d_head, bias=False)
        self.v = nn.Linear(d_model, n_kv_heads * self.d_head, bias=False)
        self.out = nn.Linear(n_heads * self.d_head, d_model, bias=False)

    def _heads(self, projection: nn.Linear, x: torch.Tensor, n: int) -> torch.Tensor:
        batch, length, _ = x.shape
        return projection(x).view(batch, length, n, self.d_head).transpose(1, 2)  # (batch, n, T, d_head)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        q = rope(self._heads(self.q, x, self.n_heads), position_ids, self.theta)      # (batch, H, T, d_head)
        k = rope(self._heads(self.k, x, self.n_kv_heads), position_ids, self.theta)   # (batch, KV, T, d_head)
        v = self._heads(self.v, x, self.n_kv_heads)
        if cache is not None:
            k, v = cache.update(layer, k, v)                                           # (batch, KV, L, d_head)
        # enable_gqa: query head h reads key/value head h // (H / KV), as repeat_kv(k, H // KV) would, without the copy
        n_queries, n_keys = q.shape[-2], k.shape[-2]
        if mask is not None:
            check_mask(mask, (*q.shape[:-1], n_keys))
        if mask is None and n_queries == n_keys > 1:
            heads = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        else:  # one query (a cached step) sees every key: only the padding mask is left
            if n_queries > 1:
                allowed = causal_mask(n_queries, q.device, n_keys=n_keys)
                mask = allowed if mask is None else mask & allowed
            heads = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        batch, _, length, _ = heads.shape
        return self.out(heads.transpose(1, 2).reshape(batch, length, self.n_heads * self.d_head))
