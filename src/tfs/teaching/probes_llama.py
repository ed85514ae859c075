"""Probes for chapter 12 (LLaMA): the usual wrong answers, computed on purpose, and a float64 fix of the oracle.

The ``*_mistakes`` functions return ``{description: wrong_result}`` like :mod:`tfs.teaching.probes`, and
:func:`mistaken_logits` runs a LLaMA's weights through a plain functional forward pass with one chosen mistake,
so that a check or a judge can name what went wrong. Nothing here is an oracle: the oracles are
``torch.nn.RMSNorm``, ``transformers``' LLaMA modules and :func:`tfs.teaching.probes_rope.rope_by_complex_numbers`.

:func:`float64_exact` is about the oracle itself: ``transformers``' ``LlamaRMSNorm`` computes its statistics in
float32 and ``LlamaRotaryEmbedding`` its angles in float32 even in a float64 model (written for half precision),
so its float64 logits are only float32-accurate there. It swaps those two steps of one model (not the class) for
their float64 formulas, so that a float64 comparison measures rounding, not that choice.
"""

from __future__ import annotations

import math
import re
import types

import torch
from torch.nn import functional as F

from tfs.teaching.probes_rope import rope_by_complex_numbers

__all__ = ["LLAMA_MISTAKES", "chat_prompt_mistakes", "float64_exact", "loss_mistakes", "mistaken_logits", "neighbours_as_halves",
           "reply_mistake", "repeat_kv_mistakes", "rmsnorm_mistakes", "swiglu_mistakes", "swiglu_width_mistakes"]


# ------------------------------------------------------------------------------------------- the oracle

def _rms_norm_float64(self, hidden_states: torch.Tensor) -> torch.Tensor:
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def _rotary_float64(self, x: torch.Tensor, position_ids: torch.Tensor):
    d = 2 * self.inv_freq.shape[0]
    theta = self.config.rope_parameters["rope_theta"]
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d))
    angles = position_ids[..., None].to(torch.float64) * inv_freq
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def float64_exact(hf_model, undo: bool = False):
    """``hf_model`` (a ``LlamaForCausalLM``) with its RMSNorms and rotary embedding computed in the model's dtype
    (float64 stays float64; in float32 the norms are unchanged and the angles are rounded once instead of twice).
    Patches this model's modules only, and returns it; ``undo=True`` puts its own methods back."""
    for module in hf_model.modules():
        name = type(module).__name__
        if undo and name in ("LlamaRMSNorm", "LlamaRotaryEmbedding"):
            module.__dict__.pop("forward", None)
        elif name == "LlamaRMSNorm":
            module.forward = types.MethodType(_rms_norm_float64, module)
        elif name == "LlamaRotaryEmbedding":
            if module.rope_type != "default":
                raise ValueError(f"float64_exact handles the original RoPE only, not {module.rope_type!r}")
            module.forward = types.MethodType(_rotary_float64, module)
    return hf_model


# ------------------------------------------------------------------------------------------ the layers

def rmsnorm_mistakes(x: torch.Tensor, weight: torch.Tensor, eps: float) -> dict[str, torch.Tensor]:
    """Wrong RMSNorms of ``x (..., d)`` with ``weight (d,)``."""
    def rms(t, dim=-1):
        return torch.sqrt(t.pow(2).mean(dim=dim, keepdim=True) + eps)

    centred = x - x.mean(-1, keepdim=True)
    mistakes = {
        "the mean subtracted first (that is LayerNorm's centring; RMSNorm divides x itself by its root mean square)":
            centred / rms(centred) * weight,
        "eps added outside the square root (x / (sqrt(mean(x^2)) + eps)); it goes inside: sqrt(mean(x^2) + eps)":
            x / (torch.sqrt(x.pow(2).mean(-1, keepdim=True)) + eps) * weight,
        "the weight left out (RMSNorm has a learnable gain per feature)": x / rms(x),
        "divided by mean(x^2) + eps, without the square root": x / (x.pow(2).mean(-1, keepdim=True) + eps) * weight,
        "the standard deviation instead of the root mean square (torch.std subtracts the mean)":
            x / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps) * weight,
        "eps left out": x / torch.sqrt(x.pow(2).mean(-1, keepdim=True)) * weight,
    }
    for dim in range(x.dim() - 1):
        if x.shape[dim] > 1:
            mistakes[f"the mean of squares over dim={dim} instead of the last (features) dimension"] = \
                x / rms(x, dim) * weight
    return mistakes


