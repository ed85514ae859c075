"""The encoder-decoder Transformer of "Attention Is All You Need" (Vaswani et al. 2017), chapter 11.

The encoder is a stack of the course's :class:`tfs.nn.TransformerBlock`; the decoder a stack of
:class:`DecoderBlock`: masked (causal) self-attention over the target so far, **cross-attention** whose
queries come from the decoder and whose keys and values come from the encoder's output ("memory"),
then the feed-forward network, each with a residual and a LayerNorm.

Parameter names follow ``torch.nn.Transformer`` (``self_attn``, ``norm1..3``; ``cross_attn`` is its
``multihead_attn``; ``encoder_norm``/``decoder_norm`` its ``encoder.norm``/``decoder.norm``, which
``nn.Transformer`` applies after *both* stacks whatever ``norm_first`` is), so
:mod:`tfs.convert.seq2seq` copies weights one to one and ``nn.Transformer`` is the oracle.

Masks: the course's convention, bool, True = may attend. Ids: ``(batch, L)`` long, with 0/1
``attention_mask``s as a tokenizer returns them (1 = real token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tfs.nn.attention import KVCache, MultiHeadAttention, padding_mask
from tfs.nn.blocks import TransformerBlock
from tfs.nn.layers import FeedForward, LayerNorm, sinusoidal_positions

__all__ = ["DecoderBlock", "EncoderDecoder", "Seq2SeqConfig", "beam_decode", "greedy_decode", "seq2seq_loss",
           "shift_right"]


@dataclass
class Seq2SeqConfig:
    """Sizes of an :class:`EncoderDecoder`. ``shared_embeddings`` uses one table for source and target
    (then ``src_vocab_size == tgt_vocab_size``); ``tie_head`` makes the output layer the target embedding."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 64
    n_heads: int = 4
    n_encoder_layers: int = 2
    n_decoder_layers: int = 2
    d_ff: int = 128
    max_len: int = 64
    dropout: float = 0.0
    activation: str = "relu"
    norm_first: bool = False
    eps: float = 1e-5
    shared_embeddings: bool = False
    tie_head: bool = True
    pad_id: int = 0

    def __post_init__(self):
        if self.shared_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(f"shared_embeddings needs one vocabulary: src_vocab_size={self.src_vocab_size} != "
                             f"tgt_vocab_size={self.tgt_vocab_size}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")


