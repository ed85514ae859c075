"""Judges for chapter 12 (from GPT-2 to a modern LLM). Oracles: ``torch.nn.RMSNorm``, RoPE as complex numbers
(:func:`tfs.teaching.probes_rope.rope_by_complex_numbers`), ``transformers``' ``LlamaMLP``, ``repeat_kv`` and
``LlamaForCausalLM`` (holding the collector's seeded weights, its two float32 steps made float64 by
:func:`tfs.teaching.probes_llama.float64_exact`), ``F.cross_entropy``, published LLaMA widths, and SmolLM2's chat
template rendered by jinja2 (:func:`tfs.grader.collectors.ch12.render_chat`). Mistakes are named by comparing
with :mod:`tfs.teaching.probes_llama`'s wrong answers."""

from __future__ import annotations

import math

import torch

from tfs.grader.collectors.ch12 import (BAD_ROLES, CHAT_CASES, CONFIGS, PROMPT, REPEAT_CASES, REPLY_CASES,
                                        REPLY_MAX_NEW, RMSNORM_CASES, ROPE_CASES, ROPE_LOW_PRECISION,  # noqa: F401
                                        SMOLLM2_CHAT_TEMPLATE, SWIGLU_CASES, SWIGLU_HIDDEN_CASES, loss_targets,
                                        model_weights, padded_batch, render_chat, repeat_input, rmsnorm_inputs,
                                        rope_inputs, rope_low_precision_inputs, seeded, swiglu_input, token_ids)
from tfs.grader.judging import JudgeFailure, check_data, per_run

FLOAT64 = dict(rtol=0.0, atol=1e-9)


def _tensor(item, what: str, shape) -> torch.Tensor:
    if not isinstance(item, dict):
        raise JudgeFailure(f"✗ {what}: no result")
    if "error" in item:
        raise JudgeFailure(f"✗ {what}: your code failed: {item['error']}")
    out = item["out"]
    if tuple(out.shape) != tuple(shape):
        raise JudgeFailure(f"✗ {what}: expected shape {tuple(shape)}, received {tuple(out.shape)}")
    return out


def _named(received: torch.Tensor, mistakes: dict[str, torch.Tensor], rows=None) -> str | None:
    for description, wrong in mistakes.items():
        theirs, mine = (wrong, received) if rows is None else (wrong[rows], received[rows])
        if theirs.shape == mine.shape and torch.allclose(mine.double(), theirs.double(), rtol=1e-6, atol=1e-8,
                                                         equal_nan=True):
            return description
    return None


def _compare(received, expected, what: str, mistakes: dict | None = None, rows=None, hint: str = "",
             tolerance: dict = FLOAT64) -> None:
    """Fail with the worst difference, the named mistake if one matches, else ``hint``."""
    mine, theirs = (received, expected) if rows is None else (received[rows], expected[rows])
    if torch.allclose(mine, theirs, **tolerance):
        return
    worst = (mine - theirs).abs().nan_to_num(float("inf")).max().item()
    if mine.isnan().any() and not theirs.isnan().any():
        raise JudgeFailure(f"✗ {what}: NaN in the result: a query that may attend to no key at all gets 0/0 in its "
                           "softmax (does the causal mask hide the token itself, tril(diagonal=-1)? does padding hide "
                           "every key of a row? each token must see at least itself)")
    named = _named(received, mistakes or {}, rows)
    if named:
        raise JudgeFailure(f"✗ {what}: differs from the expected result by up to {worst:.3g}; this looks like "
                           f"{named}")
    if worst < 1e-4 and mine.dtype == torch.float64:
        hint = ("the difference is at float32's rounding level: is a step computed in float32 (torch.float, "
                ".float(), a float32 constant) although the input is float64?")
    raise JudgeFailure(f"✗ {what}: differs from the expected result by up to {worst:.3g}"
                       + (f"\n  Hint: {hint}" if hint else ""))


# ---------------------------------------------------------------------------------------------- RMSNorm