def swiglu_mistakes(gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor,
                    x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong SwiGLUs of ``x`` with weights ``gate``, ``up`` ``(d_ff, d)`` and ``down`` ``(d, d_ff)``."""
    g, u = x @ gate.T, x @ up.T
    return {
        "SiLU on the up branch instead of the gate (down(gate(x) * silu(up(x))))": (g * F.silu(u)) @ down.T,
        "no SiLU: down(gate(x) * up(x))": (g * u) @ down.T,
        "no gating: down(silu(gate(x))) without the up branch": F.silu(g) @ down.T,
        "GELU instead of SiLU": (F.gelu(g) * u) @ down.T,
        "sigmoid instead of SiLU (silu(z) = z * sigmoid(z))": (torch.sigmoid(g) * u) @ down.T,
        "the two branches added instead of multiplied": (F.silu(g) + u) @ down.T,
        "SiLU of the product (down(silu(gate(x) * up(x)))): only the gate branch goes through SiLU": F.silu(g * u) @ down.T,
    }


def swiglu_width_mistakes(d_model: int, multiple_of: int) -> dict[int, str]:
    """``{wrong width: what it comes from}`` for ``swiglu_hidden(d_model, multiple_of)``."""
    exact = 8 * d_model / 3
    return {4 * d_model: "4 * d_model is GPT-2's width: with three matrices instead of two it has 1.5 times the "
                         "parameters",
            int(exact): "int(8 d / 3) is the right budget, but LLaMA then rounds it UP to a multiple of multiple_of",
            math.floor(exact / multiple_of) * multiple_of: "rounded down: LLaMA rounds up to the next multiple",
            round(exact / multiple_of) * multiple_of: "rounded to the nearest multiple: LLaMA rounds up",
            math.ceil(2 * d_model / 3 / multiple_of) * multiple_of: "2/3 of d_model: the budget is that of a "
                                                                    "4 * d_model MLP, so 2/3 of 4 d",
            **({math.ceil(int(exact) / 256) * 256: "multiple_of ignored (rounded up to a multiple of 256, LLaMA's "
                                                   "default): round up to a multiple of the multiple_of argument"}
               if multiple_of != 256 and math.ceil(int(exact) / 256) * 256 != math.ceil(int(exact) / multiple_of)
               * multiple_of else {})}


def repeat_kv_mistakes(x: torch.Tensor, n_rep: int) -> dict[str, torch.Tensor]:
    """Wrong repeats of ``x (batch, n_kv, T, d)`` to ``n_kv * n_rep`` heads."""
    return {
        "the KV heads tiled (0, 1, 2, 0, 1, 2, ...: x.repeat) instead of each repeated in a row "
        "(0, 0, 0, 1, 1, 1, ...)":
            x.repeat(1, n_rep, 1, 1),
        "repeated along the positions (dim 2) instead of the heads (dim 1)": x.repeat_interleave(n_rep, dim=2),
        "the copies made after the positions dimension (x[:, :, :, None]) and reshaped: each new head mixes positions "
        "(make the copies at dim 2, x[:, :, None], before T)":
            x[:, :, :, None].expand(-1, -1, -1, n_rep, -1).reshape(x.shape[0], -1, x.shape[2], x.shape[3]),
    }


def neighbours_as_halves(x: torch.Tensor, position_ids: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE of ``x`` that pairs neighbours ``(2j, 2j+1)`` but writes the turned pairs as halves (``x[..., 0::2]`` and
    ``x[..., 1::2]`` rotated, then concatenated): ``position_ids`` ``(B, 1, T)``."""
    return rope_by_complex_numbers(torch.cat([x[..., 0::2], x[..., 1::2]], dim=-1), position_ids, theta)


# -------------------------------------------------------------------------------------- the whole model

LLAMA_MISTAKES = {
    "": "no mistake",
    "kv_tiled": "the KV heads repeated in the wrong order (tiled: query head h read KV head h % n_kv_heads instead of "
                "h // (n_heads / n_kv_heads))",
    "causal_plus_one": "the causal mask off by one: each token also sees the next one (tril(diagonal=1))",
    "causal_minus_one": "the causal mask off by one: each token cannot see itself (tril(diagonal=-1))",
    "no_causal": "no causal mask: tokens see the future",
    "positions_from_columns": "the position ids of a left-padded batch taken from the columns (arange), not from the "
                              "mask: padding shifted every real token's rotation",
    "cache_position_plus_one": "the cache position off by one: a token after the cached ones got position "
                               "len(cache) + 1 instead of len(cache)",
    "cache_position_minus_one": "the cache position off by one: a token after the cached ones got position "
                                "len(cache) - 1 instead of len(cache)",
    "cache_position_zero": "positions restarted at 0 for the tokens after the cache (use len(cache) + arange(T))",
    "interleaved_rope": "RoPE pairs interleaved (2j, 2j+1) instead of halves (j, j + d/2)",
    "theta_ignored": "RoPE's theta ignored (10000 used instead of the config's rope_theta)",
    "no_rope": "no RoPE on the queries and keys",
    "rope_on_values": "RoPE applied to the values too (only queries and keys are rotated)",
    "post_norm": "post-norm blocks (norm(x + f(x))) instead of pre-norm (x + f(norm(x)))",
    "post_norm_attn": "the attention sublayer post-norm (x = norm1(x + attn(x))) instead of pre-norm "
                      "(x + attn(norm1(x)))",
    "post_norm_ff": "the feed-forward sublayer post-norm (norm2(x + ff(x))) instead of pre-norm (x + ff(norm2(x)))",
    "residual_from_normed": "the residual taken from the normalised x (norm(x) + f(norm(x))) instead of x itself",
    "attn_residual_from_normed": "the attention's residual taken from the normalised x (x = norm1(x), then "
                                 "x + attn(x)): the residual is the block's input itself, x + attn(norm1(x))",
    "ff_residual_from_normed": "the feed-forward network's residual taken from the normalised x (x = norm2(x), then "
                               "x + ff(x)): the residual is x itself, x + ff(norm2(x))",
    "no_residual": "no residual connection (x = f(norm(x)) instead of x + f(norm(x)))",
    "no_attn_residual": "no residual connection around the attention (x = attn(norm1(x)) instead of "
                        "x + attn(norm1(x)))",
    "no_ff_residual": "no residual connection around the feed-forward network (ff(norm2(x)) instead of "
                      "x + ff(norm2(x)))",
    "padding_ignored": "the padding mask not applied (not passed on to the attention): real tokens attend to the "
                       "padding keys",
    "no_final_norm": "the final RMSNorm before the head left out",
    "final_norm_default_eps": "the final RMSNorm built without config.eps (RMSNorm's default eps 1e-6 used instead): "
                              "RMSNorm(config.n_embd, config.eps)",
    "block_norms_default_eps": "the blocks' RMSNorms built without config.eps (RMSNorm's default eps 1e-6 used "
                               "instead): RMSNorm(config.n_embd, config.eps) for norm1 and norm2",
    "rmsnorm_mean": "RMSNorm with the mean subtracted (LayerNorm's centring)",
    "swiglu_up": "SiLU on the up branch instead of the gate",
    "no_scale": "the attention scores not divided by sqrt(d_head)",
    "scale_d_model": "the attention scores divided by sqrt(d_model) instead of sqrt(d_head) (the size of one head)",
}


def _rms(x, weight, eps, mean=False):
    if mean:
        x = x - x.mean(-1, keepdim=True)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _rotate(x, positions, theta, kind):
    """RoPE of ``x (B, H, T, d)`` at ``positions (B, T)``."""
    if kind == "no_rope":
        return x
    theta = 10000.0 if kind == "theta_ignored" else theta
    if kind == "interleaved_rope":
        d = x.shape[-1]
        angles = positions[:, None, :, None].double() * theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        z = torch.complex(x[..., 0::2].double(), x[..., 1::2].double()) * torch.polar(torch.ones_like(angles), angles)
        return torch.stack([z.real, z.imag], dim=-1).flatten(-2).to(x.dtype)
    return rope_by_complex_numbers(x, positions[:, None, :], theta)


def _positions(mask01, prompt, kind):
    """Position ids ``(B, T)`` for a left-padded batch (0/1 mask), with the position mistakes."""
    batch, length = mask01.shape
    if kind == "positions_from_columns":
        return torch.arange(length).expand(batch, length)
    positions = (mask01.cumsum(-1) - 1).clamp(min=0)
    shift = {"cache_position_plus_one": 1, "cache_position_minus_one": -1}.get(kind)
    if prompt is not None and shift:
        positions = positions + shift * (torch.arange(length) >= prompt)
    if prompt is not None and kind == "cache_position_zero":
        positions = torch.where(torch.arange(length) >= prompt, torch.zeros_like(positions), positions)
    return positions


@torch.no_grad()
def mistaken_logits(model, ids: torch.Tensor, attention_mask: torch.Tensor | None = None, mistake: str = "",
                    prompt: int | None = None) -> torch.Tensor:
    """Logits ``(B, T, vocab)`` of a course LLaMA's weights on ``ids`` with one mistake of :data:`LLAMA_MISTAKES`
    (``""``: none). ``prompt``: the sequence was decoded with a KV cache after ``prompt`` tokens (the cache
    position mistakes apply to the tokens after it)."""
    if mistake not in LLAMA_MISTAKES:
        raise KeyError(f"unknown mistake {mistake!r}")
    c = model.config
    batch, length = ids.shape
    mask01 = torch.ones_like(ids) if attention_mask is None else attention_mask.long()
    positions = _positions(mask01, prompt, mistake)
    offset = {"causal_plus_one": 1, "causal_minus_one": -1}.get(mistake, 0)
    causal = torch.ones(length, length, dtype=torch.bool)
    hidden = torch.ones_like(mask01) if mistake == "padding_ignored" else mask01
    allowed = (causal if mistake == "no_causal" else causal.tril(offset)) & hidden.bool()[:, None, None, :]
    if offset != -1:  # each query sees itself, so a padded row is not empty (its output is never read)
        allowed = allowed | torch.eye(length, dtype=torch.bool)
    rep = c.n_head // c.n_kv_head
    d = c.n_embd // c.n_head
    x = model.embed(ids)
    for block in model.blocks:
        def sub(h, f, norm, part):
            if mistake in ("post_norm", f"post_norm_{part}"):
                return _rms(h + f(h), norm.weight, c.eps)
            normed = _rms(h, norm.weight, 1e-6 if mistake == "block_norms_default_eps" else c.eps,
                          mistake == "rmsnorm_mean")
            residual = {"residual_from_normed": normed, f"{part}_residual_from_normed": normed, "no_residual": 0.0,
                        f"no_{part}_residual": 0.0}.get(mistake, h)
            return residual + f(normed)

        def attend(h, a=block.attn):
            q = a.q(h).view(batch, length, c.n_head, d).transpose(1, 2)
            k = a.k(h).view(batch, length, c.n_kv_head, d).transpose(1, 2)
            v = a.v(h).view(batch, length, c.n_kv_head, d).transpose(1, 2)
            q, k = _rotate(q, positions, c.rope_theta, mistake), _rotate(k, positions, c.rope_theta, mistake)
            if mistake == "rope_on_values":
                v = _rotate(v, positions, c.rope_theta, "")
            if mistake == "kv_tiled":
                k, v = k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1)
            else:
                k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            scale = {"no_scale": 1.0, "scale_d_model": math.sqrt(c.n_embd)}.get(mistake, math.sqrt(d))
            scores = q @ k.transpose(-2, -1) / scale
            weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0)
            return a.out((weights @ v).transpose(1, 2).reshape(batch, length, c.n_head * d))

        def feed(h, f=block.ff):
            g, u = f.gate(h), f.up(h)
            return f.down(g * F.silu(u) if mistake == "swiglu_up" else F.silu(g) * u)

        x = sub(x, attend, block.norm1, "attn")
        x = sub(x, feed, block.norm2, "ff")
    if mistake != "no_final_norm":
        x = _rms(x, model.norm.weight, 1e-6 if mistake == "final_norm_default_eps" else c.eps, mistake == "rmsnorm_mean")
    return model.lm_head(x)


