"""Collectors for chapter 07 (generation): run the learner's filters and decoder on seeded inputs.

Inputs come from the generators below; ``autograder/judges/ch07.py`` imports them to rebuild the inputs."""

from __future__ import annotations


import torch

from tfs.grader import judging

TOP_K_CASES = [(1, 5), (3, 5), (7, 7), (50, 9)]  # (top_k, rows); the last: k larger than the vocabulary
TOP_P_CASES = [0.05, 0.5, 0.8, 0.95, 1.0, 1e-17]  # 1e-17: 1 - p rounds to 1 (float64), the most likely token alone stays
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


def _stand_ins() -> dict:
    """The filters and the repetition penalty made of ``transformers``' logits processors (the package's own are
    hidden while chapter 07 is graded)."""
    from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TopKLogitsWarper,
                                                       TopPLogitsWarper)

    return {"top_k_filter": lambda logits, top_k: TopKLogitsWarper(top_k)(None, logits.clone()),
            "top_p_filter": lambda logits, top_p: TopPLogitsWarper(top_p)(None, logits.clone()),
            "apply_repetition_penalty": lambda logits, ids, penalty: RepetitionPenaltyLogitsProcessor(penalty)(
                ids, logits.clone())}


def stand_in_pieces(function):
    """While ``function`` (the learner's ``generate``) runs, the names of the filters and the repetition penalty in
    its namespace are stand-ins (:func:`_stand_ins`, put back afterwards, by :func:`judging.stand_ins`): ``generate``
    is graded on its own, not on those exercises' answers."""
    return judging.stand_ins(function, **_stand_ins())


def error_names(function, *calls) -> list[str]:
    """The exception type (name) ``function`` raises for each tuple of arguments of ``calls``."""
    return [_error_name(function, *args) for args in calls]


TOP_K_ERRORS, TOP_P_ERRORS, PENALTY_ERRORS = (0, -2), (0.0, 1.25, -0.5), (0.0, -2.0)


def top_k(top_k_filter) -> dict:
    results = []
    for seed, (k, rows) in enumerate(TOP_K_CASES):
        logits = filter_logits(seed, rows)
        results.append(_run(top_k_filter, logits.clone(), k))
    return {"cases": results,
            "errors": error_names(top_k_filter, *((filter_logits(0, 2), k) for k in TOP_K_ERRORS))}


TOP_P_SHIFT = (1, 5.0)  # (index of a TOP_P_CASES case, a constant added to every logit: the probabilities stay)


TOP_P_ROWS = 2  # index of a TOP_P_CASES case whose rows are also filtered one at a time
TOP_P_EXACT = [(2, 0.5), (1, 0.75)]  # (rows, top_p) on 8 equal logits: each token holds 1/8, a running total meets p


def top_p_exact_logits(rows: int) -> torch.Tensor:
    """``(rows, 8)`` equal logits in float64: every probability is exactly 1/8, every running total exact."""
    return torch.zeros(rows, 8, dtype=torch.float64)


def top_p(top_p_filter) -> dict:
    case, shift = TOP_P_SHIFT
    logits = filter_logits(10 + TOP_P_ROWS)
    return {"cases": [_run(top_p_filter, filter_logits(10 + i), p) for i, p in enumerate(TOP_P_CASES)],
            "rows_alone": [_run(top_p_filter, logits[i:i + 1].clone(), TOP_P_CASES[TOP_P_ROWS])
                           for i in range(logits.shape[0])],
            "exact": [_run(top_p_filter, top_p_exact_logits(rows), p) for rows, p in TOP_P_EXACT],
            "shifted": _run(top_p_filter, filter_logits(10 + case) + shift, TOP_P_CASES[case]),
            "errors": error_names(top_p_filter, *((filter_logits(0, 2), p) for p in TOP_P_ERRORS))}


SAMPLING = {"seed": 74, "rows": 8, "new": 10, "reproducible": dict(temperature=1.5, top_k=12),
            "filtered": dict(temperature=0.6, top_p=0.8),
            "both": dict(temperature=3.0, top_k=12, top_p=0.3)}  # top_k and top_p together: both filters apply