def rmsnorm(data) -> None:
    from tfs.teaching.probes_llama import rmsnorm_mistakes

    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or len(cases) != len(RMSNORM_CASES):
        raise JudgeFailure("✗ RMSNorm: wrong number of results")
    for case, ((shape, eps, _), item) in enumerate(zip(RMSNORM_CASES, cases)):
        x, weight = rmsnorm_inputs(case)
        what = f"RMSNorm({shape[-1]}, eps={eps}) on x of shape {shape}"
        received = _tensor(item, what, shape)
        oracle = torch.nn.RMSNorm(shape[-1], eps=eps, dtype=torch.float64)
        with torch.no_grad():
            oracle.weight.copy_(weight)
            expected = oracle(x)
        _compare(received, expected, what, rmsnorm_mistakes(x, weight, eps), tolerance=dict(rtol=1e-10, atol=1e-12),
                 hint="x / sqrt(mean(x ** 2 over the last dimension) + eps) * weight")
    if "module_error" in data:
        raise JudgeFailure(f"✗ RMSNorm(8): building or calling a fresh module failed: {data['module_error']}")
    parameters = data.get("parameters", {})
    if set(parameters) != {"weight"} or tuple(parameters["weight"].shape) != (8,):
        raise JudgeFailure(f"✗ RMSNorm(8): parameters {sorted(parameters)}; expected one, weight of shape (8,) "
                           "(a gain per feature; RMSNorm has no bias)")
    if not torch.equal(parameters["weight"], torch.ones(8, dtype=parameters["weight"].dtype)):
        raise JudgeFailure("✗ RMSNorm(8): weight must start at ones (the norm alone, before training)")
    if not isinstance(data.get("weight_grad"), torch.Tensor):
        raise JudgeFailure("✗ RMSNorm: no gradient reached weight: make it an nn.Parameter and use it in forward"
                           + (f" ({data['grad_error']})" if data.get("grad_error") else ""))
    if data.get("float32") is None or data["float32"].dtype != torch.float32:
        raise JudgeFailure("✗ RMSNorm on float32 input: the output must stay float32")


# ------------------------------------------------------------------------------------------------- RoPE

def rope(data) -> None:
    from tfs.teaching.probes_llama import neighbours_as_halves
    from tfs.teaching.probes_rope import rope_by_complex_numbers, rope_mistakes

    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or len(cases) != len(ROPE_CASES):
        raise JudgeFailure("✗ rope: wrong number of results")
    for case, ((batch, heads, length, d, theta), item) in enumerate(zip(ROPE_CASES, cases)):
        x, positions = rope_inputs(case)
        per_head = positions[:, None, :]  # (batch, 1, T): the same positions for every head
        what = f"rope(x {tuple(x.shape)}, position_ids {tuple(positions.shape)}, theta={theta})"
        received = _tensor(item, what, x.shape)
        mistakes = rope_mistakes(x, per_head, theta)
        mistakes.pop("the positions argument ignored (arange(L) used instead)", None)
        mistakes["features paired as neighbours (x[..., 0::2], x[..., 1::2]) instead of halves (j, j + d_head/2)"] = \
            neighbours_as_halves(x, per_head, theta)
        if case:
            mistakes = {"position_ids ignored (arange(T) used): each row is turned at its own positions, a "
                        "left-padded row's first real token at position 0": rope_by_complex_numbers(x, None, theta),
                        **mistakes}
        if theta != 10000.0:
            mistakes["theta ignored (10000 used instead of the model's rope_theta)"] = mistakes.pop(
                "the base argument ignored (10000 used instead)")
        _compare(received, rope_by_complex_numbers(x, per_head, theta), what, mistakes,
                 tolerance=dict(rtol=0, atol=1e-10),
                 hint="pair feature j with feature j + d_head/2 and turn it by position_ids * theta ** (-2j / d_head)")
    x, positions = rope_inputs(1)
    received = _tensor(data.get("float32"), "rope on float32 x", x.shape)
    if received.dtype != torch.float32:
        raise JudgeFailure(f"✗ rope on float32 x: returned {received.dtype}; keep the input's dtype")
    expected = rope_by_complex_numbers(x, positions[:, None, :], ROPE_CASES[1][4])
    _compare(received.double(), expected, "rope on float32 x", tolerance=dict(rtol=1e-5, atol=1e-5))
    _rope_low_precision(data.get("low_precision"))
    if not str(data.get("odd", "")).startswith("ValueError"):
        raise JudgeFailure(f"✗ rope with a head size of 5: expected a ValueError (an odd number of features cannot "
                           f"be paired), received {data.get('odd')}")
    changed = data.get("inputs_changed")
    if not isinstance(changed, list) or len(changed) != len(ROPE_CASES):
        raise JudgeFailure("✗ rope: wrong number of results")
    if any(changed):
        raise JudgeFailure("✗ rope: the call changed the x (or position_ids) it was given, in place: the caller still "
                           "needs them (the keys and values are cached, the queries compared); return a new tensor, "
                           "torch.cat([...], dim=-1), and leave x as it was")


