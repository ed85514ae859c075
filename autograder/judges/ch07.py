"""Judges for chapter 07 (generation). Oracles: ``transformers``' logits processors and
``GPT2LMHeadModel.generate`` on the weights of the collector's model (converted with ``tfs.convert.gpt``)."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TopKLogitsWarper,
                                                   TopPLogitsWarper)

from tfs.grader.collectors.ch07 import (BEAM_CASES, GEN_EOS, GEN_PAD, KV_LENGTH, KV_PROMPT, PENALTY_CASES,
                                        PENALTY_GENERATE, TOP_K_CASES, TOP_P_CASES, filter_logits, gen_model,
                                        gen_prompts, kv_sequence, penalty_inputs)
from tfs.grader.judging import JudgeFailure, check_data


def _tensor(item: dict, what: str, shape) -> torch.Tensor:
    if "error" in item:
        raise JudgeFailure(f"{what}: your function failed: {item['error']}")
    out = item["out"]
    if tuple(out.shape) != tuple(shape):
        raise JudgeFailure(f"{what}: expected shape {tuple(shape)}, received {tuple(out.shape)}")
    return out


def _kept(t: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(t)


def _check_filter(received: torch.Tensor, expected: torch.Tensor, logits: torch.Tensor, what: str) -> None:
    keep_r, keep_e = _kept(received), _kept(expected)
    removed = ~keep_e
    if removed.any() and not torch.isneginf(received).any():
        if (received[removed] == 0).all():
            raise JudgeFailure(f"{what}: filtered tokens were set to 0; set them to -inf (a logit of 0 still has "
                               "probability after the softmax)")
        raise JudgeFailure(f"{what}: nothing was set to -inf: filtered tokens must get logit -inf")
    if not torch.equal(keep_r, keep_e):
        kept_r, kept_e = keep_r.sum(-1), keep_e.sum(-1)
        empty = [i for i, kept in enumerate(kept_r.tolist()) if kept == 0]
        if empty:
            raise JudgeFailure(f"{what}: rows {empty} keep no token at all: every logit is -inf, the softmax of such "
                               "a row is NaN and nothing can be sampled from it; the kept set must always hold at "
                               "least the most likely token (for top-p: also when that token alone has more than p)")
        top = logits.argmax(-1)
        if not keep_r.gather(1, top[:, None]).all():
            raise JudgeFailure(f"{what}: the most likely token was filtered out: keep the largest logits, "
                               "drop the small ones")
        diff = kept_r - kept_e
        if ((diff == 0) | (diff == -1)).all() and (diff == -1).any():
            raise JudgeFailure(f"{what}: one token too few kept (an off-by-one at the boundary: keep the token "
                               "that crosses the threshold)")
        if ((diff == 0) | (diff == 1)).all() and (diff == 1).any():
            raise JudgeFailure(f"{what}: one token too many kept (an off-by-one at the boundary)")
        rows = [i for i, (a, b) in enumerate(zip(kept_r.tolist(), kept_e.tolist())) if a != b]
        raise JudgeFailure(f"{what}: kept {kept_r.tolist()} tokens per row; rows {rows} keep the wrong number")
    if not torch.isneginf(received[~keep_r]).all():
        raise JudgeFailure(f"{what}: filtered tokens must get logit -inf exactly (NaN or +inf found)")
    if not torch.equal(received[keep_r], logits[keep_e]):
        raise JudgeFailure(f"{what}: the kept logits changed; a filter only removes tokens, it leaves the "
                           "others' logits as they were")
    if received.dtype != logits.dtype:
        raise JudgeFailure(f"{what}: dtype {received.dtype}, expected the input's {logits.dtype}")


def _errors(data, values, what: str, requirement: str) -> None:
    """Each bad value of ``values`` must have raised a ValueError (``data["errors"]``: the exception names)."""
    raised = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(raised, list) or len(raised) != len(values):
        raise JudgeFailure(f"{what}: wrong number of results for bad inputs")
    for value, name in zip(values, raised):
        if name != "ValueError":
            raise JudgeFailure(f"{what} with {value}: expected a ValueError ({requirement}), received {name}")


def _cases(data, expected: int, what: str) -> list:
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or len(cases) != expected:
        raise JudgeFailure(f"{what}: wrong number of results")
    return cases


def top_k(data) -> None:
    from tfs.grader.collectors.ch07 import TOP_K_ERRORS

    cases = _cases(data, len(TOP_K_CASES), "top_k_filter")
    for seed, ((k, rows), item) in enumerate(zip(TOP_K_CASES, cases)):
        logits = filter_logits(seed, rows)
        what = f"top_k_filter(logits of shape {tuple(logits.shape)}, top_k={k})"
        if "error" in item and k > logits.shape[-1]:
            raise JudgeFailure(f"{what}: your function failed: {item['error']}: a top_k larger than the vocabulary "
                               f"({logits.shape[-1]} tokens) keeps every token (torch.topk needs k <= the vocabulary: "
                               "take min(top_k, vocab))")
        received = _tensor(item, what, logits.shape)
        expected = TopKLogitsWarper(k)(None, logits.clone())
        if seed == 0 and k == 1 and _kept(received)[0].sum() == 1 and _kept(received)[0, 1:3].sum() == 1:
            raise JudgeFailure(f"{what}: with a tie at the k-th largest logit keep every tied token "
                               "(compare with the k-th value, >=, rather than taking k indices)")
        _check_filter(received, expected, logits, what)
    _errors(data, [f"top_k={k}" for k in TOP_K_ERRORS], "top_k_filter", "top_k < 1")


def top_p(data) -> None:
    from tfs.grader.collectors.ch07 import TOP_P_ERRORS

    cases = _cases(data, len(TOP_P_CASES), "top_p_filter")
    _check_top_p_shift(data, cases)
    _check_top_p_rows(data, cases)
    for i, (p, item) in enumerate(zip(TOP_P_CASES, cases)):
        logits = filter_logits(10 + i)
        what = f"top_p_filter(logits of shape {tuple(logits.shape)}, top_p={p})"
        if "error" in item and p == 1.0:
            raise JudgeFailure(f"{what}: your function failed: {item['error']}: top_p = 1 is allowed (the range is "
                               "0 < top_p <= 1) and keeps every token; refuse only top_p <= 0 or top_p > 1")
        received = _tensor(item, what, logits.shape)
        expected = TopPLogitsWarper(p)(None, logits.clone())
        _check_top_p_order(received, logits, p, what)
        _check_filter(received, expected, logits, what)
    _check_top_p_exact(data)
    _errors(data, [f"top_p={p}" for p in TOP_P_ERRORS], "top_p_filter", "top_p outside (0, 1]")


def _check_top_p_rows(data: dict, cases: list) -> None:
    """Each row filtered alone keeps what it keeps in the batch: a running total across the rows (cumsum over the
    batch axis) makes a row depend on the others."""
    from tfs.grader.collectors.ch07 import TOP_P_ROWS

    alone, batch = data.get("rows_alone"), cases[TOP_P_ROWS]
    if not (isinstance(alone, list) and "out" in batch and all(isinstance(a, dict) and "out" in a for a in alone)):
        return
    if len(alone) != batch["out"].shape[0] or any(tuple(a["out"].shape) != (1, batch["out"].shape[1]) for a in alone):
        return
    rows = [i for i, a in enumerate(alone) if not torch.equal(_kept(a["out"][0]), _kept(batch["out"][i]))]
    if rows:
        raise JudgeFailure(f"top_p_filter(logits of shape {tuple(batch['out'].shape)}, top_p="
                           f"{TOP_P_CASES[TOP_P_ROWS]}): rows {rows} keep other tokens than the same rows filtered "
                           "one at a time: each row is filtered on its own; the running total must run along the "
                           "vocabulary (dim=-1), not across the rows of the batch")


def _check_top_p_exact(data: dict) -> None:
    """Equal logits: every probability is 1/8, so a running total reaches p exactly; the tokens that reach it hold
    at least p, and the nucleus is the fewest such tokens."""
    from tfs.grader.collectors.ch07 import TOP_P_EXACT, top_p_exact_logits

    exact = data.get("exact")
    if not isinstance(exact, list) or len(exact) != len(TOP_P_EXACT):
        raise JudgeFailure("top_p_filter: wrong number of results for the equal-logit cases")
    for (rows, p), item in zip(TOP_P_EXACT, exact):
        logits = top_p_exact_logits(rows)
        what = f"top_p_filter({rows} rows of 8 equal logits, top_p={p})"
        received = _tensor(item, what, logits.shape)
        expected = torch.isfinite(TopPLogitsWarper(p)(None, logits.clone())).sum(-1)
        kept = _kept(received).sum(-1)
        if torch.equal(kept, expected + 1):
            raise JudgeFailure(f"{what}: one token too many kept: each token holds exactly 1/8, so the running total "
                               "reaches p exactly, and the tokens that reach it already hold at least p (use <= 1 - p "
                               "on the ascending total, or >= p on the descending one, not a strict inequality)")
        if not torch.equal(kept, expected):
            raise JudgeFailure(f"{what}: kept {kept.tolist()} tokens per row: the nucleus is the fewest most likely "
                               "tokens that together hold at least p")


def _check_top_p_shift(data: dict, cases: list) -> None:
    """The same logits plus a constant (the same probabilities) must keep the same tokens: a running total of the
    logits themselves, not of their softmax, keeps others."""
    from tfs.grader.collectors.ch07 import TOP_P_SHIFT

    case, shift = TOP_P_SHIFT
    shifted, plain_case = data.get("shifted"), cases[case]
    if not (isinstance(shifted, dict) and "out" in shifted and "out" in plain_case):
        return
    kept, kept_shifted = _kept(plain_case["out"]), _kept(shifted["out"])
    if kept.shape == kept_shifted.shape and not torch.equal(kept, kept_shifted):
        raise JudgeFailure(f"top_p_filter(logits + {shift:g}, top_p={TOP_P_CASES[case]}) keeps other tokens than "
                           f"top_p_filter(logits, top_p={TOP_P_CASES[case]}), though adding a constant to every logit "
                           "leaves the probabilities unchanged: the running total must add up probabilities (the "
                           "softmax of the sorted logits), not the logits themselves")


def _check_top_p_order(received: torch.Tensor, logits: torch.Tensor, p: float, what: str) -> None:
    """The nucleus decided in sorted order but applied to the vocabulary's order (never scattered back)."""
    sorted_logits, _ = torch.sort(logits, dim=-1)
    drop = sorted_logits.softmax(-1).cumsum(-1) <= 1 - p
    drop[..., -1] = False
    if torch.equal(~torch.isfinite(received), drop) and not torch.equal(drop, torch.isneginf(
            TopPLogitsWarper(p)(None, logits.clone()))):
        raise JudgeFailure(f"{what}: the tokens to drop were found in sorted order but dropped at those positions of "
                           "the vocabulary order: map the decision back to the vocabulary order (scatter with the "
                           "sort's indices) before filling with -inf")


