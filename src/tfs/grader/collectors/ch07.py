"""Collectors for chapter 07 (generation): run the learner's filters and decoder on seeded inputs.

Inputs come from the generators below; ``autograder/judges/ch07.py`` imports them to rebuild the inputs."""

from __future__ import annotations

import torch

from tfs.grader import judging

TOP_K_CASES = [(1, 5), (3, 5), (7, 7), (50, 9)]  # (top_k, rows); the last: k larger than the vocabulary
TOP_P_CASES = [0.05, 0.5, 0.8, 0.95, 1.0]
GEN_VOCAB, GEN_BLOCK, GEN_EOS, GEN_PAD = 40, 40, 18, 1  # greedy meets 18 in every row, at steps 9, 6, 12


def filter_logits(seed: int, rows: int = 6, vocab: int = 30) -> torch.Tensor:
    """Seeded logits ``(rows, vocab)`` in float64, with a tie and a row that is nearly one-hot."""
    g = judging.generator(seed)
    logits = 2 * torch.randn(rows, vocab, generator=g, dtype=torch.float64)
    logits[0, 1] = logits[0, 2] = logits[0].max() + 1  # a tie at the top
    logits[-1, 4] = 25.0  # nearly all the mass on one token
    return logits


def gen_model():
    """The package GPT with seeded random weights (large enough to give peaked distributions)."""
    from tfs.models.gpt import GPT, GPTConfig

    torch.manual_seed(70)
    model = GPT(GPTConfig(vocab_size=GEN_VOCAB, block_size=GEN_BLOCK, n_layer=2, n_head=2, n_embd=32))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    return model.eval()


def gen_prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(71)  # the same in every run: greedy decoding of these prompts meets the EOS
    return [torch.randint(5, GEN_VOCAB, (n,), generator=g).tolist() for n in (6, 2, 4)]


def _run(function, *args, **kwargs):
    try:
        out = function(*args, **kwargs)
    except Exception as error:  # the judge turns it into a course message
        return {"error": f"{type(error).__name__}: {error}"}
    if not isinstance(out, torch.Tensor):
        return {"error": f"returned {type(out).__name__}, not a tensor"}
    return {"out": out}


def top_k(top_k_filter) -> list:
    results = []
    for seed, (k, rows) in enumerate(TOP_K_CASES):
        logits = filter_logits(seed, rows)
        results.append(_run(top_k_filter, logits.clone(), k))
    return results


def top_p(top_p_filter) -> list:
    return [_run(top_p_filter, filter_logits(10 + i), p) for i, p in enumerate(TOP_P_CASES)]


def generate(generate) -> dict:
    """Greedy continuations: each prompt alone, the left-padded batch, and a batch that meets EOS."""
    from tfs.generate import left_pad

    model = gen_model()
    prompts = gen_prompts()
    data = {"alone": [_run(generate, model, torch.tensor([p]), 12) for p in prompts]}
    ids, mask = left_pad(prompts, GEN_PAD)
    data["batch"] = _run(generate, model, ids, 12, attention_mask=mask)
    data["eos"] = _run(generate, model, ids, 12, attention_mask=mask, eos_token_id=GEN_EOS)
    return data


# --------------------------------------------------------------------------------- repetition penalty

PENALTY_CASES = [1.5, 0.7, 1.0, 3.0]  # > 1 discourages repeats, < 1 encourages them, 1 changes nothing