def _rope_low_precision(results) -> None:
    """bfloat16 and float16 x at positions in the thousands against RoPE by complex numbers in float64, rounded to x's
    dtype, allowed what the visible check allows (2 units in the last place): angles computed in float64 or float32
    and cast as cos/sin pass; frequencies or angles rounded to x's dtype turn the pairs by wrong angles."""
    from tfs.teaching.parity_llama import ANGLES_IN_X_DTYPE, HALF_PRECISION_ROPE
    from tfs.teaching.probes_rope import rope_by_complex_numbers

    if not isinstance(results, list) or len(results) != len(ROPE_LOW_PRECISION):
        raise JudgeFailure("✗ rope: wrong number of results")
    for case, ((dtype, shape, theta, first), item) in enumerate(zip(ROPE_LOW_PRECISION, results)):
        x, positions = rope_low_precision_inputs(case)
        what = (f"rope(x {tuple(shape)} in {str(dtype).removeprefix('torch.')}, positions {first} to "
                f"{int(positions.max())}, theta={theta:g})")
        received = _tensor(item, what, shape)
        if received.dtype != dtype:
            raise JudgeFailure(f"✗ {what}: returned {received.dtype}; keep the input's dtype (cast cos and sin to "
                               "x.dtype)")
        expected = rope_by_complex_numbers(x, positions[:, None, :], theta).double()
        tolerance = HALF_PRECISION_ROPE[dtype]
        _compare(received.double(), expected, what, hint=ANGLES_IN_X_DTYPE, tolerance=dict(rtol=tolerance, atol=tolerance))


# ----------------------------------------------------------------------------------------------- SwiGLU

PUBLISHED_WIDTHS = {576: 1536, 4096: 11008, 5120: 13824, 8192: 22016}  # SmolLM2-135M; LLaMA 7B, 13B, 65B


def _llama_width(d_model: int, multiple_of: int) -> int:
    """The smallest multiple of ``multiple_of`` that is at least int(8 d / 3) (LLaMA's model.py)."""
    return math.ceil(int(8 * d_model / 3) / multiple_of) * multiple_of


def swiglu_hidden(data) -> None:
    from tfs.teaching.probes_llama import swiglu_width_mistakes

    if not isinstance(data, list) or len(data) != len(SWIGLU_HIDDEN_CASES):
        raise JudgeFailure("✗ swiglu_hidden: wrong number of results")
    for (d_model, multiple_of), received in zip(SWIGLU_HIDDEN_CASES, data):
        expected = PUBLISHED_WIDTHS.get(d_model, _llama_width(d_model, multiple_of))
        what = f"swiglu_hidden({d_model}, multiple_of={multiple_of})"
        if received == expected:
            continue
        if not isinstance(received, int):
            raise JudgeFailure(f"✗ {what}: {received}; expected an int")
        reason = swiglu_width_mistakes(d_model, multiple_of).get(received)
        raise JudgeFailure(f"✗ {what}: {received} is not LLaMA's width" + (f" ({reason})" if reason else "") +
                           "\n  Hint: a 4d MLP has 2 * d * 4d weights; a SwiGLU of width f has 3 * d * f.")


