"""Chapter 11's probes: oracles and the usual wrong answers for the encoder-decoder's visible tests.

Oracles are ``torch.nn`` modules holding the learner's weights (copied by :mod:`tfs.convert.seq2seq`);
each ``*_mistakes`` function returns ``{description: wrong output}`` for ``check_close(mistakes=...)``.
"""

from __future__ import annotations

import copy
import itertools
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from tfs.convert.seq2seq import copy_decoder_block_to_torch, to_torch_transformer
from tfs.nn.layers import sinusoidal_positions
from tfs.teaching.checks import check_close, check_true

__all__ = ["align_mistakes", "check_ids", "decoder_block_mistakes", "decoder_layer_by_hand", "decoder_layer_oracle",
           "distinct_norms", "eos_mistakes", "finish_rows", "greedy_by_hand", "greedy_mistakes",
           "one_sublayer_in_other_form", "queries_from_memory", "shift_mistakes", "span_mistake", "tie_problem", "torch_causal", "transformer_logits"]


def torch_causal(length: int) -> torch.Tensor:
    """``(length, length)`` bool mask in ``torch.nn``'s convention (True = blocked): the upper triangle."""
    return torch.ones(length, length, dtype=torch.bool).triu(1)


def decoder_layer_oracle(block: nn.Module, norm_first: bool = False, activation: str = "relu",
                         eps: float = 1e-5) -> nn.TransformerDecoderLayer:
    """An ``nn.TransformerDecoderLayer`` (batch first, dropout 0, LayerNorm eps ``eps``) with ``block``'s weights, in
    their dtype."""
    d_model = block.norm1.weight.shape[0]
    layer = nn.TransformerDecoderLayer(d_model, block.self_attn.n_heads, block.ff.linear1.out_features, dropout=0.0,
                                       activation=activation, layer_norm_eps=eps, batch_first=True,
                                       norm_first=norm_first, dtype=block.norm1.weight.dtype)
    return copy_decoder_block_to_torch(block, layer).train()  # dropout 0; keeps off the fused fast path


@torch.no_grad()
def distinct_norms(block: nn.Module, names: tuple[str, ...] = ("norm1", "norm2", "norm3")) -> nn.Module:
    """Give ``block``'s LayerNorms ``names`` gains and shifts of their own (seeded), so that a block using them in
    another order, or leaving one out, computes something else; return the block."""
    generator = torch.Generator().manual_seed(11)
    for name in names:
        norm = getattr(block, name)
        norm.weight.copy_(1 + 0.3 * torch.randn(norm.weight.shape, generator=generator, dtype=norm.weight.dtype))
        norm.bias.copy_(0.3 * torch.randn(norm.bias.shape, generator=generator, dtype=norm.bias.dtype))
    return block


@torch.no_grad()
def decoder_layer_by_hand(layer: nn.TransformerDecoderLayer, x: torch.Tensor, memory: torch.Tensor,
                          tgt_padding: torch.Tensor | None, memory_padding: torch.Tensor | None, norm_first: bool, *,
                          residual_normed: bool = False, norms: tuple[int, int, int] = (1, 2, 3),
                          other_form: tuple[int, ...] = ()) -> torch.Tensor:
    """The decoder layer written out with ``layer``'s own sublayers (paddings: True = blocked, ReLU), to build the
    mistakes torch has no switch for: ``residual_normed`` (pre-LN adding LN(x), not x, to each sublayer's output),
    ``norms`` (the LayerNorms in another order than norm1, norm2, norm3) and ``other_form`` (the sublayers of these
    indices, 0 self-attention, 1 cross-attention, 2 feed-forward, written post-LN in a pre-LN block or the reverse)."""
    causal = torch_causal(x.shape[1])
    sublayers = [lambda h: layer.self_attn(h, h, h, attn_mask=causal, key_padding_mask=tgt_padding,
                                           need_weights=False)[0],
                 lambda h: layer.multihead_attn(h, memory, memory, key_padding_mask=memory_padding,
                                                need_weights=False)[0],
                 lambda h: layer.linear2(F.relu(layer.linear1(h)))]
    for position, (index, sublayer) in enumerate(zip(norms, sublayers)):
        norm = getattr(layer, f"norm{index}")
        if norm_first != (position in other_form):
            h = norm(x)
            x = (h if residual_normed else x) + sublayer(h)
        else:
            x = norm(x + sublayer(x))
    return x


SUBLAYERS = ("masked self-attention", "cross-attention", "feed-forward")