def _oracle():
    from tfs.convert.gpt import to_hf_model
    from tfs.generate import left_pad

    hf = to_hf_model(gen_model())
    hf.generation_config.pad_token_id = GEN_PAD
    hf.generation_config.eos_token_id = None
    prompts = gen_prompts()
    ids, mask = left_pad(prompts, GEN_PAD)
    return hf, prompts, ids, mask


def generate(data) -> None:
    hf, prompts, ids, mask = _oracle()
    check_data(data, {"alone": [dict] * len(prompts), "batch": dict, "eos": dict}, "generate")
    _check_cache_use(data.get("batch_calls"), ids.shape[1])
    with torch.no_grad():
        alone = [hf.generate(input_ids=torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                             do_sample=False, max_new_tokens=12) for p in prompts]
        batch = hf.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=12)
        eos = hf.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=12,
                          eos_token_id=GEN_EOS, pad_token_id=GEN_EOS)
    for p, expected, item in zip(prompts, alone, data["alone"]):
        received = _tensor(item, f"generate(model, a prompt of {len(p)} tokens, 12)", expected.shape)
        if not torch.equal(received[:, :len(p)], expected[:, :len(p)]):
            raise JudgeFailure("generate: the returned ids must start with the prompt, then the new tokens")
        if not torch.equal(received, expected):
            raise JudgeFailure("generate: greedy continuation of a single prompt differs from model.generate: "
                               "take the arg-max of the last position's logits at every step")
    received = _tensor(data["batch"], "generate(model, a left-padded batch, 12)", batch.shape)
    if not torch.equal(received, batch):
        from tfs.teaching.probes_generation import padding_mistake

        rows = [i for i in range(batch.shape[0]) if not torch.equal(received[i], batch[i])]
        short = [i for i in rows if mask[i].sum() < mask.shape[1]]
        calls = data.get("batch_calls")
        mistake = padding_mistake(calls, mask) if isinstance(calls, list) else None
        if short and len(short) == len(rows) and mistake:
            raise JudgeFailure(f"generate: the padded prompts (rows {short}) continue differently from the same "
                               f"prompts alone: {mistake}")
        if short and len(short) == len(rows):
            raise JudgeFailure(f"generate: the padded prompts (rows {short}) continue differently from the same "
                               "prompts alone: mask the padding (attention_mask) and give each token its position "
                               "from the mask's cumulative sum, not its column")
        raise JudgeFailure(f"generate: rows {rows} of a left-padded batch differ from model.generate")
    item = data["eos"]
    if "error" in item:
        raise JudgeFailure(f"generate(..., eos_token_id={GEN_EOS}): your function failed: {item['error']}")
    received = item["out"]
    width = received.shape[1]
    if received.shape[0] != eos.shape[0] or width < eos.shape[1] or width > ids.shape[1] + 12:
        raise JudgeFailure(f"generate(..., eos_token_id={GEN_EOS}): shape {tuple(received.shape)}; expected "
                           f"{tuple(eos.shape)} (or up to {ids.shape[1] + 12} columns, filled with EOS)")
    if received.shape[0] == eos.shape[0] and width < eos.shape[1]:
        if torch.equal(received, eos[:, :width]):
            raise JudgeFailure(f"generate(..., eos_token_id={GEN_EOS}): the loop stopped when the first row produced "
                               "EOS; it must go on until every row has produced it (or max_new_tokens), finished "
                               "rows continued with EOS")
        raise JudgeFailure(f"generate(..., eos_token_id={GEN_EOS}): shape {tuple(received.shape)}; expected "
                           f"{tuple(eos.shape)}: the loop stops when every row has produced EOS")
    padded = torch.cat([eos, torch.full((eos.shape[0], width - eos.shape[1]), GEN_EOS)], dim=1)
    if not torch.equal(received, padded):
        raise JudgeFailure(f"generate(..., eos_token_id={GEN_EOS}): a finished row (one that produced EOS) must "
                           "be continued with EOS only, the others as before")
    _check_eos_zero(data, received)
    _check_sampling(data, hf, prompts[0])


