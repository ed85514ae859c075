"""Chapter 05's judges: the package's reference passes, each usual BERT mistake fails with a message naming it.

Data goes through the real collectors (``tfs.grader.collectors.ch05``) and a save/load round trip, as in grading.
"""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from tfs.convert.bert import load_hf_bert
from tfs.grader.judging import JudgeFailure, collect, load_judge, read_data_roundtrip
from tfs.models import bert as ref
from tfs.nn import Encoder
from tfs.models.bert_pretraining import make_nsp_pairs, mask_tokens
from tfs.nn.attention import padding_mask
from tfs.teaching import probes_bert


def verdict(test: str, **objects) -> None:
    load_judge(f"ch05.{test}")(read_data_roundtrip(collect(f"ch05.{test}", **objects)))


def fails(test: str, match: str, **objects) -> None:
    with pytest.raises(JudgeFailure, match=match):
        verdict(test, **objects)


# ------------------------------------------------------------------------ mutants: plausible wrong answers

class NoSegments(ref.BertEmbeddings):
    def forward(self, input_ids, token_type_ids=None):
        return super().forward(input_ids, None)


class SwappedSegments(ref.BertEmbeddings):
    def forward(self, input_ids, token_type_ids=None):
        return super().forward(input_ids, None if token_type_ids is None else 1 - token_type_ids)


class Eps1e5(ref.BertEmbeddings):
    def __init__(self, config):
        super().__init__(config)
        self.norm.eps = 1e-5


def inverted_mask(attention_mask):
    return ~padding_mask(attention_mask)


def flat_mask(attention_mask):
    return attention_mask.bool()


def query_axis_mask(attention_mask):
    return attention_mask.bool()[:, None, :, None]


def both_axes_mask(attention_mask):  # padding hidden as keys and as queries: a valid choice
    real = attention_mask.bool()
    return real[:, None, :, None] & real[:, None, None, :]


def expanded_mask(attention_mask):  # (batch, 1, L, L), every row the same: a valid choice
    length = attention_mask.shape[1]
    return padding_mask(attention_mask).expand(-1, -1, length, -1)


class PreLN(ref.BertModel):
    def __init__(self, config):
        super().__init__(config)
        for block in self.encoder.layers:
            block.norm_first = True


