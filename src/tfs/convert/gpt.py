"""GPT-2 weights between ``transformers``' ``GPT2LMHeadModel`` and the course's :class:`tfs.models.gpt.GPT`.

=====================================  ===========================================  ==================
``GPT2LMHeadModel``                    course (:mod:`tfs.models.gpt`)               how
=====================================  ===========================================  ==================
``transformer.wte.weight``             ``wte.weight`` (= ``lm_head.weight``, tied)   copy
``transformer.wpe.weight``             ``wpe.weight``                                copy
``transformer.h.i.ln_1``               ``blocks.i.norm1``                            copy
``transformer.h.i.attn.c_attn``        ``blocks.i.attn.qkv``                         weight transposed
``transformer.h.i.attn.c_proj``        ``blocks.i.attn.out``                         weight transposed
``transformer.h.i.ln_2``               ``blocks.i.norm2``                            copy
``transformer.h.i.mlp.c_fc``           ``blocks.i.ff.linear1``                       weight transposed
``transformer.h.i.mlp.c_proj``         ``blocks.i.ff.linear2``                       weight transposed
``transformer.ln_f``                   ``ln_f``                                      copy
``lm_head.weight``                     (tied to ``wte.weight``; absent from saved files)
=====================================  ===========================================  ==================

GPT-2's ``Conv1D`` stores its weight as ``(in, out)`` and computes ``x @ W + b``; ``nn.Linear`` stores
``(out, in)`` and computes ``x @ W.T + b``: hence the transposes. ``c_attn`` is the fused Q, K, V
projection, in the same order as the course's ``qkv``, so it needs no split.
"""

from __future__ import annotations

import torch
from torch import nn

from tfs.models.gpt import GPT, GPTConfig

__all__ = ["GPT2_LAYER_MAP", "from_hf_state_dict", "gpt_config_from_hf", "gpt_from_hf", "hf_config", "load_hf_state_dict",
           "to_hf_model", "to_hf_state_dict"]

# per block: (GPT-2 name, course name, transpose the weight)
GPT2_LAYER_MAP = [
    ("ln_1", "norm1", False),
    ("attn.c_attn", "attn.qkv", True),
    ("attn.c_proj", "attn.out", True),
    ("ln_2", "norm2", False),
    ("mlp.c_fc", "ff.linear1", True),
    ("mlp.c_proj", "ff.linear2", True),
]
# buffers some versions of GPT2Attention keep in the state dict: not weights
_BUFFERS = (".attn.bias", ".attn.masked_bias")


def _n_layer(hf_state: dict[str, torch.Tensor]) -> int:
    layers = {int(key.split(".")[2]) for key in hf_state if key.startswith("transformer.h.")}
    return max(layers) + 1 if layers else 0


def _key_pairs(n_layer: int) -> list[tuple[str, str, bool]]:
    """``(GPT-2 key, course key, transpose)`` for every weight, the tied head left out."""
    pairs = [("transformer.wte.weight", "wte.weight", False), ("transformer.wpe.weight", "wpe.weight", False)]
    for i in range(n_layer):
        for theirs, mine, transpose in GPT2_LAYER_MAP:
            pairs.append((f"transformer.h.{i}.{theirs}.weight", f"blocks.{i}.{mine}.weight", transpose))
            pairs.append((f"transformer.h.{i}.{theirs}.bias", f"blocks.{i}.{mine}.bias", False))
    pairs += [("transformer.ln_f.weight", "ln_f.weight", False), ("transformer.ln_f.bias", "ln_f.bias", False)]
    return pairs