def _check_eos_zero(data, with_eos) -> None:
    """The same batch on the same model with the EOS token renumbered 0 (tokens GEN_EOS and 0 swapped): the loop
    must stop and fill as it did with eos_token_id=GEN_EOS."""
    from tfs.teaching.probes_generation import SwappedTokens

    item = data.get("eos_zero")
    what = "generate(..., eos_token_id=0) (the same model and prompts, the EOS token renumbered 0)"
    if not isinstance(item, dict):
        raise JudgeFailure(f"{what}: no result")
    if "error" in item:
        raise JudgeFailure(f"{what}: your function failed: {item['error']}")
    expected = SwappedTokens(gen_model(), GEN_EOS, 0).swap(with_eos)
    received = item["out"]
    if received.shape != expected.shape or not torch.equal(received, expected):
        raise JudgeFailure(f"{what}: it did not stop and fill finished rows as it does with eos_token_id={GEN_EOS}: "
                           "0 is a valid token id, and `if eos_token_id:` treats it as no EOS; test "
                           "`eos_token_id is not None`")


def _check_cache_use(calls, prompt_length: int) -> None:
    """Every call of the model gets the cache; the first feeds the prompt, each later one only the new token."""
    if not isinstance(calls, list) or not calls or not all(isinstance(call, dict) for call in calls):
        return
    what = "generate(model, a left-padded batch, 12)"
    if not all(call.get("cache") for call in calls):
        raise JudgeFailure(f"{what}: the model was called without a cache: create one KVCache() before the loop "
                           "and pass cache=... to every call, so that no position is computed twice")
    fed = [call.get("tokens") for call in calls]
    if fed[0] != prompt_length or any(n != 1 for n in fed[1:]):
        raise JudgeFailure(f"{what}: tokens fed per call {fed}, expected {prompt_length} (the prompt) and then 1 per "
                           "call: after the first call the cache already holds every earlier position, so each later "
                           "call feeds only the new token")


