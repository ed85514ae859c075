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
from tfs.teaching.probes_generation import TransformersCache

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


def top_p_running_total_below_p(logits, p):  # keeps tokens while the total so far is below p: no guard for the top
    probs, order = logits.softmax(-1).sort(descending=True)
    keep_sorted = probs.cumsum(-1) < p
    return logits.masked_fill(~keep_sorted.scatter(-1, order, keep_sorted), INF)


def top_p_mass_before_below_p(logits, p):  # another correct rule: keep a token while the mass before it is below p
    if not 0 < p <= 1:
        raise ValueError(p)
    probs, order = logits.softmax(-1).sort(descending=True)
    keep_sorted = probs.cumsum(-1) - probs < p
    return logits.masked_fill(~keep_sorted.scatter(-1, order, keep_sorted), INF)


def test_top_p_other_correct_rule_passes():
    run("top_p", top_p_filter=top_p_mass_before_below_p)


def top_p_changes_logits(logits, p):
    out = top_p_filter(logits, p)
    return out - out[torch.isfinite(out)].max()  # shifted: the kept logits changed


def top_p_running_total_of_logits(logits, p):  # held-out list: the running total of the sorted logits, no softmax
    sorted_logits, order = torch.sort(logits, dim=-1)
    drop = sorted_logits.cumsum(-1) <= 1 - p
    drop[..., -1] = False
    return logits.masked_fill(drop.scatter(-1, order, drop), INF)


@pytest.mark.parametrize("mutant, message", [
    (top_p_without_crossing_token, "one token too few"), (top_p_zero_fill, "set to 0"),
    (top_p_wrong_end, "most likely token was filtered"), (top_p_changes_logits, "kept logits changed"),
    (top_p_running_total_below_p, "keep no token at all"), (top_p_running_total_of_logits, "not the logits themselves")])
def test_top_p_mutants_fail_with_their_mistake(mutant, message):
    fails("top_p", message, top_p_filter=mutant)


# -------------------------------------------------------------------------------------------- generate

