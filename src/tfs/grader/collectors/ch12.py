"""Chapter 12 (from GPT-2 to a modern LLM) collectors: run the learner's layers, LLaMA and chat functions on
seeded inputs, return plain data.

Inputs come from the generators below, which ``autograder/judges/ch12.py`` imports to rebuild them. Weights are
written by parameter name (:func:`seeded`), so the judge knows every weight without trusting the kernel.

**Nothing of chapter 12's own code.** The package's ``tfs.nn.modern``, ``tfs.models.llama`` and ``tfs.chat`` are
hidden while the chapter is graded (:mod:`tfs.grader.references`), so the weights live in a skeleton
(:func:`tfs.teaching.parity_llama.llama_skeleton`) and the learner's attention or block runs inside ``transformers``'
``LlamaForCausalLM`` (:class:`tfs.teaching.parity_llama.Plugged`).

**One exercise at a time.** While a collector runs the learner's answer, the names of the other exercises in the
learner's namespace are stand-ins made of ``torch`` and ``transformers`` (:func:`references_for`): a
``GroupedQueryAttention`` that calls the learner's ``rope`` gets RoPE by complex numbers there, a block gets
:class:`_Attention` and :class:`_SwiGLU`, a model :class:`_Block`, ``reply`` the template rendered by jinja2
(:func:`render_chat`), so a mistake costs only its own exercise. The models are small random ``LLaMAConfig``s in
float64, never SmolLM2.
"""

from __future__ import annotations

import zlib

import torch

from tfs.grader.judging import error_line, generator, raised, stand_ins
from tfs.models.llama import LLaMAConfig

CONFIGS = {  # grouped-query (tied head), multi-query (untied), multi-head
    "gqa": LLaMAConfig(vocab_size=48, block_size=32, n_layer=2, n_head=6, n_kv_head=2, n_embd=48, d_ff=64,
                       rope_theta=500.0, eps=1e-5, tie_embeddings=True),
    "mqa": LLaMAConfig(vocab_size=40, block_size=32, n_layer=2, n_head=4, n_kv_head=1, n_embd=32, d_ff=40,
                       rope_theta=10000.0, eps=1e-6, tie_embeddings=False),
    "mha": LLaMAConfig(vocab_size=40, block_size=32, n_layer=1, n_head=2, n_kv_head=2, n_embd=16, d_ff=24,
                       rope_theta=2000.0, eps=1e-5, tie_embeddings=False),
}
PROMPT = 4  # cached decoding: the first PROMPT tokens in one call, then one per call
LENGTHS = (9, 5, 2)  # a left-padded batch: three prompts of these lengths


def seeded(name: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Float64 values for the tensor ``name``: norm gains near 1, weights large enough for peaked attention."""
    values = torch.randn(shape, generator=generator(seed * 1_000_003 + zlib.crc32(name.encode())), dtype=torch.float64)
    return 1.0 + 0.3 * values if "norm" in name else 0.3 * values


@torch.no_grad()
def fill(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Cast to float64 and write :func:`seeded` weights by name (a tied tensor gets its first name's values)."""
    module.double()
    for name, parameter in module.named_parameters():
        parameter.copy_(seeded(name, tuple(parameter.shape), seed))
    return module


def model_weights(name: str):
    """The weights of ``CONFIGS[name]``'s LLaMA by the course's names (:func:`seeded`, float64), in a skeleton with no
    forward (:func:`tfs.teaching.parity_llama.llama_skeleton`)."""
    from tfs.teaching.parity_llama import llama_skeleton

    return fill(llama_skeleton(CONFIGS[name])).eval()


def token_ids(name: str, length: int = 11) -> torch.Tensor:
    g = generator(120 + len(name))
    return torch.randint(0, CONFIGS[name].vocab_size, (2, length), generator=g)


def loss_targets(name: str) -> torch.Tensor:
    """Targets ``(2, 11)`` for :func:`token_ids`, some of them -100 (ignored by the loss)."""
    targets = torch.randint(0, CONFIGS[name].vocab_size, (2, 11), generator=generator(140 + len(name)))
    targets[0, :3] = targets[1, -4:] = -100
    return targets


def padded_batch(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids (3, 9), attention_mask (3, 9))``: prompts of :data:`LENGTHS` tokens, padded on the left with id 0."""
    from tfs.generate import left_pad

    g = generator(130 + len(name))
    prompts = [torch.randint(1, CONFIGS[name].vocab_size, (n,), generator=g).tolist() for n in LENGTHS]
    return left_pad(prompts, 0)


# ------------------------------------------------------------------------------- one exercise at a time

def _rope(x: torch.Tensor, position_ids: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    from tfs.teaching.probes_rope import rope_by_complex_numbers

    return rope_by_complex_numbers(x, position_ids[:, None, :], theta)


class _SwiGLU(torch.nn.Module):
    """The feed-forward network with the chapter's parameter names, as ``transformers``' ``LlamaMLP`` computes it."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.gate, self.up = torch.nn.Linear(d_model, d_ff, bias=False), torch.nn.Linear(d_model, d_ff, bias=False)
        self.down = torch.nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        return self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))