def _check_sampling(data, hf, prompt) -> None:
    from tfs.grader.collectors.ch07 import SAMPLING
    from tfs.teaching.probes_generation import sampled_outside

    check_data(data, {"reproducible": [dict, dict], "filtered": [dict], "both": [dict]}, "generate")
    shape = (SAMPLING["rows"], len(prompt) + SAMPLING["new"])
    settings = SAMPLING["reproducible"]
    what = (f"generate(model, {SAMPLING['rows']} copies of a prompt, {SAMPLING['new']}, "
            + ", ".join(f"{k}={v}" for k, v in settings.items()) + ", generator=a seeded torch.Generator)")
    first, second = (_tensor(item, what, shape) for item in data["reproducible"])
    if not torch.equal(first, second):
        raise JudgeFailure(f"{what}: two calls with generators of the same seed sampled different tokens: draw with "
                           "torch.multinomial(probabilities, 1, generator=generator)")
    if all(torch.equal(row, first[0]) for row in first):
        raise JudgeFailure(f"{what}: every row is the same: at temperature {settings['temperature']} rows sample "
                           "independently (one torch.multinomial draw per row), they do not take the arg-max")

    def gpt_logits(ids):
        return (hf(input_ids=ids).logits,)

    for name in ("reproducible", "filtered", "both"):
        settings = SAMPLING[name]
        out = _tensor(data[name][0], what, shape)
        outside = sampled_outside(gpt_logits, out, len(prompt), **settings)
        if outside is not None:
            row, step = outside
            listed = ", ".join(f"{k}={v}" for k, v in settings.items())
            both = (" With top_k and top_p both given, both filters apply, one after the other (top-k, then top-p): "
                    "neither replaces the other." if name == "both" else "")
            raise JudgeFailure(f"generate(..., {listed}, generator=...): row {row} sampled at step {step} a token "
                               "that these settings remove: divide the logits by the temperature first, then filter "
                               "(top-k, then top-p), then sample from the softmax (transformers' order)." + both)


# --------------------------------------------------------------------------------- repetition penalty

def repetition_penalty(data) -> None:
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list) or len(cases) != len(PENALTY_CASES):
        raise JudgeFailure("apply_repetition_penalty: wrong number of results")
    for seed, (penalty, item) in enumerate(zip(PENALTY_CASES, cases)):
        logits, ids = penalty_inputs(seed)
        what = f"apply_repetition_penalty(logits {tuple(logits.shape)}, input_ids {tuple(ids.shape)}, {penalty})"
        check_data(item, {"input_changed": bool}, "apply_repetition_penalty")
        received = _tensor(item, what, logits.shape)
        expected = RepetitionPenaltyLogitsProcessor(penalty)(ids, logits.clone())
        if torch.allclose(received, expected, rtol=1e-6, atol=1e-6):
            if item.get("input_changed"):
                raise JudgeFailure(f"{what}: the logits you were given changed: return a new tensor (the caller "
                                   "still needs the raw logits, e.g. for another processor or a plot)")
            continue
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter(1, ids, True)
        rows_mixed = torch.zeros_like(seen).index_fill(1, ids.flatten(), True)
        if torch.allclose(received, torch.where(rows_mixed, torch.where(logits < 0, logits * penalty, logits / penalty),
                                                logits), atol=1e-6):
            raise JudgeFailure(f"{what}: each row was penalised for the tokens of the other rows too: a row's "
                               "penalty applies to the tokens of its own row of input_ids only")
        if torch.allclose(received[~seen], logits[~seen]) is False:
            raise JudgeFailure(f"{what}: tokens that are not in input_ids changed: penalise only the tokens "
                               "already in the text")
        divided = torch.where(seen, logits / penalty, logits)
        if torch.allclose(received, divided, atol=1e-6):
            raise JudgeFailure(f"{what}: negative logits were divided by the penalty, which raises them: multiply "
                               "a negative logit by the penalty and divide a positive one (transformers' rule), so "
                               "that a seen token's logit never goes up for penalty > 1")
        flipped = torch.where(seen, torch.where(logits < 0, logits / penalty, logits * penalty), logits)
        if torch.allclose(received, flipped, atol=1e-6):
            raise JudgeFailure(f"{what}: the rule is inverted: divide positive logits by the penalty, multiply "
                               "negative ones")
        counts = torch.zeros_like(logits).scatter_add(1, ids, torch.ones_like(ids, dtype=logits.dtype))
        repeated = torch.where(logits < 0, logits * penalty ** counts, logits / penalty ** counts)
        if torch.allclose(received, repeated, atol=1e-5):
            raise JudgeFailure(f"{what}: a token that occurs several times in input_ids was penalised once per "
                               "occurrence: the penalty applies once to every token that has appeared")
        raise JudgeFailure(f"{what}: differs from transformers' repetition penalty "
                           f"(RepetitionPenaltyLogitsProcessor) by up to {(received - expected).abs().max():.3g}")
    from tfs.grader.collectors.ch07 import PENALTY_ERRORS

    _errors(data, [f"penalty={p}" for p in PENALTY_ERRORS], "apply_repetition_penalty", "penalty <= 0")


