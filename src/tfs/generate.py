"""Decoding for the course's GPT (chapter 07): logits processors, greedy, sampling, beam search.

Every function here works on any model called as ``model(idx, attention_mask=, cache=, position_ids=)
-> (logits, loss)`` (the package's :class:`tfs.models.gpt.GPT`), and agrees with ``transformers``'
``model.generate`` on the same weights (``tests/test_generate.py``).

**Logits processors** are small functions ``(logits (batch, vocab), ...) -> logits`` that compose, applied
in ``transformers``' order by :func:`process_logits`: repetition penalty, then temperature, top-k, top-p.
Filtered tokens get ``-inf``, so a softmax gives them probability 0.

**Conventions.**

- ``temperature=0`` is greedy decoding (the arg-max), not an error; a negative temperature is an error.
- ``attention_mask`` is a tokenizer's 0/1 mask, 1 = token. Batches are padded on the **left**, so every
  prompt's last token sits in the last column and the next token is appended after it; position ids come
  from the mask's cumulative sum (``cumsum - 1``), so a padded prompt sees the positions it sees alone.
- Generation stops at ``max_new_tokens`` or when every sequence has produced ``eos_token_id``; a finished
  sequence is continued with ``pad_token_id`` (default: the EOS id), as ``transformers`` does.
- **A prompt longer than the context**: with learned positions the model cannot see more than
  ``block_size`` tokens, so prompt + ``max_new_tokens`` must fit. By default a ``ValueError`` says so;
  ``truncate=True`` keeps the prompt's last ``block_size - max_new_tokens`` tokens (its beginning is dropped).
- With ``use_cache=True`` the prompt is run once and each later step feeds only the new token, reusing
  past keys and values from a :class:`tfs.nn.KVCache` (beam search reorders the cache when beams swap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from tfs.nn import KVCache

__all__ = ["apply_repetition_penalty", "apply_temperature", "beam_search", "check_generation_args", "generate",
           "kv_cache_bytes", "left_pad", "position_ids_from_mask", "process_logits", "reorder_cache",
           "top_k_filter", "top_p_filter"]


# ----------------------------------------------------------------------------------------------- checks

def _check_temperature(temperature: float) -> None:
    if not isinstance(temperature, (int, float)) or math.isnan(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy); received {temperature!r}")


def _check_top_k(top_k: int | None) -> None:
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 (or None for no top-k filter); received {top_k!r}")


def _check_top_p(top_p: float | None) -> None:
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must lie in (0, 1] (1 keeps every token; None for no top-p filter); "
                         f"received {top_p!r}")


def _check_penalty(penalty: float | None) -> None:
    if penalty is not None and (not isinstance(penalty, (int, float)) or not penalty > 0):
        raise ValueError(f"repetition_penalty must be > 0 (1 = no penalty, > 1 discourages repeats); "
                         f"received {penalty!r}")


def check_generation_args(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                          repetition_penalty: float | None = None) -> None:
    """Raise a ``ValueError`` naming the first bad setting."""
    _check_temperature(temperature)
    _check_top_k(top_k)
    _check_top_p(top_p)
    _check_penalty(repetition_penalty)


# ------------------------------------------------------------------------------------------ processors

def apply_repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """The repetition penalty as ``transformers`` applies it: every token already in ``input_ids (batch, T)`` has
    its logit divided by ``penalty`` when positive, multiplied by it when negative, so it always drops for
    ``penalty > 1``. (CTRL, Keskar et al. 2019, divides every such logit by the penalty, which raises a negative
    one.) ``logits (batch, vocab)`` -> ``(batch, vocab)``."""
    _check_penalty(penalty)
    seen = logits.gather(1, input_ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(1, input_ids, seen)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` (``temperature > 0``; 0 means greedy and is handled by the caller)."""
    _check_temperature(temperature)
    if temperature == 0:
        raise ValueError("temperature 0 means greedy decoding: take the arg-max instead of dividing by 0")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Keep the ``top_k`` largest logits of each row (ties with the k-th are kept), set the rest to ``-inf``."""
    _check_top_k(top_k)
    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the most likely tokens whose probabilities sum to at least
    ``top_p``, set the rest to ``-inf``; the most likely token is always kept.

    Sorted from least likely up, a token is dropped when the probability of it and every less likely token
    is ``<= 1 - top_p`` (``transformers``' rule, so both keep the same set)."""
    _check_top_p(top_p)
    sorted_logits, order = torch.sort(logits, dim=-1, descending=False)
    tail_mass = sorted_logits.softmax(dim=-1).cumsum(dim=-1)  # mass of this token and all less likely ones
    drop_sorted = tail_mass <= 1 - top_p
    drop_sorted[..., -1] = False  # the most likely token stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def process_logits(logits: torch.Tensor, input_ids: torch.Tensor | None = None, temperature: float = 1.0,
                   top_k: int | None = None, top_p: float | None = None,
                   repetition_penalty: float | None = None) -> torch.Tensor:
    """Repetition penalty (needs ``input_ids``), temperature, top-k, top-p, in that order (``transformers``').
    ``temperature=0`` skips the division (greedy takes the arg-max, which no filter removes)."""
    check_generation_args(temperature, top_k, top_p, repetition_penalty)
    if repetition_penalty is not None and repetition_penalty != 1.0:
        if input_ids is None:
            raise ValueError("a repetition penalty needs the tokens so far (input_ids)")
        logits = apply_repetition_penalty(logits, input_ids, repetition_penalty)
    if temperature not in (0, 1):
        logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = top_p_filter(logits, top_p)
    return logits


