"""Chapter 05 (BERT) collectors: run the learner's objects on seeded inputs, return plain data.

Weights are not taken from the learner's modules: each collector *writes* seeded values
(:func:`seeded_state`, a function of the parameter's name and shape) into them by the course's
parameter names, so the judge can rebuild the very same weights without trusting the kernel.
"""

from __future__ import annotations

import random
import zlib

import torch

from tfs.grader import judging

TINY = {"vocab_size": 40, "max_position": 12, "type_vocab_size": 2, "d_model": 16, "n_heads": 4, "n_layers": 2,
        "d_ff": 32, "dropout": 0.0, "eps": 1e-12}
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL_IDS = [PAD, CLS, SEP]
MLM_VOCAB = 1000
MINILM_SENTENCES = ["The quick brown fox jumps over the lazy dog.", "BERT reads the whole sentence at once.",
                    "Attention is all you need?", "Padding must never change the real tokens."]


def tiny_config():
    from tfs.models.bert import BertConfig

    return BertConfig(**TINY)


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


def _names(module) -> list[str]:
    return sorted(name for name, _ in module.named_parameters())


def embeddings(BertEmbeddings) -> dict:
    config = tiny_config()
    module = BertEmbeddings(config).eval()
    shapes = fill_module(module, "BertEmbeddings")
    ids, types = embedding_inputs()
    with torch.no_grad():
        return {"shapes": {k: list(v) for k, v in shapes.items()}, "with_segments": module(ids, types),
                "default_segments": module(ids)}


def padding_mask(padding_mask) -> dict:
    _, mask, _ = model_inputs()
    return {"mask": padding_mask(mask), "bool_input": padding_mask(mask.bool())}


def bert_model(BertModel) -> dict:
    config = tiny_config()
    module = BertModel(config).eval()
    shapes = fill_module(module, "BertModel")
    ids, mask, types = model_inputs()
    with torch.no_grad():
        hidden, pooled = module(ids, mask, types)
        alone = [module(ids[i:i + 1, :n], mask[i:i + 1, :n], types[i:i + 1, :n])[0][0]
                 for i, n in enumerate(mask.sum(1).tolist())]
    return {"shapes": {k: list(v) for k, v in shapes.items()}, "hidden": hidden, "pooled": pooled, "alone": alone}


def mlm_head(BertMLMHead) -> dict:
    config = tiny_config()
    embedding = torch.nn.Embedding(config.vocab_size, config.d_model).double()
    head = BertMLMHead(config, embedding).eval().double()
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
    return {"before": before, "after": after, "names": names,
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
    ids = masking_inputs()
    original = ids.clone()
    masked, labels = mask_tokens(ids, SPECIAL_IDS, MASK, MLM_VOCAB, generator=judging.generator(0))
    return {"masked": masked, "labels": labels, "input_changed": not torch.equal(ids, original)}


def nsp_passages() -> list[list[list[int]]]:
    """40 passages of 3-8 sentences; sentence s of passage p is ``[100 + p, 500 + s, 7]`` (recognisable)."""
    rng = random.Random(3)
    return [[[100 + p, 500 + s, 7] for s in range(rng.randint(3, 8))] for p in range(40)]


def nsp_pairs(make_nsp_pairs) -> dict:
    pairs = make_nsp_pairs(nsp_passages(), CLS, SEP, random.Random(0))
    return {"pairs": [{"input_ids": [int(i) for i in p["input_ids"]], "token_type_ids": [int(t) for t in p["token_type_ids"]],
                       "next_sentence_label": int(p["next_sentence_label"])} for p in pairs]}


def load_weights(BertModel, load_bert_weights) -> dict:
    """The learner's BertModel with MiniLM's weights loaded by the learner's function, on a padded batch."""
    from safetensors.torch import load_file

    from tfs.data import bert_path, load_bert_tokenizer
    from tfs.models.bert import BertConfig

    folder = bert_path()
    from transformers import AutoConfig

    config = BertConfig.from_hf(AutoConfig.from_pretrained(folder))
    state = load_file(folder / "model.safetensors")
    batch = load_bert_tokenizer()(MINILM_SENTENCES, padding=True, return_tensors="pt")
    result = {"attention_mask": batch["attention_mask"]}
    model = load_bert_weights(BertModel(config).eval(), state)
    with torch.no_grad():
        for dtype in (torch.float32, torch.float64):
            hidden, _ = model.to(dtype)(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            result[str(dtype).removeprefix("torch.")] = hidden
    return result


# one collector, several judges (test cells)
mask_tokens_invariants = mask_tokens_proportions = mask_tokens
load_weights_float32 = load_weights_float64 = load_weights
