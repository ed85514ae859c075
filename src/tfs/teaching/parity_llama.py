"""Visible checks of chapter 12: the learner's LLaMA pieces against ``torch.nn`` and ``transformers``, in one call each.

Each check builds the learner's module, writes known weights into it by name, runs it next to the oracle
(``torch.nn.RMSNorm``, RoPE as complex numbers, ``transformers``' ``LlamaMLP``, ``repeat_kv`` and
``LlamaForCausalLM``) and fails with a course message that names the mistake when the result matches one of
:mod:`tfs.teaching.probes_llama`'s wrong answers. Whole-model checks run on small random ``LLaMAConfig``s in
float64, where the oracle's two float32 steps are made float64 (:func:`tfs.teaching.probes_llama.float64_exact`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tfs.convert.llama import to_hf_model
from tfs.generate import left_pad
from tfs.models.llama import LLaMA, LLaMAConfig
from tfs.nn import KVCache
from tfs.teaching.checks import call, check_close, check_shape, check_true
from tfs.teaching.probes_llama import (LLAMA_MISTAKES, chat_prompt_mistakes, float64_exact, mistaken_logits,
                                       repeat_kv_mistakes, rmsnorm_mistakes, swiglu_mistakes)
from tfs.teaching.probes_rope import rope_by_complex_numbers, rope_mistakes

__all__ = ["SMALL_CONFIGS", "cached_logits", "check_chat_prompt", "check_llama", "check_repeat_kv", "check_rmsnorm",
           "check_rope", "check_swiglu", "random_llama", "with_parts"]

SMALL_CONFIGS = {  # grouped-query with a tied head, multi-query with an untied one
    "grouped-query": LLaMAConfig(vocab_size=50, block_size=24, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, d_ff=48,
                                 rope_theta=1000.0, eps=1e-5, tie_embeddings=True),
    "multi-query": LLaMAConfig(vocab_size=50, block_size=24, n_layer=2, n_head=6, n_kv_head=1, n_embd=36, d_ff=40,
                               rope_theta=50000.0, eps=1e-6, tie_embeddings=False),
}


def _random(shape, generator, scale=1.0, dtype=torch.float64):
    return scale * torch.randn(shape, generator=generator, dtype=dtype)


# ---------------------------------------------------------------------------------------------- layers

def check_rmsnorm(RMSNorm, x: torch.Tensor, eps: float, weight: torch.Tensor | None = None) -> None:
    """``RMSNorm(d, eps)`` (its weight set to ``weight``, default random near 1) against ``torch.nn.RMSNorm``."""
    d = x.shape[-1]
    name = f"RMSNorm({d}, eps={eps}) on x of shape {tuple(x.shape)}"
    norm = call(RMSNorm, d, eps, name=f"RMSNorm({d}, eps={eps})")
    parameters = dict(norm.named_parameters())
    check_true(set(parameters) == {"weight"} and tuple(parameters["weight"].shape) == (d,), f"RMSNorm({d})",
               f"parameters {sorted(parameters)}; expected one, weight of shape ({d},): a gain per feature, no bias.",
               hint="self.weight = nn.Parameter(torch.ones(d_model))")
    check_true(bool((norm.weight == 1).all()), f"RMSNorm({d}).weight", "must start at ones.")
    norm = norm.to(x.dtype)
    weight = 1 + _random((d,), torch.Generator().manual_seed(d), 0.3, x.dtype) if weight is None else weight
    with torch.no_grad():
        norm.weight.copy_(weight)
        oracle = nn.RMSNorm(d, eps=eps, dtype=x.dtype)
        oracle.weight.copy_(weight)
        expected = oracle(x)
    check_close(call(norm, x, name=name), expected, f"{name}, against torch.nn.RMSNorm",
                mistakes=rmsnorm_mistakes(x, weight, eps), hint="x / sqrt(mean(x ** 2, last dim) + eps) * weight")


def _rope_mistakes(x, position_ids, theta):
    mistakes = rope_mistakes(x, position_ids[:, None, :], theta)
    mistakes.pop("the positions argument ignored (arange(L) used instead)", None)
    mistakes["position_ids ignored (arange(T) used): each row is turned at its own positions"] = \
        rope_by_complex_numbers(x, None, theta)
    if theta != 10000.0:
        mistakes["theta ignored (10000 used instead of the model's rope_theta)"] = mistakes.pop(
            "the base argument ignored (10000 used instead)")
    return mistakes


def check_rope(rope, x: torch.Tensor, position_ids: torch.Tensor, theta: float) -> None:
    """``rope(x (B, H, T, d), position_ids (B, T), theta)`` against RoPE written with complex numbers."""
    name = f"rope(x {tuple(x.shape)}, position_ids {tuple(position_ids.shape)}, theta={theta:g})"
    expected = rope_by_complex_numbers(x, position_ids[:, None, :], theta)
    received = call(rope, x.clone(), position_ids.clone(), theta, name=name)
    exact = x.dtype == torch.float64
    check_close(received, expected, name, rtol=0 if exact else 1e-5, atol=1e-10 if exact else 1e-5,
                mistakes=_rope_mistakes(x, position_ids, theta),
                hint="pair feature j with feature j + d/2 and turn the pair by position * theta ** (-2j / d)")


def check_swiglu(SwiGLU, d_model: int, d_ff: int, x: torch.Tensor) -> None:
    """``SwiGLU(d_model, d_ff)`` with random weights against ``transformers``' ``LlamaMLP``."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    name = f"SwiGLU({d_model}, {d_ff})"
    ff = call(SwiGLU, d_model, d_ff, name=name)
    shapes = {key: tuple(p.shape) for key, p in ff.named_parameters()}
    expected_shapes = {"gate.weight": (d_ff, d_model), "up.weight": (d_ff, d_model), "down.weight": (d_model, d_ff)}
    check_true(shapes == expected_shapes, name, f"parameters {shapes}; expected {expected_shapes}.",
               hint="three nn.Linear named gate, up and down, with bias=False")
    generator = torch.Generator().manual_seed(d_ff)
    weights = {key: _random(shape, generator, 0.3, x.dtype) for key, shape in expected_shapes.items()}
    ff = ff.to(x.dtype)
    ff.load_state_dict(weights)
    oracle = LlamaMLP(LlamaConfig(hidden_size=d_model, intermediate_size=d_ff, num_attention_heads=1,
                                  num_key_value_heads=1, hidden_act="silu")).to(x.dtype)
    oracle.load_state_dict({key.replace(".", "_proj."): value for key, value in weights.items()})
    with torch.no_grad():
        expected = oracle(x)
    check_close(call(ff, x, name=name), expected, f"{name} against transformers' LlamaMLP", op="matmul",
                mistakes=swiglu_mistakes(weights["gate.weight"], weights["up.weight"], weights["down.weight"], x),
                hint="down(silu(gate(x)) * up(x))")


