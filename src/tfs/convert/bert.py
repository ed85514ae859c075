"""The course's BERT (:mod:`tfs.models.bert`) <-> ``transformers``' ``BertModel`` / ``BertForMaskedLM``.

===================================================  =====================================================
course                                               ``transformers`` (``bert.`` prefix in the MLM/pretraining models)
===================================================  =====================================================
``embeddings.token/position/segment.weight``         ``embeddings.word/position/token_type_embeddings.weight``
``embeddings.norm``                                  ``embeddings.LayerNorm``
``encoder.layers.i.attn.qkv`` (rows Q, K, V)         ``encoder.layer.i.attention.self.query/key/value`` (concatenated)
``encoder.layers.i.attn.out``                        ``encoder.layer.i.attention.output.dense``
``encoder.layers.i.norm1``                           ``encoder.layer.i.attention.output.LayerNorm``
``encoder.layers.i.ff.linear1`` / ``linear2``        ``encoder.layer.i.intermediate.dense`` / ``output.dense``
``encoder.layers.i.norm2``                           ``encoder.layer.i.output.LayerNorm``
``pooler``                                           ``pooler.dense``
``mlm.dense`` / ``mlm.norm`` / ``mlm.bias``          ``cls.predictions.transform.dense`` / ``.LayerNorm`` / ``cls.predictions.bias``
``mlm.decoder.weight`` (tied to ``embeddings.token``)  ``cls.predictions.decoder.weight`` (tied too; skipped)
``nsp.linear``                                       ``cls.seq_relationship``
===================================================  =====================================================

The int64 buffer ``embeddings.position_ids`` of ``transformers`` is not a weight and is skipped.
Every missing, unexpected or misshaped key raises a ``KeyError``/``ValueError`` naming the key (and
both shapes).
"""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["bert_from_hf", "bert_to_hf", "hf_to_course_state_dict", "load_hf_bert"]