class DecoderBlock(nn.Module):
    """Masked self-attention, cross-attention over ``memory``, feed-forward; residuals and LayerNorms.

    post-LN (``norm_first=False``, the 2017 paper): ``x = LN1(x + SelfAttn(x))``,
    ``x = LN2(x + CrossAttn(x, memory))``, ``x = LN3(x + FF(x))``. pre-LN: ``x = x + f(LN(x))`` for each.

    ``forward(x (batch, T, d_model), memory (batch, S, d_model), tgt_mask=None, memory_mask=None,
    cache=None, layer=0) -> (batch, T, d_model)``. ``tgt_mask`` (e.g. target padding ``(batch, 1, 1, T)``)
    is combined with the causal mask; ``memory_mask`` (source padding ``(batch, 1, 1, S)``) masks the
    cross-attention's keys. A :class:`KVCache` caches the self-attention's keys and values (entry
    ``layer``). Set ``keep_attention = True`` to keep the cross-attention weights ``(batch, heads, T, S)``
    in ``cross_attention_weights``.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False, eps: float = 1e-5,
                 dropout: float = 0.0, activation: str = "relu", bias: bool = True):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=bias, dropout=dropout, causal=True)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, bias=bias, dropout=dropout)
        self.ff = FeedForward(d_model, d_ff, activation, bias=bias)
        self.norm1 = LayerNorm(d_model, eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps, bias=bias)
        self.norm3 = LayerNorm(d_model, eps, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.keep_attention = False
        self.cross_attention_weights: torch.Tensor | None = None

    def _self(self, x, tgt_mask, cache, layer):
        return self.dropout(self.self_attn(x, mask=tgt_mask, need_weights=False, cache=cache, layer=layer)[0])

    def _cross(self, x, memory, memory_mask):
        out, weights = self.cross_attn(x, context=memory, mask=memory_mask, need_weights=self.keep_attention)
        self.cross_attention_weights = None if weights is None else weights.detach()
        return self.dropout(out)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, tgt_mask: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None, cache: KVCache | None = None, layer: int = 0
                ) -> torch.Tensor:
        if self.norm_first:
            x = x + self._self(self.norm1(x), tgt_mask, cache, layer)
            x = x + self._cross(self.norm2(x), memory, memory_mask)
            return x + self.dropout(self.ff(self.norm3(x)))
        x = self.norm1(x + self._self(x, tgt_mask, cache, layer))
        x = self.norm2(x + self._cross(x, memory, memory_mask))
        return self.norm3(x + self.dropout(self.ff(x)))


def _check_ids(ids: torch.Tensor, vocab_size: int, side: str) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype not in (torch.long, torch.int32):
        raise ValueError(f"{side} ids must be a (batch, L) integer tensor; received "
                         f"{type(ids).__name__} {getattr(ids, 'dtype', '')} {tuple(getattr(ids, 'shape', ()))}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"{side} ids range over [{int(ids.min())}, {int(ids.max())}] but the model's {side} "
                         f"vocabulary has {vocab_size} entries: the {side} tokenizer and the model do not match "
                         f"(or source and target vocabularies were swapped)")


def _mask(attention_mask: torch.Tensor | None, ids: torch.Tensor, side: str) -> torch.Tensor | None:
    if attention_mask is None:
        return None
    if attention_mask.shape != ids.shape:
        raise ValueError(f"{side}_attention_mask {tuple(attention_mask.shape)} must have the {side} ids' shape "
                         f"{tuple(ids.shape)}")
    return padding_mask(attention_mask)  # (batch, 1, 1, L), True = real token


class EncoderDecoder(nn.Module):
    """Token embeddings (scaled by sqrt(d_model)) + sinusoidal positions, an encoder, a decoder, an output layer.

    ``forward(src_ids (B, S), tgt_ids (B, T), src_attention_mask=None, tgt_attention_mask=None)
    -> logits (B, T, tgt_vocab_size)``: position ``t``'s logits predict the target token after
    ``tgt_ids[:, :t+1]`` (feed :func:`shift_right` of the target: teacher forcing).
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = c = config
        self.src_embed = nn.Embedding(c.src_vocab_size, c.d_model)
        self.tgt_embed = self.src_embed if c.shared_embeddings else nn.Embedding(c.tgt_vocab_size, c.d_model)
        options = dict(eps=c.eps, dropout=c.dropout, activation=c.activation)
        self.encoder = nn.ModuleList(TransformerBlock(c.d_model, c.n_heads, c.d_ff, c.norm_first, **options)
                                     for _ in range(c.n_encoder_layers))
        self.decoder = nn.ModuleList(DecoderBlock(c.d_model, c.n_heads, c.d_ff, c.norm_first, **options)
                                     for _ in range(c.n_decoder_layers))
        self.encoder_norm = LayerNorm(c.d_model, c.eps)
        self.decoder_norm = LayerNorm(c.d_model, c.eps)
        self.head = nn.Linear(c.d_model, c.tgt_vocab_size, bias=False)
        self.dropout = nn.Dropout(c.dropout)
        for embedding in dict.fromkeys([self.src_embed, self.tgt_embed]):  # in order (a set's order varies by run)
            nn.init.normal_(embedding.weight, std=c.d_model ** -0.5)
        if c.tie_head:
            self.head.weight = self.tgt_embed.weight

    def embed(self, ids: torch.Tensor, side: str = "src", start: int = 0) -> torch.Tensor:
        """``(B, L)`` ids -> ``(B, L, d_model)``: ``embedding * sqrt(d_model) + PE[start : start + L]``."""
        table, size = ((self.src_embed, self.config.src_vocab_size) if side == "src"
                       else (self.tgt_embed, self.config.tgt_vocab_size))
        _check_ids(ids, size, "source" if side == "src" else "target")
        if start + ids.shape[1] > self.config.max_len:
            raise ValueError(f"{side} length {start + ids.shape[1]} exceeds max_len={self.config.max_len}")
        # positions in the weights' own dtype: a float32 table cast to float64 would be off by ~1e-8
        positions = sinusoidal_positions(start + ids.shape[1], self.config.d_model, dtype=table.weight.dtype)
        x = table(ids) * math.sqrt(self.config.d_model) + positions[start:].to(table.weight.device)
        return self.dropout(x)

    def encode(self, src_ids: torch.Tensor, src_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, S)`` -> memory ``(B, S, d_model)``."""
        mask = _mask(src_attention_mask, src_ids, "src")
        x = self.embed(src_ids, "src")
        for block in self.encoder:
            x = block(x, mask)
        return self.encoder_norm(x)

    def decode(self, tgt_ids: torch.Tensor, memory: torch.Tensor, src_attention_mask: torch.Tensor | None = None,
               tgt_attention_mask: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """Logits ``(B, T, tgt_vocab)`` for ``tgt_ids (B, T)`` over ``memory (B, S, d_model)``.

        With a ``cache``, ``tgt_ids`` are the new positions only (after ``len(cache)`` cached ones)."""
        start = len(cache) if cache is not None else 0
        memory_mask = None if src_attention_mask is None else padding_mask(src_attention_mask)
        if memory_mask is not None and memory_mask.shape[-1] != memory.shape[1]:
            raise ValueError(f"src_attention_mask covers {memory_mask.shape[-1]} positions, memory has {memory.shape[1]}")
        tgt_mask = _mask(tgt_attention_mask, tgt_ids, "tgt")
        x = self.embed(tgt_ids, "tgt", start)
        for index, block in enumerate(self.decoder):
            # a learner's block may take no cache: pass it only when decoding with one
            x = (block(x, memory, tgt_mask, memory_mask) if cache is None
                 else block(x, memory, tgt_mask, memory_mask, cache=cache, layer=index))
        return self.head(self.decoder_norm(x))

    def forward(self, src_ids: torch.Tensor, tgt_ids: torch.Tensor, src_attention_mask: torch.Tensor | None = None,
                tgt_attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if src_ids.shape[0] != tgt_ids.shape[0]:
            raise ValueError(f"{src_ids.shape[0]} sources but {tgt_ids.shape[0]} targets")
        memory = self.encode(src_ids, src_attention_mask)
        return self.decode(tgt_ids, memory, src_attention_mask, tgt_attention_mask)


def shift_right(labels: torch.Tensor, bos_id: int, pad_id: int) -> torch.Tensor:
    """Teacher forcing's decoder input: ``[bos, y_0, ..., y_{T-2}]`` for labels ``(B, T)``; ``-100`` -> ``pad_id``.

    The decoder reads the target shifted one step to the right, so position ``t`` sees ``y_<t`` and
    predicts ``y_t``."""
    if labels.dim() != 2:
        raise ValueError(f"labels must be (batch, T); received shape {tuple(labels.shape)}")
    shifted = torch.full_like(labels, pad_id)
    shifted[:, 0] = bos_id
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_id)


def seq2seq_loss(model: EncoderDecoder, src_ids, src_attention_mask, labels, bos_id: int) -> torch.Tensor:
    """Mean cross-entropy of teacher forcing; ``labels (B, T)`` hold ``-100`` where no loss is taken."""
    pad = model.config.pad_id
    decoder_input = shift_right(labels, bos_id, pad)
    tgt_attention_mask = torch.ones_like(labels)
    tgt_attention_mask[:, 1:] = (labels[:, :-1] != -100).long()
    logits = model(src_ids, decoder_input, src_attention_mask, tgt_attention_mask)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


class _DecoderLM(nn.Module):
    """The decoder over a fixed memory, called like the course's GPT: ``(ids, attention_mask=, cache=,
    position_ids=) -> (logits, None)``, so :mod:`tfs.generate`'s greedy and beam search run on it."""

    def __init__(self, model: EncoderDecoder, memory: torch.Tensor, src_attention_mask: torch.Tensor | None):
        super().__init__()
        self.model, self.memory, self.src_attention_mask = model, memory, src_attention_mask

    def forward(self, ids, attention_mask=None, cache=None, position_ids=None):
        memory, src_mask = self.memory, self.src_attention_mask
        if memory.shape[0] != ids.shape[0]:  # beam search: one source, num_beams rows
            memory = memory.expand(ids.shape[0], -1, -1)
            src_mask = None if src_mask is None else src_mask.expand(ids.shape[0], -1)
        return self.model.decode(ids, memory, src_mask, cache=cache), None