def solution_generate(model, input_ids, max_new_tokens, attention_mask=None, eos_token_id=None, temperature=0.0,
                      top_k=None, top_p=None, generator=None, positions_from_mask=True, extend_mask=True,
                      stop_at_eos=True, pass_positions=True, seeded=True, filter_before_temperature=False,
                      feed_all=False, use_cache=True):
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
            logits = model(new, attention_mask=mask if extend_mask else None, cache=cache if use_cache else None,
                           position_ids=positions if pass_positions else None)[0][:, -1]
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            z = logits if filter_before_temperature else logits / temperature
            z = top_k_filter(z, top_k) if top_k else z
            z = top_p_filter(z, top_p) if top_p else z
            z = z / temperature if filter_before_temperature else z
            token = torch.multinomial(z.softmax(-1), 1, generator=generator if seeded else None)[:, 0]
        if eos_token_id is not None and stop_at_eos:
            token = torch.where(finished, torch.full_like(token, eos_token_id), token)
            finished |= token == eos_token_id
        ids = torch.cat([ids, token[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        new = ids if feed_all else token[:, None]
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
    (lambda *a, **k: solution_generate(*a, **k, positions_from_mask=False), "column indices"),
    (lambda *a, **k: solution_generate(*a, **k, pass_positions=False), "without position_ids"),
    (lambda *a, **k: solution_generate(*a, **k, seeded=False), "same seed sampled different tokens"),
    (lambda *a, **k: solution_generate(*a, **k, filter_before_temperature=True), "divide the logits by the temperature first"),
    (lambda *a, **k: solution_generate(*a, **k, extend_mask=False), "without attention_mask"),
    (lambda *a, **k: solution_generate(*a, **k, stop_at_eos=False), "continued\\s+with EOS"),
    (lambda model, ids, n, **k: solution_generate(model, ids, n, **k)[:, ids.shape[1]:], "shape"),
    (lambda *a, **k: solution_generate(*a, **k, feed_all=True), "only the new token"),  # held-out list
    (lambda *a, **k: solution_generate(*a, **k, feed_all=True, use_cache=False), "without a cache"),
])
def test_generate_mutants_fail_with_their_mistake(mutant, message):
    fails("generate", message, generate=mutant)


# ---------------------------------------------------------------------------------- repetition penalty

from tfs.generate import apply_repetition_penalty, beam_search as reference_beam_search  # noqa: E402
from tfs.nn import MultiHeadAttention as ReferenceAttention  # noqa: E402


def test_repetition_penalty_solution_passes():
    run("repetition_penalty", apply_repetition_penalty=apply_repetition_penalty)


def penalty_divides_always(logits, ids, penalty):
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter(1, ids, True)
    return torch.where(seen, logits / penalty, logits)


def penalty_inverted(logits, ids, penalty):
    seen = logits.gather(1, ids)
    return logits.scatter(1, ids, torch.where(seen < 0, seen / penalty, seen * penalty))


def penalty_per_occurrence(logits, ids, penalty):
    out = logits.clone()
    for row in range(ids.shape[0]):
        for token in ids[row].tolist():
            value = out[row, token]
            out[row, token] = value * penalty if value < 0 else value / penalty
    return out


def penalty_everywhere(logits, ids, penalty):
    return torch.where(logits < 0, logits * penalty, logits / penalty)


def penalty_in_place(logits, ids, penalty):
    logits.copy_(apply_repetition_penalty(logits, ids, penalty))
    return logits


@pytest.mark.parametrize("mutant, message", [
    (penalty_divides_always, "negative logits were divided"), (penalty_inverted, "inverted"),
    (penalty_per_occurrence, "once per\\s+occurrence"), (penalty_everywhere, "not in input_ids changed"),
    (penalty_in_place, "logits you were given changed"), (lambda *a: top_k_crash(*a[:2]), "failed: RuntimeError: boom")])
def test_repetition_penalty_mutants_fail_with_their_mistake(mutant, message):
    fails("repetition_penalty", message, apply_repetition_penalty=mutant)


def penalised_generate(model, input_ids, max_new_tokens, repetition_penalty=None, prompt_only=False, ignore=False):
    ids = input_ids
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(ids)[0][:, -1]
        if not ignore:
            logits = apply_repetition_penalty(logits, input_ids if prompt_only else ids, repetition_penalty)
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    return ids


def test_generate_penalty_solution_and_package_pass():
    run("generate_penalty", generate=penalised_generate)
    run("generate_penalty", generate=reference_generate)


@pytest.mark.parametrize("mutant, message", [
    (lambda *a, **k: penalised_generate(*a, **k, ignore=True), "penalty was ignored"),
    (lambda *a, **k: penalised_generate(*a, **k, prompt_only=True), "the prompt and the generated tokens"),
])
def test_generate_penalty_mutants_fail_with_their_mistake(mutant, message):
    fails("generate_penalty", message, generate=mutant)


# ------------------------------------------------------------------------------------------ beam search

def learner_beam_search(model, input_ids, max_new_tokens, num_beams, length_penalty=1.0, eos_token_id=None,
                        use_length_penalty=True, use_eos=True, beams_override=None):
    """The chapter's beam search (no cache), with switches that turn it into the usual mistakes."""
    if num_beams < 1:
        raise ValueError(num_beams)
    num_beams = beams_override or num_beams
    eos_token_id = eos_token_id if use_eos else None
    length_penalty = length_penalty if use_length_penalty else 0.0
    beams = input_ids.repeat(num_beams, 1)
    scores = torch.full((num_beams,), -1e9)
    scores[0] = 0.0
    finished = []
    for step in range(max_new_tokens):
        with torch.no_grad():
            log_p = model(beams)[0][:, -1].float().log_softmax(-1)
        vocab = log_p.shape[-1]
        top, index = (scores[:, None] + log_p).flatten().topk(2 * num_beams)
        last = step == max_new_tokens - 1
        next_beams, next_scores = [], []
        for rank in range(2 * num_beams):
            parent, token = index[rank] // vocab, index[rank] % vocab
            seq = torch.cat([beams[parent], token[None]])
            if last or token == eos_token_id:
                if rank < num_beams:
                    finished.append((top[rank].item() / (step + 1) ** length_penalty, seq))
            elif len(next_beams) < num_beams:
                next_beams.append(seq)
                next_scores.append(top[rank])
        finished = sorted(finished, key=lambda f: f[0], reverse=True)[:num_beams]
        if last or len(finished) == num_beams:
            break
        beams, scores = torch.stack(next_beams), torch.stack(next_scores)
    return finished[0][1][None]


def test_beam_search_solution_and_package_pass():
    run("beam_search", beam_search=learner_beam_search)
    run("beam_search", beam_search=lambda *a, **k: reference_beam_search(*a, **k, early_stopping=True))


@pytest.mark.parametrize("mutant, message", [
    (lambda *a, **k: learner_beam_search(*a, **k, beams_override=1), "greedy continuation"),
    (lambda *a, **k: learner_beam_search(*a, **k, use_length_penalty=False), "length penalty (was )?not applied"),
    (lambda *a, **k: learner_beam_search(*a, **k, use_eos=False), "EOS (was )?ignored"),
    (lambda *a, **k: learner_beam_search(*a, **k)[:, 1:], "start with the prompt"),
    (lambda *a, **k: torch.cat([learner_beam_search(*a, **k)] * 2), "\\(1, T \\+ n\\)"),
])
def test_beam_search_mutants_fail_with_their_mistake(mutant, message):
    fails("beam_search", message, beam_search=mutant)


def test_beam_search_known_mistakes_are_named():
    """A mistake of :func:`beam_search_mistakes` is named when it explains every case where the result is wrong."""
    from tfs.teaching.probes_generation import _beam_search

    for switch, message in (("finish_all_eos", "ranked outside the best num_beams"), ("length_with_prompt", "prompt included"),
                            ("stop_at_first", "first finished hypothesis"), ("all_beams_start", "copies of one another")):
        def mutant(model, ids, n, beams, length_penalty=1.0, eos_token_id=None, switch=switch):
            if beams < 1:
                raise ValueError(beams)
            return _beam_search(model, ids, n, beams, length_penalty, eos_token_id, **{switch: True})
        fails("beam_search", message, beam_search=mutant)


def test_beam_search_cases_exercise_eos_and_length_penalty():
    """The collector's cases make EOS and the length penalty matter: each changes the result somewhere."""
    model, prompts = collectors.gen_model(), collectors.gen_prompts()
    eos_matters = lp_matters = False
    for i, beams, lp, eos, n in collectors.BEAM_CASES:
        x = torch.tensor([prompts[i]])
        out = learner_beam_search(model, x, n, beams, lp, eos)
        eos_matters |= eos is not None and not torch.equal(out, learner_beam_search(model, x, n, beams, lp, None))
        lp_matters |= eos is not None and not torch.equal(out, learner_beam_search(model, x, n, beams, 0.0, eos))
    assert eos_matters and lp_matters


# --------------------------------------------------------------------------------------------- KV cache

class AppendNothingCache(KVCache):  # replaces each layer's entry instead of appending
    def update(self, layer, k, v):
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class HeadsAxisCache(KVCache):  # concatenates along the heads axis: the new positions become extra heads
    def update(self, layer, k, v):
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=1)
            self.values[layer] = torch.cat([self.values[layer], v], dim=1)
        return self.keys[layer], self.values[layer]


