"""Visible checks of chapter 12: the learner's LLaMA pieces against ``torch.nn`` and ``transformers``, in one call each.

Each check builds the learner's module, writes known weights into it by name, runs it next to the oracle
(``torch.nn.RMSNorm``, RoPE as complex numbers, ``transformers``' ``LlamaMLP``, ``repeat_kv`` and
``LlamaForCausalLM``) and fails with a course message that names the mistake when the result matches one of
:mod:`tfs.teaching.probes_llama`'s wrong answers. Whole-model checks run on small random ``LLaMAConfig``s in
float64, where the oracle's two float32 steps are made float64 (:func:`tfs.teaching.probes_llama.float64_exact`).

Nothing here uses the package's LLaMA (chapter 12's own reference, hidden while the chapter is graded or checked):
the random weights live in :func:`llama_skeleton` (parameters by the course's names, no forward), and a learner's
attention or block is checked inside ``transformers``' model (:class:`Plugged`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from tfs.convert.llama import to_hf_model
from tfs.generate import left_pad
from tfs.models.llama import LLaMAConfig
from tfs.nn import KVCache
from tfs.teaching.checks import CheckError, call, check_close, check_shape, check_true
from tfs.teaching.probes_llama import (LLAMA_MISTAKES, chat_prompt_mistakes, float64_exact, loss_mistakes,
                                       mistaken_logits, neighbours_as_halves, reply_mistake, repeat_kv_mistakes,
                                       rmsnorm_mistakes, swiglu_mistakes, swiglu_width_mistakes)
from tfs.teaching.probes_rope import rope_by_complex_numbers, rope_mistakes

__all__ = ["SMALL_CONFIGS", "Plugged", "cached_logits", "check_chat_prompt", "check_context_limit", "check_llama",
           "check_loss", "check_reply", "check_repeat_kv", "check_rmsnorm", "check_rope", "check_swiglu",
           "check_swiglu_hidden", "llama_skeleton", "random_llama", "with_parts"]

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
    received = call(norm, x, name=name)
    check_close(received, expected, f"{name}, against torch.nn.RMSNorm",
                mistakes=rmsnorm_mistakes(x, weight, eps),
                hint="x / sqrt(mean(x ** 2, last dim) + eps) * weight")


def _rope_mistakes(x, position_ids, theta):
    mistakes = rope_mistakes(x, position_ids[:, None, :], theta)
    mistakes.pop("the positions argument ignored (arange(L) used instead)", None)
    mistakes["position_ids ignored (arange(T) used): each row is turned at its own positions"] = \
        rope_by_complex_numbers(x, None, theta)
    mistakes["features paired as neighbours (x[..., 0::2], x[..., 1::2]) instead of halves (j, j + d/2)"] = \
        neighbours_as_halves(x, position_ids[:, None, :], theta)
    if theta != 10000.0:
        mistakes["theta ignored (10000 used instead of the model's rope_theta)"] = mistakes.pop(
            "the base argument ignored (10000 used instead)")
    return mistakes


def _rope_call(rope, x: torch.Tensor, position_ids: torch.Tensor, theta: float, name: str) -> torch.Tensor:
    """``rope(x, position_ids, theta)``; an error raised on this batch but not on its first row alone is named, and so
    is a call that changes the ``x`` or ``position_ids`` it was given."""
    given = x.clone(), position_ids.clone()
    try:
        out = rope(*given, theta)
        check_true(torch.equal(given[0], x) and torch.equal(given[1], position_ids), name,
                   "the call changed the x (or position_ids) it was given, in place: the caller still needs them (the "
                   "keys are cached, the queries compared).", hint="return a new tensor, torch.cat([...], dim=-1), and "
                   "leave x as it was")
        return out
    except CheckError:
        raise
    except NotImplementedError:
        raise
    except Exception:
        hint = None
        if x.shape[0] > 1:
            try:
                rope(x[:1].clone(), position_ids[:1].clone(), theta)
                hint = (f"it works on a batch of one row and fails on {x.shape[0]}: position_ids is (batch, T), one row "
                        "of positions per sequence, and x is (batch, heads, T, d_head), so the angles need the shape "
                        "(batch, 1, T, d_head / 2) (position_ids[:, None, :, None]) to broadcast over the heads")
            except Exception:
                pass
        return call(rope, x.clone(), position_ids.clone(), theta, name=name, hint=hint)


HALF_PRECISION_ROPE = {torch.bfloat16: 2e-2, torch.float16: 4e-3}   # rtol = atol: 2 units in the last place
ANGLES_IN_X_DTYPE = ("angles/frequencies computed in x's dtype: bfloat16 keeps about 3 significant digits (float16 4), "
                     "so at a position in the thousands a pair's angle is off by whole radians. Compute the frequencies "
                     "and angles in float64 (or float32) and cast only cos/sin to x's dtype")


def check_rope(rope, x: torch.Tensor, position_ids: torch.Tensor, theta: float) -> None:
    """``rope(x (B, H, T, d), position_ids (B, T), theta)`` against RoPE written with complex numbers (float64, the
    result rounded to x's dtype). A bfloat16 or float16 ``x`` is allowed 2 units in its last place: angles computed in
    float64 or float32 and cast as cos/sin pass, angles or frequencies rounded to x's dtype do not."""
    half = HALF_PRECISION_ROPE.get(x.dtype)
    name = (f"rope(x {tuple(x.shape)}, position_ids {tuple(position_ids.shape)}, theta={theta:g})" if half is None else
            f"rope(x {tuple(x.shape)} in {str(x.dtype).removeprefix('torch.')}, position_ids from "
            f"{int(position_ids.min())} to {int(position_ids.max())}, theta={theta:g})")
    expected = rope_by_complex_numbers(x, position_ids[:, None, :], theta)
    received = _rope_call(rope, x, position_ids, theta, name)
    exact = x.dtype == torch.float64
    tolerance = half if half is not None else 0 if exact else 1e-5
    check_close(received, expected, name, rtol=tolerance, atol=1e-10 if exact else tolerance,
                mistakes=_rope_mistakes(x, position_ids, theta),
                hint=ANGLES_IN_X_DTYPE if half is not None else
                "pair feature j with feature j + d/2 and turn the pair by position * theta ** (-2j / d)")


def check_swiglu_hidden(swiglu_hidden, d_model: int, multiple_of: int, expected: int, whose: str) -> int:
    """``swiglu_hidden(d_model, multiple_of)`` against a published width ``expected``; returns it."""
    name = f"swiglu_hidden({d_model}, multiple_of={multiple_of})"
    received = call(swiglu_hidden, d_model, multiple_of, name=name)
    check_true(isinstance(received, int) and not isinstance(received, bool), name,
               f"returned {type(received).__name__}; expected an int.")
    reason = swiglu_width_mistakes(d_model, multiple_of).get(received)
    check_true(received == expected, name, f"returned {received}, expected {expected} ({whose})"
               + (f"; this looks like {reason}." if reason else "."),
               hint=None if reason else "2 * d * 4d weights = 3 * d * f weights; round f up")
    return received


def check_context_limit(model, config: LLaMAConfig, name: str) -> None:
    """``model`` refuses a sequence longer than ``config.block_size``: in one call, and when the cached positions and
    the new ones together pass it (``block_size - 1`` cached, then 2 more)."""
    def outcome(run):
        try:
            run()
        except Exception as error:
            return error
        return None

    with torch.no_grad():
        fits = outcome(lambda: model(torch.zeros(1, config.block_size, dtype=torch.long)))
    check_true(fits is None, f"{name} on exactly block_size={config.block_size} tokens",
               f"raised {type(fits).__name__}: {fits}. A sequence of exactly block_size positions fits the context: "
               "refuse only a longer one, len(cache) + T > block_size.")
    cache = KVCache()
    with torch.no_grad():
        call(model, torch.zeros(1, config.block_size - 1, dtype=torch.long), cache=cache,
             name=f"{name} on {config.block_size - 1} tokens with a KVCache")
        fits = outcome(lambda: model(torch.zeros(1, 1, dtype=torch.long), cache=cache))
    check_true(fits is None, f"{name}: {config.block_size - 1} tokens cached, then 1 more (exactly block_size tokens)",
               f"raised {type(fits).__name__}: {fits}. Exactly block_size positions in all fit the context: refuse "
               "only len(cache) + T > block_size.")
    long = config.block_size + 1
    raised = outcome(lambda: model(torch.zeros(1, long, dtype=torch.long)))
    check_true(isinstance(raised, ValueError), f"{name} on {long} tokens",
               f"expected a ValueError (block_size is {config.block_size}), received "
               f"{type(raised).__name__ if raised else 'no error'}.")
    cache = KVCache()
    with torch.no_grad():
        call(model, torch.zeros(1, config.block_size - 1, dtype=torch.long), cache=cache,
             name=f"{name} on {config.block_size - 1} tokens with a KVCache")
        raised = outcome(lambda: model(torch.zeros(1, 2, dtype=torch.long), cache=cache))
    check_true(isinstance(raised, ValueError), f"{name}: {config.block_size - 1} tokens cached, then 2 more",
               f"expected a ValueError ({config.block_size + 1} positions in all, block_size is {config.block_size}), "
               f"received {type(raised).__name__ if raised else 'no error'}.",
               hint="the sequence is the cached positions and the new ones: compare len(cache) + T with block_size")


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

def llama_skeleton(config: LLaMAConfig, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A LLaMA's parameters by the course's names, in its order (``embed``; per block ``norm1``, ``attn.q/k/v/out``,
    ``norm2``, ``ff.gate/up/down``; ``norm``; ``lm_head``, tied to ``embed`` when the config says so) and its
    ``config``, with no forward: it holds the weights the checks write into your modules and into ``transformers``'
    model."""
    d, f, queries, keys = config.n_embd, config.d_ff, config.n_head * config.d_head, config.n_kv_head * config.d_head

    def linear(n_in, n_out):
        return nn.Linear(n_in, n_out, bias=False, dtype=dtype)

    model = nn.Module()
    model.config = config
    model.embed = nn.Embedding(config.vocab_size, d, dtype=dtype)
    model.blocks = nn.ModuleList()
    for _ in range(config.n_layer):
        block = nn.Module()
        block.norm1 = nn.RMSNorm(d, eps=config.eps, dtype=dtype)
        block.attn = nn.Module()
        block.attn.q, block.attn.k, block.attn.v, block.attn.out = (linear(d, queries), linear(d, keys),
                                                                   linear(d, keys), linear(queries, d))
        block.norm2 = nn.RMSNorm(d, eps=config.eps, dtype=dtype)
        block.ff = nn.Module()
        block.ff.gate, block.ff.up, block.ff.down = linear(d, f), linear(d, f), linear(f, d)
        model.blocks.append(block)
    model.norm = nn.RMSNorm(d, eps=config.eps, dtype=dtype)
    model.lm_head = linear(d, config.vocab_size)
    if config.tie_embeddings:
        model.lm_head.weight = model.embed.weight
    return model


def random_llama(config: LLaMAConfig, seed: int = 1) -> nn.Module:
    """:func:`llama_skeleton` with random float64 weights (norm gains near 1), in evaluation mode."""
    generator = torch.Generator().manual_seed(seed)
    model = llama_skeleton(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = _random(tuple(parameter.shape), generator, 0.3)
            parameter.copy_(1 + noise if "norm" in name else noise)
    return model.eval()


class _Call:
    """What the course's LLaMA hands each block on this call: positions, padding mask, cache."""

    position_ids = mask = cache = None


class _Slot(nn.Module):
    """A learner's attention or block in one of ``transformers``' layers, called as the course's LLaMA calls it."""

    def __init__(self, part: nn.Module, layer: int, call: _Call, attention: bool):
        super().__init__()
        self.part, self.layer, self.call, self.attention = part, layer, call, attention

    def forward(self, hidden_states, *args, **kwargs):
        c = self.call
        out = self.part(hidden_states, c.position_ids, c.mask, c.cache, self.layer)
        return (out, None) if self.attention else out


class Plugged(nn.Module):
    """``transformers``' ``LlamaForCausalLM`` holding ``weights`` (a :func:`llama_skeleton`), with ``attention`` (a
    class like ``GroupedQueryAttention``) or ``block`` (like ``LLaMABlock``) built in each layer and loaded by name,
    called as the course's LLaMA is: ``forward(idx, targets=None, attention_mask=None, cache=None, position_ids=None)
    -> (logits, None)``. What a course LLaMA hands its blocks (each row's positions counted from its first real token,
    the padding mask with each query's own key, the cache) goes to the plugged parts; ``transformers`` runs the
    rest (embedding, norms, the feed-forward networks around a plugged attention, the head)."""

    def __init__(self, weights: nn.Module, attention=None, block=None):
        super().__init__()
        if (attention is None) == (block is None):
            raise ValueError("plug either an attention class or a block class into the model")
        self.config = c = weights.config
        self.call = _Call()
        hf = float64_exact(to_hf_model(weights))
        dtype = next(weights.parameters()).dtype
        for index, layer in enumerate(hf.model.layers):
            source = weights.blocks[index]
            if block is not None:
                part = block(c).to(dtype)
                part.load_state_dict(source.state_dict())
                hf.model.layers[index] = _Slot(part, index, self.call, attention=False)
            else:
                part = attention(c.n_embd, c.n_head, c.n_kv_head, c.rope_theta).to(dtype)
                part.load_state_dict(source.attn.state_dict())
                layer.self_attn = _Slot(part, index, self.call, attention=True)
        self.hf = hf.eval()

    def forward(self, idx, targets=None, attention_mask=None, cache=None, position_ids=None):
        start = len(cache) if cache is not None else 0
        batch, length = idx.shape
        if position_ids is None:
            position_ids = (torch.arange(start, start + length).expand(batch, length) if attention_mask is None
                            else (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:])
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            own = torch.zeros(length, start + length, dtype=torch.bool)
            own[:, start:] = torch.eye(length, dtype=torch.bool)
            mask = attention_mask.bool()[:, None, None, :] | own   # padding hidden; each query sees itself
        self.call.position_ids, self.call.mask, self.call.cache = position_ids, mask, cache
        return self.hf(input_ids=idx, position_ids=position_ids, use_cache=False).logits, None


def with_parts(model: nn.Module, attention=None, block=None) -> Plugged:
    """``transformers``' LLaMA with ``model``'s weights and your ``attention`` (or ``block``) in every layer."""
    return Plugged(model, attention=attention, block=block)


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


CACHE_LAYER_HINT = ("the cache keeps each layer's keys and values apart: every block hands its own index (layer=i, "
                    "from the model's loop through the block to the attention's cache.update(layer, k, v)); with the "
                    "index left out, every layer appends to layer 0's tensors")


def check_llama(model, reference: nn.Module, name: str, mistakes: list[str], prompt: int = 3) -> KVCache:
    """``model`` (with ``reference``'s weights, a :func:`llama_skeleton`) against ``LlamaForCausalLM`` in float64: a
    left-padded batch without a cache, then decoded through one. Returns the cache it filled."""
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
    stepped = call(cached_logits, model, ids, mask, prompt, cache, name=f"{name} decoding through a KVCache",
                   hint=CACHE_LAYER_HINT)
    error = (stepped - expected).abs().masked_fill(~rows[..., None], 0).amax(dim=(0, 2))  # per position
    first = int((~(error <= 1e-9)).nonzero()[0]) if not (error <= 1e-9).all() else 0
    cached = [m for m in mistakes if m.startswith("cache_")]
    check_close(stepped[rows], expected[rows], f"{name} decoding through a KVCache ({prompt} tokens, then one per call)",
                rtol=0, atol=1e-9,
                mistakes={k: v[rows] for k, v in _named_logits(reference, ids, mask, cached, prompt).items()},
                hint=f"the logits differ from position {first} on: the new queries are the last T of L positions "
                     "(query i sees keys j <= i + L - T), and the new tokens' positions continue after the cached ones")
    unpadded = call(_decoded_without_mask, model, ids[:1], prompt,
                    name=f"{name} decoding an unpadded row through a KVCache without an attention_mask")
    check_close(unpadded, expected[:1], f"{name} decoding an unpadded row through a KVCache without an attention_mask "
                f"({prompt} tokens, then one per call)", rtol=0, atol=1e-9,
                hint="without an attention_mask the T new queries are still the last T of L positions: query i sees "
                     "keys j <= i + L - T. is_causal=True (or a T x L tril without the offset) aligns the causal mask "
                     "top-left, and a new token then sees only the first key")
    return cache


@torch.no_grad()
def _decoded_without_mask(model, ids: torch.Tensor, prompt: int) -> torch.Tensor:
    """Logits of ``ids`` decoded through a fresh KV cache with no attention_mask, as ``generate`` decodes a prompt."""
    cache = KVCache()
    steps = [model(ids[:, :prompt], cache=cache)[0]]
    for t in range(prompt, ids.shape[1]):
        steps.append(model(ids[:, t:t + 1], cache=cache)[0])
    return torch.cat(steps, dim=1)


def check_position_ids(model, reference: nn.Module, name: str) -> None:
    """``model(ids, position_ids=...)``, the positions with a gap (RoPE is relative: an offset alone changes nothing),
    against ``LlamaForCausalLM`` given the same position ids."""
    generator = torch.Generator().manual_seed(reference.config.vocab_size + 1)
    ids = torch.randint(1, reference.config.vocab_size, (2, 8), generator=generator)
    positions = torch.arange(8)
    positions[4:] += 7
    positions = positions.expand(2, 8)
    hf = float64_exact(to_hf_model(reference))
    with torch.no_grad():
        expected = hf(input_ids=ids, position_ids=positions).logits
        ignored = hf(input_ids=ids).logits
        received = call(lambda: model(ids, position_ids=positions)[0], name=f"{name}(ids, position_ids=...)")
    check_close(received, expected, f"{name} with position_ids given (0-3, then 11-14)", rtol=0, atol=1e-9,
                mistakes={"the position_ids given ignored (positions 0..T-1 computed instead): use the position_ids "
                          "passed in, and compute them only when it is None": ignored})


def check_loss(model, reference: nn.Module, name: str) -> None:
    """``model(ids, targets)``'s loss, some targets -100, against ``F.cross_entropy`` of ``LlamaForCausalLM``'s logits."""
    from torch.nn import functional as F

    generator = torch.Generator().manual_seed(reference.config.vocab_size + 1)
    ids, targets = torch.randint(0, reference.config.vocab_size, (2, 2, 8), generator=generator)
    targets[0, :2] = targets[1, -3:] = -100
    with torch.no_grad():
        logits = float64_exact(to_hf_model(reference))(input_ids=ids).logits
        expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        received = call(lambda: model(ids, targets=targets)[1], name=f"{name} with targets")
    check_close(received, expected, f"{name}: the loss with targets, 5 of 16 of them -100", rtol=0, atol=1e-9,
                mistakes=loss_mistakes(logits, targets),
                hint="chapter 06's loss: F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)")


# ------------------------------------------------------------------------------------------------ chat

def check_chat_prompt(chat_prompt, tokenizer, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """``chat_prompt(messages, add_generation_prompt)`` against ``tokenizer.apply_chat_template``: the text, then its
    token ids. Returns the text."""
    name = f"chat_prompt({[m['role'] for m in messages]}, add_generation_prompt={add_generation_prompt})"
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    given = [dict(m) for m in messages]
    received = call(chat_prompt, given, add_generation_prompt=add_generation_prompt, name=name)
    check_true(given == messages, name, "the list of messages passed in was changed in place (the default system "
               "message inserted into it?): the caller's conversation must stay as it was.",
               hint="build a new list: [system] + list(messages)")
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


def check_reply(reply, model, tokenizer, messages: list[dict], max_new_tokens: int, oracle) -> str:
    """``reply(model, tokenizer, messages, max_new_tokens)`` against ``oracle.generate`` (a ``LlamaForCausalLM`` with the
    same weights) on ``tokenizer.apply_chat_template``'s prompt, greedy, stopped at ``<|im_end|>``. Returns the text."""
    name = f"reply(your LLaMA, tokenizer, {[m['role'] for m in messages]}, max_new_tokens={max_new_tokens})"
    prompt = torch.tensor([tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]])
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        out = oracle.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens,
                              do_sample=False, eos_token_id=end, pad_token_id=end)
    new = out[0, prompt.shape[1]:].tolist()
    expected = tokenizer.decode(new[:new.index(end)] if end in new else new)
    received = call(reply, model, tokenizer, [dict(m) for m in messages], max_new_tokens, name=name)
    check_true(isinstance(received, str), name, f"returned {type(received).__name__}; expected the reply's text.")
    if received.strip() != expected.strip():
        reason = reply_mistake(received, tokenizer, new, end)
        check_true(False, name, f"expected {expected!r}, received {received!r}"
                   + (f": this looks like {reason}." if reason else "."),
                   hint=None if reason else "the reply is the greedy continuation of your chat_prompt's text, stopped "
                   "at the end of the assistant's turn")
    return received