def generate_penalty(data) -> None:
    hf, prompts, _, _ = _oracle()
    for penalty in PENALTY_GENERATE:
        items = data.get(str(penalty)) if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(prompts):
            raise JudgeFailure(f"generate(..., repetition_penalty={penalty}): wrong number of results")
        for prompt, item in zip(prompts, items):
            x = torch.tensor([prompt])
            with torch.no_grad():
                expected = hf.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                                       max_new_tokens=12, repetition_penalty=penalty)
                plain_greedy = hf.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=False,
                                           max_new_tokens=12)
            what = f"generate(model, a prompt of {len(prompt)} tokens, 12, repetition_penalty={penalty})"
            received = _tensor(item, what, expected.shape)
            if torch.equal(received, expected):
                continue
            if torch.equal(received, plain_greedy):
                raise JudgeFailure(f"{what}: the penalty was ignored (the text is plain greedy decoding): apply it "
                                   "to the logits before choosing the token")
            raise JudgeFailure(f"{what}: differs from model.generate(repetition_penalty={penalty}): penalise every "
                               "token of the whole sequence so far (the prompt and the generated tokens) before "
                               "choosing")


# ---------------------------------------------------------------------------------------- beam search

def beam_search(data) -> None:
    from tfs.teaching.probes_generation import beam_search_mistakes

    cases = _cases(data, len(BEAM_CASES), "beam_search")
    hf = _oracle()[0]
    prompts = gen_prompts()

    def theirs(prompt, n, **kwargs):
        if kwargs.get("num_beams", 1) == 1:
            kwargs.pop("early_stopping", None)  # a beam-search setting: transformers warns about it otherwise
        with torch.no_grad():
            return hf.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                               max_new_tokens=n, pad_token_id=GEN_PAD, **kwargs)

    for (i, beams, lp, eos, n), item in zip(BEAM_CASES, cases):
        prompt = torch.tensor([prompts[i]])
        what = f"beam_search(model, a prompt of {prompt.shape[1]} tokens, {n}, num_beams={beams}, length_penalty={lp}, eos_token_id={eos})"
        if "error" in item:
            raise JudgeFailure(f"{what}: your function failed: {item['error']}")
        received = item["out"]
        expected = theirs(prompt, n, num_beams=beams, length_penalty=lp, early_stopping=True, eos_token_id=eos)
        if received.shape == expected.shape and torch.equal(received, expected):
            continue
        if received.dim() != 2 or received.shape[0] != 1:
            raise JudgeFailure(f"{what}: expected a (1, T + n) tensor, the best hypothesis; received shape "
                               f"{tuple(received.shape)}")
        if not torch.equal(received[0, :prompt.shape[1]], prompt[0]):
            raise JudgeFailure(f"{what}: the returned ids must start with the prompt, then the new tokens")

        def same(other):
            return received.shape == other.shape and torch.equal(received, other)

        if beams > 1 and same(theirs(prompt, n, eos_token_id=eos)):
            raise JudgeFailure(f"{what}: you returned the greedy continuation: keep the num_beams best partial "
                               "sequences at every step and choose among all of their continuations (beams that all "
                               "start as the prompt and all expand at step 1 stay copies of one another: give all but "
                               "the first a score of -1e9 there)")
        mistake = _beam_mistake(cases, hf, theirs)
        if mistake:
            raise JudgeFailure(f"{what}: this looks like {mistake}")
        if lp != 0 and eos is not None and same(theirs(prompt, n, num_beams=beams, length_penalty=0.0,
                                                      early_stopping=True, eos_token_id=eos)):
            raise JudgeFailure(f"{what}: the length penalty was not applied: a finished hypothesis scores "
                               "sum(log p) / (number of generated tokens, EOS included) ** length_penalty")
        if eos is not None and same(theirs(prompt, n, num_beams=beams, early_stopping=True, eos_token_id=None)):
            raise JudgeFailure(f"{what}: EOS was ignored: a hypothesis whose new token is eos_token_id is finished "
                               "(set aside with its score) and no longer extended")
        first = next((t for t, (a, b) in enumerate(zip(received[0].tolist(), expected[0].tolist())) if a != b),
                     min(received.shape[1], expected.shape[1]))
        raise JudgeFailure(f"{what}: differs from model.generate(num_beams={beams}, length_penalty={lp}, "
                           f"early_stopping=True) from position {first} on:\n  yours    {received[0].tolist()}")
    _errors(data, ["num_beams=0"], "beam_search", "num_beams < 1")


def _beam_mistake(cases, hf, theirs) -> str | None:
    """The known mistakes (:func:`tfs.teaching.probes_generation.beam_search_mistakes`) that give the learner's
    result in every case where it differs from ``model.generate``'s, or None."""
    from tfs.teaching.probes_generation import beam_search_mistakes

    prompts, model, candidates, order = gen_prompts(), gen_model(), None, []
    for (i, beams, lp, eos, n), item in zip(BEAM_CASES, cases):
        prompt = torch.tensor([prompts[i]])
        expected = theirs(prompt, n, num_beams=beams, length_penalty=lp, early_stopping=True, eos_token_id=eos)
        received = item.get("out")
        if not isinstance(received, torch.Tensor):
            return None
        if received.shape == expected.shape and torch.equal(received, expected):
            continue
        mistakes = beam_search_mistakes(model, prompt, n, beams, lp, eos)
        order = order or list(mistakes)
        matching = {m for m, wrong in mistakes.items()
                    if wrong.shape == received.shape and torch.equal(wrong, received)}
        candidates = matching if candidates is None else candidates & matching
    return "; or ".join(m for m in order if m in (candidates or ())) or None   # several when the cases cannot tell