class SharedListsCache(KVCache):  # lists in the class body: every instance shares them
    keys, values = [], []

    def __init__(self):
        pass


class OneEntryCache(KVCache):  # ignores the layer: every layer appends to entry 0
    def update(self, layer, k, v):
        return super().update(0, k, v)


def test_kv_cache_class_solution_passes():
    run("kv_cache_class", KVCache=KVCache)


@pytest.mark.parametrize("cache, message", [
    (AppendNothingCache, r"update\(0, k, v\) \(call 4, 4 positions.*append along the position axis"),
    (OneEntryCache, r"update\(1, k, v\) \(call 2, 3 positions.*append along the position axis"),
    (TransformersCache, "has no attribute 'keys'"),
    (SharedListsCache, "shared by every instance"),
    (HeadsAxisCache, r"concatenated along axis 1.*append along dim=-2"),  # the stand-in cache of the other exercises is no answer here
])
def test_kv_cache_class_mutants_fail_with_their_mistake(cache, message):
    fails("kv_cache_class", message, KVCache=cache)


class OneLayerAttention(ReferenceAttention):  # every layer updates the cache's entry 0
    def forward(self, x, context=None, mask=None, need_weights=True, cache=None, layer=0):
        return super().forward(x, context, mask, need_weights, cache, 0)