class _Attention(torch.nn.Module):
    """Grouped-query attention with the chapter's parameter names and call: RoPE by complex numbers, ``transformers``'
    ``repeat_kv``, the cache keeping the key/value heads, ``F.scaled_dot_product_attention``."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, theta: float = 10000.0):
        super().__init__()
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.theta, self.d_head = n_heads, n_kv_heads, theta, d_model // n_heads
        self.q = torch.nn.Linear(d_model, n_heads * self.d_head, bias=False)
        self.k = torch.nn.Linear(d_model, n_kv_heads * self.d_head, bias=False)
        self.v = torch.nn.Linear(d_model, n_kv_heads * self.d_head, bias=False)
        self.out = torch.nn.Linear(n_heads * self.d_head, d_model, bias=False)

    def forward(self, x, position_ids, mask=None, cache=None, layer=0):
        from transformers.models.llama.modeling_llama import repeat_kv

        batch, length, _ = x.shape
        q, k, v = (p(x).view(batch, length, n, self.d_head).transpose(1, 2)     # (batch, n, T, d_head)
                   for p, n in ((self.q, self.n_heads), (self.k, self.n_kv_heads), (self.v, self.n_kv_heads)))
        q, k = _rope(q, position_ids, self.theta), _rope(k, position_ids, self.theta)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        n_rep = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        allowed = torch.ones(length, k.shape[-2], dtype=torch.bool).tril(diagonal=k.shape[-2] - length)
        allowed = allowed if mask is None else allowed & mask
        attended = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out(attended.transpose(1, 2).reshape(batch, length, self.n_heads * self.d_head))


class _Block(torch.nn.Module):
    """The pre-norm block of :class:`_Attention` and :class:`_SwiGLU`, with the chapter's part names."""

    def __init__(self, config: LLaMAConfig):
        super().__init__()
        self.norm1 = torch.nn.RMSNorm(config.n_embd, eps=config.eps)
        self.attn = _Attention(config.n_embd, config.n_head, config.n_kv_head, config.rope_theta)
        self.norm2 = torch.nn.RMSNorm(config.n_embd, eps=config.eps)
        self.ff = _SwiGLU(config.n_embd, config.d_ff)

    def forward(self, x, position_ids, mask=None, cache=None, layer=0):
        x = x + self.attn(self.norm1(x), position_ids, mask, cache, layer)
        return x + self.ff(self.norm2(x))


class _RMSNorm(torch.nn.RMSNorm):
    """``torch.nn.RMSNorm`` called as the chapter's ``RMSNorm(d_model, eps=1e-6)`` (torch's own default eps is the
    dtype's machine epsilon): a block or model that leaves eps out gets the learner's default, as in the notebook."""

    def __init__(self, d_model: int, eps: float = 1e-6):
        super().__init__(d_model, eps=eps)


def _stand_ins() -> dict:
    """What the learner's other answers are replaced by while one is collected: torch and transformers only."""
    from transformers.models.llama.modeling_llama import repeat_kv

    return {"rope": _rope, "repeat_kv": repeat_kv, "RMSNorm": _RMSNorm, "SwiGLU": _SwiGLU,
            "GroupedQueryAttention": _Attention, "LLaMABlock": _Block, "chat_prompt": render_chat}


def references_for(answer, exercise: str):
    """While the learner's ``answer`` to ``exercise`` runs, the other exercises' names in its namespace that have a
    stand-in (:func:`_stand_ins`) are that stand-in (put back afterwards)."""
    return stand_ins(answer, **{name: value for name, value in _stand_ins().items() if name != exercise})


def _outcome(function, *args, **kwargs) -> dict:
    try:
        out = function(*args, **kwargs)
    except Exception as error:
        return {"error": error_line(error)}
    if not isinstance(out, torch.Tensor):
        return {"error": f"returned {type(out).__name__}, not a tensor"}
    return {"out": out}