def generate(generate) -> dict:
    """Greedy continuations: each prompt alone, the left-padded batch (with what each model call was given), a
    batch that meets EOS; seeded samples: twice with the same seed, and with a temperature and top-p."""
    from tfs.generate import left_pad
    from tfs.teaching.probes_generation import CallRecorder, SwappedTokens

    model = gen_model()
    prompts = gen_prompts()
    data = {"alone": [_run(generate, model, torch.tensor([p]), 12) for p in prompts]}
    ids, mask = left_pad(prompts, GEN_PAD)
    recorder = CallRecorder(model)
    data["batch"] = _run(generate, recorder, ids, 12, attention_mask=mask)
    data["batch_calls"] = recorder.plain_calls()
    data["eos"] = _run(generate, model, ids, 12, attention_mask=mask, eos_token_id=GEN_EOS)
    swapped = SwappedTokens(model, GEN_EOS, 0)  # the EOS token becomes id 0: a valid id, though falsy
    data["eos_zero"] = _run(generate, swapped, swapped.swap(ids), 12, attention_mask=mask, eos_token_id=0)
    rows = torch.tensor([prompts[0]] * SAMPLING["rows"])
    with stand_in_pieces(generate):
        for name in ("reproducible", "filtered", "both"):
            data[name] = [_run(generate, model, rows, SAMPLING["new"], **SAMPLING[name],
                               generator=torch.Generator().manual_seed(SAMPLING["seed"]))  # as the prompts: the
                          for _ in range(2 if name == "reproducible" else 1)]                   # same in every run
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
    logits, ids = penalty_inputs(0)
    return {"cases": out, "errors": error_names(apply_repetition_penalty, *((logits, ids, p) for p in PENALTY_ERRORS))}


PENALTY_GENERATE = (1.4, 0.8)


def generate_penalty(generate) -> dict:
    """Greedy continuations of each prompt with a repetition penalty (the learner's generate composes it)."""
    model = gen_model()
    with stand_in_pieces(generate):
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


def beam_search(beam_search) -> dict:
    model = gen_model()
    prompts = gen_prompts()
    return {"cases": [_run(beam_search, model, torch.tensor([prompts[i]]), n, beams, length_penalty=lp,
                           eos_token_id=eos) for i, beams, lp, eos, n in BEAM_CASES],
            "errors": error_names(beam_search, (model, torch.tensor([prompts[0]]), 4, 0))}


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
    data.update(_attention_extras(model, MultiHeadAttention))
    return data


def kv_padding_mask() -> torch.Tensor:
    """The attention mask of :func:`kv_sequence` as a left-padded batch: row 1 starts with 3 pad positions."""
    mask = torch.ones(2, KV_LENGTH, dtype=torch.long)
    mask[1, :3] = 0
    return mask


def _attention_extras(model, attention_class) -> dict:
    """The learner's attention on a left-padded batch, one cached step's attention weights, and dropout in eval()."""
    data = {}
    ids, mask = kv_sequence(), kv_padding_mask()
    try:
        with torch.no_grad():
            data["padded"] = model(ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0))[0]
    except Exception as error:
        data["padded_error"] = f"{type(error).__name__}: {error}"
    attention = model.blocks[0].attn
    g = judging.generator(75)
    x = torch.randn(2, 4, model.config.n_embd, generator=g)
    try:
        from tfs.teaching.probes_generation import TransformersCache

        cache = TransformersCache()
        with torch.no_grad():
            attention(x[:, :3], cache=cache, layer=0)
            data["step_weights"] = attention(x[:, 3:], cache=cache, layer=0, need_weights=True)[1]
    except Exception as error:
        data["step_error"] = f"{type(error).__name__}: {error}"
    try:
        config = model.config
        dropping = attention_class(config.n_embd, config.n_head, bias=config.bias, dropout=0.5, causal=True)
        dropping.load_state_dict(attention.state_dict())
        dropping.eval()
        with torch.no_grad():
            data["eval_dropout"] = [dropping(x)[0], attention(x)[0]]
    except Exception as error:
        data["eval_dropout_error"] = f"{type(error).__name__}: {error}"
    try:
        dropping.train()  # dropout=0.5 in training mode: the attention weights are dropped
        torch.manual_seed(judging.run_seed() * 1_000_003 + 76)
        with torch.no_grad():
            data["train_dropout"] = dropping(x)[0]
    except Exception as error:
        data["train_dropout_error"] = f"{type(error).__name__}: {error}"
    try:
        config = model.config
        free = attention_class(config.n_embd, config.n_head, bias=config.bias, causal=False)  # no causal mask
        free.load_state_dict(attention.state_dict())
        with torch.no_grad():
            data["not_causal"] = free.eval()(x)[0]
    except Exception as error:
        data["not_causal_error"] = f"{type(error).__name__}: {error}"
    try:
        with torch.no_grad():
            data["no_weights"] = attention(x, need_weights=False)[1] is None
    except Exception as error:
        data["no_weights_error"] = f"{type(error).__name__}: {error}"
    try:
        plain = attention_class(16, 2, bias=False)
        data["biases"] = [name for name, _ in plain.named_parameters() if name.endswith("bias")]
    except Exception as error:
        data["biases_error"] = f"{type(error).__name__}: {error}"
    return data