class CacheIgnoringAttention(ReferenceAttention):  # never passes its keys and values to the cache
    def forward(self, x, context=None, mask=None, need_weights=True, cache=None, layer=0):
        return super().forward(x, context, mask, need_weights, None, layer)


class UnshiftedMaskAttention(ReferenceAttention):  # causal mask tril() without the offset of the cached keys
    def forward(self, x, context=None, mask=None, need_weights=True, cache=None, layer=0):
        q, k, v = self.project(x, context)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril()
        allowed = allowed if mask is None else allowed & mask
        heads = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out(heads.transpose(1, 2).flatten(2)), None


class UnscaledAttention(ReferenceAttention):  # forgets 1/sqrt(d_head)
    def forward(self, x, context=None, mask=None, need_weights=True, cache=None, layer=0):
        q, k, v = self.project(x, context)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril(k.shape[-2] - q.shape[-2])
        allowed = allowed if mask is None else allowed & mask
        heads = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=1.0)
        return self.out(heads.transpose(1, 2).flatten(2)), None


class MaskIgnoringAttention(ReferenceAttention):  # drops the padding mask it is given
    def forward(self, x, context=None, mask=None, need_weights=True, cache=None, layer=0):
        return super().forward(x, context, None, need_weights, cache, layer)


class EvalDropoutAttention(ReferenceAttention):  # drops attention weights in eval() too
    def forward(self, x, context=None, mask=None, need_weights=True, cache=None, layer=0):
        out, weights = super().forward(x, context, mask, need_weights, cache, layer)
        return (torch.nn.functional.dropout(out, self.dropout_p, training=True) if self.dropout_p else out), weights

    def __init__(self, d_model, n_heads, bias=True, dropout=0.0, causal=False):
        super().__init__(d_model, n_heads, bias=bias, dropout=dropout, causal=causal)
        self.dropout_p = dropout


class BadNamesAttention(torch.nn.Module):
    def __init__(self, d_model, n_heads, bias=True, dropout=0.0, causal=False):
        super().__init__()
        self.in_proj = torch.nn.Linear(d_model, 3 * d_model)
        self.out_proj = torch.nn.Linear(d_model, d_model)


def test_kv_cache_package_attention_passes():
    """The attention exercise decodes through transformers' cache: it needs no KVCache of the learner's."""
    run("kv_cache", MultiHeadAttention=ReferenceAttention)


@pytest.mark.parametrize("attention, message", [
    (OneLayerAttention, "its own entry"),
    (CacheIgnoringAttention, r"cache.update\(layer, k, v\)"),
    (UnshiftedMaskAttention, "one-token step at position 5"),
    (UnscaledAttention, "not divided by sqrt\\(d_head\\)"),
    (MaskIgnoringAttention, "padding mask"),
    (EvalDropoutAttention, "in eval\\(\\) mode the output changed"),
    (BadNamesAttention, "qkv"),
])
def test_kv_cache_mutants_fail_with_their_mistake(attention, message):
    fails("kv_cache", message, MultiHeadAttention=attention)


