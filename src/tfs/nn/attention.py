"""Attention: softmax, masks, scaled dot-product attention, multi-head attention, a KV cache.

Chapters 01 and 02 ask the learner to write these; later chapters import them, so a learner who
struggled earlier can still go on. Tests never use them as oracles: ``tests/test_nn.py`` checks
them, like the learner's code, against ``torch.nn.functional`` and ``torch.nn``.

**Mask convention** (the course's, everywhere): a bool tensor, **True = may attend**. That is
``F.scaled_dot_product_attention``'s convention; ``nn.MultiheadAttention``'s bool masks mean the
opposite (True = blocked), and a tokenizer's ``attention_mask`` is 0/1 integers, 1 = real token:
turn it into a course mask with :func:`padding_mask`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "KVCache",
    "MultiHeadAttention",
    "causal_mask",
    "check_mask",
    "merge_heads",
    "padding_mask",
    "scaled_dot_product_attention",
    "softmax",
    "split_heads",
]


def softmax(x: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> torch.Tensor:
    """Numerically stable softmax of ``x / temperature`` along ``dim``; same shape as ``x``."""
    z = x / temperature
    z = z - z.amax(dim=dim, keepdim=True)  # exp(z) <= 1: no overflow
    exp = torch.exp(z)
    return exp / exp.sum(dim=dim, keepdim=True)


def causal_mask(size: int, device: torch.device | str | None = None, n_keys: int | None = None) -> torch.Tensor:
    """``(size, n_keys)`` bool mask, True where query ``i`` may attend to key ``j``.

    ``n_keys`` defaults to ``size``. With ``n_keys > size`` the queries are the *last* ``size``
    positions of ``n_keys`` (decoding with a KV cache): query ``i`` sees keys ``j <= i + n_keys - size``.
    """
    n_keys = size if n_keys is None else n_keys
    return torch.ones(size, n_keys, dtype=torch.bool, device=device).tril(diagonal=n_keys - size)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """A tokenizer's ``attention_mask`` ``(batch, L)`` of 0/1 (1 = real token) -> ``(batch, 1, 1, L)`` bool.

    The result broadcasts over heads and queries: every query may attend to the real tokens of its
    own sequence, none to padding.
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, L), as a tokenizer returns it; received shape "
                         f"{tuple(attention_mask.shape)}")
    if attention_mask.dtype != torch.bool:
        values = attention_mask.unique().tolist()
        if not set(values) <= {0, 1}:
            raise ValueError(f"attention_mask must hold 0 (padding) and 1 (token); received values {values[:5]}")
    return attention_mask.bool()[:, None, None, :]