class PoolLast(ref.BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden, _ = super().forward(input_ids, attention_mask, token_type_ids)
        return hidden, torch.tanh(self.pooler(hidden[:, -1]))


class NoTanh(ref.BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden, _ = super().forward(input_ids, attention_mask, token_type_ids)
        return hidden, self.pooler(hidden[:, 0])


class InvertedMaskModel(ref.BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), ~padding_mask(attention_mask))
        return hidden, torch.tanh(self.pooler(hidden[:, 0]))


class IgnoresMask(ref.BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return super().forward(input_ids, None, token_type_ids)


class UntiedHead(ref.BertMLMHead):
    def __init__(self, config, token_embedding):
        super().__init__(config, token_embedding)
        self.decoder.weight = nn.Parameter(token_embedding.weight.detach().clone())


class FreshDecoderHead(ref.BertMLMHead):  # the tie forgotten: the decoder keeps its own initial weight
    def __init__(self, config, token_embedding):
        super().__init__(config, token_embedding)
        self.decoder = nn.Linear(config.d_model, config.vocab_size, bias=False)


class NormBeforeGeluHead(ref.BertMLMHead):
    def forward(self, hidden):
        return self.decoder(F.gelu(self.norm(self.dense(hidden)))) + self.bias


class TanhNSP(ref.BertNSPHead):
    def forward(self, pooled):
        return torch.tanh(super().forward(pooled))


class PositionsFromOne(ref.BertEmbeddings):
    def forward(self, input_ids, token_type_ids=None):
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        positions = torch.arange(1, input_ids.shape[1] + 1)
        return self.dropout(self.norm(self.token(input_ids) + self.position(positions) + self.segment(types)))


class PositionsAlongBatch(ref.BertEmbeddings):
    def forward(self, input_ids, token_type_ids=None):
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        positions = torch.arange(input_ids.shape[0])
        return self.dropout(self.norm(self.token(input_ids) + self.position(positions) + self.segment(types)))


class CopiedHead(ref.BertMLMHead):
    """Untied without a parameter of its own: a frozen copy of the embedding taken at construction."""

    def __init__(self, config, token_embedding):
        super().__init__(config, token_embedding)
        self.token_embedding = token_embedding

    def forward(self, hidden):
        transformed = self.norm(F.gelu(self.dense(hidden)))
        if not hasattr(self, "frozen"):
            self.frozen = self.token_embedding.weight.detach().clone()
        return transformed @ self.frozen.T + self.bias


class NoBiasHead(ref.BertMLMHead):
    def forward(self, hidden):
        return self.decoder(self.norm(F.gelu(self.dense(hidden))))


class SoftmaxNSP(ref.BertNSPHead):
    def forward(self, pooled):
        return torch.softmax(super().forward(pooled), -1)


def masks_specials(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    return mask_tokens(input_ids, [], mask_id, vocab_size, mlm_probability, generator)


def all_mask(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    masked, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size, mlm_probability, generator)
    return masked.masked_fill(labels != -100, mask_id), labels


def labels_everywhere(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    masked, _ = mask_tokens(input_ids, special_ids, mask_id, vocab_size, mlm_probability, generator)
    return masked, input_ids.clone()


def labels_zero(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    masked, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size, mlm_probability, generator)
    return masked, labels.masked_fill(labels == -100, 0)


def in_place(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    masked, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size, mlm_probability, generator)
    input_ids.copy_(masked)
    return masked, labels


def thirty_percent(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    return mask_tokens(input_ids, special_ids, mask_id, vocab_size, 0.3, generator)


def nsp_same_passage(passages, cls_id, sep_id, rng):
    pairs = make_nsp_pairs(passages, cls_id, sep_id, rng)
    for pair, passage in zip(pairs, [p for p in passages for _ in range(len(p) - 1)]):
        if pair["next_sentence_label"] == 1:  # "random" B drawn from A's own passage
            pair["input_ids"][5:-1] = list(rng.choice(passage))
    return pairs


def labels_only_on_mask(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    masked, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size, mlm_probability, generator)
    return masked, labels.masked_fill(masked != mask_id, -100)


def overlapping_draws(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    chosen = (torch.rand(input_ids.shape, generator=generator) < mlm_probability) & \
        ~torch.isin(input_ids, torch.tensor(special_ids))
    draw = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.masked_fill(chosen & (draw < 0.8), mask_id)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    masked = torch.where(chosen & (draw < 0.1), random_ids, masked)  # inside the [MASK] range
    return masked, torch.where(chosen, input_ids, -100)


def no_unchanged(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    masked, labels = mask_tokens(input_ids, special_ids, mask_id, vocab_size, mlm_probability, generator)
    kept = (labels != -100) & (masked == input_ids)
    return masked.masked_fill(kept, mask_id), labels


def fixed_rate(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    return mask_tokens(input_ids, special_ids, mask_id, vocab_size, 0.15, generator)


def global_generator(input_ids, special_ids, mask_id, vocab_size, mlm_probability=0.15, generator=None):
    return mask_tokens(input_ids, special_ids, mask_id, vocab_size, mlm_probability, None)


def nsp_global_random(passages, cls_id, sep_id, rng):
    return make_nsp_pairs(passages, cls_id, sep_id, random.Random(random.random()))


def nsp_next_labelled_one(passages, cls_id, sep_id, rng):
    return [{**pair, "next_sentence_label": 1} for pair in make_nsp_pairs(passages, cls_id, sep_id, rng)]


def nsp_swapped(passages, cls_id, sep_id, rng):
    return [{**pair, "next_sentence_label": 1 - pair["next_sentence_label"]}
            for pair in make_nsp_pairs(passages, cls_id, sep_id, rng)]


def nsp_corpus_wide(passages, cls_id, sep_id, rng):  # NotNext B drawn from any passage, A's own included
    pairs = make_nsp_pairs(passages, cls_id, sep_id, rng)
    for pair in pairs:
        if pair["next_sentence_label"] == 1:
            pair["input_ids"][5:-1] = list(rng.choice(rng.choice(passages)))
    return pairs


def nsp_no_segments(passages, cls_id, sep_id, rng):
    pairs = make_nsp_pairs(passages, cls_id, sep_id, rng)
    for pair in pairs:
        pair["token_type_ids"] = [0] * len(pair["token_type_ids"])
    return pairs


def nsp_always_next(passages, cls_id, sep_id, rng):
    pairs = make_nsp_pairs(passages, cls_id, sep_id, random.Random(0))
    return [p for p in pairs if p["next_sentence_label"] == 0] * 2


def load_weights_ref(model, state):
    return load_hf_bert(model, state)


def load_weights_norms_swapped(model, state):
    swapped = dict(state)
    for key in state:
        if ".attention.output.LayerNorm." in key:
            other = key.replace("attention.output.LayerNorm", "output.LayerNorm")
            swapped[key], swapped[other] = state[other], state[key]
    return load_hf_bert(model, swapped)


def load_weights_lenient(model, state):  # copies what matches, says nothing about the rest
    own = model.state_dict()
    from tfs.convert.bert import hf_to_course_state_dict
    with torch.no_grad():
        for key, value in hf_to_course_state_dict({k: v for k, v in state.items() if "position_ids" not in k}).items():
            if key in own and own[key].shape == value.shape:
                own[key].copy_(value)
    return model


def load_weights_kqv(model, state):
    swapped = dict(state)
    for key in state:
        if ".attention.self.query." in key:
            swapped[key] = state[key.replace("query", "key")]
            swapped[key.replace("query", "key")] = state[key]
    return load_hf_bert(model, swapped)


# ------------------------------------------------------------------------ the tests

def test_reference_passes_every_judge():
    verdict("embeddings", BertEmbeddings=ref.BertEmbeddings)
    verdict("padding_mask", padding_mask=padding_mask)
    verdict("bert_model", BertModel=ref.BertModel)
    verdict("mlm_head", BertMLMHead=ref.BertMLMHead)
    verdict("nsp_head", BertNSPHead=ref.BertNSPHead)
    verdict("mask_tokens_invariants", mask_tokens=mask_tokens)
    verdict("mask_tokens_proportions", mask_tokens=mask_tokens)
    verdict("nsp_pairs", make_nsp_pairs=make_nsp_pairs)


@pytest.mark.parametrize("mutant, match", [
    (NoSegments, "segment .*ignored"),
    (SwappedSegments, "segments swapped"),
    (Eps1e5, "eps=1e-5"),
    (PositionsFromOne, "positions start at 1"),
    (PositionsAlongBatch, "batch axis"),
])
def test_embedding_mistakes_are_named(mutant, match):
    fails("embeddings", match, BertEmbeddings=mutant)


@pytest.mark.parametrize("mutant, match", [(inverted_mask, "inverted"), (flat_mask, "broadcast to the attention scores"),
                                           (query_axis_mask, "query axis")])
def test_mask_mistakes_are_named(mutant, match):
    fails("padding_mask", match, padding_mask=mutant)


@pytest.mark.parametrize("choice", [both_axes_mask, expanded_mask])
def test_other_valid_masks_pass(choice):
    verdict("padding_mask", padding_mask=choice)


class PreLNFinalNorm(ref.BertModel):  # tfs.nn.Encoder(norm_first=True): pre-LN with its final LayerNorm
    def __init__(self, config):
        super().__init__(config)
        self.encoder = Encoder(config.n_layers, config.d_model, config.n_heads, config.d_ff, norm_first=True,
                               eps=config.eps)


class NoTokenTypes(ref.BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return super().forward(input_ids, attention_mask, None)


class TanhGelu(ref.BertModel):
    def __init__(self, config):
        super().__init__(config)
        for block in self.encoder.layers:
            block.ff.activation = "gelu_tanh"


class EncoderEps1e5(ref.BertModel):
    def __init__(self, config):
        super().__init__(config)
        for block in self.encoder.layers:
            block.norm1.eps = block.norm2.eps = 1e-5


@pytest.mark.parametrize("mutant, match", [
    (PreLN, "pre-LN"),
    (PreLNFinalNorm, "final LayerNorm .* pre-LN"),
    (NoTokenTypes, "segment embeddings are ignored"),
    (TanhGelu, "tanh approximation"),
    (EncoderEps1e5, "eps=1e-5"),
    (PoolLast, "pooler reads the last"),
    (NoTanh, "lacks its tanh"),
    (InvertedMaskModel, "inverted|mask"),
    (IgnoresMask, "attention_mask is not used"),
])
def test_model_mistakes_are_named(mutant, match):
    fails("bert_model", match, BertModel=mutant)


@pytest.mark.parametrize("mutant, match", [(UntiedHead, "a copy of the embedding"), (FreshDecoderHead, "untied decoder"),
                                           (CopiedHead, "untied decoder"), (NoBiasHead, "own bias"),
                                           (NormBeforeGeluHead, "LayerNorm comes before the GELU")])
def test_head_mistakes_are_named(mutant, match):
    fails("mlm_head", match, BertMLMHead=mutant)


def test_nsp_head_softmax_is_named():
    fails("nsp_head", "logits, not probabilities", BertNSPHead=SoftmaxNSP)
    fails("nsp_head", "a tanh on the logits", BertNSPHead=TanhNSP)


@pytest.mark.parametrize("test, mutant, match", [
    ("mask_tokens_invariants", masks_specials, "masking special tokens"),
    ("mask_tokens_invariants", labels_everywhere, "ignore_index"),
    ("mask_tokens_invariants", labels_zero, "ignore_index"),
    ("mask_tokens_invariants", in_place, "modified in place"),
    ("mask_tokens_proportions", all_mask, r"100 % \[MASK\]"),
    ("mask_tokens_proportions", thirty_percent, "expected 15 %"),
    ("mask_tokens_invariants", labels_only_on_mask, "only \\[MASK\\] positions carry labels"),
    ("mask_tokens_invariants", global_generator, "draw all randomness with generator"),
    ("mask_tokens_proportions", overlapping_draws, "overlap"),
    ("mask_tokens_proportions", no_unchanged, "no chosen token stays unchanged"),
    ("mask_tokens_proportions", fixed_rate, "mlm_probability=0.3"),
])
def test_masking_mistakes_are_named(test, mutant, match):
    fails(test, match, mask_tokens=mutant)


@pytest.mark.parametrize("mutant, match", [
    (nsp_same_passage, "another passage"),
    (nsp_corpus_wide, "another passage"),
    (nsp_no_segments, "token_type_ids"),
    (nsp_always_next, "expected .* pairs|NotNext|exactly once"),
    (nsp_global_random, "seeded alike"),
    (nsp_next_labelled_one, "right after A is labelled 1"),
    (nsp_swapped, "labels are swapped"),
])
def test_nsp_pair_mistakes_are_named(mutant, match):
    fails("nsp_pairs", match, make_nsp_pairs=mutant)


@pytest.mark.slow
def test_real_weights_judges():
    verdict("load_weights_float32", BertModel=ref.BertModel, load_bert_weights=load_weights_ref)
    verdict("load_weights_float64", BertModel=ref.BertModel, load_bert_weights=load_weights_ref)
    fails("load_weights_float32", r"holds \(key, query, value\) in that order", BertModel=ref.BertModel,
          load_bert_weights=load_weights_kqv)
    fails("load_weights_float64", r"norm1.weight holds encoder.layer.0.output.LayerNorm.weight", BertModel=ref.BertModel,
          load_bert_weights=load_weights_norms_swapped)
    fails("load_weights_float32", "missing, expected a KeyError", BertModel=ref.BertModel,
          load_bert_weights=load_weights_lenient)
    # the loader is judged in a stand-in model: a BertModel mistake costs the BertModel exercise only
    verdict("load_weights_float64", BertModel=IgnoresMask, load_bert_weights=load_weights_ref)


def model_in_namespace(**names):
    """The reference BertModel's methods in a namespace of their own (a notebook's), with ``names`` in it."""
    space = {**vars(ref), **names}
    exec("class BertModel(BertModel):\n"
         "    def __init__(self, config):\n"
         "        super().__init__(config)\n"
         "        self.embeddings = BertEmbeddings(config)\n"
         "    def forward(self, input_ids, attention_mask=None, token_type_ids=None):\n"
         "        mask = None if attention_mask is None else padding_mask(attention_mask)\n"
         "        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), mask)\n"
         "        return hidden, torch.tanh(self.pooler(hidden[:, 0]))\n", space)
    return space["BertModel"]


@pytest.mark.parametrize("names", [{"BertEmbeddings": PositionsFromOne}, {"padding_mask": inverted_mask},
                                   {"padding_mask": flat_mask}])
def test_model_judged_with_stand_ins_for_the_other_exercises(names):
    verdict("bert_model", BertModel=model_in_namespace(**{"BertEmbeddings": ref.BertEmbeddings,
                                                          "padding_mask": padding_mask, **names}))


def test_loader_fused_along_columns_is_named():
    """query, key and value concatenated along dim 1: the learner's own ValueError (qkv (3d, d) against (d, 3d)) gets a
    hint that names the concatenation axis; another key's shapes get none."""
    said = "ValueError: encoder.layers.0.attn.qkv.weight: model (1152, 384), state dict (384, 1152)"
    with pytest.raises(JudgeFailure, match=r"concatenated along dim 1.*concatenate along dim 0"):
        load_judge("ch05.load_weights_float32")({"error": said})
    assert "along dim 1" in probes_bert.fused_hint("RuntimeError: qkv torch.Size([48, 16]) and torch.Size([16, 48])")
    assert probes_bert.fused_hint("ValueError: encoder.layers.0.ff.linear1.weight: model (1536, 384), state dict "
                                  "(384, 1536)") is None

    def fused_along_columns(model, state):
        raise ValueError("encoder.layers.0.attn.qkv.weight: model (48, 16), state dict (16, 48)")

    assert "along dim 1" in probes_bert.load_hint(fused_along_columns, lambda: None, {})
    from transformers import BertModel as HFBertModel

    from tfs.grader.collectors.ch05 import tiny_config

    config = tiny_config()
    assert probes_bert.load_hint(load_weights_ref, lambda: ref.BertModel(config),
                                 HFBertModel(config.to_hf()).state_dict()) is None


# ------------------------------------------------------------------------ held-out list 3 (2026-12-07)

class DropoutBeforeNorm(ref.BertEmbeddings):  # LayerNorm(dropout(sum)): the same in eval(), not in training
    def forward(self, input_ids, token_type_ids=None):
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = self.token(input_ids) + self.position(torch.arange(input_ids.shape[1])) + self.segment(types)
        return self.norm(self.dropout(x))


class DropoutUnused(ref.BertEmbeddings):  # self.dropout made, never applied
    def forward(self, input_ids, token_type_ids=None):
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        return self.norm(self.token(input_ids) + self.position(torch.arange(input_ids.shape[1])) + self.segment(types))


@pytest.mark.parametrize("mutant, match", [(DropoutBeforeNorm, "dropout must be the last step"),
                                           (DropoutUnused, "no dropout is applied")])
def test_embedding_dropout_mistakes_are_named(mutant, match):
    fails("embeddings", match, BertEmbeddings=mutant)


def load_weights_skips_unknown(model, state):  # a table of the names it knows: any other key skipped silently
    return load_hf_bert(model, {k: v for k, v in state.items() if not k.endswith((".gamma", ".beta"))})


def test_loader_that_skips_unknown_keys_is_named():
    from transformers import BertModel as HFBertModel

    from tfs.grader.collectors.ch05 import tiny_config

    config = tiny_config()
    state = HFBertModel(config.to_hf()).state_dict()
    assert probes_bert.load_errors(load_weights_ref, lambda: ref.BertModel(config), state, config.d_ff) == []
    problems = probes_bert.load_errors(load_weights_skips_unknown, lambda: ref.BertModel(config), state, config.d_ff)
    assert len(problems) == 1 and "embeddings.LayerNorm.gamma unexpected" in problems[0] and "no error" in problems[0]


def test_head_with_tanh_gelu_is_a_named_mistake():
    config = ref.BertConfig(vocab_size=40, max_position=12, d_model=16, n_heads=4, n_layers=1, d_ff=32)
    embedding = nn.Embedding(40, 16).double()
    head = ref.BertMLMHead(config, embedding).double()
    hidden = torch.randn(2, 5, 16, dtype=torch.float64)
    wrong = head.decoder(head.norm(F.gelu(head.dense(hidden), approximate="tanh"))) + head.bias
    named = {k: v for k, v in probes_bert.mlm_head_mistakes(head, hidden, embedding.weight).items() if "tanh" in k}
    assert len(named) == 1 and torch.allclose(next(iter(named.values())), wrong, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ sweep (issue 31): config fields off their one value

class _EpsFixed(ref.BertEmbeddings):
    def __init__(self, config):
        super().__init__(config)
        self.norm.eps = 1e-12


class _TwoSegments(ref.BertEmbeddings):
    def __init__(self, config):
        super().__init__(config)
        self.segment = nn.Embedding(2, config.d_model)


class _ModelEpsFixed(ref.BertModel):
    def __init__(self, config):
        super().__init__(config)
        for module in self.encoder.modules():
            if hasattr(module, "eps"):
                module.eps = 1e-12


class _MaskRequired(ref.BertModel):
    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return super().forward(input_ids, attention_mask.long(), token_type_ids)


class _HeadEpsFixed(ref.BertMLMHead):
    def __init__(self, config, token_embedding):
        super().__init__(config, token_embedding)
        self.norm.eps = 1e-12


def _types_from_a(passages, cls_id, sep_id, rng):
    pairs = make_nsp_pairs(passages, cls_id, sep_id, rng)
    for pair in pairs:
        first = pair["input_ids"].index(sep_id)
        pair["token_type_ids"] = [0] * (first + 1) + [1] * first
    return pairs


@pytest.mark.parametrize("test, message, objects", [
    ("embeddings", r"eps is fixed at 1e-12", {"BertEmbeddings": _EpsFixed}),
    ("embeddings", r"config.type_vocab_size=3", {"BertEmbeddings": _TwoSegments}),
    ("bert_model", r"blocks' LayerNorm eps is fixed at 1e-12", {"BertModel": _ModelEpsFixed}),
    ("bert_model", r"attention_mask=None.*raised", {"BertModel": _MaskRequired}),
    ("mlm_head", r"eps is fixed at 1e-12", {"BertMLMHead": _HeadEpsFixed}),
    ("nsp_pairs", r"unequal lengths.*token_type_ids", {"make_nsp_pairs": _types_from_a}),
])
def test_config_fields_off_their_default_are_named(test, message, objects):
    fails(test, message, **objects)
