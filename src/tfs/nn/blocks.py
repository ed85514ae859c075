"""The Transformer block and a stack of them (chapter 03), as BERT (post-LN) and GPT-2 (pre-LN) use them.

Parameter names follow ``nn.TransformerEncoderLayer`` (``self_attn`` is ``attn``, ``linear1``/``linear2``
inside ``ff``, ``norm1``/``norm2``), so weights copy one to one (:mod:`tfs.convert`).
"""

from __future__ import annotations

import torch
from torch import nn

from tfs.nn.attention import KVCache, MultiHeadAttention
from tfs.nn.layers import FeedForward, LayerNorm

__all__ = ["Encoder", "TransformerBlock"]


class TransformerBlock(nn.Module):
    """Self-attention and feed-forward sublayers with residuals and LayerNorm.

    ``norm_first=False`` (post-LN, the 2017 paper, BERT): ``x = LN(x + dropout(f(x)))`` for each sublayer.
    ``norm_first=True`` (pre-LN, GPT-2): ``x = x + dropout(f(LN(x)))``.
    ``dropout`` is the residual dropout (on each sublayer's output) and the attention-weight dropout;
    ``causal=True`` makes the self-attention causal.

    ``forward(x (batch, L, d_model), mask=None, cache=None, layer=0) -> (batch, L, d_model)``. Set
    ``keep_attention = True`` to keep the last attention weights ``(batch, heads, L, L)`` (detached) in
    ``attention_weights`` for plotting; by default none are materialised (the fused kernel runs).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False, eps: float = 1e-5,
                 dropout: float = 0.0, activation: str = "gelu", bias: bool = True, causal: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads, bias=bias, dropout=dropout, causal=causal)
        self.ff = FeedForward(d_model, d_ff, activation, bias=bias)
        self.norm1 = LayerNorm(d_model, eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.keep_attention = False
        self.attention_weights: torch.Tensor | None = None

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None, cache: KVCache | None, layer: int) -> torch.Tensor:
        output, weights = self.attn(x, mask=mask, need_weights=self.keep_attention, cache=cache, layer=layer)
        self.attention_weights = None if weights is None else weights.detach()
        return self.dropout(output)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        if self.norm_first:
            x = x + self._attend(self.norm1(x), mask, cache, layer)
            return x + self.dropout(self.ff(self.norm2(x)))
        x = self.norm1(x + self._attend(x, mask, cache, layer))
        return self.norm2(x + self.dropout(self.ff(x)))


class Encoder(nn.Module):
    """``n_layers`` blocks; a pre-LN stack ends with a LayerNorm (``final_norm``), a post-LN one does not.

    Keyword arguments after ``norm_first`` are passed to every :class:`TransformerBlock`.
    """

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False,
                 eps: float = 1e-5, **block_options):
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, norm_first, eps, **block_options)
                                    for _ in range(n_layers))
        self.final_norm = LayerNorm(d_model, eps, bias=block_options.get("bias", True)) if norm_first else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x, mask, cache=cache, layer=index)
        return self.final_norm(x)
