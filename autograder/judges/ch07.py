"""Judges for chapter 07 (generation). Oracles: ``transformers``' logits processors and
``GPT2LMHeadModel.generate`` on the weights of the collector's model (converted with ``tfs.convert.gpt``)."""

from __future__ import annotations

import torch
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from tfs.grader.collectors.ch07 import (GEN_EOS, GEN_PAD, TOP_K_CASES, TOP_P_CASES, filter_logits, gen_model,
                                        gen_prompts)
from tfs.grader.judging import JudgeFailure


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
        raise JudgeFailure(f"{what}: kept {kept_r.tolist()} tokens per row, expected {kept_e.tolist()}")
    if not torch.equal(received[keep_r], logits[keep_e]):
        raise JudgeFailure(f"{what}: the kept logits changed; a filter only removes tokens, it leaves the "
                           "others' logits as they were")
    if received.dtype != logits.dtype:
        raise JudgeFailure(f"{what}: dtype {received.dtype}, expected the input's {logits.dtype}")


def top_k(data) -> None:
    if len(data) != len(TOP_K_CASES):
        raise JudgeFailure("top_k_filter: wrong number of results")
    for seed, ((k, rows), item) in enumerate(zip(TOP_K_CASES, data)):
        logits = filter_logits(seed, rows)
        what = f"top_k_filter(logits of shape {tuple(logits.shape)}, top_k={k})"
        received = _tensor(item, what, logits.shape)
        expected = TopKLogitsWarper(k)(None, logits.clone())
        if seed == 0 and k == 1 and _kept(received)[0].sum() == 1 and _kept(received)[0, 1:3].sum() == 1:
            raise JudgeFailure(f"{what}: with a tie at the k-th largest logit keep every tied token "
                               "(compare with the k-th value, >=, rather than taking k indices)")
        _check_filter(received, expected, logits, what)


def top_p(data) -> None:
    if len(data) != len(TOP_P_CASES):
        raise JudgeFailure("top_p_filter: wrong number of results")
    for i, (p, item) in enumerate(zip(TOP_P_CASES, data)):
        logits = filter_logits(10 + i)
        what = f"top_p_filter(logits of shape {tuple(logits.shape)}, top_p={p})"
        received = _tensor(item, what, logits.shape)
        expected = TopPLogitsWarper(p)(None, logits.clone())
        _check_filter(received, expected, logits, what)


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
        rows = [i for i in range(batch.shape[0]) if not torch.equal(received[i], batch[i])]
        short = [i for i in rows if mask[i].sum() < mask.shape[1]]
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
    padded = torch.cat([eos, torch.full((eos.shape[0], width - eos.shape[1]), GEN_EOS)], dim=1)
    if not torch.equal(received, padded):
        raise JudgeFailure(f"generate(..., eos_token_id={GEN_EOS}): a row that produced EOS must be continued "
                           "with EOS only (finished), the others as before")
