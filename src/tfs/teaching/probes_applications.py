"""Chapter 11's probes: oracles and the usual wrong answers for the encoder-decoder's visible tests.

Oracles are ``torch.nn`` modules holding the learner's weights (copied by :mod:`tfs.convert.seq2seq`);
each ``*_mistakes`` function returns ``{description: wrong output}`` for ``check_close(mistakes=...)``.
"""

from __future__ import annotations

import torch
from torch import nn

from tfs.convert.seq2seq import copy_decoder_block_to_torch, to_torch_transformer
from tfs.nn.layers import sinusoidal_positions

__all__ = ["decoder_block_mistakes", "decoder_layer_oracle", "queries_from_memory", "shift_mistakes",
           "torch_causal", "transformer_logits"]


def torch_causal(length: int) -> torch.Tensor:
    """``(length, length)`` bool mask in ``torch.nn``'s convention (True = blocked): the upper triangle."""
    return torch.ones(length, length, dtype=torch.bool).triu(1)


def decoder_layer_oracle(block: nn.Module, norm_first: bool = False, activation: str = "relu") -> nn.TransformerDecoderLayer:
    """An ``nn.TransformerDecoderLayer`` (batch first, dropout 0) with ``block``'s weights, in their dtype."""
    d_model = block.norm1.weight.shape[0]
    layer = nn.TransformerDecoderLayer(d_model, block.self_attn.n_heads, block.ff.linear1.out_features, dropout=0.0,
                                       activation=activation, batch_first=True, norm_first=norm_first,
                                       dtype=block.norm1.weight.dtype)
    return copy_decoder_block_to_torch(block, layer).train()  # dropout 0; keeps off the fused fast path


@torch.no_grad()
def decoder_block_mistakes(layer: nn.TransformerDecoderLayer, x: torch.Tensor, memory: torch.Tensor,
                           memory_attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the usual decoder-block mistakes, computed with the oracle ``layer``."""
    pad = memory_attention_mask == 0
    causal = torch_causal(x.shape[1])
    return {"a decoder self-attention without the causal mask (position t sees later targets)":
                layer(x, memory, memory_key_padding_mask=pad),
            "a cross-attention that ignores memory_mask (it attends to the source's padding)":
                layer(x, memory, tgt_mask=causal),
            "no mask at all (neither causal nor memory_mask)": layer(x, memory)}


@torch.no_grad()
def queries_from_memory(block: nn.Module, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """The cross-attention with its roles swapped: queries from ``memory``, keys and values from ``x``."""
    return block.cross_attn(memory, context=x, need_weights=False)[0]


def shift_mistakes(labels: torch.Tensor, bos_id: int, pad_id: int) -> dict[str, torch.Tensor]:
    """The usual wrong decoder inputs of teacher forcing."""
    left = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], pad_id)], dim=1)
    raw = torch.cat([torch.full_like(labels[:, :1], bos_id), labels[:, :-1]], dim=1)
    return {"a shift to the left ([y1, y2, ..., pad]): the decoder would see the future": left,
            "no shift at all: the decoder reads the very token it must predict": labels,
            "-100 left in place: replace it with pad_id": raw}


@torch.no_grad()
def transformer_logits(model: nn.Module, src, tgt, src_attention_mask=None, tgt_attention_mask=None,
                       memory_mask: bool = True) -> torch.Tensor:
    """Logits from ``nn.Transformer`` with ``model``'s stacks copied, between ``model``'s embedding tables (scaled,
    plus sinusoidal positions) and its ``head`` weight
    (``memory_mask=False``: the mistake of a cross-attention that ignores the source padding)."""
    transformer = to_torch_transformer(model).train()
    d_model = model.config.d_model

    def embed(table, ids):  # written out here, not the model's own code
        return table(ids) * d_model ** 0.5 + sinusoidal_positions(ids.shape[1], d_model, dtype=table.weight.dtype)

    src_pad = None if src_attention_mask is None else src_attention_mask == 0
    out = transformer(embed(model.src_embed, src), embed(model.tgt_embed, tgt), tgt_mask=torch_causal(tgt.shape[1]),
                      src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad if memory_mask else None,
                      tgt_key_padding_mask=None if tgt_attention_mask is None else tgt_attention_mask == 0)
    return out @ model.head.weight.T