# ------------------------------------------------------------------------------------------- KV cache

def kv_cache(data) -> None:
    name = "your MultiHeadAttention in the GPT"  # decoding through transformers' cache, not the learner's KVCache
    if not isinstance(data, dict):
        raise JudgeFailure(f"{name}: no data")
    if "error" in data:
        raise JudgeFailure(f"{name}: the GPT could not use your attention class: {data['error']}")
    hf = _oracle()[0]
    ids = kv_sequence()
    with torch.no_grad():
        out = hf(input_ids=ids, use_cache=True)
    expected = out.logits
    layers = out.past_key_values.layers
    if "uncached_error" in data:
        raise JudgeFailure(f"{name}: the forward pass without a cache failed: {data['uncached_error']}")
    uncached = _tensor({"out": data["uncached"]}, f"{name}, no cache", expected.shape)
    if not torch.allclose(uncached, expected, atol=1e-5, rtol=0):
        from tfs.teaching.probes_generation import gpt2_without_attention_scale

        with torch.no_grad():
            unscaled = gpt2_without_attention_scale(hf)(input_ids=ids).logits
        if torch.allclose(uncached, unscaled, atol=1e-4, rtol=0):
            raise JudgeFailure(f"{name}: without a cache the logits are those of attention whose scores were not "
                               "divided by sqrt(d_head): scale q k^T by 1/sqrt(d_head)")
        from tfs.teaching.probes_generation import gpt2_with_attention_scale

        with torch.no_grad():
            by_width = gpt2_with_attention_scale(hf, hf.config.n_embd ** -0.5)(input_ids=ids).logits
        if torch.allclose(uncached, by_width, atol=1e-4, rtol=0):
            raise JudgeFailure(f"{name}: without a cache the logits are those of attention whose scores were divided "
                               "by sqrt(d_model), the whole width: each head's scores are divided by sqrt(d_head), "
                               "the width of one head (q.shape[-1] after the split)")
        raise JudgeFailure(f"{name}: without a cache the logits already differ from GPT-2's by up to "
                           f"{(uncached - expected).abs().max():.3g}: check the attention itself (the 1/sqrt(d_head) "
                           "scale, the causal mask, the head split) before the cache")
    _check_attention_extras(data, hf, ids, name)
    if "cached_error" in data:
        raise JudgeFailure(f"{name}: decoding through the cache (the prompt, then one token per call) failed: "
                           f"{data['cached_error']}")
    keys, values = data.get("keys"), data.get("values")
    if isinstance(data.get("length"), int) and data["length"] > KV_LENGTH:
        raise JudgeFailure(f"{name}: after {KV_LENGTH} tokens the cache holds {data['length']} positions in its "
                           "first layer: each attention layer must update its own entry, cache.update(layer, k, v) "
                           "with the layer argument it was given")
    if data.get("length") != KV_LENGTH:
        raise JudgeFailure(f"{name}: after a prompt of {KV_PROMPT} and {KV_LENGTH - KV_PROMPT} single tokens, the "
                           f"cache holds {data.get('length')} positions, expected {KV_LENGTH}: pass every call's new "
                           "keys and values to cache.update(layer, k, v) and attend over all that it returns")
    if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(layers) or len(values) != len(layers):
        raise JudgeFailure(f"{name}: the cache holds keys and values for {len(keys) if isinstance(keys, list) else 0} "
                           f"layers, expected {len(layers)}: each attention layer updates the cache with its own "
                           "layer argument")
    for i, layer in enumerate(layers):
        for mine, theirs, what in ((keys[i], layer.keys, "keys"), (values[i], layer.values, "values")):
            if tuple(mine.shape) != tuple(theirs.shape):
                raise JudgeFailure(f"{name}: the {what} it cached in layer {i} have shape {tuple(mine.shape)}, "
                                   f"expected {tuple(theirs.shape)} (batch, heads, positions, d_head)")
    for mine, theirs, what in ((keys[0], layers[0].keys, "keys"), (values[0], layers[0].values, "values")):
        if not torch.allclose(mine, theirs, atol=1e-5, rtol=0):
            raise JudgeFailure(f"{name}: the {what} it cached in layer 0 differ from GPT-2's past key values: cache "
                               "the keys and values of each position, after the projection and the head split")
    cached = _tensor({"out": data["cached"]}, f"{name}, through the cache", expected.shape)
    error = (cached - expected).abs().amax(dim=(0, 2))  # per position
    if not (error <= 1e-5).all():
        first = int((error > 1e-5).nonzero()[0])
        where = "the prompt" if first < KV_PROMPT else f"the one-token step at position {first}"
        raise JudgeFailure(f"{name}: with the cache the logits differ from the uncached ones from {where} on "
                           f"(up to {error.max():.3g}): the new query must attend to every cached key and to itself "
                           "(its causal mask is offset by the number of cached positions)")
    for i, layer in enumerate(layers[1:], start=1):
        for mine, theirs, what in ((keys[i], layer.keys, "keys"), (values[i], layer.values, "values")):
            if not torch.allclose(mine, theirs, atol=1e-5, rtol=0):
                raise JudgeFailure(f"{name}: the {what} it cached in layer {i} differ from GPT-2's past key values: "
                                   "each layer keeps its own keys and values (the layer argument)")
    _check_options(data, name)