@torch.no_grad()
def one_sublayer_in_other_form(layer: nn.TransformerDecoderLayer, x: torch.Tensor, memory: torch.Tensor,
                               tgt_padding: torch.Tensor | None, memory_padding: torch.Tensor | None,
                               norm_first: bool) -> dict[str, torch.Tensor]:
    """``{description: output}`` of the block with one sublayer written in the other LayerNorm form (a pre-LN block
    with one ``x = LN(x + f(x))`` left over, or a post-LN block with one ``x = x + f(LN(x))``)."""
    wrong, right = ("post-LN, x = LN(x + f(x))", "x + f(LN(x))") if norm_first else ("pre-LN, x = x + f(LN(x))",
                                                                                     "LN(x + f(x))")
    return {f"the {sublayer} sublayer written {wrong}, where the other two use {right}: every sublayer of a "
            f"{'pre' if norm_first else 'post'}-LN block takes the same form":
                decoder_layer_by_hand(layer, x, memory, tgt_padding, memory_padding, norm_first, other_form=(position,))
            for position, sublayer in enumerate(SUBLAYERS)}


@torch.no_grad()
def decoder_block_mistakes(layer: nn.TransformerDecoderLayer, x: torch.Tensor, memory: torch.Tensor,
                           memory_attention_mask: torch.Tensor, tgt_attention_mask: torch.Tensor | None = None,
                           norm_first: bool = False) -> dict[str, torch.Tensor]:
    """Outputs of the usual decoder-block mistakes, computed with the oracle ``layer`` (ReLU, ``norm_first`` as the
    block's) and the 0/1 masks the block was given (``tgt_attention_mask``: its ``tgt_mask``, if any)."""
    pad = memory_attention_mask == 0
    tgt_pad = None if tgt_attention_mask is None else tgt_attention_mask == 0
    causal = torch_causal(x.shape[1])
    gelu = copy.deepcopy(layer)
    gelu.activation = F.gelu
    other = copy.deepcopy(layer)
    other.norm_first = not norm_first
    masks = dict(tgt_mask=causal, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=pad)
    mistakes = {"a decoder self-attention without the causal mask (position t sees later targets)":
                    layer(x, memory, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=pad),
                "a cross-attention that ignores memory_mask (it attends to the source's padding)":
                    layer(x, memory, tgt_mask=causal, tgt_key_padding_mask=tgt_pad),
                "no mask at all (neither causal nor memory_mask)": layer(x, memory),
                "the feed-forward's activation left at FeedForward's default, GELU, not the block's activation "
                "(relu here)": gelu(x, memory, **masks),
                ("pre-LN computed although norm_first=False" if not norm_first else
                 "post-LN computed although norm_first=True"): other(x, memory, **masks)}
    if tgt_pad is not None:
        mistakes["a self-attention that ignores tgt_mask (only the causal mask is applied)"] = layer(
            x, memory, tgt_mask=causal, memory_key_padding_mask=pad)
    if norm_first:
        mistakes["residuals that add the normalised input, LN(x) + f(LN(x)), where pre-LN adds x + f(LN(x))"] = \
            decoder_layer_by_hand(layer, x, memory, tgt_pad, pad, True, residual_normed=True)
    mistakes.update(one_sublayer_in_other_form(layer, x, memory, tgt_pad, pad, norm_first))
    for order in itertools.permutations((1, 2, 3)):
        if order != (1, 2, 3):
            mistakes[f"the LayerNorms used in the order norm{order[0]}, norm{order[1]}, norm{order[2]} (norm1 belongs "
                     "to the self-attention, norm2 to the cross-attention, norm3 to the feed-forward)"] = \
                decoder_layer_by_hand(layer, x, memory, tgt_pad, pad, norm_first, norms=order)
    return mistakes


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
    own = torch.cat([torch.full_like(labels[:, :1], bos_id), labels[:, 1:]], dim=1)
    return {"input position t holding label t itself ([bos, y1, ..., y_{T-1}]): the decoder reads the token it must "
            "predict, and y0 is never fed": own.masked_fill(own == -100, pad_id),
            "a shift to the left ([y1, y2, ..., pad]): the decoder would see the future": left,
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
    if received is None:
        return None
    L = start_logits.shape[0]
    index = torch.arange(L)
    in_context = context_mask.bool()
    ordered = index[:, None] <= index[None, :]
    short = index[None, :] < index[:, None] + max_answer_length
    both_in_context = in_context[:, None] & in_context[None, :]
    scores = start_logits[:, None] + end_logits[None, :]                     # (start, end)

    def best(allowed: torch.Tensor) -> tuple[int, int]:
        return divmod(int(scores.masked_fill(~allowed, float("-inf")).argmax()), L)

    start, end = best(ordered & short & both_in_context)
    if tuple(received) == (int(offsets[start][0]), int(offsets[end][0])):
        return "a span that ends where its last token starts: the end character is offsets[end][1], not offsets[end][0]"
    apart = (int(start_logits.masked_fill(~in_context, float("-inf")).argmax()),
             int(end_logits.masked_fill(~in_context, float("-inf")).argmax()))
    if tuple(received) == (int(offsets[apart[0]][0]), int(offsets[apart[1]][1])):
        return "start and end chosen separately (each its own arg-max): score the pairs, start <= end"
    rules = {"an end before its start: the span read backwards is no text": both_in_context & short,
             "an end outside the context (after its last token, on [SEP]) though the start is in it: the start and "
             "the end token must both be context tokens": ordered & short & in_context[:, None],
             "a span inside the question (or on [SEP]): only the context holds answers": ordered & short,
             "a span of max_answer_length + 1 tokens: end - start must stay below max_answer_length":
                 ordered & both_in_context & (index[None, :] <= index[:, None] + max_answer_length),
             "a span longer than max_answer_length tokens": ordered & both_in_context}
    for description, allowed in rules.items():
        start, end = best(allowed)
        if tuple(received) == (int(offsets[start][0]), int(offsets[end][1])):
            return description
    return None


@torch.no_grad()
def greedy_by_hand(model: nn.Module, src_ids: torch.Tensor, src_attention_mask: torch.Tensor | None, bos_id: int,
                   max_new_tokens: int, position: int = -1) -> torch.Tensor:
    """``(B, 1 + max_new_tokens)``: greedy decoding without EOS, the whole model called at every step (``position=0``:
    the mistake of reading the first position's logits)."""
    ids = torch.full((src_ids.shape[0], 1), bos_id, dtype=torch.long)
    for _ in range(max_new_tokens):
        logits = model(src_ids, ids, src_attention_mask)                                  # (B, T, V)
        ids = torch.cat([ids, logits[:, position].argmax(-1)[:, None]], dim=1)
    return ids


def finish_rows(ids: torch.Tensor, eos_id: int, pad_id: int, keep_eos: bool = True, until_first: bool = False,
                pad_after: bool = True) -> torch.Tensor:
    """Greedy rows ``(B, 1 + n)`` decoded without EOS -> as decoding with ``eos_id`` returns them: each row up to its
    first EOS, then ``pad_id``, as wide as the longest row. ``keep_eos=False`` (the EOS itself padded),
    ``until_first`` (stopped when the first row ended) and ``pad_after=False`` (a finished row goes on with the
    model's tokens) build the usual mistakes."""
    rows = []
    for row in ids.tolist():
        end = next((i for i, token in enumerate(row) if i > 0 and token == eos_id), None)
        rows.append(row if end is None else row[:end + 1] if keep_eos else row[:end] + [pad_id])
    width = min(map(len, rows)) if until_first else max(map(len, rows))
    if not pad_after:
        return ids[:, :width].clone()
    return torch.tensor([(row + [pad_id] * (width - len(row)))[:width] for row in rows])


def greedy_mistakes(model: nn.Module, src_ids: torch.Tensor, src_attention_mask: torch.Tensor, bos_id: int,
                    max_new_tokens: int) -> dict[str, torch.Tensor]:
    """The usual wrong decoding loops (without EOS), as ids for ``check_close(op="exact", mistakes=...)``."""
    return {"the arg-max taken at the first position of the logits: the last position predicts the next token":
                greedy_by_hand(model, src_ids, src_attention_mask, bos_id, max_new_tokens, position=0),
            "the model called without src_attention_mask: the source's padding read as text":
                greedy_by_hand(model, src_ids, None, bos_id, max_new_tokens),
            "one step fewer than max_new_tokens: the loop makes max_new_tokens steps (range(max_new_tokens)), one new "
            "token each": greedy_by_hand(model, src_ids, src_attention_mask, bos_id, max_new_tokens - 1)}


def eos_mistakes(ids: torch.Tensor, eos_id: int, pad_id: int) -> dict[str, torch.Tensor]:
    """The usual wrong endings of greedy rows ``ids`` (decoded without EOS) for ``check_close(mistakes=...)``."""
    return {"a row's EOS itself replaced by pad_id: the row keeps its EOS, the padding comes after it":
                finish_rows(ids, eos_id, pad_id, keep_eos=False),
            "decoding stopped as soon as one row produced EOS: the other rows go on until every row has finished":
                finish_rows(ids, eos_id, pad_id, until_first=True),
            "padding with 0 where the model's pad_id is another id: read it from model.config.pad_id":
                finish_rows(ids, eos_id, 0),
            "a finished row not padded: after its EOS a row gets model.config.pad_id, not the model's next tokens":
                finish_rows(ids, eos_id, pad_id, pad_after=False),
            "one step fewer than max_new_tokens: the loop makes max_new_tokens steps (range(max_new_tokens)), one new "
            "token each": finish_rows(ids[:, :-1], eos_id, pad_id)}


def check_ids(received, expected: torch.Tensor, name: str, mistakes: dict[str, torch.Tensor], hint: str) -> None:
    """``check_close(op="exact")`` for ids, naming a known mistake even when it changes the shape (a loop that
    stopped early returns fewer columns, which ``check_close`` reports as a wrong shape)."""
    for mistake, wrong in mistakes.items():
        if (isinstance(received, torch.Tensor) and received.shape == wrong.shape != expected.shape
                and torch.equal(received, wrong)):
            check_true(False, name, f"wrong shape {tuple(received.shape)}, expected {tuple(expected.shape)}: this looks "
                                    f"like {mistake}.", hint)
    check_close(received, expected, name, op="exact", mistakes=mistakes, hint=hint)


def tie_problem(model: nn.Module) -> str:
    """What is wrong with a model whose ``head.weight`` should be ``tgt_embed.weight`` and is not."""
    head, table = model.head.weight, model.tgt_embed.weight
    if head.shape == table.shape and torch.equal(head.detach(), table.detach()):
        return ("head.weight holds tgt_embed.weight's values but is another Parameter (a copy, or a new nn.Parameter "
                "around it): two Parameters, each with its own gradient. Assign the Parameter itself.")
    return "the head is not tied: head.weight is a separate Parameter with values of its own."


def blocks_as_mistaken(transformer: nn.Transformer, decoder_post_ln: bool = False, encoder_post_ln: bool = False,
                       default_activations: bool = False) -> None:
    """Turn an ``nn.Transformer``'s blocks into a usual mistake, in place: a stack's blocks post-LN whatever their
    ``norm_first``, or the blocks' own default activations (GELU in the encoder's TransformerBlock, ReLU in
    DecoderBlock) whatever the config says."""
    for layer in transformer.decoder.layers:
        layer.norm_first = layer.norm_first and not decoder_post_ln
    for layer in transformer.encoder.layers:
        layer.norm_first = layer.norm_first and not encoder_post_ln
    if default_activations:
        for layer in transformer.encoder.layers:
            layer.activation = F.gelu
        for layer in transformer.decoder.layers:
            layer.activation = F.relu


@torch.no_grad()
def transformer_logits(model: nn.Module, src, tgt, src_attention_mask=None, tgt_attention_mask=None,
                       memory_mask: bool = True, encoder_mask: bool = True, scale: bool = True,
                       float32_positions: bool = False, encoder_norm: bool = True, decoder_norm: bool = True,
                       decoder_post_ln: bool = False, encoder_post_ln: bool = False, default_activations: bool = False,
                       final_norms_eps: float | None = None) -> torch.Tensor:
    """Logits from ``nn.Transformer`` with ``model``'s stacks copied, between ``model``'s embedding tables (scaled,
    plus sinusoidal positions) and its ``head`` weight. The switches build the usual mistakes: ``memory_mask=False``
    (a cross-attention that ignores the source padding), ``encoder_mask=False`` (encoder blocks without it),
    ``scale=False`` (no sqrt(d_model)), ``float32_positions`` (positions made in float32 and cast),
    ``encoder_norm=False`` / ``decoder_norm=False`` (a stack's final LayerNorm left out), ``decoder_post_ln`` /
    ``encoder_post_ln`` (a stack's blocks post-LN whatever config.norm_first says), ``default_activations`` (the
    blocks' own defaults, GELU in the encoder's TransformerBlock and ReLU in DecoderBlock, whatever config.activation
    says), ``final_norms_eps`` (encoder_norm and decoder_norm with another eps than config.eps)."""
    with warnings.catch_warnings():  # a pre-LN config: "enable_nested_tensor is True, but ... norm_first was True"
        warnings.filterwarnings("ignore", message="enable_nested_tensor", category=UserWarning)
        transformer = to_torch_transformer(model).train()
    blocks_as_mistaken(transformer, decoder_post_ln, encoder_post_ln, default_activations)
    if final_norms_eps is not None:
        transformer.encoder.norm.eps = transformer.decoder.norm.eps = final_norms_eps
    if not encoder_norm:
        transformer.encoder.norm = None
    if not decoder_norm:
        transformer.decoder.norm = None
    d_model = model.config.d_model

    def embed(table, ids):  # written out here, not the model's own code
        positions = sinusoidal_positions(ids.shape[1], d_model, dtype=torch.float32 if float32_positions else
                                         table.weight.dtype).to(table.weight.dtype)
        return table(ids) * (d_model ** 0.5 if scale else 1.0) + positions

    src_pad = None if src_attention_mask is None else src_attention_mask == 0
    out = transformer(embed(model.src_embed, src), embed(model.tgt_embed, tgt), tgt_mask=torch_causal(tgt.shape[1]),
                      src_key_padding_mask=src_pad if encoder_mask else None,
                      memory_key_padding_mask=src_pad if memory_mask else None,
                      tgt_key_padding_mask=None if tgt_attention_mask is None else tgt_attention_mask == 0)
    return out @ model.head.weight.T