def _start(model: EncoderDecoder, src_ids, src_attention_mask, bos_id: int, max_new_tokens: int):
    if max_new_tokens + 1 > model.config.max_len:
        raise ValueError(f"max_new_tokens={max_new_tokens} + BOS exceeds max_len={model.config.max_len}")
    memory = model.encode(src_ids, src_attention_mask)
    return memory, torch.full((src_ids.shape[0], 1), bos_id, dtype=torch.long, device=src_ids.device)


@torch.no_grad()
def greedy_decode(model: EncoderDecoder, src_ids: torch.Tensor, src_attention_mask: torch.Tensor | None,
                  bos_id: int, eos_id: int, max_new_tokens: int, use_cache: bool = True) -> torch.Tensor:
    """Greedy decoding with :func:`tfs.generate.generate`: ``(B, 1 + n)`` ids starting with BOS, rows
    finished early padded with ``pad_id``; ``n <= max_new_tokens``."""
    from tfs.generate import generate

    was_training = model.training
    model.eval()
    try:
        memory, start = _start(model, src_ids, src_attention_mask, bos_id, max_new_tokens)
        lm = _DecoderLM(model, memory, src_attention_mask)
        return generate(lm, start, max_new_tokens, eos_token_id=eos_id, pad_token_id=model.config.pad_id,
                        use_cache=use_cache)
    finally:
        model.train(was_training)