def _check_attention_extras(data, hf, ids, name) -> None:
    """A left-padded batch, one cached step's weights, and dropout in eval() (see the collector)."""
    from tfs.grader.collectors.ch07 import kv_padding_mask

    mask = kv_padding_mask()
    if "padded_error" in data:
        raise JudgeFailure(f"{name}: a left-padded batch (attention_mask) failed: {data['padded_error']}")
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    padded = _tensor({"out": data.get("padded")}, f"{name}, a left-padded batch", expected.shape) \
        if isinstance(data.get("padded"), torch.Tensor) else None
    real = mask.bool()
    if padded is None or not torch.allclose(padded[real], expected[real], atol=1e-4, rtol=0):
        raise JudgeFailure(f"{name}: on a left-padded batch the real tokens' logits differ from GPT-2's with the same "
                           "attention_mask: the padding mask your attention receives (mask, True = may attend) was "
                           "ignored; combine it with the causal mask (mask & causal)")
    if "step_error" in data:
        raise JudgeFailure(f"{name}: one new position after 3 cached ones (cache=..., need_weights=True) failed: "
                           f"{data['step_error']}")
    weights = data.get("step_weights")
    if isinstance(weights, torch.Tensor) and weights.dim() == 4 and weights.shape[-2:] == (1, 4):
        if torch.allclose(weights[..., 0], torch.ones(())) and bool((weights[..., 1:] == 0).all()):
            raise JudgeFailure(f"{name}: one new query after 3 cached positions gave all its weight to the first key: "
                               "the causal mask was built square (top left) instead of offset by the cached positions: "
                               "query i of L_q sees keys j <= i + L_k - L_q")
    if "eval_dropout_error" in data:
        raise JudgeFailure(f"{name}: MultiHeadAttention(..., dropout=0.5) in eval() failed: "
                           f"{data['eval_dropout_error']}")
    dropping, plain = data.get("eval_dropout", [None, None])
    if not (isinstance(dropping, torch.Tensor) and isinstance(plain, torch.Tensor) and dropping.shape == plain.shape
            and torch.allclose(dropping, plain, atol=1e-6)):
        raise JudgeFailure(f"{name}: with dropout=0.5 in eval() mode the output changed: dropout applies in training "
                           "mode only (self.training)")
    if "no_weights_error" in data:
        raise JudgeFailure(f"{name}: a call with need_weights=False failed: {data['no_weights_error']}")
    if data.get("no_weights") is not True:
        raise JudgeFailure(f"{name}: with need_weights=False the second output must be None (the weights are "
                           "returned only when need_weights is True)")
    if "biases_error" in data:
        raise JudgeFailure(f"{name}: MultiHeadAttention(16, 2, bias=False) failed: {data['biases_error']}")
    if data.get("biases") != []:
        raise JudgeFailure(f"{name}: MultiHeadAttention(16, 2, bias=False) has the bias parameters "
                           f"{data.get('biases')}: pass bias=bias to both nn.Linear layers (qkv and out)")


def _check_options(data, name) -> None:
    """Judged last: dropout=0.5 in train() changes the output; causal=False attends to every key."""
    if "train_dropout_error" in data:
        raise JudgeFailure(f"{name}: MultiHeadAttention(..., dropout=0.5) in train() failed: "
                           f"{data['train_dropout_error']}")
    dropped, plain = data.get("train_dropout"), data.get("eval_dropout", [None, None])[1]
    if isinstance(dropped, torch.Tensor) and isinstance(plain, torch.Tensor) and dropped.shape == plain.shape \
            and torch.allclose(dropped, plain, atol=1e-6):
        raise JudgeFailure(f"{name}: MultiHeadAttention(..., dropout=0.5) in train() mode gave the eval output: the "
                           "dropout argument is never used; in training, drop attention weights with probability "
                           "dropout (F.dropout(weights, self.dropout))")
    _check_not_causal(data, name)


def _check_not_causal(data, name) -> None:
    """``causal=False``: every query sees every key (the oracle: ``nn.MultiheadAttention`` with no mask)."""
    from tfs.convert import torch_mha_from_state
    from tfs.grader import judging
    from tfs.grader.collectors.ch07 import gen_model

    if "not_causal_error" in data:
        raise JudgeFailure(f"{name}: MultiHeadAttention(..., causal=False) failed: {data['not_causal_error']}")
    state = {k: v for k, v in gen_model().blocks[0].attn.state_dict().items()}
    x = torch.randn(2, 4, state["out.weight"].shape[0], generator=judging.generator(75))
    with torch.no_grad():
        expected = torch_mha_from_state(state, gen_model().config.n_head)(x, x, x, need_weights=False)[0]
    got = data.get("not_causal")
    if not (isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)):
        raise JudgeFailure(f"{name}: MultiHeadAttention(..., causal=False) differs from attention without a mask: "
                           "the causal mask applies only when causal=True (self.causal); with causal=False every "
                           "query sees every key")