# ------------------------------------------------------------------------------------- batches, caches

def left_pad(prompts: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists -> ``(input_ids (batch, T), attention_mask (batch, T))``, padded on the left."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (an empty prompt gives the model nothing to "
                         "continue: start it with a BOS/EOS token)")
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.as_tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids, mask


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """``(batch, T)`` 0/1 mask -> position ids ``cumsum - 1``: each row's first real token is position 0
    (padding gets 0 too; padded positions are never attended to)."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)


def reorder_cache(cache: KVCache, index: torch.Tensor) -> KVCache:
    """Keep rows ``index`` of every cached key and value (beam search: each beam continues a chosen parent)."""
    cache.keys = [k.index_select(0, index) for k in cache.keys]
    cache.values = [v.index_select(0, index) for v in cache.values]
    return cache


def kv_cache_bytes(n_layer: int, n_kv_heads: int, d_head: int, length: int, batch: int = 1,
                   dtype: torch.dtype = torch.float32) -> int:
    """Memory of a KV cache: ``2 (K and V) x layers x batch x kv heads x length x d_head x bytes``.
    Multi-query (1 KV head) and grouped-query attention shrink it by ``n_heads / n_kv_heads``."""
    return 2 * n_layer * batch * n_kv_heads * length * d_head * torch.empty((), dtype=dtype).element_size()


def _block_size(model) -> int | None:
    config = getattr(model, "config", None)
    return getattr(config, "block_size", None)


def _prepare(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, max_new_tokens: int,
             truncate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(f"input_ids must be a (batch, T) tensor of token ids; received "
                         f"{type(input_ids).__name__} {tuple(getattr(input_ids, 'shape', ()))}")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"empty prompt (input_ids of shape {tuple(input_ids.shape)}): the model needs at least "
                         "one token to continue (start it with a BOS/EOS token)")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0; received {max_new_tokens!r}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must have input_ids' shape "
                         f"{tuple(input_ids.shape)}")
    if (attention_mask.sum(dim=-1) == 0).any():
        raise ValueError("a prompt of the batch is all padding (empty prompt)")
    if (attention_mask[:, -1] == 0).any():
        raise ValueError("padding at the end of a prompt: pad on the left (tokenizer.padding_side = 'left'), "
                         "so each prompt's last token is the one the next token follows")
    block_size = _block_size(model)
    if block_size is not None and input_ids.shape[1] + max_new_tokens > block_size:
        room = block_size - max_new_tokens
        if not truncate:
            raise ValueError(f"prompt of {input_ids.shape[1]} tokens + max_new_tokens={max_new_tokens} exceeds the "
                             f"context of {block_size} positions: shorten the prompt, generate fewer tokens, or pass "
                             f"truncate=True to keep the prompt's last {max(room, 0)} tokens")
        if room < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a context of "
                             f"{block_size} positions")
        input_ids, attention_mask = input_ids[:, -room:], attention_mask[:, -room:]
        if (attention_mask.sum(dim=-1) == 0).any():
            raise ValueError("after truncation a prompt is all padding")
    return input_ids, attention_mask


def _logits(model, ids: torch.Tensor, mask: torch.Tensor, cache: KVCache | None, padded: bool | None = None
            ) -> torch.Tensor:
    """Next-token logits ``(batch, vocab)`` after ``ids`` (the new tokens when a cache holds the rest).

    Without padding (``padded=False``, checked once by the caller) the model needs neither a mask nor
    position ids: its causal mask and ``0 .. T-1`` are right, and a decoding step builds nothing per call."""
    padded = bool((mask == 0).any()) if padded is None else padded
    if not padded:
        logits, _ = model(ids, cache=cache)
    else:
        positions = position_ids_from_mask(mask)[:, -ids.shape[1]:]
        logits, _ = model(ids, attention_mask=mask, cache=cache, position_ids=positions)
    return logits[:, -1, :].float()


# ------------------------------------------------------------------------------------ greedy, sampling

@torch.no_grad()
def generate(model, input_ids: torch.Tensor, max_new_tokens: int, *, attention_mask: torch.Tensor | None = None,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             repetition_penalty: float | None = None, eos_token_id: int | None = None,
             pad_token_id: int | None = None, generator: torch.Generator | None = None, use_cache: bool = True,
             truncate: bool = False) -> torch.Tensor:
    """Continue ``input_ids (batch, T)`` (left-padded with ``attention_mask``) by up to ``max_new_tokens``.

    ``temperature=0`` (the default) is greedy: the arg-max after the repetition penalty. ``temperature > 0``
    samples from ``softmax(processed logits)`` with ``generator`` (seed it for reproducible samples).
    Returns ``(batch, T + n)`` ids, ``n <= max_new_tokens`` (shorter when every row hit ``eos_token_id``)."""
    check_generation_args(temperature, top_k, top_p, repetition_penalty)
    input_ids, mask = _prepare(model, input_ids, attention_mask, max_new_tokens, truncate)
    pad = eos_token_id if pad_token_id is None else pad_token_id
    was_training = model.training
    model.eval()
    try:
        batch, prompt = input_ids.shape
        padded = bool((mask == 0).any())  # once: the new tokens are never padding
        # one buffer for the prompt and every new token (and its mask), written in place: no growing torch.cat
        out = torch.empty((batch, prompt + max_new_tokens), dtype=input_ids.dtype, device=input_ids.device)
        out[:, :prompt] = input_ids
        full_mask = torch.ones((batch, prompt + max_new_tokens), dtype=mask.dtype, device=mask.device)
        full_mask[:, :prompt] = mask
        cache = KVCache() if use_cache else None
        unfinished = torch.ones(batch, dtype=torch.bool, device=input_ids.device) if eos_token_id is not None else None
        length = prompt
        new = input_ids  # what the model has not seen yet
        for _ in range(max_new_tokens):
            ids = out[:, :length]
            logits = _logits(model, new if use_cache else ids, full_mask[:, :length], cache, padded)
            logits = process_logits(logits, ids, temperature, top_k, top_p, repetition_penalty)
            if temperature == 0:
                token = logits.argmax(dim=-1)
            else:
                token = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator).squeeze(-1)
            if unfinished is not None:
                token = torch.where(unfinished, token, torch.full_like(token, pad))
                unfinished = unfinished & (token != eos_token_id)
            out[:, length] = token
            length += 1
            new = out[:, length - 1: length]
            if unfinished is not None and not unfinished.any():
                break
        return out[:, :length]
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------- beam search

@torch.no_grad()
def _beam_search_one(model, prompt: torch.Tensor, max_new_tokens: int, num_beams: int, length_penalty: float,
                     eos_token_id: int | None, use_cache: bool, early_stopping: bool | str,
                     repetition_penalty: float | None) -> tuple[list[torch.Tensor], list[float]]:
    """Beam search for one unpadded prompt ``(T,)``: the finished hypotheses, best first, and their scores.

    ``transformers``' algorithm: each step takes the ``2 * num_beams`` best (beam, token) continuations by
    total log-probability; those ending in EOS *and* ranked among the best ``num_beams`` become finished
    hypotheses scored ``sum log p / generated_length ** length_penalty``; the best ``num_beams`` others
    continue. At ``max_new_tokens`` the best running beams are finished too. Without ``early_stopping``,
    the search stops once the best running beam (scored at its current length) cannot beat the worst of
    ``num_beams`` finished hypotheses."""
    prompt_len = prompt.shape[0]
    keep = 2 * num_beams
    running = prompt[None].repeat(num_beams, 1)  # (beams, t)
    running_scores = torch.full((num_beams,), -1e9)
    running_scores[0] = 0.0  # every beam starts as the prompt: let only the first one expand at step 1
    finished: list[tuple[float, torch.Tensor]] = []
    cache = KVCache() if use_cache else None
    new = running
    for step in range(max_new_tokens):
        mask = torch.ones_like(running)
        logits = _logits(model, new if use_cache else running, mask, cache)
        log_probs = F.log_softmax(logits, dim=-1)
        if repetition_penalty is not None and repetition_penalty != 1.0:
            log_probs = apply_repetition_penalty(log_probs, running, repetition_penalty)
        vocab = log_probs.shape[-1]
        total = (log_probs + running_scores[:, None]).reshape(-1)  # (beams * vocab)
        top_scores, top_index = torch.topk(total, keep)
        parents, tokens = top_index // vocab, top_index % vocab
        last = step == max_new_tokens - 1
        ends = (tokens == eos_token_id) if eos_token_id is not None else torch.zeros(keep, dtype=torch.bool)
        if last:
            ends = torch.ones(keep, dtype=torch.bool)
        length = step + 1
        # finished hypotheses: only among the best num_beams candidates
        full = len(finished) >= num_beams
        for rank in range(num_beams):
            if ends[rank]:
                score = top_scores[rank].item() / length ** length_penalty
                if early_stopping is True and full:
                    continue
                seq = torch.cat([running[parents[rank]], tokens[rank:rank + 1]])
                finished.append((score, seq))
        finished.sort(key=lambda item: -item[0])
        finished = finished[:num_beams]
        # the best num_beams candidates that did not end continue
        alive_scores = top_scores + ends.float() * -1e9
        order = torch.topk(alive_scores, num_beams).indices
        chosen_parents = parents[order]
        running = torch.cat([running[chosen_parents], tokens[order][:, None]], dim=1)
        running_scores = alive_scores[order]
        if cache is not None:
            reorder_cache(cache, chosen_parents)
        new = tokens[order][:, None]
        if last:
            break
        # stop when no running beam can beat the worst finished one (transformers' heuristic)
        if len(finished) == num_beams:
            if early_stopping is True:
                break
            best_length = (max_new_tokens if early_stopping == "never" and length_penalty > 0 else length)
            best_possible = running_scores[0].item() / best_length ** length_penalty
            if best_possible <= finished[-1][0]:
                break
    del prompt_len
    return [seq for _, seq in finished], [score for score, _ in finished]


@torch.no_grad()
def beam_search(model, input_ids: torch.Tensor, max_new_tokens: int, num_beams: int, *,
                attention_mask: torch.Tensor | None = None, length_penalty: float = 1.0,
                eos_token_id: int | None = None, pad_token_id: int | None = None, num_return_sequences: int = 1,
                early_stopping: bool | str = False, repetition_penalty: float | None = None,
                use_cache: bool = True, truncate: bool = False, return_scores: bool = False):
    """Beam search with ``num_beams`` beams for each prompt of ``input_ids (batch, T)`` (left-padded with
    ``attention_mask``), as ``model.generate(num_beams=..., do_sample=False)``.

    ``length_penalty`` divides a hypothesis' summed log-probability by ``generated_length ** length_penalty``
    (> 0 favours longer sequences, 0 compares raw sums). Returns ``(batch * num_return_sequences, T + n)``
    ids, best first, finished rows padded with ``pad_token_id`` (default: EOS); with ``return_scores`` also
    the ``(batch * num_return_sequences,)`` scores. Each prompt is searched on its own, unpadded."""
    if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1 (1 is greedy); received {num_beams!r}")
    if not 1 <= num_return_sequences <= num_beams:
        raise ValueError(f"num_return_sequences={num_return_sequences} must lie in [1, num_beams={num_beams}]")
    _check_penalty(repetition_penalty)
    input_ids, mask = _prepare(model, input_ids, attention_mask, max_new_tokens, truncate)
    pad = eos_token_id if pad_token_id is None else pad_token_id
    if pad is None:
        pad = 0
    was_training = model.training
    model.eval()
    try:
        rows, scores = [], []
        for prompt, prompt_mask in zip(input_ids, mask):
            real = prompt[prompt_mask.bool()]
            if max_new_tokens == 0:
                hyps, hyp_scores = [real] * num_return_sequences, [0.0] * num_return_sequences
            else:
                hyps, hyp_scores = _beam_search_one(model, real, max_new_tokens, num_beams, length_penalty,
                                                    eos_token_id, use_cache, early_stopping, repetition_penalty)
            n_pad = prompt.shape[0] - real.shape[0]
            for hyp, score in zip(hyps[:num_return_sequences], hyp_scores[:num_return_sequences]):
                rows.append(torch.cat([prompt[:n_pad], hyp]))
                scores.append(score)
        width = max(row.shape[0] for row in rows)
        out = torch.full((len(rows), width), pad, dtype=torch.long, device=input_ids.device)
        for i, row in enumerate(rows):
            out[i, :row.shape[0]] = row
        return (out, torch.tensor(scores)) if return_scores else out
    finally:
        model.train(was_training)