def swiglu(data) -> None:
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    from tfs.teaching.probes_llama import swiglu_mistakes

    if not isinstance(data, dict) or not isinstance(data.get("cases"), list) or len(data["cases"]) != len(SWIGLU_CASES):
        raise JudgeFailure("✗ SwiGLU: wrong number of results")
    if "module_error" in data:
        raise JudgeFailure(f"✗ SwiGLU(8, 12): {data['module_error']}")
    expected_parameters = {"gate.weight": [12, 8], "up.weight": [12, 8], "down.weight": [8, 12]}
    if data.get("parameters") != expected_parameters:
        raise JudgeFailure(f"✗ SwiGLU(8, 12): parameters {data.get('parameters')}; expected {expected_parameters} "
                           "(three nn.Linear named gate, up, down, bias=False)")
    for case, ((d_model, d_ff), item) in enumerate(zip(SWIGLU_CASES, data["cases"])):
        x = swiglu_input(case)
        what = f"SwiGLU({d_model}, {d_ff}) on x of shape {tuple(x.shape)}"
        received = _tensor(item, what, x.shape)
        weights = {name: seeded(f"{name}.weight", tuple(shape), case)
                   for name, shape in (("gate", (d_ff, d_model)), ("up", (d_ff, d_model)), ("down", (d_model, d_ff)))}
        oracle = LlamaMLP(LlamaConfig(hidden_size=d_model, intermediate_size=d_ff, num_attention_heads=1,
                                         num_key_value_heads=1, hidden_act="silu")).double()
        with torch.no_grad():
            for name, weight in weights.items():
                getattr(oracle, f"{name}_proj").weight.copy_(weight)
            expected = oracle(x)
        _compare(received, expected, what, swiglu_mistakes(weights["gate"], weights["up"], weights["down"], x),
                 hint="down(silu(gate(x)) * up(x))")


def repeat_kv(data) -> None:
    from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv

    from tfs.teaching.probes_llama import repeat_kv_mistakes

    if not isinstance(data, list) or len(data) != len(REPEAT_CASES):
        raise JudgeFailure("✗ repeat_kv: wrong number of results")
    for case, ((shape, n_rep), item) in enumerate(zip(REPEAT_CASES, data)):
        x = repeat_input(case)
        expected = hf_repeat_kv(x, n_rep)
        what = f"repeat_kv(x {tuple(shape)}, n_rep={n_rep})"
        received = _tensor(item, what, expected.shape)
        if not torch.equal(received, torch.repeat_interleave(x, n_rep, dim=1)):
            _compare(received, expected, what, repeat_kv_mistakes(x, n_rep),
                     hint="query head h uses key/value head h // n_rep")


# ------------------------------------------------------------------------------ attention, block, model

@per_run  # one judge process judges every cell of a notebook: each oracle once per run
def _oracle(name: str):
    from tfs.convert.llama import to_hf_model
    from tfs.teaching.probes_llama import float64_exact

    return float64_exact(to_hf_model(model_weights(name)))


@per_run
@torch.no_grad()
def _expected(name: str) -> dict:
    """transformers' logits on the collector's inputs, and its layer-0 cache after the padded batch."""
    hf = _oracle(name)
    padded, mask = padded_batch(name)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = hf(input_ids=padded, attention_mask=mask, position_ids=positions, use_cache=True)
    return {"plain": hf(input_ids=token_ids(name)).logits, "padded": out.logits,
            "keys": out.past_key_values.layers[0].keys, "values": out.past_key_values.layers[0].values}


def _mistakes(name: str, keys: list[str], ids, mask=None, prompt=None) -> dict[str, torch.Tensor]:
    from tfs.teaching.probes_llama import LLAMA_MISTAKES, mistaken_logits

    model = model_weights(name)
    return {LLAMA_MISTAKES[key]: mistaken_logits(model, ids, mask, key, prompt) for key in keys}