# ---------------------------------------------------------------------------- attention over blocks of keys

CHAPTER = "07-generation"


@pytest.fixture(scope="module")
def answers():
    from judge_helpers import solution_namespace

    return solution_namespace(CHAPTER)


def online_mutant(answers, old, new):
    from judge_helpers import mutate

    return mutate(answers, "online_attention", old, new, CHAPTER)["online_attention"]


def test_online_attention_solution_passes(answers):
    run("online_attention", online_attention=answers["online_attention"])


@pytest.mark.parametrize("old, new, message", [
    ("denominator = denominator * rescale + ", "denominator = denominator + ", "only the numerator rescaled"),
    ("numerator = numerator * rescale + ", "numerator = numerator + ", "only the denominator rescaled"),
    ("rescale = torch.exp(running_max - new_max)", "rescale = 1.0", "no rescaling"),
    ("rescale = torch.exp(running_max - new_max)", "rescale = torch.exp(new_max - running_max)", "upside down"),
    ("weights = torch.exp(scores - new_max)", "weights = torch.exp(scores)", "differs from F.scaled_dot_product_attention"),
    ("new_max = torch.maximum(running_max, scores.amax(-1, keepdim=True))", "new_max = torch.zeros_like(running_max)",
     "not shifted by a running maximum"),
    ("return numerator / denominator", "return (numerator / denominator).float()", "dtype torch.float32, expected"),
])
def test_online_attention_mutants_fail_with_their_mistake(answers, old, new, message):
    fails("online_attention", message, online_attention=online_mutant(answers, old, new))


@pytest.mark.parametrize("attack, forge", [
    ("NaN outputs", lambda data: [{"out": torch.full_like(item["out"], float("nan"))} for item in data]),
    ("one case only", lambda data: data[:1]),
    ("no outputs", lambda data: [{} for _ in data]),
])
def test_online_attention_judge_refuses_forged_data(answers, attack, forge):
    data = plain(collectors.online_attention(answers["online_attention"]))
    with pytest.raises(JudgeFailure):
        judges.online_attention(forge(data))


# ------------------------------------------------------------- held-out list 3: checks added after its measurement

@pytest.mark.parametrize("grade_id, collector, parameter, old, new, message", [
    ("top_k_filter", "top_k", "top_k_filter", "torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1)",
     "torch.topk(logits, top_k, dim=-1)", "larger than the vocabulary"),
    ("top_p_filter", "top_p", "top_p_filter", "if not 0 < top_p <= 1:", "if not 0 < top_p < 1:",
     "top_p = 1 is allowed"),
    ("top_p_filter", "top_p", "top_p_filter", "drop_sorted = tail <= 1 - top_p", "drop_sorted = tail < 1 - top_p",
     "one token too many kept: each token holds exactly 1/8"),
    ("top_p_filter", "top_p", "top_p_filter", "tail = sorted_logits.softmax(dim=-1).cumsum(dim=-1)",
     "tail = sorted_logits.softmax(dim=-1).cumsum(dim=0)", "not across the rows of the batch"),
    ("generate", "generate", "generate", "        if eos_token_id is not None:\n            token = torch.where",
     "        if eos_token_id:\n            token = torch.where", "0 is a valid token id"),
    ("generate", "generate_errors", "generate",
     "if input_ids.shape[-1] + max_new_tokens > model.config.block_size:",
     "if input_ids.shape[-1] + max_new_tokens >= model.config.block_size:", "it fits exactly"),
    ("multi_head_attention", "kv_cache", "MultiHeadAttention", "(weights if need_weights else None)", "weights",
     "need_weights=False the second output must be None"),
    ("multi_head_attention", "kv_cache", "MultiHeadAttention", "self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)",
     "self.qkv = nn.Linear(d_model, 3 * d_model)", r"pass bias=bias"),
    ("multi_head_attention", "kv_cache", "MultiHeadAttention",
     "scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5", "scores = q @ k.transpose(-2, -1) / self.d_model ** 0.5",
     r"divided by sqrt\(d_model\)"),
    ("kv_cache", "kv_cache_class", "KVCache", "self.values[layer] = torch.cat([self.values[layer], v], dim=-2)",
     "self.values[layer] = torch.cat([self.values[layer], k], dim=-2)", "the values hold keys"),
])
def test_held_out_3_mistakes_fail_with_their_message(answers, grade_id, collector, parameter, old, new, message):
    from judge_helpers import solution_namespace

    from tfs.nn import merge_heads, split_heads  # imported by the notebook's first cell

    mutant = solution_namespace(CHAPTER, (grade_id, old, new), split_heads=split_heads, merge_heads=merge_heads)
    fails(collector, message, **{parameter: mutant[parameter]})