def loss_mistakes(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong losses of ``logits (B, T, vocab)`` against ``targets (B, T)`` (some -100)."""
    kept = targets != -100
    return {
        "the -100 targets counted: they must be ignored (ignore_index=-100)":
            F.cross_entropy(logits.flatten(0, 1), targets.clamp(min=0).flatten()),
        "targets shifted once more (logits[:, :-1] against targets[:, 1:]): they are already the next tokens":
            F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten(), ignore_index=-100),
        "summed instead of averaged over the targets": F.cross_entropy(logits[kept], targets[kept], reduction="sum"),
    }


# ------------------------------------------------------------------------------------------------ chat

def chat_prompt_mistakes(expected: str, messages: list[dict], add_generation_prompt: bool) -> dict[str, str]:
    """Wrong ChatML texts, derived from the right one (``expected``) for ``messages``."""
    generation = "<|im_start|>assistant\n"
    mistakes = {
        "the trailing newline after each <|im_end|> left out (each turn is '<|im_start|>role\\ncontent<|im_end|>\\n')":
            expected.replace("<|im_end|>\n", "<|im_end|>"),
        "no newline after the role (each turn is '<|im_start|>role\\ncontent<|im_end|>\\n')":
            re.sub(r"(<\|im_start\|>(?:system|user|assistant))\n", r"\1", expected),
    }
    if add_generation_prompt and expected.endswith(generation):
        mistakes["the generation prompt '<|im_start|>assistant\\n' left out: without it the model is not asked to "
                 "answer"] = expected[:-len(generation)]
    elif not add_generation_prompt:
        mistakes["add_generation_prompt=False ignored: the assistant's turn must not be opened"] = expected + generation
    stripped = expected
    for message in messages:
        content = message.get("content", "")
        if content != content.strip():
            stripped = stripped.replace(f"\n{content}<|im_end|>", f"\n{content.strip()}<|im_end|>")
    if stripped != expected:
        mistakes["each content stripped of its leading and trailing whitespace: the template copies every content "
                 "exactly as it is given"] = stripped
    if messages and messages[0].get("role") != "system":
        without = expected.split("<|im_end|>\n", 1)[1]
        mistakes["the default system message left out (SmolLM2's template adds it when the first message is not a "
                 "system one)"] = without
    return mistakes


def reply_mistake(received: str, tokenizer, new: list[int], end: int) -> str | None:
    """What a wrong ``reply`` text did, from the right greedy continuation ``new`` (token ids, ending with the
    end-of-turn id ``end`` when the turn ended before the limit), or None."""
    full = tokenizer.decode(new)
    if end in new and received.strip() == full.strip():
        return "the end-of-turn token is part of the text: stop at <|im_end|> and leave it out"
    if received.lstrip().startswith("<|im_start|>"):
        return "the reply starts with the prompt: return only the new tokens' text (after the prompt's length)"
    if "<|im_end|>" in received:
        return "generation did not stop at the end of the assistant's turn (<|im_end|>): pass its id as eos_token_id"
    if end not in new and len(received) > len(full) and received.startswith(full.rstrip()):
        return (f"the reply goes on past max_new_tokens ({len(new)} new tokens here): pass max_new_tokens on to "
                "generate")
    return None
