"""Chapter 11's judges: the package's reference passes, each usual encoder-decoder mistake fails with a message naming it.

Data goes through the real collectors (``tfs.grader.collectors.ch11``) and a save/load round trip, as in grading.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tfs.grader.judging import JudgeFailure, collect, load_judge, read_data_roundtrip
from tfs.models import seq2seq as ref
from tfs.nn import padding_mask, sinusoidal_positions
from tfs.teaching.probes_applications import decoder_layer_by_hand


def verdict(test: str, **objects) -> None:
    load_judge(f"ch11.{test}")(read_data_roundtrip(collect(f"ch11.{test}", **objects)))


def fails(test: str, match: str, **objects) -> None:
    with pytest.raises(JudgeFailure, match=match):
        verdict(test, **objects)


def model_objects(cls=ref.EncoderDecoder):
    return dict(EncoderDecoder=cls, Seq2SeqConfig=ref.Seq2SeqConfig)


def greedy(model, src, mask, bos, eos, n):
    return ref.greedy_decode(model, src, mask, bos, eos, n, use_cache=False)


def test_the_reference_passes_every_judge():
    for test in ("decoder_block_structure", "decoder_block_post_ln", "decoder_block_pre_ln"):
        verdict(test, DecoderBlock=ref.DecoderBlock)
    for test in ("encoder_decoder_structure", "encoder_decoder_logits", "encoder_decoder_source_padding"):
        verdict(test, **model_objects())
    verdict("shift_right", shift_right=ref.shift_right)
    verdict("greedy_decode", greedy_decode=greedy)
    verdict("greedy_decode_eos", greedy_decode=greedy)


# ------------------------------------------------------------------------------------ decoder-block mutants

class NotCausal(ref.DecoderBlock):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.self_attn.causal = False


class NoMemoryMask(ref.DecoderBlock):
    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None, layer=0):
        return super().forward(x, memory, tgt_mask, None)


class QueriesFromMemory(ref.DecoderBlock):
    def _cross(self, x, memory, memory_mask):
        return self.cross_attn(memory, context=x)[0]

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None, layer=0):
        x = self.norm1(x + self._self(x, tgt_mask, cache, layer))
        x = self.norm2(self._cross(x, memory, memory_mask))  # (B, S, d): the residual cannot even be added
        return self.norm3(x + self.ff(x))


class AlwaysPreLN(ref.DecoderBlock):
    def __init__(self, d_model, n_heads, d_ff, norm_first=False, **kwargs):
        super().__init__(d_model, n_heads, d_ff, True, **kwargs)


class OtherNames(nn.Module):
    def __init__(self, d_model, n_heads, d_ff, norm_first=False, **kwargs):
        super().__init__()
        self.inner = ref.DecoderBlock(d_model, n_heads, d_ff, norm_first, **kwargs)

    def forward(self, *args):
        return self.inner(*args)


class DefaultActivation(ref.DecoderBlock):
    def __init__(self, d_model, n_heads, d_ff, norm_first=False, eps=1e-5, dropout=0.0, activation="relu"):
        super().__init__(d_model, n_heads, d_ff, norm_first, eps, dropout)
        self.ff.activation = "gelu"  # FeedForward(d_model, d_ff): its default, whatever the block was given


class AlwaysReLU(ref.DecoderBlock):
    def __init__(self, d_model, n_heads, d_ff, norm_first=False, eps=1e-5, dropout=0.0, activation="relu"):
        super().__init__(d_model, n_heads, d_ff, norm_first, eps, dropout, activation="relu")


class NoTargetMask(ref.DecoderBlock):
    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None, layer=0):
        return super().forward(x, memory, None, memory_mask)


class ResidualFromNorm(ref.DecoderBlock):
    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None, layer=0):
        if not self.norm_first:
            return super().forward(x, memory, tgt_mask, memory_mask)
        h = self.norm1(x)
        x = h + self._self(h, tgt_mask, cache, layer)
        h = self.norm2(x)
        x = h + self._cross(h, memory, memory_mask)
        h = self.norm3(x)
        return h + self.ff(h)


class NormsSwapped(ref.DecoderBlock):
    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None, layer=0):
        self.norm1, self.norm3 = self.norm3, self.norm1
        try:
            return super().forward(x, memory, tgt_mask, memory_mask)
        finally:
            self.norm1, self.norm3 = self.norm3, self.norm1


class FeedForwardPostLN(ref.DecoderBlock):
    """A pre-LN block whose feed-forward sublayer is left in the post-LN form."""

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None, layer=0):
        if not self.norm_first:
            return super().forward(x, memory, tgt_mask, memory_mask)
        x = x + self._self(self.norm1(x), tgt_mask, cache, layer)
        x = x + self._cross(self.norm2(x), memory, memory_mask)
        return self.norm3(x + self.ff(x))


def test_layer_by_hand_is_the_decoder_layer():
    judge = load_judge("ch11.decoder_block_post_ln").__globals__
    x, memory, mask = judge["c"].block_inputs()
    for norm_first in (False, True):
        layer = judge["_decoder_layer"](norm_first)
        expected = layer(x, memory, tgt_mask=judge["_causal"](4), memory_key_padding_mask=mask == 0)
        by_hand = decoder_layer_by_hand(layer, x, memory, None, mask == 0, norm_first)
        assert (by_hand - expected).abs().max() <= 1e-12


def test_decoder_block_mutants_fail_naming_the_mistake():
    fails("decoder_block_post_ln", "GELU although activation='relu'", DecoderBlock=DefaultActivation)
    fails("decoder_block_pre_ln", "GELU although activation='relu'", DecoderBlock=DefaultActivation)
    fails("decoder_block_post_ln", "activation='gelu'", DecoderBlock=AlwaysReLU)
    fails("decoder_block_post_ln", "tgt_mask is ignored", DecoderBlock=NoTargetMask)
    fails("decoder_block_pre_ln", "adds the normalised input", DecoderBlock=ResidualFromNorm)
    fails("decoder_block_pre_ln", "feed-forward sublayer written post-LN", DecoderBlock=FeedForwardPostLN)
    fails("decoder_block_post_ln", "order norm3, norm2, norm1", DecoderBlock=NormsSwapped)
    fails("decoder_block_post_ln", "not causal", DecoderBlock=NotCausal)
    fails("decoder_block_post_ln", "memory_mask is ignored", DecoderBlock=NoMemoryMask)
    fails("decoder_block_structure", "queries from the memory", DecoderBlock=QueriesFromMemory)
    fails("decoder_block_post_ln", "queries come from the memory", DecoderBlock=QueriesFromMemory)
    fails("decoder_block_post_ln", "pre-LN computed where post-LN", DecoderBlock=AlwaysPreLN)
    fails("decoder_block_structure", "parameters named", DecoderBlock=OtherNames)


# ------------------------------------------------------------------------------------ encoder-decoder mutants

class NoScale(ref.EncoderDecoder):
    def embed(self, ids, side="src", start=0):
        table = self.src_embed if side == "src" else self.tgt_embed
        return table(ids) + sinusoidal_positions(start + ids.shape[1], self.config.d_model, dtype=table.weight.dtype)[start:]


class Float32Positions(ref.EncoderDecoder):
    def embed(self, ids, side="src", start=0):
        table = self.src_embed if side == "src" else self.tgt_embed
        positions = sinusoidal_positions(ids.shape[1], self.config.d_model).to(table.weight.dtype)
        return table(ids) * math.sqrt(self.config.d_model) + positions


class NoCrossMask(ref.EncoderDecoder):
    def decode(self, tgt_ids, memory, src_attention_mask=None, tgt_attention_mask=None, cache=None):
        return super().decode(tgt_ids, memory, None, tgt_attention_mask, cache)


class NoSourceMask(ref.EncoderDecoder):
    def forward(self, src_ids, tgt_ids, src_attention_mask=None, tgt_attention_mask=None):
        return super().forward(src_ids, tgt_ids, None, tgt_attention_mask)


class NoFinalNorms(ref.EncoderDecoder):
    def __init__(self, config):
        super().__init__(config)
        self.encoder_norm.weight.requires_grad_(False)

    def forward(self, src_ids, tgt_ids, src_attention_mask=None, tgt_attention_mask=None):
        mask = None if src_attention_mask is None else padding_mask(src_attention_mask)
        target_mask = None if tgt_attention_mask is None else padding_mask(tgt_attention_mask)
        x = self.embed(src_ids, "src")
        for block in self.encoder:
            x = block(x, mask)
        y = self.embed(tgt_ids, "tgt")
        for block in self.decoder:
            y = block(y, x, target_mask, mask)
        return self.head(y)


class NoEncoderNorm(ref.EncoderDecoder):
    def encode(self, src_ids, src_attention_mask=None):
        x = self.embed(src_ids, "src")
        mask = None if src_attention_mask is None else padding_mask(src_attention_mask)
        for block in self.encoder:
            x = block(x, mask)
        return x


class NoDecoderNorm(ref.EncoderDecoder):
    def decode(self, tgt_ids, memory, src_attention_mask=None, tgt_attention_mask=None, cache=None):
        self.decoder_norm, kept = nn.Identity(), self.decoder_norm
        try:
            return super().decode(tgt_ids, memory, src_attention_mask, tgt_attention_mask)
        finally:
            self.decoder_norm = kept


class CopiedHead(ref.EncoderDecoder):
    def __init__(self, config):
        super().__init__(config)
        if config.tie_head:
            self.head.weight = nn.Parameter(self.tgt_embed.weight.detach().clone())


class SeparateTables(ref.EncoderDecoder):
    def __init__(self, config):
        super().__init__(config)
        if config.shared_embeddings:
            self.tgt_embed = nn.Embedding(config.tgt_vocab_size, config.d_model)
            self.head.weight = self.tgt_embed.weight


class NoEncoderMask(ref.EncoderDecoder):
    def encode(self, src_ids, src_attention_mask=None):
        return super().encode(src_ids, None)


class NoTargetPadding(ref.EncoderDecoder):
    def forward(self, src_ids, tgt_ids, src_attention_mask=None, tgt_attention_mask=None):
        return super().forward(src_ids, tgt_ids, src_attention_mask, None)


class UntiedHead(ref.EncoderDecoder):
    def __init__(self, config):
        super().__init__(config)
        self.head = nn.Linear(config.d_model, config.tgt_vocab_size, bias=False)


class ParameterAroundTable(ref.EncoderDecoder):
    def __init__(self, config):
        super().__init__(config)
        if config.tie_head:
            self.head.weight = nn.Parameter(self.tgt_embed.weight)


def test_encoder_decoder_mutants_fail_naming_the_mistake():
    fails("encoder_decoder_logits", "encoder's blocks do not get the source padding mask", **model_objects(NoEncoderMask))
    fails("encoder_decoder_logits", "tgt_attention_mask is not passed", **model_objects(NoTargetPadding))
    fails("encoder_decoder_structure", "the head is not tied", **model_objects(UntiedHead))
    fails("encoder_decoder_structure", "another Parameter", **model_objects(ParameterAroundTable))
    fails("encoder_decoder_logits", "not multiplied by sqrt", **model_objects(NoScale))
    fails("encoder_decoder_logits", "float32 values", **model_objects(Float32Positions))
    fails("encoder_decoder_logits", "not passed to the cross-attention", **model_objects(NoCrossMask))
    fails("encoder_decoder_logits", "not used at all", **model_objects(NoSourceMask))
    fails("encoder_decoder_logits", "encoder_norm and decoder_norm", **model_objects(NoFinalNorms))
    fails("encoder_decoder_logits", "encoder_norm is not applied to the encoder's output",
          **model_objects(NoEncoderNorm))
    fails("encoder_decoder_logits", "decoder_norm is not applied", **model_objects(NoDecoderNorm))
    fails("encoder_decoder_source_padding", "not passed to the cross-attention", **model_objects(NoCrossMask))
    fails("encoder_decoder_structure", "another Parameter", **model_objects(CopiedHead))
    fails("encoder_decoder_structure", "one table", **model_objects(SeparateTables))


# ------------------------------------------------------------------------------------ shift and greedy mutants

def shift_left(labels, bos_id, pad_id):
    return torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], pad_id)], dim=1)


def keep_minus_100(labels, bos_id, pad_id):
    return torch.cat([torch.full_like(labels[:, :1], bos_id), labels[:, :-1]], dim=1)


def minus_100_to_zero(labels, bos_id, pad_id):
    return keep_minus_100(labels, bos_id, pad_id).masked_fill(keep_minus_100(labels, bos_id, pad_id) == -100, 0)


def pad_first(labels, bos_id, pad_id):
    return ref.shift_right(labels, pad_id, pad_id)


def own_label(labels, bos_id, pad_id):
    shifted = labels.clone()
    shifted[:, 0] = bos_id
    return shifted.masked_fill(shifted == -100, pad_id)


def in_place(labels, bos_id, pad_id):
    labels[labels == -100] = pad_id
    return ref.shift_right(labels, bos_id, pad_id)


def test_shift_mutants_fail_naming_the_mistake():
    fails("shift_right", "holds label t, the token it must predict", shift_right=own_label)
    fails("shift_right", "changed in place", shift_right=in_place)
    fails("shift_right", "shifted left", shift_right=shift_left)
    fails("shift_right", "unshifted", shift_right=lambda labels, bos, pad: labels)
    fails("shift_right", "-100 is left", shift_right=keep_minus_100)
    fails("shift_right", "became 0, not pad_id", shift_right=minus_100_to_zero)
    fails("shift_right", "position 0 holds pad_id", shift_right=pad_first)


def no_bos(model, src, mask, bos, eos, n):
    return greedy(model, src, mask, bos, eos, n)[:, 1:]


def no_early_stop(model, src, mask, bos, eos, n):
    out = greedy(model, src, mask, bos, eos, n)
    return torch.cat([out, torch.full((out.shape[0], 1 + n - out.shape[1]), model.config.pad_id)], dim=1)


@torch.no_grad()
def keeps_writing_after_eos(model, src, mask, bos, eos, n):
    ids = torch.full((src.shape[0], 1), bos)
    for _ in range(n):
        ids = torch.cat([ids, model(src, ids, mask)[:, -1:].argmax(-1)], dim=1)
        if (ids == eos).any(dim=1).all():
            break
    return ids


@torch.no_grad()
def first_position(model, src, mask, bos, eos, n):
    ids = torch.full((src.shape[0], 1), bos)
    for _ in range(n):
        ids = torch.cat([ids, model(src, ids, mask)[:, :1].argmax(-1)], dim=1)
    return ids


@torch.no_grad()
def eos_padded_too(model, src, mask, bos, eos, n):
    out = greedy(model, src, mask, bos, eos, n)
    return out.masked_fill(out == eos, model.config.pad_id)


def stop_at_first_eos(model, src, mask, bos, eos, n):
    out = greedy(model, src, mask, bos, eos, n)
    first = min(int((row == eos).nonzero()[0]) if (row == eos).any() else out.shape[1] - 1 for row in out)
    return out[:, :first + 1]


def pad_zero(model, src, mask, bos, eos, n):
    out = greedy(model, src, mask, bos, eos, n)
    return out.masked_fill(out == model.config.pad_id, 0)


def no_source_mask(model, src, mask, bos, eos, n):
    return greedy(model, src, None, bos, eos, n)


def test_greedy_mutants_fail_naming_the_mistake():
    fails("greedy_decode", "without src_attention_mask", greedy_decode=no_source_mask)
    fails("greedy_decode_eos", "EOS was itself replaced", greedy_decode=eos_padded_too)
    fails("greedy_decode_eos", "stopped as soon as one row", greedy_decode=stop_at_first_eos)
    fails("greedy_decode_eos", "not assumed 0", greedy_decode=pad_zero)
    fails("greedy_decode", "BOS token is missing", greedy_decode=no_bos)
    fails("greedy_decode", "first position of the logits, not the last", greedy_decode=first_position)
    fails("greedy_decode_eos", "went on after every row", greedy_decode=no_early_stop)
    fails("greedy_decode_eos", "after a row's EOS must be the model's pad_id", greedy_decode=keeps_writing_after_eos)


# ------------------------------------------------------------------------------------ Part 2 mutants

from tfs import tasks  # noqa: E402


def test_part2_references_pass():
    verdict("align_labels", align_labels=tasks.align_labels)
    verdict("entity_scores", entity_scores=tasks.entity_scores)
    verdict("extract_answer", extract_answer=tasks.extract_answer)


def every_piece(word_ids, labels):
    return [-100 if w is None else labels[w] for w in word_ids]


def last_piece(word_ids, labels):
    return [-100 if w is None or w == nxt else labels[w] for w, nxt in zip(word_ids, list(word_ids[1:]) + [None])]


def specials_zero(word_ids, labels):
    return [0 if w is None else label for w, label in zip(word_ids, tasks.align_labels(word_ids, labels))]


def never_raises(word_ids, labels):
    return [-100 if w is None or w >= len(labels) else label
            for w, label in zip(word_ids, tasks.align_labels([None if w is not None and w >= len(labels) else w
                                                               for w in word_ids], labels))]


def token_level(true_tags, pred_tags):
    pairs = [(a, b) for ta, pa in zip(true_tags, pred_tags) for a, b in zip(ta, pa)]
    hit = sum(a == b and a != "O" for a, b in pairs)
    p = hit / max(1, sum(b != "O" for _, b in pairs))
    r = hit / max(1, sum(a != "O" for a, _ in pairs))
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def i_after_o_ignored(true_tags, pred_tags):
    fix = lambda seqs: [["O" if t.startswith("I-") and (i == 0 or s[i - 1] == "O") else t for i, t in enumerate(s)]
                        for s in seqs]  # noqa: E731
    return tasks.entity_scores(fix(true_tags), fix(pred_tags))


def separate_argmax(start, end, offsets, mask, max_len):
    s = int(start.masked_fill(mask == 0, -1e9).argmax())
    e = int(end.masked_fill(mask == 0, -1e9).argmax())
    return None if start[0] + end[0] > start[s] + end[e] else (offsets[s][0], offsets[e][1])


def no_null_answer(start, end, offsets, mask, max_len):
    s, e = start.clone(), end.clone()
    s[0] = e[0] = -1e9
    return tasks.extract_answer(s, e, offsets, mask, max_len)


def question_allowed(start, end, offsets, mask, max_len):
    allowed = mask.clone()
    allowed[1:] = 1
    allowed[-1] = 0
    return tasks.extract_answer(start, end, offsets, allowed, max_len)


def strict_alignment(word_ids, labels):
    if set(word_ids) - {None} != set(range(len(labels))):
        raise ValueError("labels and tokens do not align")
    return tasks.align_labels(word_ids, labels)


def any_type_continues(true_tags, pred_tags):
    fix = lambda seqs: [[t if not t.startswith("I-") or i == 0 or s[i - 1] == "O" else "I-" + s[i - 1][2:]
                         for i, t in enumerate(s)] for s in seqs]  # noqa: E731
    return tasks.entity_scores(fix(true_tags), fix(pred_tags))


def macro(true_tags, pred_tags):
    each = [tasks.entity_scores([t], [p]) for t, p in zip(true_tags, pred_tags)]
    return {k: sum(e[k] for e in each) / len(each) for k in ("precision", "recall", "f1")}


def sequences_pooled(true_tags, pred_tags):
    """Entities without the index of their sequence: one matches an entity at the same place in another sequence."""
    true = {e for tags in true_tags for e in tasks.entities(tags)}
    pred = {e for tags in pred_tags for e in tasks.entities(tags)}
    hit = len(true & pred)
    p, r = hit / len(pred) if pred else 0.0, hit / len(true) if true else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def divides_by_zero(true_tags, pred_tags):
    if not any(t != "O" for seq in pred_tags for t in seq):
        raise ZeroDivisionError("division by zero")
    return tasks.entity_scores(true_tags, pred_tags)


def end_from_start_offset(start, end, offsets, mask, max_len):
    span = tasks.extract_answer(start, end, offsets, mask, max_len)
    if span is None:
        return None
    last = next(i for i, o in enumerate(offsets) if mask[i] and o[1] == span[1])
    return span[0], offsets[last][0]


def one_token_longer(start, end, offsets, mask, max_len):
    return tasks.extract_answer(start, end, offsets, mask, max_len + 1)


def test_part2_mutants_fail_naming_the_mistake():
    fails("align_labels", "cut off by truncation", align_labels=strict_alignment)
    fails("entity_scores", "continuing an entity of another type", entity_scores=any_type_continues)
    fails("entity_scores", "per-sequence scores", entity_scores=macro)
    fails("entity_scores", "without their sequence's index", entity_scores=sequences_pooled)
    fails("entity_scores", "precision is 0/0", entity_scores=divides_by_zero)
    fails("extract_answer", "offsets\\[end\\]\\[0\\]", extract_answer=end_from_start_offset)
    fails("extract_answer", "max_answer_length \\+ 1 tokens", extract_answer=one_token_longer)
    fails("align_labels", "every piece", align_labels=every_piece)
    fails("align_labels", "last piece", align_labels=last_piece)
    fails("align_labels", "special tokens", align_labels=specials_zero)
    fails("align_labels", "ValueError", align_labels=never_raises)
    fails("entity_scores", "counted over tokens", entity_scores=token_level)
    fails("entity_scores", "I- tag after O .* dropped", entity_scores=i_after_o_ignored)
    fails("extract_answer", "chosen separately", extract_answer=separate_argmax)
    fails("extract_answer", "return None", extract_answer=no_null_answer)
    fails("extract_answer", "inside the question", extract_answer=question_allowed)


def test_the_encoder_decoder_is_graded_with_a_stand_in_block():
    """Exercise 2 is graded on its own: while the collector builds the learner's model, the name DecoderBlock in the
    learner's namespace means the collector's stand-in (nn.TransformerDecoderLayer under the course's names), so a
    broken exercise 1 costs no points in exercise 2; the learner's own block is back afterwards."""
    namespace = {"EncoderDecoder": ref.EncoderDecoder, "nn": nn, "DecoderBlock": NotCausal}
    exec(
        "class LearnersModel(EncoderDecoder):\n"
        "    def __init__(self, config):\n"
        "        super().__init__(config)\n"
        "        self.decoder = nn.ModuleList(DecoderBlock(config.d_model, config.n_heads, config.d_ff,\n"
        "                                                  config.norm_first, config.eps,\n"
        "                                                  activation=config.activation)\n"
        "                                     for _ in range(config.n_decoder_layers))\n", namespace)
    for test in ("encoder_decoder_structure", "encoder_decoder_logits", "encoder_decoder_source_padding"):
        verdict(test, **model_objects(namespace["LearnersModel"]))
    assert namespace["DecoderBlock"] is NotCausal


# ---------------------------------------------------- added after the third held-out list (heldout3/ch11)

class DefaultEps(ref.DecoderBlock):
    def __init__(self, d_model, n_heads, d_ff, norm_first=False, eps=1e-5, dropout=0.0, activation="relu"):
        super().__init__(d_model, n_heads, d_ff, norm_first, 1e-5, dropout, activation)  # eps not passed on


class DecoderDepthOfTheEncoder(ref.EncoderDecoder):
    def __init__(self, config):
        super().__init__(config)
        self.decoder = nn.ModuleList(list(self.decoder)[:config.n_encoder_layers])  # range(n_encoder_layers)


def test_held_out_3_mistakes_are_caught_and_named():
    fails("decoder_block_post_ln", "the eps given is not used", DecoderBlock=DefaultEps)
    fails("decoder_block_pre_ln", "the eps given is not used", DecoderBlock=DefaultEps)
    fails("encoder_decoder_structure", "the decoder with config.n_decoder_layers",
          **model_objects(DecoderDepthOfTheEncoder))
    namespace = {"EncoderDecoder": ref.EncoderDecoder, "nn": nn, "DecoderBlock": ref.DecoderBlock}
    exec("class PostLNDecoder(EncoderDecoder):\n"
         "    def __init__(self, config):\n"
         "        super().__init__(config)\n"
         "        self.decoder = nn.ModuleList(DecoderBlock(config.d_model, config.n_heads, config.d_ff, eps=config.eps,\n"
         "                                                  activation=config.activation)\n"
         "                                     for _ in range(config.n_decoder_layers))\n", namespace)
    fails("encoder_decoder_logits", "the decoder blocks are post-LN although", **model_objects(namespace["PostLNDecoder"]))

    def no_span_not_none(start, end, offsets, mask, max_len):
        if not mask.any():  # the argmax of an all -inf table: (0, 0), then [CLS] does not beat itself
            return int(offsets[0][0]), int(offsets[0][1])
        return tasks.extract_answer(start, end, offsets, mask, max_len)

    fails("extract_answer", "no span is allowed", extract_answer=no_span_not_none)


def test_a_loop_one_step_short_is_named_by_the_visible_check():
    from tfs.teaching.checks import CheckError
    from tfs.teaching.probes_applications import check_ids, greedy_by_hand, greedy_mistakes

    torch.manual_seed(6)
    model = ref.EncoderDecoder(ref.Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=11, d_model=16, n_heads=2, d_ff=32,
                                                 tie_head=False)).double().eval()
    src, mask = torch.randint(3, 13, (3, 6)), torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    full, short = greedy_by_hand(model, src, mask, 1, 5), greedy_by_hand(model, src, mask, 1, 4)
    with pytest.raises(CheckError, match="one step fewer than max_new_tokens"):  # the visible test without EOS
        check_ids(short, full, "greedy_decode", greedy_mistakes(model, src, mask, 1, 5), "hint")