_SIMPLE = [  # (course suffix, transformers suffix) outside the encoder layers
    ("embeddings.token.weight", "embeddings.word_embeddings.weight"),
    ("embeddings.position.weight", "embeddings.position_embeddings.weight"),
    ("embeddings.segment.weight", "embeddings.token_type_embeddings.weight"),
    ("embeddings.norm.weight", "embeddings.LayerNorm.weight"),
    ("embeddings.norm.bias", "embeddings.LayerNorm.bias"),
    ("pooler.weight", "pooler.dense.weight"),
    ("pooler.bias", "pooler.dense.bias"),
]
_LAYER = [  # inside encoder layer i
    ("attn.out", "attention.output.dense"),
    ("norm1", "attention.output.LayerNorm"),
    ("ff.linear1", "intermediate.dense"),
    ("ff.linear2", "output.dense"),
    ("norm2", "output.LayerNorm"),
]
_HEADS = [
    ("mlm.dense.weight", "cls.predictions.transform.dense.weight"),
    ("mlm.dense.bias", "cls.predictions.transform.dense.bias"),
    ("mlm.norm.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("mlm.norm.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("mlm.bias", "cls.predictions.bias"),
    ("nsp.linear.weight", "cls.seq_relationship.weight"),
    ("nsp.linear.bias", "cls.seq_relationship.bias"),
]
_SKIPPED = {"embeddings.position_ids", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
_LAYER_KEY = re.compile(r"^encoder\.layer\.(\d+)\.")


def hf_to_course_state_dict(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``transformers`` BERT state dict (``BertModel``, ``BertForMaskedLM``, ``BertForPreTraining``)
    renamed to the course's keys: ``BertModel`` keys for a bare model, ``bert.``/``mlm.``/``nsp.`` for one with heads.

    Raises ``KeyError`` for a key it does not know (naming it) and for a missing query/key/value part.
    """
    has_prefix = any(key.startswith("bert.") for key in hf_state)
    body_prefix = "bert." if has_prefix else ""
    out_prefix = "bert." if has_prefix or any(key.startswith("cls.") for key in hf_state) else ""
    simple = {hf: course for course, hf in _SIMPLE}
    heads = {hf: course for course, hf in _HEADS}
    result: dict[str, torch.Tensor] = {}
    parts: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, value in hf_state.items():
        if key.startswith("cls."):
            if key in heads:
                result[heads[key]] = value
            elif key not in _SKIPPED:
                raise KeyError(f"unexpected key {key!r} in the transformers state dict")
            continue
        if body_prefix and not key.startswith(body_prefix):
            raise KeyError(f"unexpected key {key!r} in the transformers state dict (expected the prefix 'bert.')")
        name = key[len(body_prefix):]
        if name in _SKIPPED:
            continue
        if name in simple:
            result[out_prefix + simple[name]] = value
            continue
        match = _LAYER_KEY.match(name)
        if not match:
            raise KeyError(f"unexpected key {key!r} in the transformers state dict")
        index, rest = int(match.group(1)), name[match.end():]
        qkv = re.match(r"^attention\.self\.(query|key|value)\.(weight|bias)$", rest)
        if qkv:
            parts.setdefault((index, qkv.group(2)), {})[qkv.group(1)] = value
            continue
        for course, hf in _LAYER:
            if rest.startswith(hf + "."):
                result[f"{out_prefix}encoder.layers.{index}.{course}.{rest[len(hf) + 1:]}"] = value
                break
        else:
            raise KeyError(f"unexpected key {key!r} in the transformers state dict")
    for (index, kind), pieces in sorted(parts.items()):
        missing = [p for p in ("query", "key", "value") if p not in pieces]
        if missing:
            raise KeyError(f"missing key {body_prefix}encoder.layer.{index}.attention.self.{missing[0]}.{kind}: "
                           "query, key and value are fused into one qkv")
        result[f"{out_prefix}encoder.layers.{index}.attn.qkv.{kind}"] = torch.cat(
            [pieces["query"], pieces["key"], pieces["value"]], dim=0)  # rows: W^Q, W^K, W^V
    return result


@torch.no_grad()
def load_hf_bert(model: nn.Module, hf_state: dict[str, torch.Tensor], strict: bool = True) -> nn.Module:
    """Copy a ``transformers`` BERT state dict into the course's ``model`` (``BertModel`` or
    ``BertForPreTraining``) in place; return ``model``.

    Keys the model has but the state dict lacks raise a ``KeyError`` when ``strict`` (an MLM
    checkpoint has no pooler or NSP head: pass ``strict=False`` to keep their initial values); keys
    the model does not have always raise; a shape mismatch raises a ``ValueError`` with both shapes.
    """
    renamed = hf_to_course_state_dict(hf_state)
    own = model.state_dict()
    wants_prefix = any(key.startswith("bert.") for key in own)
    if wants_prefix and not any(key.startswith("bert.") for key in renamed):
        renamed = {f"bert.{key}": value for key, value in renamed.items()}
    elif not wants_prefix:
        heads = [key for key in renamed if key.startswith(("mlm.", "nsp."))]
        renamed = {key.removeprefix("bert."): value for key, value in renamed.items() if key not in heads}
    tied = {"mlm.decoder.weight"}
    for key, value in renamed.items():
        if key not in own:
            raise KeyError(f"unexpected key {key!r}: the model has no such parameter")
        if own[key].shape != value.shape:
            raise ValueError(f"shape mismatch for {key!r}: the model has {tuple(own[key].shape)}, "
                             f"the state dict {tuple(value.shape)}")
    missing = [key for key in own if key not in renamed and key not in tied]
    if strict and missing:
        raise KeyError(f"missing key {missing[0]!r} ({len(missing)} in all) in the transformers state dict")
    parameters = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers())
    for key, value in renamed.items():
        parameters[key].copy_(value.to(parameters[key].dtype))
    return model


def bert_from_hf(hf_model, dtype: torch.dtype | None = None) -> nn.Module:
    """The course's ``BertModel`` (for a ``transformers.BertModel``) or ``BertForPreTraining`` (for a
    ``BertForMaskedLM``, without NSP; for a ``BertForPreTraining``, with it), weights copied, in eval mode."""
    from tfs.models.bert import BertConfig, BertForPreTraining, BertModel

    config = BertConfig.from_hf(hf_model.config)
    state = hf_model.state_dict()
    if any(key.startswith("cls.") for key in state):
        model = BertForPreTraining(config, nsp="cls.seq_relationship.weight" in state)
        load_hf_bert(model, state, strict=False)  # a BertForMaskedLM has no pooler
    else:
        model = BertModel(config)
        load_hf_bert(model, state)
    model = model.to(dtype) if dtype is not None else model
    return model.eval()


def bert_to_hf(model: nn.Module, masked_lm: bool | None = None) -> dict[str, torch.Tensor]:
    """The course model's weights under ``transformers``' names.

    A ``BertModel`` gives ``BertModel`` keys; a ``BertForPreTraining`` gives ``BertForMaskedLM`` keys
    (``bert.`` prefix, ``cls.predictions``; no pooler and no NSP head, as ``BertForMaskedLM`` has
    none) unless ``masked_lm=False``, which keeps them (``BertForPreTraining`` keys). Tensors are
    shared with the model (clone before editing them).
    """
    state = model.state_dict()
    has_heads = any(key.startswith("bert.") for key in state)
    masked_lm = has_heads if masked_lm is None else masked_lm
    prefix = "bert." if has_heads else ""
    body = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    result: dict[str, torch.Tensor] = {}
    out = prefix
    for course, hf in _SIMPLE:
        if course.startswith("pooler") and masked_lm and has_heads:
            continue
        result[out + hf] = body[course]
    n_layers = 1 + max(int(k.split(".")[2]) for k in body if k.startswith("encoder.layers."))
    for i in range(n_layers):
        for kind in ("weight", "bias"):
            q, k, v = body[f"encoder.layers.{i}.attn.qkv.{kind}"].chunk(3, dim=0)
            for name, part in zip(("query", "key", "value"), (q, k, v)):
                result[f"{out}encoder.layer.{i}.attention.self.{name}.{kind}"] = part
            for course, hf in _LAYER:
                result[f"{out}encoder.layer.{i}.{hf}.{kind}"] = body[f"encoder.layers.{i}.{course}.{kind}"]
    if has_heads:
        for course, hf in _HEADS:
            if course.startswith("nsp") and (masked_lm or course not in state):
                continue
            result[hf] = state[course]
        result["cls.predictions.decoder.weight"] = state["mlm.decoder.weight"]
        result["cls.predictions.decoder.bias"] = state["mlm.bias"]  # transformers keeps the bias under both names
    return result
