"""Chapter 05 (BERT) collectors: run the learner's objects on seeded inputs, return plain data.

Weights are not taken from the learner's modules: each collector *writes* seeded values
(:func:`seeded_state`, a function of the parameter's name and shape) into them by the course's
parameter names, so the judge can rebuild the very same weights without trusting the kernel.

**One exercise at a time.** The package's ``BertEmbeddings``, ``BertModel`` and ``padding_mask`` are hidden while the
chapter is graded, so while the learner's ``BertModel`` is collected the names ``BertEmbeddings`` and ``padding_mask`` in
its namespace are stand-ins made of ``transformers`` and ``torch`` (:func:`judging.stand_ins`), and the learner's
``load_bert_weights`` fills a stand-in model whose forward is ``transformers.BertModel`` (:class:`BertModelStandIn`):
a mistake in one exercise costs only that exercise's points.
"""

from __future__ import annotations

import random
import zlib

import torch
from torch import nn

from tfs.grader import judging
from tfs.grader.judging import raised
from tfs.teaching import probes_bert
from tfs.teaching.probes_bert import fingerprint

TINY = {"vocab_size": 40, "max_position": 12, "type_vocab_size": 2, "d_model": 16, "n_heads": 4, "n_layers": 2,
        "d_ff": 32, "dropout": 0.0, "eps": 1e-12}
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL_IDS = [PAD, CLS, SEP]
MLM_VOCAB = 1000
DROPOUT = 0.5  # the embeddings' dropout in the training-mode check
# a config off the defaults the other inputs use: eps far from 1e-12, three segment types, L == max_position
VARIED = {"vocab_size": 30, "max_position": 10, "type_vocab_size": 3, "eps": 0.1}
MINILM_SENTENCES = ["The quick brown fox jumps over the lazy dog.", "BERT reads the whole sentence at once.",
                    "Attention is all you need?", "Padding must never change the real tokens."]


def tiny_config(**changes):
    from tfs.models.bert import BertConfig

    return BertConfig(**{**TINY, **changes})


def seeded_tensor(name: str, shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A deterministic tensor for the parameter ``name``: LayerNorm weights near 1, the rest N(0, 0.3²)."""
    generator = judging.generator(seed * 1_000_003 + zlib.crc32(name.encode()))
    values = torch.randn(shape, generator=generator, dtype=torch.float64) * 0.3
    if name.endswith("weight") and len(shape) == 1:
        values = 1.0 + values
    return values.to(dtype)


def seeded_state(shapes: dict[str, tuple[int, ...]], seed: int = 0, dtype: torch.dtype = torch.float64) -> dict:
    return {name: seeded_tensor(name, tuple(shape), seed, dtype) for name, shape in shapes.items()}


def fill_module(module: torch.nn.Module, what: str, seed: int = 0) -> dict[str, tuple[int, ...]]:
    """Write seeded values into every parameter of ``module`` (float64); return ``{name: shape}``."""
    module.double()
    shapes = {}
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            parameter.copy_(seeded_tensor(name, tuple(parameter.shape), seed))
            shapes[name] = tuple(parameter.shape)
    return shapes


def embedding_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids (3, 10), token_type_ids (3, 10))``: segment 0 then 1 at different cut points."""
    generator = judging.generator(5)
    ids = torch.randint(5, TINY["vocab_size"], (3, 10), generator=generator)
    types = torch.zeros(3, 10, dtype=torch.int64)
    for row, cut in enumerate((4, 6, 9)):
        types[row, cut:] = 1
    return ids, types


def varied_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids (2, 10), token_type_ids (2, 10))`` for :data:`VARIED`: id 0 and the last id, all three segment
    types, the last position (L == max_position)."""
    generator = judging.generator(6)
    ids = torch.randint(0, VARIED["vocab_size"], (2, VARIED["max_position"]), generator=generator)
    types = torch.randint(0, VARIED["type_vocab_size"], (2, VARIED["max_position"]), generator=generator)
    ids[0, 0], ids[1, -1], types[0, 0], types[1, -1] = 0, VARIED["vocab_size"] - 1, 0, VARIED["type_vocab_size"] - 1
    return ids, types


def model_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, token_type_ids)`` of a padded tiny batch ``(3, 10)``."""
    ids, types = embedding_inputs()
    lengths = (10, 7, 4)
    mask = torch.zeros(3, 10, dtype=torch.int64)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    ids = ids.masked_fill(mask == 0, PAD)
    types = types.masked_fill(mask == 0, 0)
    ids[:, 0] = CLS
    return ids, mask, types