# ------------------------------------------------------------------------------------ the systematic sweep (issue 31)

SWEEP_TESTS = {"decoder_block": ("decoder_block_post_ln", "decoder_block_pre_ln"),
               "encoder_decoder": ("encoder_decoder_structure", "encoder_decoder_logits"),
               "shift_right": ("shift_right",), "greedy_decode": ("greedy_decode", "greedy_decode_eos"),
               "align_labels": ("align_labels",), "entity_scores": ("entity_scores",),
               "extract_answer": ("extract_answer",)}
SWEEP_OBJECTS = {"decoder_block": ("DecoderBlock",), "encoder_decoder": ("EncoderDecoder", "Seq2SeqConfig"),
                 "shift_right": ("shift_right",), "greedy_decode": ("greedy_decode",),
                 "align_labels": ("align_labels",), "entity_scores": ("entity_scores",),
                 "extract_answer": ("extract_answer",)}


def _answers(mutant=None) -> dict:
    """The chapter's answer cells run in one namespace (its import cell first), ``mutant`` applied to its answer: a
    learner's notebook holding that one mistake."""
    import sys
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parents[1]
    cells = nbformat.read(root / "solutions" / "11-applications" / "applications.ipynb", 4).cells
    namespace: dict = {}
    imports = next(c.source for c in cells if c.cell_type == "code" and "from tfs.nn import" in c.source)
    exec("\n".join(line for line in imports.splitlines() if not line.startswith("%")), namespace)
    for cell in cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in SWEEP_TESTS:
            source = mutant.apply(cell.source) if mutant is not None and mutant.answer == grade_id else cell.source
            exec(source, namespace)
    return namespace


def test_every_sweep_mistake_fails_its_hidden_tests_naming_it():
    """Each mistake of ``tests/mutants/ch11.py``'s SWEEP list fails a hidden test of its own exercise with a message
    that its ``names`` matches; the solution's answers pass every one of them."""
    import re
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mutants.ch11 import SWEEP

    def messages(namespace, answer):
        out = []
        for test in SWEEP_TESTS[answer]:
            try:
                verdict(test, **{name: namespace[name] for name in SWEEP_OBJECTS[answer]})
            except JudgeFailure as failure:
                out.append(str(failure))
        return out

    right = _answers()
    assert not any(messages(right, answer) for answer in SWEEP_TESTS)
    for mutant in SWEEP:
        found = messages(_answers(mutant), mutant.answer)
        assert found, f"{mutant.name}: passed every hidden test of {mutant.answer}"
        assert any(re.search(mutant.names, m, re.IGNORECASE) for m in found), (mutant.name, found)