def check_repeat_kv(repeat_kv, x: torch.Tensor, n_rep: int) -> None:
    """``repeat_kv(x, n_rep)`` against ``transformers``' ``repeat_kv``."""
    from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv

    name = f"repeat_kv(x {tuple(x.shape)}, n_rep={n_rep})"
    check_close(call(repeat_kv, x, n_rep, name=name), hf_repeat_kv(x, n_rep), name, op="exact",
                mistakes=repeat_kv_mistakes(x, n_rep), hint="query head h reads key/value head h // n_rep")


# --------------------------------------------------------------------------------------- whole models

def random_llama(config: LLaMAConfig, seed: int = 1) -> LLaMA:
    """The package's LLaMA with random float64 weights (norm gains near 1), in evaluation mode."""
    generator = torch.Generator().manual_seed(seed)
    model = LLaMA(config).double()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = _random(tuple(parameter.shape), generator, 0.3)
            parameter.copy_(1 + noise if "norm" in name else noise)
    return model.eval()


def with_parts(model: LLaMA, attention=None, block=None) -> LLaMA:
    """A copy of ``model`` whose every attention (or block) is the given class, holding the same weights."""
    own = copy.deepcopy(model)
    c = own.config
    for index, reference in enumerate(own.blocks):
        if block is not None:
            part = block(c).to(next(model.parameters()).dtype)
            part.load_state_dict(reference.state_dict())
            own.blocks[index] = part
        if attention is not None:
            part = attention(c.n_embd, c.n_head, c.n_kv_head, c.rope_theta).to(next(model.parameters()).dtype)
            part.load_state_dict(reference.attn.state_dict())
            reference.attn = part
    return own.eval()