def from_hf_state_dict(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``GPT2LMHeadModel`` state dict -> the course's key names and layouts (``lm_head`` left out: tied)."""
    return {mine: (hf_state[theirs].t() if transpose else hf_state[theirs])
            for theirs, mine, transpose in _key_pairs(_n_layer(hf_state)) if theirs in hf_state}


@torch.no_grad()
def load_hf_state_dict(model: nn.Module, hf_state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy a ``GPT2LMHeadModel`` state dict into ``model`` (the course's GPT or a learner's with its names).

    Raises ``KeyError`` naming missing and unexpected keys, ``ValueError`` naming the key and both shapes
    when one does not fit, and a ``ValueError`` when ``lm_head.weight`` is given but differs from
    ``transformer.wte.weight`` (an untied head cannot go into a tied model)."""
    hf_state = {k: v for k, v in hf_state.items() if not k.endswith(_BUFFERS)}
    own = model.state_dict()
    n_layer = len(model.blocks)
    pairs = _key_pairs(n_layer)
    expected = {theirs for theirs, _, _ in pairs} | {"lm_head.weight"}
    missing = [theirs for theirs, _, _ in pairs if theirs not in hf_state]
    unexpected = sorted(set(hf_state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys, e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys, e.g. {unexpected[:3]}")
        raise KeyError(f"GPT-2 state dict does not fit this {n_layer}-layer model: {'; '.join(parts)}")
    if "lm_head.weight" in hf_state and not torch.equal(hf_state["lm_head.weight"], hf_state["transformer.wte.weight"]):
        raise ValueError("lm_head.weight differs from transformer.wte.weight: this model ties them, "
                         "so an untied head cannot be loaded")
    for theirs, mine, transpose in pairs:
        source = hf_state[theirs].t() if transpose else hf_state[theirs]
        if mine not in own:
            raise KeyError(f"the model has no parameter {mine!r} (for GPT-2's {theirs!r})")
        if own[mine].shape != source.shape:
            raise ValueError(f"{theirs}: GPT-2 shape {tuple(hf_state[theirs].shape)}"
                             f"{' (transposed: ' + str(tuple(source.shape)) + ')' if transpose else ''} does not fit "
                             f"{mine} of shape {tuple(own[mine].shape)}")
        own[mine].copy_(source)
    return model


def to_hf_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The course's GPT -> ``GPT2LMHeadModel`` keys and layouts, ``lm_head.weight`` included (the tied matrix)."""
    own = model.state_dict()
    hf_state = {theirs: (own[mine].t() if transpose else own[mine]).contiguous()
                for theirs, mine, transpose in _key_pairs(len(model.blocks))}
    hf_state["lm_head.weight"] = hf_state["transformer.wte.weight"]
    return hf_state


def hf_config(config: GPTConfig):
    """A ``transformers.GPT2Config`` for a course ``GPTConfig`` (tanh GELU = ``"gelu_new"``, tied head)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=config.vocab_size, n_positions=config.block_size, n_embd=config.n_embd,
                      n_layer=config.n_layer, n_head=config.n_head, n_inner=4 * config.n_embd,
                      activation_function="gelu_new", layer_norm_epsilon=config.eps, resid_pdrop=config.dropout,
                      embd_pdrop=config.dropout, attn_pdrop=config.dropout, tie_word_embeddings=True,
                      bos_token_id=None, eos_token_id=None)  # GPT-2's 50256 would lie outside a smaller vocabulary


def gpt_config_from_hf(hf_cfg) -> GPTConfig:
    """The course's ``GPTConfig`` for a ``GPT2Config``; refuses what the course's GPT cannot express."""
    inner = hf_cfg.n_inner if hf_cfg.n_inner is not None else 4 * hf_cfg.n_embd
    if inner != 4 * hf_cfg.n_embd:
        raise ValueError(f"n_inner={inner}: the course's GPT has an MLP of 4 * n_embd = {4 * hf_cfg.n_embd}")
    if hf_cfg.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"activation {hf_cfg.activation_function!r}: the course's GPT uses the tanh GELU (gelu_new)")
    return GPTConfig(vocab_size=hf_cfg.vocab_size, block_size=hf_cfg.n_positions, n_layer=hf_cfg.n_layer,
                     n_head=hf_cfg.n_head, n_embd=hf_cfg.n_embd, dropout=0.0, eps=hf_cfg.layer_norm_epsilon)


def gpt_from_hf(hf_model) -> GPT:
    """A course GPT with the weights of a ``GPT2LMHeadModel`` (dropout 0, float32 unless the source differs)."""
    model = GPT(gpt_config_from_hf(hf_model.config))
    model.to(next(hf_model.parameters()).dtype)
    return load_hf_state_dict(model, hf_model.state_dict()).eval()


def to_hf_model(model: GPT):
    """A ``GPT2LMHeadModel`` holding the course GPT's weights (for ``save_pretrained`` and ``pipeline``)."""
    from transformers import GPT2LMHeadModel

    hf_model = GPT2LMHeadModel(hf_config(model.config)).to(next(model.parameters()).dtype)
    missing, unexpected = hf_model.load_state_dict(to_hf_state_dict(model), strict=False)
    missing = [k for k in missing if not k.endswith(_BUFFERS)]
    if missing or unexpected:
        raise KeyError(f"GPT2LMHeadModel did not take the weights: missing {missing}, unexpected {unexpected}")
    hf_model.tie_weights()
    return hf_model.eval()