@torch.no_grad()
def beam_decode(model: EncoderDecoder, src_ids: torch.Tensor, src_attention_mask: torch.Tensor | None,
                bos_id: int, eos_id: int, max_new_tokens: int, num_beams: int = 4, length_penalty: float = 1.0,
                use_cache: bool = True) -> torch.Tensor:
    """Beam search with :func:`tfs.generate.beam_search`, one source at a time: ``(B, 1 + n)`` ids."""
    from tfs.generate import beam_search

    was_training = model.training
    model.eval()
    try:
        memory, start = _start(model, src_ids, src_attention_mask, bos_id, max_new_tokens)
        rows = []
        for i in range(src_ids.shape[0]):
            src_mask = None if src_attention_mask is None else src_attention_mask[i:i + 1]
            lm = _DecoderLM(model, memory[i:i + 1], src_mask)
            rows.append(beam_search(lm, start[i:i + 1], max_new_tokens, num_beams, eos_token_id=eos_id,
                                    pad_token_id=model.config.pad_id, length_penalty=length_penalty,
                                    use_cache=use_cache)[0])
        width = max(len(r) for r in rows)
        out = torch.full((len(rows), width), model.config.pad_id, dtype=torch.long, device=src_ids.device)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out
    finally:
        model.train(was_training)