def check_mask(mask: torch.Tensor, scores_shape: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Validate ``mask`` for scores of shape ``(..., Lq, Lk)``; return it as given.

    Raises a ``TypeError`` for a non-bool mask and a ``ValueError`` for one that does not broadcast,
    naming the usual causes (a tokenizer's 0/1 mask, a ``(batch, L)`` padding mask without head and
    query axes).
    """
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be bool (True = may attend); received dtype {mask.dtype}. A tokenizer's 0/1 "
                        "attention_mask becomes a course mask with tfs.nn.padding_mask(attention_mask).")
    lq, lk = scores_shape[-2:]
    if mask.dim() == 2 and tuple(mask.shape) != (lq, lk):
        raise ValueError(f"a 2-D mask is read as (Lq, Lk) = {(lq, lk)}; received {tuple(mask.shape)}. A (batch, L) "
                         "padding mask needs head and query axes: tfs.nn.padding_mask(attention_mask).")
    try:
        torch.broadcast_shapes(mask.shape, tuple(scores_shape))
    except RuntimeError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the attention scores "
                         f"{tuple(scores_shape)} (..., Lq, Lk)") from None
    return mask


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, dropout: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention of ``q (..., Lq, d_k)`` over ``k (..., Lk, d_k)``, ``v (..., Lk, d_v)``.

    ``mask`` is bool, broadcastable to ``(..., Lq, Lk)``, True where attending is allowed.
    Returns ``(output (..., Lq, d_v), weights (..., Lq, Lk))``; a fully masked query row gets
    zero weights and a zero output. ``dropout > 0`` drops attention weights (inverted dropout) before
    they multiply ``v``; the weights returned are those before dropout.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~check_mask(mask, scores.shape), float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # fully masked rows: 0/0 -> 0
    return (F.dropout(weights, dropout) if dropout else weights) @ v, weights


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


@dataclass
class KVCache:
    """Keys and values of past positions, one entry per layer: ``(batch, heads, T, d_head)`` each.

    Pass the same cache to every forward call while decoding: each attention layer appends the new
    positions' keys and values and attends over all of them (chapter 07).
    """

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    def __len__(self) -> int:
        """The number of cached positions."""
        return self.keys[0].shape[-2] if self.keys else 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k``, ``v`` of new positions to ``layer``'s entry; return all keys and values so far."""
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        elif layer < len(self.keys):
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)
        else:
            raise IndexError(f"layer {layer} updated before layer {len(self.keys)}")
        return self.keys[layer], self.values[layer]

    def nbytes(self) -> int:
        """Memory held by the cached tensors, in bytes."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


class MultiHeadAttention(nn.Module):
    """Multi-head attention with one fused QKV projection, as in ``nn.MultiheadAttention``.

    ``qkv.weight`` is ``in_proj_weight`` (rows: W^Q, W^K, W^V) and ``out`` is ``out_proj``.
    ``dropout`` is applied to the attention weights in training; ``causal=True`` lets each query see
    only itself and earlier keys.

    ``forward(x, context=None, mask=None, need_weights=True, cache=None, layer=0)``: queries from
    ``x (batch, Lq, d_model)``, keys and values from ``context (batch, Lk, d_model)`` (``x`` itself when
    ``None``: self-attention). ``mask`` is bool, True = may attend, broadcastable to
    ``(batch, heads, Lq, Lk)``; a 3-D ``(batch, Lq, Lk)`` mask applies to every head. With a
    :class:`KVCache`, this call's keys and values are appended to entry ``layer`` and the queries
    attend over every cached position. Returns ``(output (batch, Lq, d_model), weights)``: weights
    ``(batch, heads, Lq, Lk)`` when ``need_weights``, else ``None`` (then the fused
    ``F.scaled_dot_product_attention`` runs and no ``(Lq, Lk)`` matrix is kept).
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, dropout: float = 0.0, causal: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model, self.n_heads, self.dropout, self.causal = d_model, n_heads, dropout, causal
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)

    def project(self, x: torch.Tensor, context: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Queries from ``x``, keys and values from ``context`` (or ``x``), each ``(batch, heads, L, d_head)``."""
        if context is None:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        else:
            w_q, w_kv = self.qkv.weight.split([self.d_model, 2 * self.d_model])
            b_q, b_kv = (None, None) if self.qkv.bias is None else self.qkv.bias.split([self.d_model, 2 * self.d_model])
            q = F.linear(x, w_q, b_q)
            k, v = F.linear(context, w_kv, b_kv).chunk(2, dim=-1)
        return tuple(split_heads(t, self.n_heads) for t in (q, k, v))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                need_weights: bool = True, cache: KVCache | None = None, layer: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q, k, v = self.project(x, context)  # (batch, heads, L, d_head)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if mask is not None and mask.dim() == 3:
            mask = mask[:, None]  # (batch, Lq, Lk) -> (batch, 1, Lq, Lk): the same for every head
        # causal: query i (the last Lq of Lk positions) sees keys j <= i + Lk - Lq. One query (a cached decoding
        # step) sees every key, so it needs no mask; without other masks, Lq = Lk is SDPA's own is_causal.
        fused_causal = self.causal and mask is None and not need_weights and q.shape[-2] == k.shape[-2] > 1
        if self.causal and q.shape[-2] > 1 and not fused_causal:
            allowed = causal_mask(q.shape[-2], q.device, n_keys=k.shape[-2])
            mask = allowed if mask is None else mask & allowed
        dropout = self.dropout if self.training else 0.0
        if fused_causal:
            heads, weights = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True), None
        elif need_weights:
            heads, weights = scaled_dot_product_attention(q, k, v, mask, dropout=dropout)  # weights @ v once
        else:
            if mask is not None:
                check_mask(mask, (*q.shape[:-1], k.shape[-2]))
            heads, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout), None
        return self.out(merge_heads(heads)), weights