def _check_runs(data: dict, name: str, what: str, keys: list[str], hint: str, check_cache: bool = True,
                error_hint: str = "") -> None:
    """The three runs of one config against transformers: plain, left-padded, decoded through the cache;
    ``error_hint`` follows an error of the learner's code."""
    config = CONFIGS[name]
    label = (f"{what} ({config.n_head} query heads, {config.n_kv_head} key/value heads, theta={config.rope_theta:g}, "
             f"{'tied' if config.tie_embeddings else 'untied'} head)")
    if not isinstance(data, dict):
        raise JudgeFailure(f"✗ {label}: no result")
    if "error" in data:
        raise JudgeFailure(f"✗ {label}: building it failed: {data['error']}")
    if isinstance(data.get("plain"), dict) and "error" in data["plain"] and error_hint:
        raise JudgeFailure(f"✗ {label}, logits: your code failed: {data['plain']['error']}\n  Hint: {error_hint}")
    check_data(data, {"plain": None, "padded": None, "cached": None, "cached_plain": None}
               | ({"cache_keys": None, "cache_values": None} if check_cache else {}), label)
    expected = _expected(name)
    ids = token_ids(name)
    padded, mask = padded_batch(name)
    rows = mask.bool()
    _compare(_tensor(data.get("plain"), f"{label}, logits", expected["plain"].shape), expected["plain"],
             f"{label}, logits", _mistakes(name, keys, ids), hint=hint)
    _compare(_tensor(data.get("padded"), f"{label}, left-padded batch", expected["padded"].shape), expected["padded"],
             f"{label}, logits of a left-padded batch (real tokens)", _mistakes(name, keys, padded, mask), rows,
             hint="hide the padding keys (attention_mask) and combine that mask with the causal one")
    if isinstance(data.get("cached"), dict) and "error" in data["cached"]:
        from tfs.teaching.parity_llama import CACHE_LAYER_HINT

        raise JudgeFailure(f"✗ {label}, decoded through a KVCache: your code failed: {data['cached']['error']}\n"
                           f"  Hint: {CACHE_LAYER_HINT}")
    cached = _tensor(data.get("cached"), f"{label}, decoded through a KVCache", expected["padded"].shape)
    error = (cached - expected["padded"]).abs().masked_fill(~rows[..., None], 0).amax(dim=(0, 2))
    if not (error <= FLOAT64["atol"]).all():
        first = int((~(error <= FLOAT64["atol"])).nonzero()[0])  # NaN counts as different
        cache_keys = [key for key in keys if key.startswith("cache_")]
        named = _named(cached, _mistakes(name, cache_keys, padded, mask, PROMPT), rows)
        where = "the prompt" if first < PROMPT else f"the one-token step at position {first}"
        nan = " (NaN: a query with no key to attend to)" if cached.isnan().any() else ""
        hint = ("\n  Hint: the new queries are the last T of L positions: query i sees keys j <= i + L - T, and the "
                "new tokens' positions continue after the cached ones")
        raise JudgeFailure(f"✗ {label}, decoded through a KVCache (the first {PROMPT} tokens, then one per call): "
                           f"the logits differ from the uncached ones from {where} on (up to {error.max():.3g}){nan}"
                           + (f"; this looks like {named}" if named else hint))
    _check_cached_without_mask(data, expected["plain"], label)
    if check_cache:
        keys_ = data.get("cache_keys")
        want = tuple(expected["keys"].shape)
        if not isinstance(keys_, torch.Tensor) or tuple(keys_.shape) != want:
            got = tuple(keys_.shape) if isinstance(keys_, torch.Tensor) else keys_
            extra = (" it holds every query head's copy: cache the keys and values BEFORE repeating them, so the "
                     "cache is as small as grouped-query attention allows" if isinstance(keys_, torch.Tensor)
                     and keys_.dim() == 4 and keys_.shape[1] == config.n_head != config.n_kv_head else "")
            raise JudgeFailure(f"✗ {label}: the cache's layer-0 keys have shape {got}, expected {want} (batch, "
                               f"key/value heads, positions, d_head);{extra}")
        for mine, theirs, kind in ((keys_, expected["keys"], "keys"),
                                   (data.get("cache_values"), expected["values"], "values")):
            _compare(mine.masked_fill(~rows[:, None, :, None], 0), theirs.masked_fill(~rows[:, None, :, None], 0),
                     f"{label}: the cache's layer-0 {kind} (real tokens)",
                     hint="cache the keys after RoPE (the queries of later steps compare with rotated keys) and the "
                          "values as projected")