def _error_name(function, *args, **kwargs) -> str:
    try:
        function(*args, **kwargs)
    except Exception as error:
        return type(error).__name__
    return "no error"


GENERATE_ERROR_CASES = ["negative temperature", "empty prompt", "prompt longer than the context",
                        "prompt that fills the context exactly"]  # the last one fits: no error


def generate_errors(generate) -> list:
    """The exception type (name) ``generate`` raises for each bad input, and for a prompt that with
    ``max_new_tokens`` fills the model's ``block_size`` positions exactly (it fits: "no error" expected)."""
    model = gen_model()
    runs = [lambda: generate(model, torch.tensor([[5, 6]]), 3, temperature=-0.5),
            lambda: generate(model, torch.zeros(2, 0, dtype=torch.long), 3),
            lambda: generate(model, torch.full((1, GEN_BLOCK - 2), 5), 6),
            lambda: generate(model, torch.full((1, GEN_BLOCK - 3), 5), 3)]
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
    """What the learner's cache returns after each update, its length, and what it holds at the end; and how many
    entries a new cache holds once another one was used (``shared``: lists shared by every instance)."""
    try:
        layer, k, v = kv_cache_inputs()[0]
        KVCache().update(layer, k.clone(), v.clone())
        shared = len(KVCache().keys)
    except Exception:
        shared = None
    try:
        cache = KVCache()
        data = {"empty_length": int(len(cache)), "returned": [], "lengths": []}
        for layer, k, v in kv_cache_inputs():
            keys, values = cache.update(layer, k.clone(), v.clone())
            data["returned"].append([keys, values])
            data["lengths"].append(int(len(cache)))
        data["keys"], data["values"] = list(cache.keys), list(cache.values)
    except Exception as error:
        data = {"error": f"{type(error).__name__}: {error}"}
    data["shared"] = shared
    return data


# ---------------------------------------------------------------------------- attention over blocks of keys

ONLINE_CASES = [  # (batch, heads, queries, keys, d, block_size, dtype, scale of q, scale of the first block's keys)
    (2, 3, 6, 45, 16, 8, torch.float64, 1.0, 1.0),      # the last block shorter
    (2, 3, 6, 45, 16, 1, torch.float64, 1.0, 1.0),      # one key per block
    (2, 3, 6, 45, 16, 64, torch.float64, 1.0, 1.0),     # one block holds every key
    (1, 4, 1, 100, 16, 16, torch.float64, 3.0, 1.0),    # a decoding step: one query over a long cache
    (1, 2, 5, 50, 32, 10, torch.float32, 50.0, 1.0),    # scores in the hundreds: exp of an unshifted score overflows
    (1, 2, 4, 40, 32, 10, torch.float32, 20.0, 6.0),    # later blocks' scores far below the first's: the running
]                                                       # maximum must not fall back to a block's own maximum


def online_attention_inputs(case: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Seeded ``q, k, v`` and the block size of ``ONLINE_CASES[case]``."""
    batch, heads, n_q, n_k, d, block_size, dtype, scale, first_scale = ONLINE_CASES[case]
    g = torch.Generator().manual_seed(300 + case)  # the same in every run: the float32 case's tolerance is set for it
    q = scale * torch.randn(batch, heads, n_q, d, generator=g, dtype=dtype)
    k, v = (torch.randn(batch, heads, n_k, d, generator=g, dtype=dtype) for _ in range(2))
    k[..., :block_size, :] *= first_scale
    return q, k, v, block_size


def online_attention(online_attention) -> list:
    """The learner's attention over blocks of keys on each case of ``ONLINE_CASES``."""
    results = []
    for case in range(len(ONLINE_CASES)):
        q, k, v, block_size = online_attention_inputs(case)
        results.append(_run(online_attention, q, k, v, block_size))
    return results
