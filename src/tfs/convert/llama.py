"""LLaMA weights between ``transformers``' ``LlamaForCausalLM`` and the course's :class:`tfs.models.llama.LLaMA`.

=============================================  ==========================  ====
``LlamaForCausalLM``                           course                      how
=============================================  ==========================  ====
``model.embed_tokens.weight``                  ``embed.weight``            copy
``model.layers.i.input_layernorm.weight``      ``blocks.i.norm1.weight``   copy
``model.layers.i.self_attn.q_proj.weight``     ``blocks.i.attn.q.weight``  copy
``model.layers.i.self_attn.k_proj.weight``     ``blocks.i.attn.k.weight``  copy
``model.layers.i.self_attn.v_proj.weight``     ``blocks.i.attn.v.weight``  copy
``model.layers.i.self_attn.o_proj.weight``     ``blocks.i.attn.out.weight`` copy
``model.layers.i.post_attention_layernorm``    ``blocks.i.norm2.weight``   copy
``model.layers.i.mlp.gate_proj.weight``        ``blocks.i.ff.gate.weight`` copy
``model.layers.i.mlp.up_proj.weight``          ``blocks.i.ff.up.weight``   copy
``model.layers.i.mlp.down_proj.weight``        ``blocks.i.ff.down.weight`` copy
``model.norm.weight``                          ``norm.weight``             copy
``lm_head.weight``                             ``lm_head.weight``          copy (tied: the embedding itself)
=============================================  ==========================  ====

Both store ``nn.Linear`` weights as ``(out, in)`` and RoPE's "rotate half" layout, so every weight is a plain
copy: no transposes, no permutation of the query/key rows (Meta's original checkpoints pair features
``(2j, 2j+1)``; ``transformers``' conversion script permutes their rows once, which is why the LLaMA of
``transformers`` rotates halves).
"""

from __future__ import annotations

import torch
from torch import nn

from tfs.models.llama import LLaMA, LLaMAConfig

__all__ = ["LLAMA_LAYER_MAP", "from_hf_state_dict", "hf_config", "llama_config_from_hf", "llama_from_hf",
           "load_hf_state_dict", "to_hf_model", "to_hf_state_dict"]

# per block: (transformers name, course name)
LLAMA_LAYER_MAP = [
    ("input_layernorm", "norm1"),
    ("self_attn.q_proj", "attn.q"),
    ("self_attn.k_proj", "attn.k"),
    ("self_attn.v_proj", "attn.v"),
    ("self_attn.o_proj", "attn.out"),
    ("post_attention_layernorm", "norm2"),
    ("mlp.gate_proj", "ff.gate"),
    ("mlp.up_proj", "ff.up"),
    ("mlp.down_proj", "ff.down"),
]
_BUFFERS = ("rotary_emb.inv_freq", "rotary_emb.original_inv_freq")  # recomputed from theta, not weights


def _key_pairs(n_layer: int) -> list[tuple[str, str]]:
    """``(transformers key, course key)`` for every weight, the output head included."""
    pairs = [("model.embed_tokens.weight", "embed.weight")]
    for i in range(n_layer):
        pairs += [(f"model.layers.{i}.{theirs}.weight", f"blocks.{i}.{mine}.weight")
                  for theirs, mine in LLAMA_LAYER_MAP]
    return pairs + [("model.norm.weight", "norm.weight"), ("lm_head.weight", "lm_head.weight")]


def _n_layer(hf_state: dict[str, torch.Tensor]) -> int:
    layers = {int(key.split(".")[2]) for key in hf_state if key.startswith("model.layers.")}
    return max(layers) + 1 if layers else 0