def _check_cached_without_mask(data: dict, expected: torch.Tensor, label: str) -> None:
    """The seeded ids decoded through a KVCache with no attention_mask (as ``generate`` decodes an unpadded prompt)
    against transformers' uncached logits."""
    what = f"{label}, decoded through a KVCache without an attention_mask (the first {PROMPT} tokens, then one per call)"
    item = data.get("cached_plain")
    if isinstance(item, dict) and "error" in item:
        raise JudgeFailure(f"✗ {what}: your code failed: {item['error']}")
    cached = _tensor(item, what, expected.shape)
    error = (cached - expected).abs().nan_to_num(float("inf")).amax(dim=(0, 2))
    if (error <= FLOAT64["atol"]).all():
        return
    first = int((~(error <= FLOAT64["atol"])).nonzero()[0])
    raise JudgeFailure(f"✗ {what}: the logits differ from the uncached ones from position {first} on (up to "
                       f"{error.max():.3g}), although they match with an attention_mask: without a mask the causal "
                       "mask must still let the T new queries, the last T of L positions, see keys j <= i + L - T. "
                       "is_causal=True (or tril of a T x L mask without the offset) aligns it top-left, so a new "
                       "token sees only the first key")


ATTENTION_MISTAKES = ["kv_tiled", "causal_plus_one", "causal_minus_one", "no_causal", "interleaved_rope",
                      "theta_ignored", "no_rope", "rope_on_values", "no_scale", "scale_d_model", "padding_ignored"]
BLOCK_MISTAKES = ["post_norm", "post_norm_attn", "post_norm_ff", "residual_from_normed", "attn_residual_from_normed",
                  "ff_residual_from_normed", "no_residual", "no_attn_residual", "no_ff_residual", "padding_ignored",
                  "block_norms_default_eps"]


def attention(data) -> None:
    if not isinstance(data, dict):
        raise JudgeFailure("✗ GroupedQueryAttention: no result")
    for name in CONFIGS:
        _check_runs(data.get(name), name, "transformers' LLaMA on your GroupedQueryAttention", ATTENTION_MISTAKES,
                    hint="project, turn q and k with rope, repeat each key/value head for its group of query heads, "
                         "attend causally with the 1/sqrt(d_head) scale, merge the heads, then out",
                    error_hint="every query head needs a key/value head: repeat each of the n_kv_heads heads "
                               "n_heads // n_kv_heads times before attending")
    if not str(data.get("indivisible", "")).startswith("ValueError"):
        raise JudgeFailure(f"✗ GroupedQueryAttention(24, n_heads=6, n_kv_heads=4): expected a ValueError (6 query "
                           f"heads cannot be split into 4 equal groups), received {data.get('indivisible')}")


def block(data) -> None:
    if not isinstance(data, dict):
        raise JudgeFailure("✗ LLaMABlock: no result")
    for name in CONFIGS:
        _check_runs(data.get(name), name, "transformers' LLaMA on your LLaMABlock", BLOCK_MISTAKES, check_cache=False,
                    hint="x = x + attn(norm1(x), position_ids, mask, cache, layer); x = x + ff(norm2(x))")


