"""Chapter 07's judges: the solution's data passes, plausible mistakes fail with a message naming them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from tfs.generate import generate as reference_generate
from tfs.generate import top_k_filter, top_p_filter
from tfs.grader.collectors import ch07 as collectors
from tfs.grader.judging import JudgeFailure, plain
from tfs.nn import KVCache

pytest.importorskip("transformers")
_spec = importlib.util.spec_from_file_location(
    "judges_ch07", Path(__file__).resolve().parents[1] / "autograder" / "judges" / "ch07.py")
judges = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(judges)

INF = float("-inf")


def run(name, **objects):
    getattr(judges, name)(plain(getattr(collectors, name)(**objects)))


def fails(name, match, **objects):
    with pytest.raises(JudgeFailure, match=match):
        run(name, **objects)


# ----------------------------------------------------------------------------------------------- top-k

def test_top_k_solution_passes():
    run("top_k", top_k_filter=top_k_filter)


def top_k_zero_fill(logits, k):
    return top_k_filter(logits, k).nan_to_num(neginf=0.0)


def top_k_plus_one(logits, k):
    return top_k_filter(logits, min(k + 1, logits.shape[-1]))


def top_k_by_index(logits, k):  # drops tokens tied with the k-th
    index = torch.topk(logits, min(k, logits.shape[-1])).indices
    return torch.full_like(logits, INF).scatter(-1, index, logits.gather(-1, index))


def top_k_smallest(logits, k):
    kth = torch.topk(logits, min(k, logits.shape[-1]), largest=False).values[..., -1:]
    return logits.masked_fill(logits > kth, INF)


def top_k_crash(logits, k):
    raise RuntimeError("boom")


@pytest.mark.parametrize("mutant, message", [
    (top_k_zero_fill, "set to 0"), (top_k_plus_one, "one token too many"), (top_k_by_index, "tie"),
    (top_k_smallest, "most likely token was filtered"), (top_k_crash, "failed: RuntimeError: boom")])
def test_top_k_mutants_fail_with_their_mistake(mutant, message):
    fails("top_k", message, top_k_filter=mutant)


# ----------------------------------------------------------------------------------------------- top-p

def test_top_p_solution_passes():
    run("top_p", top_p_filter=top_p_filter)


def top_p_without_crossing_token(logits, p):  # keeps tokens only while the mass so far is below p
    probs, order = logits.softmax(-1).sort(descending=True)
    before = probs.cumsum(-1) - probs
    keep_sorted = (probs.cumsum(-1) < p) | (before == 0)
    keep = keep_sorted.scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, INF)


def top_p_zero_fill(logits, p):
    return top_p_filter(logits, p).nan_to_num(neginf=0.0)


def top_p_wrong_end(logits, p):  # sorted the wrong way: drops the likely head
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    drop = sorted_logits.softmax(-1).cumsum(-1) <= 1 - p
    drop[..., -1] = False
    return logits.masked_fill(drop.scatter(-1, order, drop), INF)


def top_p_changes_logits(logits, p):
    out = top_p_filter(logits, p)
    return out - out[torch.isfinite(out)].max()  # shifted: the kept logits changed


@pytest.mark.parametrize("mutant, message", [
    (top_p_without_crossing_token, "one token too few"), (top_p_zero_fill, "set to 0"),
    (top_p_wrong_end, "most likely token was filtered"), (top_p_changes_logits, "kept logits changed")])
def test_top_p_mutants_fail_with_their_mistake(mutant, message):
    fails("top_p", message, top_p_filter=mutant)


# -------------------------------------------------------------------------------------------- generate

def solution_generate(model, input_ids, max_new_tokens, attention_mask=None, eos_token_id=None,
                      positions_from_mask=True, extend_mask=True, stop_at_eos=True):
    """The chapter's loop, with switches that turn it into the usual mistakes."""
    mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
    ids, new, cache = input_ids, input_ids, KVCache()
    finished = torch.zeros(ids.shape[0], dtype=torch.bool)
    for _ in range(max_new_tokens):
        start = len(cache)
        if positions_from_mask:
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1]:]
        else:
            positions = torch.arange(start, start + new.shape[1]).expand(ids.shape[0], -1)
        with torch.no_grad():
            logits = model(new, attention_mask=mask if extend_mask else None, cache=cache,
                           position_ids=positions)[0][:, -1]
        token = logits.argmax(-1)
        if eos_token_id is not None and stop_at_eos:
            token = torch.where(finished, torch.full_like(token, eos_token_id), token)
            finished |= token == eos_token_id
        ids = torch.cat([ids, token[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        new = token[:, None]
    return ids


def test_generate_solution_and_package_pass():
    run("generate", generate=solution_generate)
    run("generate", generate=reference_generate)


def test_generate_data_exercises_eos():
    model = collectors.gen_model()
    ids, mask = __import__("tfs.generate", fromlist=["left_pad"]).left_pad(collectors.gen_prompts(), collectors.GEN_PAD)
    out = reference_generate(model, ids, 12, attention_mask=mask)
    assert (out[:, ids.shape[1]:] == collectors.GEN_EOS).any()  # some row meets EOS, so the EOS check bites


@pytest.mark.parametrize("mutant, message", [
    (lambda *a, **k: solution_generate(*a, **k, positions_from_mask=False), "cumulative sum"),
    (lambda *a, **k: solution_generate(*a, **k, extend_mask=False), "padded prompts"),
    (lambda *a, **k: solution_generate(*a, **k, stop_at_eos=False), "continued\\s+with EOS"),
    (lambda model, ids, n, **k: solution_generate(model, ids, n, **k)[:, ids.shape[1]:], "shape"),
])
def test_generate_mutants_fail_with_their_mistake(mutant, message):
    fails("generate", message, generate=mutant)