# ------------------------------------------------------------------------------------------ one exercise at a time

class EmbeddingsStandIn(nn.Module):
    """``transformers``' ``BertEmbeddings`` under the course's part names (token, position, segment, norm)."""

    def __init__(self, config):
        from transformers.models.bert.modeling_bert import BertEmbeddings

        super().__init__()
        hf = BertEmbeddings(config.to_hf(attn_implementation="eager"))
        self.token, self.position, self.segment = hf.word_embeddings, hf.position_embeddings, hf.token_type_embeddings
        self.norm, self.dropout = hf.LayerNorm, hf.dropout
        object.__setattr__(self, "hf", hf)  # shares the parameters above; not registered twice

    def forward(self, input_ids, token_type_ids=None):
        return self.hf(input_ids=input_ids, token_type_ids=token_type_ids)


def padding_mask_stand_in(attention_mask):
    """A tokenizer's 0/1 mask as a ``(batch, 1, L, L)`` bool mask, True = may attend (padding keys hidden)."""
    keys = torch.as_tensor(attention_mask).bool()[:, None, None, :]
    return keys.expand(-1, 1, keys.shape[-1], -1)


class BertModelStandIn(nn.Module):
    """The course's parameter names (chapter 03's ``tfs.nn.Encoder`` for the blocks) with ``transformers.BertModel``
    as its forward: what the learner's ``load_bert_weights`` fills while it is judged."""

    def __init__(self, config):
        from tfs.nn import Encoder

        super().__init__()
        self.config = config
        self.embeddings = EmbeddingsStandIn(config)
        self.encoder = Encoder(config.n_layers, config.d_model, config.n_heads, config.d_ff, norm_first=False,
                               eps=config.eps, activation="gelu")
        self.pooler = nn.Linear(config.d_model, config.d_model)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        from transformers import BertModel

        from tfs.convert.bert import bert_to_hf

        dtype = self.pooler.weight.dtype
        hf = BertModel(self.config.to_hf(attn_implementation="eager")).to(dtype).eval()
        hf.load_state_dict(bert_to_hf(self), strict=False)
        out = hf(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.last_hidden_state, out.pooler_output


def _names(module) -> list[str]:
    return sorted(name for name, _ in module.named_parameters())


def embeddings(BertEmbeddings) -> dict:
    config = tiny_config()
    module = BertEmbeddings(config).eval()
    shapes = fill_module(module, "BertEmbeddings")
    ids, types = embedding_inputs()
    with torch.no_grad():
        failed = raised(module, ids, types)
        if failed != "no error":  # (3, 10) failed: does a batch as long as its sequences (10, 10) work?
            square = ids[[0, 1, 2, 0, 1, 2, 0, 1, 2, 0]]
            return {"shapes": {k: list(v) for k, v in shapes.items()}, "error": failed,
                    "square_works": raised(module, square, torch.zeros_like(square)) == "no error"}
        result = {"shapes": {k: list(v) for k, v in shapes.items()}, "with_segments": module(ids, types),
                  "default_segments": module(ids)}
    varied = BertEmbeddings(tiny_config(**VARIED)).eval()
    result["varied_shapes"] = {k: list(v) for k, v in fill_module(varied, "BertEmbeddings").items()}
    with torch.no_grad():
        result["varied"] = raised(varied, *varied_inputs())
        if result["varied"] == "no error":
            result["varied"] = varied(*varied_inputs())
    # in training, with dropout 0.5: dropout after LayerNorm leaves each output 0 or twice LayerNorm's value
    dropping = BertEmbeddings(tiny_config(dropout=DROPOUT)).train()
    fill_module(dropping, "BertEmbeddings")
    torch.manual_seed(judging.run_seed() * 1_000_003 + 17)  # the dropout masks (the judge checks their form)
    with torch.no_grad():
        result["training"] = raised(dropping, ids, types)
        if result["training"] == "no error":
            result["training"] = dropping(ids, types)
    return result


def padding_mask(padding_mask) -> dict:
    _, mask, _ = model_inputs()
    return {"mask": padding_mask(mask), "bool_input": padding_mask(mask.bool())}


def bert_model(BertModel) -> dict:
    config = tiny_config()
    ids, mask, types = model_inputs()
    with judging.stand_ins(BertModel, BertEmbeddings=EmbeddingsStandIn, padding_mask=padding_mask_stand_in), \
            torch.no_grad():
        module = BertModel(config).eval()
        shapes = fill_module(module, "BertModel")
        hidden, pooled = module(ids, mask, types)
        alone = [module(ids[i:i + 1, :n], mask[i:i + 1, :n], types[i:i + 1, :n])[0][0]
                 for i, n in enumerate(mask.sum(1).tolist())]
        plain_ids = embedding_inputs()[0]
        no_mask = raised(module, plain_ids)  # attention_mask=None, token_type_ids=None
        no_mask = module(plain_ids)[0] if no_mask == "no error" else no_mask
        wide = BertModel(tiny_config(eps=VARIED["eps"])).eval()  # the blocks' eps must follow config.eps
        fill_module(wide, "BertModel")
        wide_hidden = raised(wide, ids, mask, types)
        wide_hidden = wide(ids, mask, types)[0] if wide_hidden == "no error" else wide_hidden
    return {"shapes": {k: list(v) for k, v in shapes.items()}, "hidden": hidden, "pooled": pooled, "alone": alone,
            "no_mask": no_mask, "eps_0.1": wide_hidden}


def mlm_head(BertMLMHead) -> dict:
    config = tiny_config()
    embedding = torch.nn.Embedding(config.vocab_size, config.d_model).double()
    initial = embedding.weight.detach().clone()  # a decoder equal to it, but another tensor, is a copy
    head = BertMLMHead(config, embedding).eval().double()
    decoder = getattr(getattr(head, "decoder", None), "weight", None)
    copied = isinstance(decoder, torch.Tensor) and decoder is not embedding.weight and \
        decoder.shape == embedding.weight.shape and torch.equal(decoder.detach(), initial)
    with torch.no_grad():
        embedding.weight.copy_(seeded_tensor("token_embedding", (config.vocab_size, config.d_model)))
        for name, parameter in head.named_parameters():
            if parameter is not embedding.weight:
                parameter.copy_(seeded_tensor(name, tuple(parameter.shape)))
    hidden = seeded_tensor("hidden", (2, 5, config.d_model))
    with torch.no_grad():
        before = head(hidden)
        embedding.weight.add_(1.0)  # a tied decoder sees this change; an untied one does not
        after = head(hidden)
    names = [name for name, p in head.named_parameters() if p is not embedding.weight]
    wide = BertMLMHead(tiny_config(eps=VARIED["eps"]), embedding).eval().double()  # LayerNorm's eps = config.eps
    with torch.no_grad():
        for name, parameter in wide.named_parameters():
            if parameter is not embedding.weight:
                parameter.copy_(seeded_tensor(name, tuple(parameter.shape)))
        eps_01 = raised(wide, hidden)
        eps_01 = wide(hidden) if eps_01 == "no error" else eps_01
    return {"before": before, "after": after, "names": names, "copied": copied, "eps_0.1": eps_01,
            "shapes": {n: list(p.shape) for n, p in head.named_parameters() if p is not embedding.weight}}


def nsp_head(BertNSPHead) -> dict:
    config = tiny_config()
    head = BertNSPHead(config).eval()
    shapes = fill_module(head, "BertNSPHead")
    with torch.no_grad():
        return {"shapes": {k: list(v) for k, v in shapes.items()},
                "logits": head(seeded_tensor("pooled", (3, config.d_model)))}


def masking_inputs() -> torch.Tensor:
    """``(320, 128)`` ids: [CLS] at 0, [SEP] at the end of each text, [PAD] after; ~30,000 maskable tokens."""
    generator = judging.generator(11)
    ids = torch.randint(5, MLM_VOCAB, (320, 128), generator=generator)
    lengths = torch.randint(60, 129, (320,), generator=generator)
    for row, length in enumerate(lengths.tolist()):
        ids[row, length - 1] = SEP
        ids[row, length:] = PAD
    ids[:, 0] = CLS
    return ids


def mask_tokens(mask_tokens) -> dict:
    """Three calls: the default rate, the same generator seed again (draws must come from ``generator``), and
    ``mlm_probability=0.3`` with another generator (the parameter must be used)."""
    ids = masking_inputs()
    original = ids.clone()
    masked, labels = mask_tokens(ids, SPECIAL_IDS, MASK, MLM_VOCAB, generator=judging.generator(0))
    changed = not torch.equal(ids, original)
    again = mask_tokens(original.clone(), SPECIAL_IDS, MASK, MLM_VOCAB, generator=judging.generator(0))
    rate_30 = mask_tokens(original.clone(), SPECIAL_IDS, MASK, MLM_VOCAB, mlm_probability=0.3,
                          generator=judging.generator(1))
    return {"masked": masked, "labels": labels, "input_changed": changed, "again": list(again)[:2],
            "rate_30": list(rate_30)[:2]}


def nsp_passages() -> list[list[list[int]]]:
    """40 passages of 3-8 sentences; sentence s of passage p is ``[100 + p, 500 + s, 7]`` (recognisable)."""
    rng = random.Random(3)
    return [[[100 + p, 500 + s, 7] for s in range(rng.randint(3, 8))] for p in range(40)]


UNEQUAL_CLS, UNEQUAL_SEP = 5, 6


def unequal_passages() -> list[list[list[int]]]:
    """5 passages whose sentences have 1 to 4 tokens (ids >= 100, never [CLS] 5 or [SEP] 6), drawn per run: segment
    B's length differs from A's; a one-sentence passage (no pair of its own, a NotNext source all the same)."""
    rng, base = random.Random(judging.run_seed()), 100 + 10 * (judging.run_seed() % 97)
    return [[[base + p] + [base + 5 + s] * rng.randint(0, 3) for s in range(count)]
            for p, count in enumerate((4, 1, 5, 3, 6))]


def _plain_pairs(pairs) -> list:
    return [{"input_ids": [int(i) for i in p["input_ids"]], "token_type_ids": [int(t) for t in p["token_type_ids"]],
             "next_sentence_label": int(p["next_sentence_label"])} for p in pairs]


def nsp_pairs(make_nsp_pairs) -> dict:
    """Two calls with ``random.Random(0)``: the draws must come from ``rng``. (The same in every run: the judge
    cannot know what a per-run rng would draw, so that could not tell a replay from a run.)"""
    return {"pairs": _plain_pairs(make_nsp_pairs(nsp_passages(), CLS, SEP, random.Random(0))),
            "again": _plain_pairs(make_nsp_pairs(nsp_passages(), CLS, SEP, random.Random(0))),
            "unequal": _unequal_pairs(make_nsp_pairs)}


def _unequal_pairs(make_nsp_pairs):
    """Pairs of :func:`unequal_passages` with [CLS] 5 and [SEP] 6, a per-run rng; or what the call raised."""
    try:
        return _plain_pairs(make_nsp_pairs(unequal_passages(), UNEQUAL_CLS, UNEQUAL_SEP, random.Random(judging.run_seed())))
    except Exception as error:  # noqa: BLE001 - the learner's mistake, reported by the judge
        return judging.error_line(error)


def load_weights(BertModel, load_bert_weights) -> dict:
    """MiniLM's weights loaded by the learner's function into :class:`BertModelStandIn` (the course's names; the
    learner's ``BertModel`` is judged by its own exercise), run on a padded batch; what it raises on a state dict
    with a key missing, one unexpected, one of the wrong shape."""
    from safetensors.torch import load_file

    from tfs.data import bert_path, load_bert_tokenizer
    from tfs.models.bert import BertConfig

    folder = bert_path()
    from transformers import AutoConfig

    config = BertConfig.from_hf(AutoConfig.from_pretrained(folder))
    state = load_file(folder / "model.safetensors")
    batch = load_bert_tokenizer()(MINILM_SENTENCES, padding=True, return_tensors="pt")
    result = {"attention_mask": batch["attention_mask"]}
    model = BertModelStandIn(config).eval()
    returned = []
    failed = raised(lambda *args: returned.append(load_bert_weights(*args)), model, state)  # fills model in place
    result["returned"] = "the model" if returned and returned[0] is model else type(returned[0]).__name__ if returned \
        else "nothing"
    if failed != "no error":
        return {"error": failed}
    result["fingerprints"] = {key: fingerprint(value) for key, value in model.state_dict().items()}  # the judge's clue
    with torch.no_grad():
        for dtype in (torch.float32, torch.float64):
            hidden, _ = model.to(dtype)(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            result[str(dtype).removeprefix("torch.")] = hidden
    from tfs.convert.bert import bert_to_hf

    tiny_state = bert_to_hf(BertModelStandIn(tiny_config()))
    result["raises"] = {case: raised(load_bert_weights, BertModelStandIn(tiny_config()), bad)
                        for case, bad in probes_bert.misloaded_states(tiny_state).items()}
    return result


# one collector, several judges (test cells)
mask_tokens_invariants = mask_tokens_proportions = mask_tokens
load_weights_float32 = load_weights_float64 = load_weights