def model(data) -> None:
    if not isinstance(data, dict):
        raise JudgeFailure("✗ LLaMA: no result")
    for name, config in CONFIGS.items():
        _check_runs(data.get(name), name, "your LLaMA", ["no_final_norm", "final_norm_default_eps", "padding_ignored",
                                                          "cache_position_plus_one", "cache_position_minus_one",
                                                          "cache_position_zero"],
                    check_cache=False, hint="embed, the blocks (each with position_ids, the padding mask, the cache "
                                            "and its index), the final norm, lm_head")
        check_data(data[name], {"tied": None, "too_long": None, "too_long_cached": None, "loss": None,
                                "given_positions": None, "exactly_block_size": None,
                                "exactly_block_size_cached": None}, "LLaMA")
        _check_loss(data[name]["loss"], name)
        tied = data[name].get("tied")
        if tied is not config.tie_embeddings:
            raise JudgeFailure(f"✗ LLaMA with tie_embeddings={config.tie_embeddings}: lm_head.weight "
                               f"{'is' if tied else 'is not'} embed.weight; tie them exactly when the config says so "
                               "(self.lm_head.weight = self.embed.weight)")
        if not str(data[name].get("too_long", "")).startswith("ValueError"):
            raise JudgeFailure(f"✗ LLaMA with block_size={config.block_size} on {config.block_size + 1} tokens: "
                               "expected a ValueError (longer than the context it was trained on), received "
                               f"{data[name].get('too_long')}")
        if not str(data[name].get("too_long_cached", "")).startswith("ValueError"):
            raise JudgeFailure(f"✗ LLaMA with block_size={config.block_size}: {config.block_size - 1} tokens cached, "
                               f"then 2 more: expected a ValueError ({config.block_size + 1} positions in all), received "
                               f"{data[name].get('too_long_cached')}\n  Hint: the sequence is the cached positions and "
                               "the new ones: compare len(cache) + T with block_size")
        for key, what in (("exactly_block_size", f"{config.block_size} tokens at once"),
                          ("exactly_block_size_cached", f"{config.block_size - 1} tokens cached, then 1 more")):
            if data[name][key] != "no error":
                raise JudgeFailure(f"✗ LLaMA with block_size={config.block_size}: {what}, exactly block_size "
                                   f"positions, must be accepted; received {data[name][key]}. Refuse only a sequence "
                                   "longer than block_size: len(cache) + T > block_size")
        _check_given_positions(data[name]["given_positions"], name)


def _check_given_positions(item, name: str) -> None:
    """``model(ids, position_ids=...)`` (:func:`given_positions`) against transformers with the same position ids."""
    from tfs.grader.collectors.ch12 import POSITION_GAP, given_positions

    what = f"your LLaMA ({name}) with position_ids given (a gap of {POSITION_GAP} after the middle token)"
    with torch.no_grad():
        expected = _oracle(name)(input_ids=token_ids(name), position_ids=given_positions(name)).logits
    received = _tensor(item, what, expected.shape)
    if torch.allclose(received, expected, **FLOAT64):
        return
    if torch.allclose(received, _expected(name)["plain"], **FLOAT64):
        raise JudgeFailure(f"✗ {what}: the position_ids given are ignored: the logits are those of positions "
                           "0..T-1. When the caller passes position_ids, use them; compute positions only when it "
                           "passes None")
    _compare(received, expected, what, hint="pass the position_ids given to every block")


def _check_loss(loss, name: str) -> None:
    """The learner's loss on the seeded ids and :func:`loss_targets` against ``F.cross_entropy`` of the oracle's logits."""
    import torch.nn.functional as F

    from tfs.teaching.probes_llama import loss_mistakes

    targets = loss_targets(name)
    what = f"your LLaMA with targets ({int((targets == -100).sum())} of {targets.numel()} of them -100)"
    if not isinstance(loss, torch.Tensor):
        raise JudgeFailure(f"✗ {what}: {'your code failed: ' if isinstance(loss, str) else ''}{loss}; with targets, "
                           "forward returns (logits, loss), the loss a scalar tensor")
    logits = _expected(name)["plain"]
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    if loss.shape == () and torch.allclose(loss.double(), expected, rtol=1e-9, atol=1e-12):
        return
    named = next((d for d, wrong in loss_mistakes(logits, targets).items()
                  if loss.shape == () and torch.allclose(loss.double(), wrong)), None)
    raise JudgeFailure(f"✗ {what}: the loss {loss.flatten()[:3].tolist()} is not chapter 06's cross-entropy"
                       + (f"; this looks like {named}" if named else "\n  Hint: F.cross_entropy(logits.flatten(0, 1), "
                          "targets.flatten(), ignore_index=-100)"))


# ------------------------------------------------------------------------------------------------- chat

def _first_difference(received: str, expected: str) -> str:
    """Where two texts part, shown by the received text only (the expected one stays hidden)."""
    at = next((i for i, (a, b) in enumerate(zip(received, expected)) if a != b), min(len(received), len(expected)))
    return f"from character {at} on (after {received[max(0, at - 30):at]!r})"