def generate_errors(data) -> None:
    from tfs.grader.collectors.ch07 import GENERATE_ERROR_CASES

    if not isinstance(data, list) or len(data) != len(GENERATE_ERROR_CASES):
        raise JudgeFailure("generate: wrong number of results for bad inputs")
    for case, raised in zip(GENERATE_ERROR_CASES[:-1], data):
        if raised != "ValueError":
            raise JudgeFailure(f"generate with a {case}: expected a ValueError, received {raised}")
    if data[-1] != "no error":
        raise JudgeFailure(f"generate with a {GENERATE_ERROR_CASES[-1]} (prompt + max_new_tokens = block_size): "
                           f"raised {data[-1]}: it fits exactly, the last new token takes the last position; refuse "
                           "only a prompt + max_new_tokens that exceeds block_size (>, not >=)")


def kv_cache_class(data) -> None:
    from tfs.grader.collectors.ch07 import kv_cache_inputs

    name = "KVCache"
    if not isinstance(data, dict):
        raise JudgeFailure(f"{name}: no data")
    if isinstance(data.get("shared"), int) and data["shared"] > 0:
        raise JudgeFailure(f"{name}: a new KVCache() already holds {data['shared']} layer entries once another cache "
                           "was used: lists assigned in the class body are shared by every instance; create them in "
                           "__init__ (self.keys = [])")
    if "error" in data:
        import re

        axis = re.search(r"must match except in dimension (-?\d+)", data["error"])
        if axis and int(axis.group(1)) not in (2, -2):
            raise JudgeFailure(f"{name}: your class failed: {data['error']}: update concatenated along axis "
                               f"{axis.group(1)}, which only works while every call brings the same number of "
                               "positions; the positions are axis 2 of (batch, heads, T, d_head): append along dim=-2")
        raise JudgeFailure(f"{name}: your class failed: {data['error']}")
    if data.get("empty_length") != 0:
        raise JudgeFailure(f"{name}: len(KVCache()) is {data.get('empty_length')}, expected 0: a new cache starts "
                           "empty (lists assigned in the class body are shared by every instance: create them in "
                           "__init__)")
    stored: dict[int, list] = {}
    for i, (layer, k, v) in enumerate(kv_cache_inputs()):
        stored.setdefault(layer, []).append((k, v))
        keys = torch.cat([kk for kk, _ in stored[layer]], dim=-2)
        values = torch.cat([vv for _, vv in stored[layer]], dim=-2)
        got_k, got_v = data["returned"][i]
        what = f"{name}.update({layer}, k, v) (call {i + 1}, {keys.shape[-2]} positions so far in that layer)"
        if tuple(got_k.shape) != tuple(keys.shape) or tuple(got_v.shape) != tuple(values.shape):
            raise JudgeFailure(f"{what}: returned keys {tuple(got_k.shape)}, values {tuple(got_v.shape)}; expected "
                               f"{tuple(keys.shape)}: append along the position axis (dim=-2) and return everything "
                               "cached for that layer")
        if not (torch.equal(got_k, keys) and torch.equal(got_v, values)):
            swapped = torch.equal(got_k, values) and torch.equal(got_v, keys)
            keys_in_values = torch.equal(got_k, keys) and tuple(got_v.shape) == tuple(values.shape) and torch.equal(
                got_v[..., -k.shape[-2]:, :], k)
            raise JudgeFailure(f"{what}: " + ("keys and values swapped" if swapped else
                               "the values hold keys: the new k was appended to the values (append v)"
                               if keys_in_values else
                               "wrong contents: the cached positions first, then the new ones, each layer its own"))
        expected_length = sum(kk.shape[-2] for kk, _ in stored[0])
        if data["lengths"][i] != expected_length:
            raise JudgeFailure(f"{what}: len(cache) is {data['lengths'][i]}, expected {expected_length}, the number "
                               "of cached positions (of layer 0)")


# ---------------------------------------------------------------------------- attention over blocks of keys

def online_attention(data) -> None:
    import torch.nn.functional as F

    from tfs.grader.collectors.ch07 import ONLINE_CASES, online_attention_inputs
    from tfs.teaching.checks import tolerance
    from tfs.teaching.probes_generation import online_attention_mistakes

    check_data(data, [({"out": torch.Tensor}, {"error": str})] * len(ONLINE_CASES), "online_attention")
    for case, item in enumerate(data):
        q, k, v, block_size = online_attention_inputs(case)
        what = (f"online_attention(q {tuple(q.shape)}, k and v {tuple(k.shape)}, block_size={block_size}), "
                f"{q.dtype}")
        expected = F.scaled_dot_product_attention(q, k, v)
        received = _tensor(item, what, expected.shape)
        if received.dtype != q.dtype:
            raise JudgeFailure(f"{what}: dtype {received.dtype}, expected the inputs' {q.dtype}")
        rtol, atol = tolerance("attention", q.dtype)
        if torch.allclose(received, expected, rtol=rtol, atol=atol):
            continue
        for mistake, wrong in online_attention_mistakes(q, k, v, block_size).items():
            if torch.allclose(received, wrong, rtol=1e-3, atol=1e-5, equal_nan=True):
                raise JudgeFailure(f"{what}: this looks like {mistake}")
        if torch.isnan(received).any():
            raise JudgeFailure(f"{what}: the result contains NaN: an exp that overflowed, or 0 times infinity "
                               "(the first block, when the running maximum is still -inf)?")
        raise JudgeFailure(f"{what}: differs from F.scaled_dot_product_attention(q, k, v) by up to "
                           f"{(received - expected).abs().max():.3g}")