def penalty_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``logits (3, 20)`` (positive and negative) and ``input_ids (3, 7)`` with repeated ids."""
    g = judging.generator(200 + seed)
    logits = 3 * torch.randn(3, 20, generator=g)
    ids = torch.randint(0, 20, (3, 7), generator=g)
    ids[:, 1] = ids[:, 0]  # every row repeats a token: the penalty applies once per token, not once per occurrence
    ids[1, 2:4] = ids[1, 0]
    return logits, ids


def repetition_penalty(apply_repetition_penalty) -> dict:
    """The penalty on seeded logits; also whether the call changed its input tensor."""
    out = []
    for seed, penalty in enumerate(PENALTY_CASES):
        logits, ids = penalty_inputs(seed)
        given = logits.clone()
        item = _run(apply_repetition_penalty, given, ids.clone(), penalty)
        item["input_changed"] = not torch.equal(given, logits)
        out.append(item)
    return {"cases": out}


PENALTY_GENERATE = (1.4, 0.8)


def generate_penalty(generate) -> dict:
    """Greedy continuations of each prompt with a repetition penalty (the learner's generate composes it)."""
    model = gen_model()
    return {str(p): [_run(generate, model, torch.tensor([prompt]), 12, repetition_penalty=p)
                     for prompt in gen_prompts()] for p in PENALTY_GENERATE}


# ---------------------------------------------------------------------------------------- beam search

BEAM_CASES = [  # (prompt index, num_beams, length_penalty, eos, max_new_tokens)
    (0, 1, 1.0, None, 8),
    (0, 3, 1.0, GEN_EOS, 12),
    (1, 4, 0.0, GEN_EOS, 12),
    (2, 3, 2.0, GEN_EOS, 14),
    (1, 2, -1.0, GEN_EOS, 10),
    (2, 5, 1.0, None, 10),
]


def beam_search(beam_search) -> list:
    model = gen_model()
    prompts = gen_prompts()
    return [_run(beam_search, model, torch.tensor([prompts[i]]), n, beams, length_penalty=lp, eos_token_id=eos)
            for i, beams, lp, eos, n in BEAM_CASES]


# ------------------------------------------------------------------------------------------- KV cache

KV_PROMPT, KV_LENGTH = 5, 14


def kv_sequence() -> torch.Tensor:
    g = judging.generator(72)
    return torch.randint(0, GEN_VOCAB, (2, KV_LENGTH), generator=g)


def kv_cache(MultiHeadAttention) -> dict:
    """The collector's GPT on the learner's attention: logits without a cache, logits decoded through a cache (the
    prompt, then one token per call), and what the cache holds afterwards. The cache is ``transformers``' own
    (:class:`tfs.teaching.probes_generation.TransformersCache`), not the learner's ``KVCache``: a mistake in that
    exercise costs nothing here."""
    from tfs.teaching.probes_generation import TransformersCache, cached_logits, with_attention

    try:
        model = with_attention(gen_model(), MultiHeadAttention)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    ids = kv_sequence()
    data = {}
    try:
        with torch.no_grad():
            data["uncached"] = model(ids)[0]
    except Exception as error:
        data["uncached_error"] = f"{type(error).__name__}: {error}"
    try:
        cache = TransformersCache()
        data["cached"] = cached_logits(model, ids, KV_PROMPT, cache)
        data["length"] = len(cache)
        data["keys"] = [layer.keys for layer in cache.transformers_cache.layers]
        data["values"] = [layer.values for layer in cache.transformers_cache.layers]
    except Exception as error:
        data["cached_error"] = f"{type(error).__name__}: {error}"
    return data


def _error_name(function, *args, **kwargs) -> str:
    try:
        function(*args, **kwargs)
    except Exception as error:
        return type(error).__name__
    return "no error"


GENERATE_ERROR_CASES = ["negative temperature", "empty prompt", "prompt longer than the context"]


def generate_errors(generate) -> list:
    """The exception type (name) ``generate`` raises for each bad input."""
    model = gen_model()
    runs = [lambda: generate(model, torch.tensor([[5, 6]]), 3, temperature=-0.5),
            lambda: generate(model, torch.zeros(2, 0, dtype=torch.long), 3),
            lambda: generate(model, torch.full((1, GEN_BLOCK - 2), 5), 6)]
    return [_error_name(run) for run in runs]


def kv_cache_inputs() -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(layer, k, v)`` updates in call order: two layers, a prompt of 3 positions then single positions."""
    g = judging.generator(73)
    calls = []
    for n in (3, 1, 1):
        for layer in (0, 1, 2):
            calls.append((layer, torch.randn(2, 3, n, 4, generator=g), torch.randn(2, 3, n, 4, generator=g)))
    return calls


def kv_cache_class(KVCache) -> dict:
    """What the learner's cache returns after each update, its length, and what it holds at the end."""
    try:
        cache = KVCache()
        data = {"empty_length": int(len(cache)), "returned": [], "lengths": []}
        for layer, k, v in kv_cache_inputs():
            keys, values = cache.update(layer, k.clone(), v.clone())
            data["returned"].append([keys, values])
            data["lengths"].append(int(len(cache)))
        data["keys"], data["values"] = list(cache.keys), list(cache.values)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
    return data


# ---------------------------------------------------------------------------- attention over blocks of keys

ONLINE_CASES = [  # (batch, heads, queries, keys, d, block_size, dtype, scale of q)
    (2, 3, 6, 45, 16, 8, torch.float64, 1.0),      # the last block shorter
    (2, 3, 6, 45, 16, 1, torch.float64, 1.0),      # one key per block
    (2, 3, 6, 45, 16, 64, torch.float64, 1.0),     # one block holds every key
    (1, 4, 1, 100, 16, 16, torch.float64, 3.0),    # a decoding step: one query over a long cache
    (1, 2, 5, 50, 32, 10, torch.float32, 50.0),    # scores in the hundreds: exp of an unshifted score overflows
]


def online_attention_inputs(case: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Seeded ``q, k, v`` and the block size of ``ONLINE_CASES[case]``."""
    batch, heads, n_q, n_k, d, block_size, dtype, scale = ONLINE_CASES[case]
    g = torch.Generator().manual_seed(300 + case)  # the same in every run: the float32 case's tolerance is set for it
    q = scale * torch.randn(batch, heads, n_q, d, generator=g, dtype=dtype)
    k, v = (torch.randn(batch, heads, n_k, d, generator=g, dtype=dtype) for _ in range(2))
    return q, k, v, block_size


def online_attention(online_attention) -> list:
    """The learner's attention over blocks of keys on each case of ``ONLINE_CASES``."""
    results = []
    for case in range(len(ONLINE_CASES)):
        q, k, v, block_size = online_attention_inputs(case)
        results.append(_run(online_attention, q, k, v, block_size))
    return results