def chat_prompt(data) -> None:
    from tfs.teaching.probes_llama import chat_prompt_mistakes

    check_data(data, {"cases": None, "bad_roles": [None] * len(BAD_ROLES), "messages_changed": [bool] * len(CHAT_CASES)},
               "chat_prompt")
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or len(cases) != len(CHAT_CASES):
        raise JudgeFailure("✗ chat_prompt: wrong number of results")
    for (messages, generation), received in zip(CHAT_CASES, cases):
        what = f"chat_prompt({[m['role'] for m in messages]}, add_generation_prompt={generation})"
        if isinstance(received, dict):
            raise JudgeFailure(f"✗ {what}: your function failed: {received['error']}")
        expected = render_chat(messages, generation)
        if received == expected:
            continue
        if not isinstance(received, str) or received.startswith("returned "):
            raise JudgeFailure(f"✗ {what}: {received}")
        mistakes = chat_prompt_mistakes(expected, messages, generation)
        reason = next((description for description, wrong in mistakes.items() if received == wrong), None)
        if reason is None and received.strip() == expected.strip():
            reason = "leading or trailing whitespace differs"
        raise JudgeFailure(f"✗ {what}: differs from SmolLM2's chat template"
                           + (f"; this looks like {reason}" if reason else f" {_first_difference(received, expected)}")
                           + f"\n    received {received!r}")
    for (messages, _), changed in zip(CHAT_CASES, data["messages_changed"]):
        if changed:
            raise JudgeFailure(f"✗ chat_prompt({[m['role'] for m in messages]}): the list of messages passed in was "
                               "changed in place (the default system message inserted into it?): the caller's "
                               "conversation must stay as it was; build a new list, [system] + list(messages)")
    for messages, raised in zip(BAD_ROLES, data["bad_roles"]):
        if not str(raised).startswith("ValueError"):
            raise JudgeFailure(f"✗ chat_prompt with a role {messages[-1]['role']!r}: expected a ValueError (roles "
                               f"are system, user, assistant), received {raised}")


@per_run
def _replies() -> list[list[int]]:
    """transformers' greedy continuation of each reply case, stopped at <|im_end|> (or at the limit)."""
    from tfs.convert.llama import to_hf_model
    from tfs.grader.collectors.ch12 import chat_tokenizer, chat_weights

    tokenizer, hf = chat_tokenizer(), to_hf_model(chat_weights())
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = []
    for messages in REPLY_CASES:
        prompt = torch.tensor([tokenizer(render_chat(messages))["input_ids"]])
        with torch.no_grad():
            ids = hf.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                              max_new_tokens=REPLY_MAX_NEW, eos_token_id=end, pad_token_id=end)
        out.append(ids[0, prompt.shape[1]:].tolist())
    return out


def reply(data) -> None:
    from tfs.grader.collectors.ch12 import chat_tokenizer
    from tfs.teaching.probes_llama import reply_mistake

    if not isinstance(data, list) or len(data) != len(REPLY_CASES):
        raise JudgeFailure("✗ reply: wrong number of results")
    tokenizer, expected_replies = chat_tokenizer(), _replies()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for messages, received, new in zip(REPLY_CASES, data, expected_replies):
        what = f"reply(model, tokenizer, {[m['role'] for m in messages]}, max_new_tokens={REPLY_MAX_NEW})"
        if isinstance(received, dict):
            raise JudgeFailure(f"✗ {what}: your function failed: {received['error']}")
        expected = tokenizer.decode(new[:new.index(end)] if end in new else new)
        if isinstance(received, str) and received.strip() == expected.strip():
            continue
        if not isinstance(received, str) or received.startswith("returned "):
            reason = f"{received}; return the reply's text"
        else:
            reason = reply_mistake(received, tokenizer, new, end)
        raise JudgeFailure(f"✗ {what}: received {received!r}"
                           + (f": {reason}" if reason else f", which differs from transformers' greedy reply "
                              f"{_first_difference(received, expected)}"))