def from_hf_state_dict(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A ``LlamaForCausalLM`` state dict -> the course's key names (a tied head: ``lm_head`` = the embedding)."""
    state = {mine: hf_state[theirs] for theirs, mine in _key_pairs(_n_layer(hf_state)) if theirs in hf_state}
    state.setdefault("lm_head.weight", state.get("embed.weight"))
    return state


@torch.no_grad()
def load_hf_state_dict(model: nn.Module, hf_state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy a ``LlamaForCausalLM`` state dict into ``model`` (the course's LLaMA or a learner's with its names).

    A tied model takes ``lm_head.weight`` from the embedding (a saved tied checkpoint may leave it out) and refuses
    a head that differs from it. Raises ``KeyError`` naming missing and unexpected keys, ``ValueError`` naming the
    key and both shapes when one does not fit."""
    hf_state = {k: v for k, v in hf_state.items() if not k.endswith(_BUFFERS)}
    own = model.state_dict()
    n_layer = len(model.blocks)
    tied = model.lm_head.weight is model.embed.weight
    pairs = _key_pairs(n_layer)
    optional = {"lm_head.weight"} if tied else set()
    missing = [theirs for theirs, _ in pairs if theirs not in hf_state and theirs not in optional]
    unexpected = sorted(set(hf_state) - {theirs for theirs, _ in pairs})
    if missing or unexpected:
        parts = [f"missing {len(missing)} keys, e.g. {missing[:3]}"] if missing else []
        parts += [f"unexpected {len(unexpected)} keys, e.g. {unexpected[:3]}"] if unexpected else []
        raise KeyError(f"LLaMA state dict does not fit this {n_layer}-layer model: {'; '.join(parts)}")
    if tied and "lm_head.weight" in hf_state and not torch.equal(hf_state["lm_head.weight"],
                                                                 hf_state["model.embed_tokens.weight"]):
        raise ValueError("lm_head.weight differs from model.embed_tokens.weight, but this model ties them "
                         "(tie_embeddings=True): build it with tie_embeddings=False")
    for theirs, mine in pairs:
        if theirs not in hf_state:
            continue
        if mine not in own:
            raise KeyError(f"the model has no parameter {mine!r} (for {theirs!r})")
        if own[mine].shape != hf_state[theirs].shape:
            raise ValueError(f"{theirs}: shape {tuple(hf_state[theirs].shape)} does not fit {mine} of shape "
                             f"{tuple(own[mine].shape)}")
        own[mine].copy_(hf_state[theirs])
    return model


def to_hf_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The course's LLaMA -> ``LlamaForCausalLM`` keys (``lm_head.weight`` included, tied or not)."""
    own = model.state_dict()
    return {theirs: own[mine] for theirs, mine in _key_pairs(len(model.blocks))}


def _rope_theta(hf_cfg) -> float:
    parameters = getattr(hf_cfg, "rope_parameters", None) or {}
    if parameters.get("rope_type", "default") != "default":
        raise ValueError(f"rope_type {parameters['rope_type']!r}: the course's LLaMA has the original RoPE only")
    return float(parameters.get("rope_theta", getattr(hf_cfg, "rope_theta", 10000.0)))


def llama_config_from_hf(hf_cfg) -> LLaMAConfig:
    """The course's ``LLaMAConfig`` for a ``transformers.LlamaConfig``; refuses what the course's LLaMA cannot
    express (biases, another activation, RoPE scaling, a head size other than ``n_embd / n_head``)."""
    if getattr(hf_cfg, "attention_bias", False) or getattr(hf_cfg, "mlp_bias", False):
        raise ValueError("attention_bias/mlp_bias: the course's LLaMA has no biases")
    if hf_cfg.hidden_act != "silu":
        raise ValueError(f"hidden_act {hf_cfg.hidden_act!r}: the course's SwiGLU uses silu")
    head_dim = getattr(hf_cfg, "head_dim", None) or hf_cfg.hidden_size // hf_cfg.num_attention_heads
    if head_dim * hf_cfg.num_attention_heads != hf_cfg.hidden_size:
        raise ValueError(f"head_dim={head_dim} x {hf_cfg.num_attention_heads} heads != hidden_size "
                         f"{hf_cfg.hidden_size}: the course's LLaMA has d_head = n_embd / n_head")
    return LLaMAConfig(vocab_size=hf_cfg.vocab_size, block_size=hf_cfg.max_position_embeddings,
                       n_layer=hf_cfg.num_hidden_layers, n_head=hf_cfg.num_attention_heads,
                       n_kv_head=hf_cfg.num_key_value_heads, n_embd=hf_cfg.hidden_size,
                       d_ff=hf_cfg.intermediate_size, rope_theta=_rope_theta(hf_cfg), eps=float(hf_cfg.rms_norm_eps),
                       tie_embeddings=bool(hf_cfg.tie_word_embeddings))


def hf_config(config: LLaMAConfig):
    """A ``transformers.LlamaConfig`` for a course ``LLaMAConfig``."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=config.vocab_size, hidden_size=config.n_embd, intermediate_size=config.d_ff,
                       num_hidden_layers=config.n_layer, num_attention_heads=config.n_head,
                       num_key_value_heads=config.n_kv_head, max_position_embeddings=config.block_size,
                       rms_norm_eps=config.eps, rope_theta=config.rope_theta,
                       tie_word_embeddings=config.tie_embeddings, hidden_act="silu", attention_bias=False,
                       mlp_bias=False, bos_token_id=None, eos_token_id=None, pad_token_id=None)


def llama_from_hf(hf_model, model_class=LLaMA) -> nn.Module:
    """A course LLaMA (or ``model_class(config)``, a learner's) holding the weights of a ``LlamaForCausalLM``, in
    its dtype, in evaluation mode."""
    model = model_class(llama_config_from_hf(hf_model.config))
    model.to(next(hf_model.parameters()).dtype)
    return load_hf_state_dict(model, hf_model.state_dict()).eval()


def to_hf_model(model: LLaMA):
    """A ``LlamaForCausalLM`` holding the course LLaMA's weights."""
    from transformers import LlamaForCausalLM

    hf_model = LlamaForCausalLM(hf_config(model.config)).to(next(model.parameters()).dtype)
    missing, unexpected = hf_model.load_state_dict(to_hf_state_dict(model), strict=False)
    missing = [k for k in missing if not k.endswith(_BUFFERS)]
    if missing or unexpected:
        raise KeyError(f"LlamaForCausalLM did not take the weights: missing {missing}, unexpected {unexpected}")
    return hf_model.eval()