# ------------------------------------------------------------------------------------------------ RMSNorm

RMSNORM_CASES = [  # (shape, eps, scale of x): a large eps on small inputs shows where eps sits
    ((2, 3, 8), 1e-5, 1.0), ((4, 16), 1e-6, 3.0), ((1, 5, 6), 0.1, 0.05), ((3, 2, 1, 10), 1e-5, 1.0)]


def rmsnorm_inputs(case: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (float64, with a mean far from 0 in each row) and a weight for :data:`RMSNORM_CASES` ``[case]``."""
    shape, _, scale = RMSNORM_CASES[case]
    x = seeded(f"rms_x{case}", shape) / 0.3 * scale + 0.7 * scale
    return x, seeded(f"rms_norm_w{case}", (shape[-1],))


def rmsnorm(RMSNorm) -> dict:
    """Outputs on the cases (weights written into ``weight``), the new module's weight, and a gradient check."""
    data = {"cases": []}
    with references_for(RMSNorm, "RMSNorm"):
        for case, (shape, eps, _) in enumerate(RMSNORM_CASES):
            x, weight = rmsnorm_inputs(case)
            try:
                norm = RMSNorm(shape[-1], eps).double()
                with torch.no_grad():
                    norm.weight.copy_(weight)
                data["cases"].append(_outcome(norm, x))
            except Exception as error:
                data["cases"].append({"error": error_line(error)})
        try:
            fresh = RMSNorm(8)
            data["parameters"] = {name: p.detach() for name, p in fresh.named_parameters()}
            x = torch.randn(3, 8, generator=generator(5))
            data["float32"] = fresh(x)
        except Exception as error:
            data["module_error"] = error_line(error)
            return data
        try:
            fresh(x).pow(2).sum().backward()
            data["weight_grad"] = fresh.weight.grad
        except Exception as error:
            data["grad_error"] = error_line(error)
    return data


# --------------------------------------------------------------------------------------------------- RoPE

ROPE_CASES = [  # (batch, heads, T, d_head, theta)
    (2, 3, 7, 8, 10000.0), (1, 2, 6, 16, 100000.0), (3, 1, 9, 4, 500.0), (2, 2, 5, 6, 10.0)]


def rope_inputs(case: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (batch, heads, T, d_head)`` float64 and ``position_ids (batch, T)``: arange in case 0, a left-padded
    batch's positions (row b padded by b columns, padding at position 0) in the others, offset by 20 (as after a
    cache) in case 3."""
    batch, heads, length, d, _ = ROPE_CASES[case]
    x = seeded(f"rope_x{case}", (batch, heads, length, d)) / 0.3
    if case == 0:
        return x, torch.arange(length).expand(batch, length).clone()
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(batch):
        mask[row, :row] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return x, positions + (20 if case == 3 else 0)


ROPE_LOW_PRECISION = [  # (dtype, (batch, heads, T, d_head), theta, first position): half precision far into a context
    (torch.bfloat16, (2, 2, 8, 64), 100000.0, 4090), (torch.float16, (1, 3, 6, 32), 500000.0, 2040)]


def rope_low_precision_inputs(case: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` in ``ROPE_LOW_PRECISION[case]``'s dtype and ``position_ids (batch, T)`` from its first position on, row
    ``b`` shifted by ``3 * b``: angles of thousands of radians, which the dtype's 3 (bfloat16) or 4 (float16)
    significant digits cannot hold, so only angles computed in float64 (or float32) and cast as cos/sin pass."""
    dtype, (batch, heads, length, d), _, first = ROPE_LOW_PRECISION[case]
    x = (seeded(f"rope_low_x{case}", (batch, heads, length, d)) / 0.3).to(dtype)
    return x, torch.arange(first, first + length).expand(batch, length) + 3 * torch.arange(batch)[:, None]


def rope(rope) -> dict:
    """Outputs on the cases, and per case whether the call changed the ``x`` or ``position_ids`` it was given; the
    outputs on :data:`ROPE_LOW_PRECISION`'s half-precision inputs."""
    data = {"cases": [], "inputs_changed": []}
    with references_for(rope, "rope"):
        for case, (*_, theta) in enumerate(ROPE_CASES):
            x, positions = rope_inputs(case)
            given = x.clone(), positions.clone()
            data["cases"].append(_outcome(rope, *given, theta))
            data["inputs_changed"].append(not (torch.equal(given[0], x) and torch.equal(given[1], positions)))
        data["float32"] = _outcome(rope, rope_inputs(1)[0].float(), rope_inputs(1)[1], ROPE_CASES[1][4])
        data["odd"] = raised(rope, torch.ones(1, 2, 3, 5), torch.arange(3)[None], 10000.0)
        data["low_precision"] = [_outcome(rope, *rope_low_precision_inputs(case), theta)
                                 for case, (*_, theta, _) in enumerate(ROPE_LOW_PRECISION)]
    return data


# ------------------------------------------------------------------------------------------------- SwiGLU

SWIGLU_HIDDEN_CASES = [(576, 256), (4096, 256), (5120, 256), (8192, 256), (768, 256), (100, 8), (48, 1), (1000, 64)]


def swiglu_hidden(swiglu_hidden) -> list:
    out = []
    with references_for(swiglu_hidden, "swiglu_hidden"):
        for d_model, multiple_of in SWIGLU_HIDDEN_CASES:
            try:
                value = swiglu_hidden(d_model, multiple_of)
                out.append(value if type(value) is int else f"returned {type(value).__name__} {value!r}")
            except Exception as error:
                out.append(error_line(error))
    return out


SWIGLU_CASES = [(8, 12), (16, 40), (6, 16)]  # (d_model, d_ff)


def swiglu_input(case: int) -> torch.Tensor:
    d_model, _ = SWIGLU_CASES[case]
    return seeded(f"swiglu_x{case}", (2, 5, d_model)) / 0.3


def swiglu(SwiGLU) -> dict:
    """Outputs with seeded weights written by name, and the module's parameter names and shapes."""
    data = {"cases": []}
    with references_for(SwiGLU, "SwiGLU"):
        for case, (d_model, d_ff) in enumerate(SWIGLU_CASES):
            try:
                ff = fill(SwiGLU(d_model, d_ff), seed=case)
                data["cases"].append(_outcome(ff, swiglu_input(case)))
            except Exception as error:
                data["cases"].append({"error": error_line(error)})
        try:
            data["parameters"] = {name: list(p.shape) for name, p in SwiGLU(8, 12).named_parameters()}
        except Exception as error:
            data["module_error"] = error_line(error)
    return data


# ---------------------------------------------------------------------------------------------- repeat_kv

REPEAT_CASES = [((2, 3, 4, 5), 3), ((1, 2, 3, 4), 2), ((2, 4, 2, 3), 1), ((1, 1, 3, 2), 4)]


def repeat_input(case: int) -> torch.Tensor:
    return seeded(f"repeat{case}", REPEAT_CASES[case][0])


def repeat_kv(repeat_kv) -> list:
    with references_for(repeat_kv, "repeat_kv"):
        return [_outcome(repeat_kv, repeat_input(case), n_rep) for case, (_, n_rep) in enumerate(REPEAT_CASES)]


# -------------------------------------------------------------------------------- attention, block, model

def _runs(model, name: str) -> dict:
    """Logits of ``model`` on the seeded ids, on the left-padded batch, and decoded through a fresh KVCache
    (the first PROMPT tokens, then one per call, the padded batch); and the cache's layer-0 keys and values."""
    from tfs.nn import KVCache

    data = {}
    ids = token_ids(name)
    padded, mask = padded_batch(name)
    with torch.no_grad():
        for key, run in (("plain", lambda: model(ids)[0]), ("padded", lambda: model(padded, attention_mask=mask)[0])):
            data[key] = _outcome(run)
        data["cache_keys"] = data["cache_values"] = None
        try:
            cache = KVCache()
            steps = [model(padded[:, :PROMPT], attention_mask=mask[:, :PROMPT], cache=cache)[0]]
            for t in range(PROMPT, padded.shape[1]):
                steps.append(model(padded[:, t:t + 1], attention_mask=mask[:, :t + 1], cache=cache)[0])
            data["cached"] = {"out": torch.cat(steps, dim=1)}
            data["cache_keys"] = cache.keys[0] if cache.keys else None
            data["cache_values"] = cache.values[0] if cache.values else None
        except Exception as error:
            data["cached"] = {"error": error_line(error)}
        data["cached_plain"] = _outcome(_decoded_without_mask, model, ids)
    return data


def _decoded_without_mask(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits of ``ids`` decoded through a fresh KVCache without an attention_mask (the first PROMPT tokens, then one
    per call), as chapter 07's ``generate`` calls a model on an unpadded prompt."""
    from tfs.nn import KVCache

    cache = KVCache()
    steps = [model(ids[:, :PROMPT], cache=cache)[0]]
    for t in range(PROMPT, ids.shape[1]):
        steps.append(model(ids[:, t:t + 1], cache=cache)[0])
    return torch.cat(steps, dim=1)


POSITION_GAP = 7  # model(ids, position_ids=...) with a gap of 7 positions after the middle token (RoPE is relative:
# a constant offset would change no logit, a gap does)


def given_positions(name: str) -> torch.Tensor:
    ids = token_ids(name)
    positions = torch.arange(ids.shape[1])
    positions[ids.shape[1] // 2:] += POSITION_GAP
    return positions.expand(ids.shape).clone()


def attention(GroupedQueryAttention) -> dict:
    """transformers' LLaMA with the learner's attention in every layer (its weights written by name)."""
    from tfs.teaching.parity_llama import Plugged

    data = {}
    with references_for(GroupedQueryAttention, "GroupedQueryAttention"):
        for name in CONFIGS:
            try:
                model = Plugged(model_weights(name), attention=GroupedQueryAttention)
            except Exception as error:
                data[name] = {"error": error_line(error)}
                continue
            data[name] = _runs(model, name)
        data["indivisible"] = raised(GroupedQueryAttention, 24, 6, 4, 10000.0)
    return data


def block(LLaMABlock) -> dict:
    """transformers' LLaMA with the learner's block in every layer (its weights written by name)."""
    from tfs.teaching.parity_llama import Plugged

    data = {}
    with references_for(LLaMABlock, "LLaMABlock"):
        for name in CONFIGS:
            try:
                model = Plugged(model_weights(name), block=LLaMABlock)
            except Exception as error:
                data[name] = {"error": error_line(error)}
                continue
            data[name] = _runs(model, name)
    return data


def _after_a_full_cache(own, config: LLaMAConfig, new_tokens: int) -> str:
    """What ``own`` raised for ``new_tokens`` new tokens after ``block_size - 1`` cached ones (``"no error"`` if
    nothing): 1 new token makes exactly block_size (allowed), 2 one past it (must raise)."""
    from tfs.nn import KVCache

    cache = KVCache()
    try:
        with torch.no_grad():
            own(torch.zeros(1, config.block_size - 1, dtype=torch.long), cache=cache)
    except Exception as error:
        return f"filling the cache failed: {error_line(error)}"
    with torch.no_grad():
        return raised(own, torch.zeros(1, new_tokens, dtype=torch.long), cache=cache)


def model(LLaMA) -> dict:
    """The learner's LLaMA of each config, loaded with :func:`tfs.convert.llama.load_hf_state_dict` from
    :func:`model_weights` in ``transformers``' names; its loss on :func:`loss_targets`; whether its head is tied to its
    embedding."""
    from tfs.convert.llama import load_hf_state_dict, to_hf_state_dict

    data = {}
    with references_for(LLaMA, "LLaMA"):
        for name, config in CONFIGS.items():
            try:
                own = LLaMA(config).double()
                load_hf_state_dict(own, to_hf_state_dict(model_weights(name)))
                own.eval()
            except Exception as error:
                data[name] = {"error": error_line(error)}
                continue
            data[name] = _runs(own, name)
            try:
                with torch.no_grad():
                    data[name]["loss"] = own(token_ids(name), targets=loss_targets(name))[1]
            except Exception as error:
                data[name]["loss"] = error_line(error)
            data[name]["tied"] = own.lm_head.weight is own.embed.weight
            data[name]["too_long"] = raised(own, torch.zeros(1, config.block_size + 1, dtype=torch.long))
            data[name]["too_long_cached"] = _after_a_full_cache(own, config, new_tokens=2)
            with torch.no_grad():
                data[name]["given_positions"] = _outcome(lambda: own(token_ids(name),
                                                                     position_ids=given_positions(name))[0])
                data[name]["exactly_block_size"] = raised(own, torch.zeros(1, config.block_size, dtype=torch.long))
            data[name]["exactly_block_size_cached"] = _after_a_full_cache(own, config, new_tokens=1)
    return data


# ---------------------------------------------------------------------------------------------------- chat

# SmolLM2-135M-Instruct's chat template (its tokenizer's chat_template.jinja), rendered with jinja2
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def render_chat(messages: list[dict], add_generation_prompt: bool = True) -> str:
    """SmolLM2's chat text for ``messages``, rendered from its template by jinja2 (the oracle of ``chat_prompt``)."""
    import jinja2

    return jinja2.Environment().from_string(SMOLLM2_CHAT_TEMPLATE).render(
        messages=messages, add_generation_prompt=add_generation_prompt)


CHAT_CASES = [  # (messages, add_generation_prompt)
    ([{"role": "user", "content": "What is the capital of France?"}], True),
    ([{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello!"}], True),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
      {"role": "user", "content": "Two lines:\nname a colour."}], True),
    ([{"role": "user", "content": "No prompt at the end"}], False),
    ([{"role": "system", "content": ""}, {"role": "user", "content": " spaces  kept "}], True),
]
BAD_ROLES = [[{"role": "robot", "content": "beep"}],
             [{"role": "user", "content": "hi"}, {"role": "User", "content": "x"}]]


def chat_prompt(chat_prompt) -> dict:
    """The texts, and per case whether the call changed the list of messages it was given."""
    data = {"cases": [], "messages_changed": []}
    with references_for(chat_prompt, "chat_prompt"):
        for messages, generation in CHAT_CASES:
            given = [dict(m) for m in messages]
            try:
                text = chat_prompt(given, add_generation_prompt=generation)
                data["cases"].append(text if type(text) is str else f"returned {type(text).__name__}, not a str")
            except Exception as error:
                data["cases"].append({"error": error_line(error)})
            data["messages_changed"].append(given != messages)
        data["bad_roles"] = [raised(chat_prompt, [dict(m) for m in messages]) for messages in BAD_ROLES]
    return data


# A character-level stand-in for SmolLM2's tokenizer (same special tokens and ids 0, 1, 2) and a small random
# LLaMA whose greedy replies end with <|im_end|> for some conversations and run to the limit for others.
CHAT_CHARACTERS = "\n !',.?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
REPLY_SEED, REPLY_MAX_NEW = 73, 12  # replies that end at <|im_end|> after 9 and 7 tokens, and one that runs on
REPLY_CASES = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Name a colour."}],
               [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]]


def chat_tokenizer():
    """A ``PreTrainedTokenizerFast``: ``<|endoftext|>`` 0, ``<|im_start|>`` 1, ``<|im_end|>`` 2 (its EOS, as
    SmolLM2's), then one token per character of :data:`CHAT_CHARACTERS`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    vocab = {token: i for i, token in enumerate(specials + list(CHAT_CHARACTERS))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|im_end|>")


def chat_weights():
    """The float32 weights of a LLaMA over :func:`chat_tokenizer`'s vocabulary, seeded as the package's LLaMA initialises
    (every linear and embedding weight N(0, 0.02)), scaled up, with a head that favours ``<|im_end|>``; in a skeleton
    (:func:`tfs.teaching.parity_llama.llama_skeleton`)."""
    from torch import nn

    from tfs.teaching.parity_llama import llama_skeleton

    torch.manual_seed(REPLY_SEED)
    config = LLaMAConfig(vocab_size=3 + len(CHAT_CHARACTERS), block_size=256, n_layer=2, n_head=4, n_kv_head=2,
                         n_embd=32, d_ff=48, rope_theta=10000.0, eps=1e-5, tie_embeddings=False)
    model = llama_skeleton(config, dtype=torch.float32)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, 0.02)
        for parameter in model.parameters():
            parameter.mul_(10.0)
        model.lm_head.weight[2] *= 1.5
    return model.eval()


def chat_model():
    """:func:`chat_weights` in ``transformers``' ``LlamaForCausalLM``, called as the course's models are (chapter 07's
    :class:`tfs.teaching.probes_generation.CourseInterface`), so that a learner's ``reply`` decodes it with
    ``tfs.generate.generate``."""
    from tfs.convert.llama import to_hf_model
    from tfs.teaching.probes_generation import CourseInterface

    return CourseInterface(to_hf_model(chat_weights())).eval()


def reply(reply) -> list:
    """The learner's replies (strings) to :data:`REPLY_CASES` from :func:`chat_model` and :func:`chat_tokenizer`."""
    model, tokenizer = chat_model(), chat_tokenizer()
    out = []
    with references_for(reply, "reply"):
        for messages in REPLY_CASES:
            try:
                text = reply(model, tokenizer, [dict(m) for m in messages], max_new_tokens=REPLY_MAX_NEW)
                out.append(text if type(text) is str else f"returned {type(text).__name__}, not a str")
            except Exception as error:
                out.append({"error": error_line(error)})
    return out
