"""Chapter 11's probes: oracles and the usual wrong answers for the encoder-decoder's visible tests.

Oracles are ``torch.nn`` modules holding the learner's weights (copied by :mod:`tfs.convert.seq2seq`);
each ``*_mistakes`` function returns ``{description: wrong output}`` for ``check_close(mistakes=...)``.
"""

from __future__ import annotations

import torch
from torch import nn

from tfs.convert.seq2seq import copy_decoder_block_to_torch, to_torch_transformer
from tfs.nn.layers import sinusoidal_positions

__all__ = ["align_mistakes", "decoder_block_mistakes", "decoder_layer_oracle", "queries_from_memory", "shift_mistakes",
           "span_mistake", "torch_causal", "transformer_logits"]


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
    pad_first = raw.masked_fill(raw == -100, pad_id)
    pad_first[:, 0] = pad_id
    return {"a shift to the left ([y1, y2, ..., pad]): the decoder would see the future": left,
            "no shift at all: the decoder reads the very token it must predict": labels,
            "-100 left in the input: the loss ignores it, but the embedding table has no row -100": raw,
            "-100 replaced by 0 rather than pad_id": raw.masked_fill(raw == -100, 0),
            "pad_id at position 0: the first step reads padding, not the start token": pad_first}


def align_mistakes(word_ids: list, word_labels: list) -> dict[str, torch.Tensor]:
    """The usual wrong labellings of WordPiece tokens, as tensors for ``check_close(op="exact", mistakes=...)``."""
    before, after = [None] + list(word_ids[:-1]), list(word_ids[1:]) + [None]
    every = [-100 if w is None else word_labels[w] for w in word_ids]
    last = [label if w is not None and w != nxt else -100 for w, nxt, label in zip(word_ids, after, every)]
    specials = [0 if w is None else (label if w != prev else -100) for w, prev, label in zip(word_ids, before, every)]
    return {"every piece of a word labelled: a word of four pieces counts four times in the loss": torch.tensor(every),
            "the last piece labelled: a window that cuts a word keeps its first piece, not always its last":
                torch.tensor(last),
            "special tokens labelled 0 (O): [CLS] and [SEP] belong to no word": torch.tensor(specials)}


def span_mistake(received, start_logits: torch.Tensor, end_logits: torch.Tensor, offsets, context_mask: torch.Tensor,
                 max_answer_length: int) -> str | None:
    """Which usual span-search mistake gives ``received`` (``(char_start, char_end)``), if one does."""
    L = start_logits.shape[0]
    index = torch.arange(L)
    in_context = context_mask.bool()
    ordered = index[:, None] <= index[None, :]
    short = index[None, :] < index[:, None] + max_answer_length
    both_in_context = in_context[:, None] & in_context[None, :]
    rules = {"start and end chosen apart, or an end before its start: the span read backwards is no text":
                 both_in_context & short,
             "a span inside the question (or on [SEP]): only the context holds answers": ordered & short,
             "a span longer than max_answer_length tokens": ordered & both_in_context}
    scores = start_logits[:, None] + end_logits[None, :]                     # (start, end)
    for description, allowed in rules.items():
        start, end = divmod(int(scores.masked_fill(~allowed, float("-inf")).argmax()), L)
        if received is not None and tuple(received) == (int(offsets[start][0]), int(offsets[end][1])):
            return description
    return None


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