def test_beam_search_probe_names_a_search_that_does_not_stop_early():
    """The probe of a search that goes on after num_beams hypotheses finished differs from the right search on
    the visible test's case (length_penalty=2, the course GPT's stand-in here: the collector's model)."""
    from tfs.teaching.probes_generation import beam_search_mistakes

    model = collectors.gen_model()
    prompt = torch.tensor([collectors.gen_prompts()[0]])
    probes = beam_search_mistakes(model, prompt, 12, 3, 1.0, collectors.GEN_EOS)
    assert any("went on after num_beams" in m for m in probes)


# ------------------------------------------------------------------ sweep (issue 31): options set together, off their one value

def _top_p_dropped_with_top_k(model, input_ids, max_new_tokens, top_k=None, top_p=None, **options):
    """generate's mistake: top_p ignored whenever top_k is given too."""
    return solution_generate(model, input_ids, max_new_tokens, top_k=top_k, top_p=None if top_k else top_p, **options)


def test_generate_with_top_k_and_top_p_applies_both():
    fails("generate", r"top_k and top_p both given, both filters apply", generate=_top_p_dropped_with_top_k)


class _AlwaysCausal(ReferenceAttention):
    def __init__(self, d_model, n_heads, bias=True, dropout=0.0, causal=False):
        super().__init__(d_model, n_heads, bias=bias, dropout=dropout, causal=True)


class _NoDropout(ReferenceAttention):
    def __init__(self, d_model, n_heads, bias=True, dropout=0.0, causal=False):
        super().__init__(d_model, n_heads, bias=bias, dropout=0.0, causal=causal)


@pytest.mark.parametrize("attention, message", [(_AlwaysCausal, r"causal=False\) differs from attention without a mask"),
                                                (_NoDropout, r"dropout=0.5\) in train\(\) mode gave the eval output")])
def test_attention_options_are_named(attention, message):
    fails("kv_cache", message, MultiHeadAttention=attention)


def top_p_most_likely_not_forced(logits, p):  # held-out list 5: the guard for the most likely token left out
    if not 0 < p <= 1:
        return top_p_filter(logits, p)  # refuses as the solution does
    sorted_logits, order = torch.sort(logits, dim=-1)
    drop_sorted = sorted_logits.softmax(-1).cumsum(-1) <= 1 - p
    return logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), INF)


def test_top_p_without_the_guard_for_the_most_likely_token_fails_at_a_tiny_top_p():
    """With top_p below float64's resolution, 1 - top_p rounds to 1 and the running total reaches it: only the guard
    keeps the most likely token (a hidden case at top_p = 1e-17; the visible test's float32 case is top_p = 1e-9)."""
    fails("top_p", "keep no token at all", top_p_filter=top_p_most_likely_not_forced)