@torch.no_grad()
def cached_logits(model, ids: torch.Tensor, attention_mask: torch.Tensor, prompt: int, cache=None) -> torch.Tensor:
    """Logits of ``ids`` decoded through a KV cache: the first ``prompt`` tokens in one call, then one per call."""
    cache = KVCache() if cache is None else cache
    steps = [model(ids[:, :prompt], attention_mask=attention_mask[:, :prompt], cache=cache)[0]]
    for t in range(prompt, ids.shape[1]):
        steps.append(model(ids[:, t:t + 1], attention_mask=attention_mask[:, :t + 1], cache=cache)[0])
    return torch.cat(steps, dim=1)


def _named_logits(reference, ids, mask, keys, prompt=None):
    return {LLAMA_MISTAKES[key]: mistaken_logits(reference, ids, mask, key, prompt) for key in keys}


def check_llama(model, reference: LLaMA, name: str, mistakes: list[str], prompt: int = 3) -> KVCache:
    """``model`` (with ``reference``'s weights) against ``LlamaForCausalLM`` in float64: a left-padded batch
    without a cache, then decoded through one. Returns the cache it filled."""
    generator = torch.Generator().manual_seed(reference.config.vocab_size)
    lengths = (7, 4)
    ids, mask = left_pad([torch.randint(1, reference.config.vocab_size, (n,), generator=generator).tolist()
                          for n in lengths], 0)
    rows = mask.bool()
    hf = float64_exact(to_hf_model(reference))
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        received = call(lambda: model(ids, attention_mask=mask)[0], name=name)
    check_shape(received, expected.shape, f"{name}: logits")
    plain = [m for m in mistakes if not m.startswith("cache_")]
    check_close(received[rows], expected[rows], f"{name}: logits of a left-padded batch against LlamaForCausalLM "
                f"(real tokens)", rtol=0, atol=1e-9,
                mistakes={k: v[rows] for k, v in _named_logits(reference, ids, mask, plain).items()})
    cache = KVCache()
    stepped = call(cached_logits, model, ids, mask, prompt, cache, name=f"{name} decoding through a KVCache")
    error = (stepped - expected).abs().masked_fill(~rows[..., None], 0).amax(dim=(0, 2))  # per position
    first = int((~(error <= 1e-9)).nonzero()[0]) if not (error <= 1e-9).all() else 0
    cached = [m for m in mistakes if m.startswith("cache_")]
    check_close(stepped[rows], expected[rows], f"{name} decoding through a KVCache ({prompt} tokens, then one per call)",
                rtol=0, atol=1e-9,
                mistakes={k: v[rows] for k, v in _named_logits(reference, ids, mask, cached, prompt).items()},
                hint=f"the logits differ from position {first} on: the new queries are the last T of L positions "
                     "(query i sees keys j <= i + L - T), and the new tokens' positions continue after the cached ones")
    return cache


# ------------------------------------------------------------------------------------------------ chat

def check_chat_prompt(chat_prompt, tokenizer, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """``chat_prompt(messages, add_generation_prompt)`` against ``tokenizer.apply_chat_template``: the text, then its
    token ids. Returns the text."""
    name = f"chat_prompt({[m['role'] for m in messages]}, add_generation_prompt={add_generation_prompt})"
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    received = call(chat_prompt, [dict(m) for m in messages], add_generation_prompt=add_generation_prompt, name=name)
    check_true(isinstance(received, str), name, f"returned {type(received).__name__}; expected the text (a str).")
    if received != expected:
        named = next((d for d, wrong in chat_prompt_mistakes(expected, messages, add_generation_prompt).items()
                      if received == wrong), None)
        check_true(False, name, "differs from the tokenizer's chat template" + (f"; this looks like {named}" if named
                   else "") + f".\n    expected {expected!r}\n    received {received!r}")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)["input_ids"]
    check_true(tokenizer(received)["input_ids"] == ids, name, "the text is right but tokenizes differently from "
               "apply_chat_template's ids.")
    return received
