"""Chapter 09's judges: the package's reference passes; each usual perplexity / data-preparation mistake fails
with a message naming it. Data goes through the real collectors and a save/load round trip, as in grading.
Also the reference itself against ``transformers``' reported loss, and its errors on bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from tfs import lm as ref
from tfs import scaling as ref_scaling
from tfs.grader.collectors import ch09 as c
from tfs.grader.judging import JudgeFailure, collect, load_judge, read_data_roundtrip


def verdict(test: str, **objects) -> None:
    load_judge(f"ch09.{test}")(read_data_roundtrip(collect(f"ch09.{test}", **objects)))


def fails(test: str, match: str, **objects) -> None:
    with pytest.raises(JudgeFailure, match=match):
        verdict(test, **objects)


# ------------------------------------------------------------------------ the reference against transformers

def test_perplexity_of_one_window_is_exp_of_the_loss_transformers_reports():
    model, ids = c.tiny_gpt(), c.token_ids("t", 14)
    with torch.no_grad():
        loss = model(ids[None], labels=ids[None]).loss.item()
    assert ref.perplexity(model, ids) == pytest.approx(math.exp(loss), rel=1e-6)  # transformers' loss is float32


def test_sliding_windows_score_every_token_once_with_enough_context():
    for n, window, stride in ((40, 16, 6), (37, 12, 5), (16, 16, 16), (17, 16, 1), (2, 16, 16)):
        spans = ref.window_spans(n, window, stride)
        scored = [t for _, end, first in spans for t in range(first, end)]
        assert scored == list(range(1, n)), (n, window, stride)
        assert all(end - begin <= window for begin, end, _ in spans)
        assert all(first - begin >= min(window - stride, first) for begin, _, first in spans[1:])


def test_stride_one_equals_a_full_context_token_by_token_loop():
    model, ids = c.tiny_gpt(), c.token_ids("loop", 24)
    nll = []
    with torch.no_grad():
        for t in range(1, len(ids)):
            context = ids[max(0, t - 7):t]   # window 8: at most 7 tokens of context
            nll.append(-F.log_softmax(model(context[None]).logits[0, -1], -1)[ids[t]].item())
    assert ref.perplexity(model, ids, window=8, stride=1) == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-10)


@pytest.mark.parametrize("args, match", [((8, 12), "stride=12 is larger than window=8"),
                                         ((64, 8), "longer than the model's context"),
                                         ((None, None), "at least 2 tokens")])
def test_perplexity_bad_input_raises_clear_errors(args, match):
    ids = c.token_ids("e", 30) if args[0] else torch.zeros(0, dtype=torch.int64)
    with pytest.raises(ValueError, match=match):
        ref.perplexity(c.tiny_gpt(), ids, *args)


def test_perplexity_restores_training_mode():
    model = c.tiny_gpt(0.3).train()
    ref.perplexity(model, c.token_ids("m", 20), 8, 4)
    assert model.training


def test_pipeline_task_names_the_missing_head(tmp_path):
    from tfs.data import bert_mlm_path, bert_path, gpt_path

    assert ref.check_pipeline_task("text-generation", gpt_path()) == "GPT2LMHeadModel"
    assert ref.check_pipeline_task("fill-mask", bert_mlm_path()) == "BertForMaskedLM"
    with pytest.raises(ValueError, match="masked language-model head.*GPT2LMHeadModel"):
        ref.check_pipeline_task("fill-mask", gpt_path())
    with pytest.raises(ValueError, match="causal language-model head.*BertModel"):
        ref.check_pipeline_task("text-generation", bert_path())
    with pytest.raises(ValueError, match="no config.json"):
        ref.check_pipeline_task("fill-mask", tmp_path)


# ------------------------------------------------------------------------ mutants: plausible wrong answers

def double_counting(model, ids, window=None, stride=None):
    model.eval()
    nll = []
    with torch.no_grad():
        for begin, end, _ in ref.window_spans(len(ids), window, stride):
            chunk = ids[begin:end][None]
            nll.append(model(chunk, labels=chunk).loss * (end - begin - 1))
            count = end - begin - 1
            nll[-1] = (nll[-1], count)
    return math.exp(sum(x for x, _ in nll).item() / sum(n for _, n in nll))


def mean_of_windows(model, ids, window=None, stride=None):
    model.eval()
    losses = []
    with torch.no_grad():
        for begin, end, first in ref.window_spans(len(ids), window, stride):
            chunk = ids[begin:end][None]
            labels = chunk.clone()
            labels[:, : first - begin] = -100
            losses.append(model(chunk, labels=labels).loss.item())
    return math.exp(sum(losses) / len(losses))


def unshifted(model, ids, window=None, stride=None):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for begin, end, first in ref.window_spans(len(ids), window, stride):
            logits = model(ids[begin:end][None]).logits[0]
            total += F.cross_entropy(logits[first - begin:], ids[first:end], reduction="sum").item()
            count += end - first
    return math.exp(total / count)


def returns_loss(model, ids, window=None, stride=None):
    return math.log(ref.perplexity(model, ids, window, stride))


def no_eval(model, ids, window=None, stride=None):
    was = model.training
    value = ref.perplexity(model, ids, window, stride)
    model.train(was)
    with torch.no_grad():
        model(ids[:2][None])  # one forward in the mode the model came in
    return value


def with_grad(model, ids, window=None, stride=None):
    model.eval()
    model(ids[:2][None])
    return ref.perplexity(model, ids, window, stride)


def no_checks(model, ids, window=None, stride=None):
    if len(ids) < 2:
        return float("nan")
    return ref.perplexity(model, ids, min(window, c.CONTEXT), min(stride, window))


def test_reference_perplexity_passes_every_judge():
    for test in ("perplexity_values", "perplexity_mode", "perplexity_errors"):
        verdict(test, perplexity=ref.perplexity)


@pytest.mark.parametrize("mutant, match", [(double_counting, "scored in every window"),
                                           (mean_of_windows, "mean of the windows' mean losses"),
                                           (unshifted, "not shifted"),
                                           (returns_loss, "not its exponential")])
def test_perplexity_mutants_are_named(mutant, match):
    fails("perplexity_values", match, perplexity=mutant)


def test_perplexity_mode_mutants_are_named():
    fails("perplexity_mode", "training mode", perplexity=no_eval)
    fails("perplexity_mode", "autograd on", perplexity=with_grad)
    fails("perplexity_errors", "must raise ValueError", perplexity=no_checks)


def no_eos(texts, block_size, eos_id):
    return _blocks([x for t in texts for x in t], block_size)


def _blocks(stream, block_size):
    n = len(stream) // block_size
    if n == 0:
        raise ValueError("too short")
    ids = torch.tensor(stream[: n * block_size]).view(n, block_size)
    return {"input_ids": ids, "labels": ids.clone()}


def eos_before(texts, block_size, eos_id):
    return _blocks([x for t in texts for x in [eos_id, *t]], block_size)


def keep_remainder(texts, block_size, eos_id):
    stream = [x for t in texts for x in [*t, eos_id]]
    stream += [eos_id] * (-len(stream) % block_size)
    return _blocks(stream, block_size)


def per_text(texts, block_size, eos_id):
    pieces = []
    for t in texts:  # each text cut into its own blocks, each remainder dropped
        s = [*t, eos_id]
        pieces += s[: len(s) - len(s) % block_size]
    return _blocks(pieces, block_size)


def shifted_labels(texts, block_size, eos_id):
    out = ref.prepare_lm_blocks(texts, block_size, eos_id)
    return {"input_ids": out["input_ids"], "labels": torch.roll(out["labels"].flatten(), -1).view_as(out["labels"])}


def fixed_eos(texts, block_size, eos_id):
    return ref.prepare_lm_blocks(texts, block_size, 0)


def test_reference_blocks_and_batch_pass():
    verdict("lm_blocks", prepare_lm_blocks=ref.prepare_lm_blocks)
    verdict("lm_batch_padding", causal_lm_batch=ref.causal_lm_batch)
    verdict("lm_batch_prompt", causal_lm_batch=ref.causal_lm_batch)


@pytest.mark.parametrize("mutant, match", [(no_eos, "without the end-of-text token"), (eos_before, "before each text"),
                                           (keep_remainder, "drop the remainder"), (per_text, "one by one"),
                                           (shifted_labels, "shifted twice"), (fixed_eos, "eos_id arguments")])
def test_block_mutants_are_named(mutant, match):
    fails("lm_blocks", match, prepare_lm_blocks=mutant)


def pads_learned(texts, pad_id, prompt_lengths=None):
    out = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    out["labels"] = torch.where(out["labels"] == -100, out["input_ids"], out["labels"]) if prompt_lengths is None \
        else out["labels"]
    return out


def by_token_value(texts, pad_id, prompt_lengths=None):
    out = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    out["labels"] = out["labels"].masked_fill(out["input_ids"] == pad_id, -100)
    return out


def prompt_ignored(texts, pad_id, prompt_lengths=None):
    return ref.causal_lm_batch(texts, pad_id)


def prompt_off_by_one(texts, pad_id, prompt_lengths=None):
    return ref.causal_lm_batch(texts, pad_id, None if prompt_lengths is None else [p + 1 for p in prompt_lengths])


def left_padded(texts, pad_id, prompt_lengths=None):
    out = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    lengths = out["attention_mask"].sum(1)
    for key in out:
        out[key] = torch.stack([torch.roll(row, int(out[key].shape[1] - n)) for row, n in zip(out[key], lengths)])
    return out


def labels_shifted(texts, pad_id, prompt_lengths=None):
    out = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    out["labels"] = F.pad(out["labels"][:, 1:], (0, 1), value=-100)
    return out


@pytest.mark.parametrize("test, mutant, match", [
    ("lm_batch_padding", pads_learned, "padding positions keep their token"),
    ("lm_batch_padding", by_token_value, "real end-of-text tokens"), ("lm_batch_padding", left_padded, "on the left"),
    ("lm_batch_padding", labels_shifted, "shifted twice"),
    ("lm_batch_prompt", prompt_ignored, "prompt tokens keep their labels"),
    ("lm_batch_prompt", prompt_off_by_one, "off by one")])
def test_batch_mutants_are_named(test, mutant, match):
    fails(test, match, causal_lm_batch=mutant)


def test_a_prompt_mistake_costs_only_the_prompt_cell():
    verdict("lm_batch_padding", causal_lm_batch=prompt_off_by_one)


def test_the_visible_tests_mistake_probes_need_the_oracle_and_are_not_the_answer():
    """tfs.teaching.probes_pretrained holds no window rule and no right perplexity: the windows and the right value
    come from the visible test's oracle; with overlapping windows every probe differs from the perplexity, and the
    aggregation mistakes are read off the right value the caller gives."""
    from tfs.teaching import probes_pretrained as probes

    model, ids = c.tiny_gpt(), c.token_ids("overlap", 40)
    spans = ref.window_spans(len(ids), 16, 6)
    right = ref.perplexity(model, ids, 16, 6)
    for name, wrong in probes.perplexity_mistakes(model, ids, spans).items():
        assert wrong.dtype == torch.float64 and not math.isclose(float(wrong), right, rel_tol=1e-3), name
    aggregation = probes.perplexity_aggregation_mistakes(right, n_scored=39, n_tokens=40)
    assert float(aggregation["the mean NLL returned instead of its exponential"]) == pytest.approx(math.log(right))
    assert float(aggregation["the NLL divided by N instead of the N - 1 predicted tokens"]) == \
        pytest.approx(right ** (39 / 40))


# ------------------------------------------------------------------------ the scaling law's fit

def _log_line(counts, losses):
    slope, intercept = np.polyfit(np.log(counts), np.log(losses), 1)
    return -slope, intercept


def every_parameter(rows, losses):
    return ref_scaling.fit_scaling_law([{**r, "non_embedding_params": r["params"]} for r in rows], losses)


def slope_as_alpha(rows, losses):
    alpha, n_c = ref_scaling.fit_scaling_law(rows, losses)
    return -alpha, n_c


def constant_c(rows, losses):
    alpha, n_c = ref_scaling.fit_scaling_law(rows, losses)
    return alpha, n_c ** alpha


def log10_then_exp(rows, losses):
    alpha, intercept = _log_line(np.array([r["non_embedding_params"] for r in rows]), losses)
    return alpha, math.exp(intercept / math.log(10) / alpha)


def semi_log(rows, losses):
    slope, intercept = np.polyfit([r["non_embedding_params"] for r in rows], np.log(losses), 1)
    return -slope, math.exp(intercept)


def test_the_scaling_fit_recovers_a_known_power_law_and_passes_its_judge():
    rows, losses = c.scaling_case("exact")
    alpha, n_c = ref_scaling.fit_scaling_law(rows, losses)
    assert alpha == pytest.approx(c.SCALING_CASES["exact"][0], rel=1e-10)
    assert n_c == pytest.approx(c.SCALING_CASES["exact"][1], rel=1e-8)
    verdict("scaling_fit", fit_scaling_law=ref_scaling.fit_scaling_law)


@pytest.mark.parametrize("mutant, match", [(every_parameter, "every parameter"), (slope_as_alpha, "slope's sign"),
                                           (constant_c, "constant C"), (log10_then_exp, "base changes"),
                                           (semi_log, r"through \(N, ln L\)")])
def test_scaling_fit_mutants_are_named(mutant, match):
    fails("scaling_fit", match, fit_scaling_law=mutant)


def test_a_scaling_fit_that_raises_or_returns_one_number_fails():
    fails("scaling_fit", "KeyError", fit_scaling_law=lambda rows, losses: rows[0]["val_loss"])
    fails("scaling_fit", "not a pair", fit_scaling_law=lambda rows, losses: 0.076)


# ------------------------------------------------------------------------ the mutant campaign's fixes (issue 31)

def skips_a_token_at_each_boundary(model, ids, window=None, stride=None):
    model.eval()
    total, count, previous_end = 0.0, 0, 0
    with torch.no_grad():
        for begin, end, _ in ref.window_spans(len(ids), window, stride):
            first = max(previous_end + 1, begin + 1)   # off by one after an overlap
            logits = model(ids[begin:end][None]).logits[0]
            total += F.cross_entropy(logits[first - begin - 1:end - begin - 1], ids[first:end], reduction="sum").item()
            count += end - first
            previous_end = end
    return math.exp(total / count)


def test_a_token_skipped_at_each_window_boundary_is_named():
    fails("perplexity_values", "skipped at each window boundary", perplexity=skips_a_token_at_each_boundary)


@pytest.mark.parametrize("mutant", [mean_of_windows, unshifted, double_counting])
def test_a_wrong_perplexity_costs_only_the_values_cell(mutant):
    """The mode cell compares the function with itself (model in training vs eval mode), the errors cell asks a
    number of the valid call: a wrong value is judged once, in perplexity_values."""
    verdict("perplexity_mode", perplexity=mutant)
    verdict("perplexity_errors", perplexity=lambda model, ids, window=None, stride=None:
            ref.perplexity(model, ids, window, stride) if len(ids) < 2 or stride > window or window > c.CONTEXT
            else mutant(model, ids, window, stride))


def eos_between_only(texts, block_size, eos_id):
    return _blocks([x for t in texts for x in [*t, eos_id]][:-1], block_size)


def test_an_eos_missing_after_the_last_text_is_named():
    fails("lm_blocks", "last text is not followed by eos_id", prepare_lm_blocks=eos_between_only)


def mask_by_token_value(texts, pad_id, prompt_lengths=None):
    out = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    out["attention_mask"] = (out["input_ids"] != pad_id).long()
    return out


def padding_labelled_minus_one(texts, pad_id, prompt_lengths=None):
    out = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    out["labels"] = out["labels"].masked_fill(out["attention_mask"] == 0, -1)
    return out


@pytest.mark.parametrize("mutant, match", [(mask_by_token_value, "attention mask is computed from token values"),
                                           (padding_labelled_minus_one, "padding is labelled -1")])
def test_batch_mask_and_ignore_label_mutants_are_named(mutant, match):
    fails("lm_batch_padding", match, causal_lm_batch=mutant)


def other_way_round(rows, losses):
    slope, intercept = np.polyfit(np.log(losses), np.log([r["non_embedding_params"] for r in rows]), 1)
    return -1 / slope, math.exp(intercept)


def mixed_bases(rows, losses):
    slope, intercept = np.polyfit(np.log10([r["non_embedding_params"] for r in rows]), np.log(losses), 1)
    return -slope, math.exp(intercept / -slope)


def linear_counts(rows, losses):
    slope, intercept = np.polyfit([float(r["non_embedding_params"]) for r in rows], np.log(losses), 1)
    return -slope, math.exp(intercept / -slope)   # overflows: the slope is near 0


@pytest.mark.parametrize("mutant, match", [(other_way_round, "other way round"), (mixed_bases, "mixed bases"),
                                           (linear_counts, "overflowed.*log-log")])
def test_more_scaling_fit_mutants_are_named(mutant, match):
    fails("scaling_fit", match, fit_scaling_law=mutant)


@pytest.mark.parametrize("mutant", [by_token_value, padding_labelled_minus_one, pads_learned])
def test_a_padding_mistake_costs_only_the_padding_cell(mutant):
    """With prompt_lengths, the first tokens of each text get -100 on top of the function's own labels: that is all
    the prompt cell asks; what the labels hold elsewhere is judged once, in lm_batch_padding."""
    fails("lm_batch_padding", "causal_lm_batch", causal_lm_batch=mutant)
    verdict("lm_batch_prompt", causal_lm_batch=mutant)


# ------------------------------------------------------------------------ held-out mistakes (second reader's list)

def leaves_train_mode(model, ids, window=None, stride=None):
    value = ref.perplexity(model, ids, window, stride)
    model.train()                                 # not the mode the model arrived in
    return value


def log_of_softmax(model, ids, window=None, stride=None):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for begin, end, first in ref.window_spans(len(ids), window or c.CONTEXT, stride or window or c.CONTEXT):
            logits = model(ids[begin:end][None]).logits[0]                       # the model's own dtype
            log_probs = torch.log(F.softmax(logits[first - begin - 1:end - begin - 1], dim=-1))
            total -= log_probs.gather(1, ids[first:end, None]).sum().item()
            count += end - first
    return math.exp(total / count)


def full_windows_only(model, ids, window=None, stride=None):
    window = window or c.CONTEXT
    stride = stride or window
    spans = [span for span in ref.window_spans(len(ids), window, stride) if span[1] - span[0] == window]
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for begin, end, first in spans:
            logits = model(ids[begin:end][None]).logits[0].double()
            total += F.cross_entropy(logits[first - begin - 1:end - begin - 1], ids[first:end], reduction="sum").item()
            count += end - first
    return math.exp(total / count)


def one_token_accepted(model, ids, window=None, stride=None):
    if len(ids) == 1:
        return 1.0
    return ref.perplexity(model, ids, window, stride)


def test_a_model_left_in_training_mode_is_named():
    fails("perplexity_mode", "left in training mode", perplexity=leaves_train_mode)
    verdict("perplexity_values", perplexity=leaves_train_mode)


def test_log_of_a_softmax_underflows_on_the_sharp_model_and_is_named():
    fails("perplexity_values", "underflowed to 0.*log_softmax", perplexity=log_of_softmax)
    verdict("perplexity_errors", perplexity=lambda model, ids, window=None, stride=None:
            ref.perplexity(model, ids, window, stride) if len(ids) < 2 or stride > window or window > c.CONTEXT
            else log_of_softmax(model, ids, window, stride))


def test_the_sharp_case_is_finite_for_the_reference_and_underflows_in_float32():
    n, window, stride = c.SHARP_CASE
    model, ids = c.sharp_gpt(), c.token_ids("sharp", n)
    with torch.no_grad():
        probs = F.softmax(model(ids[:window][None]).logits[0, :-1], -1).gather(1, ids[1:window, None])
    assert (probs == 0).any()                                # float32's softmax underflows for some target
    assert math.isfinite(ref.perplexity(model, ids, window, stride))


def test_last_tokens_never_scored_are_named():
    fails("perplexity_values", "no token was scored.*end of the text", perplexity=full_windows_only)
    n, window, stride = c.PPL_CASES["disjoint"]
    model, ids = c.tiny_gpt(), c.token_ids("disjoint", n)
    assert ref.perplexity(model, ids, window, stride) != pytest.approx(full_windows_only(model, ids, window, stride))
    data = collect("ch09.perplexity_values", perplexity=full_windows_only)
    data["one_window"] = ref.perplexity(model, c.token_ids("one_window", c.PPL_CASES["one_window"][0]), 16, 16)
    with pytest.raises(JudgeFailure, match="after the last full window, are never scored"):
        load_judge("ch09.perplexity_values")(read_data_roundtrip(data))


def test_a_single_token_text_must_raise():
    fails("perplexity_errors", "a text of one token .*must raise ValueError", perplexity=one_token_accepted)


# ------------------------------------------------------------------------ held-out mistakes (third reader's list)

def stride_defaults_to_context(model, ids, window=None, stride=None):
    return ref.perplexity(model, ids, window, stride or model.config.n_positions)


def stride_defaults_to_half(model, ids, window=None, stride=None):
    window = window or model.config.n_positions
    return ref.perplexity(model, ids, window, stride or window // 2)


def counts_every_prediction(model, ids, window=None, stride=None):
    window = window or model.config.n_positions
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for begin, end, first in ref.window_spans(len(ids), window, stride or window):
            logits = model(ids[begin:end][None]).logits[0].double()
            total += F.cross_entropy(logits[first - begin - 1:end - begin - 1], ids[first:end], reduction="sum").item()
            count += end - begin - 1                    # the overlap's context counted too
    return math.exp(total / count)


def test_a_stride_that_does_not_default_to_window_is_named():
    fails("perplexity_values", r"stride left out: it defaults to window.*raised ValueError",
          perplexity=stride_defaults_to_context)
    fails("perplexity_values", r"windows moved by 6 tokens; the stride left out defaults to window",
          perplexity=stride_defaults_to_half)


def test_a_count_of_every_prediction_is_named_and_costs_only_the_values_cell():
    fails("perplexity_values", r"count counts every position a window predicts", perplexity=counts_every_prediction)
    verdict("perplexity_mode", perplexity=counts_every_prediction)


def eos_not_learned(texts, block_size, eos_id):
    out = ref.prepare_lm_blocks(texts, block_size, eos_id)
    return {"input_ids": out["input_ids"], "labels": out["labels"].masked_fill(out["input_ids"] == eos_id, -100)}


def short_check_without_eos(texts, block_size, eos_id):
    if sum(len(t) for t in texts) < block_size:
        raise ValueError("the texts do not fill one block")
    return ref.prepare_lm_blocks(texts, block_size, eos_id)


def test_end_of_text_labels_hidden_and_a_size_check_without_them_are_named():
    fails("lm_blocks", r"end-of-text tokens are labelled -100", prepare_lm_blocks=eos_not_learned)
    fails("lm_blocks", r"\[\[1, 2, 3\]\], 4, eos_id\) raised ValueError.*end-of-text tokens count",
          prepare_lm_blocks=short_check_without_eos)


def loss_not_logged(rows, losses):
    slope, intercept = np.polyfit(np.log([r["non_embedding_params"] for r in rows]), losses, 1)
    return -slope, math.exp(intercept / -slope)


def test_a_fit_through_ln_n_and_the_loss_itself_is_named():
    fails("scaling_fit", r"through \(ln N, L\)", fit_scaling_law=loss_not_logged)


def test_the_new_visible_probes_name_a_count_of_every_prediction_and_an_unlogged_loss():
    from tfs.teaching import probes_pretrained as probes

    model, ids = c.tiny_gpt(), c.token_ids("overlap", 40)
    spans = ref.window_spans(len(ids), 16, 6)
    wrong = probes.perplexity_mistakes(model, ids, spans)
    key = next(k for k in wrong if k.startswith("the count counts every position"))
    assert float(wrong[key]) == pytest.approx(counts_every_prediction(model, ids, 16, 6), rel=1e-9)
    rows, losses = c.scaling_case("noisy")
    counts = [r["non_embedding_params"] for r in rows]
    fits = probes.scaling_fit_mistakes((0.0, 0.0), (0.0, 0.0), counts, losses)
    alpha, n_c = loss_not_logged(rows, losses)
    assert fits["the loss not logged: a line through (ln N, L), where a power law is a straight line only when both "
                "axes are logarithmic (ln L against ln N)"].tolist() == pytest.approx([alpha, math.log(n_c)], rel=1e-9)
    blocks = ref.prepare_lm_blocks([[1, 2, 3], [4, 5]], 3, 0)["input_ids"]
    assert any(torch.equal(v, eos_not_learned([[1, 2, 3], [4, 5]], 3, 0)["labels"])
               for v in probes.label_shift_mistakes(blocks, 0).values())


# ------------------------------------------------------------------------ the sweep of issue 31: arguments and boundaries

def rejects_two_tokens(model, ids, window=None, stride=None):
    if len(ids) <= 2:
        raise ValueError("perplexity needs more than 2 tokens")
    return ref.perplexity(model, ids, window, stride)


def rejects_the_full_context(model, ids, window=None, stride=None):
    if (window or model.config.n_positions) >= model.config.n_positions:
        raise ValueError("window must be shorter than the context")
    return ref.perplexity(model, ids, window, stride)


def eos_appended_in_place(texts, block_size, eos_id):
    for ids in texts:
        ids.append(eos_id)
    return ref.prepare_lm_blocks([ids[:-1] for ids in texts], block_size, eos_id)


def pads_the_lists_in_place(texts, pad_id, prompt_lengths=None):
    batch = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    length = max(len(ids) for ids in texts)
    for ids in texts:
        ids += [pad_id] * (length - len(ids))
    return batch


def pads_with_zero(texts, pad_id, prompt_lengths=None):
    batch = ref.causal_lm_batch(texts, pad_id, prompt_lengths)
    batch["input_ids"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 0)
    return batch


@pytest.mark.parametrize("mutant, match", [(rejects_two_tokens, "a text of 2 tokens, the fewest allowed"),
                                            (rejects_the_full_context, "equal to the model's context")])
def test_sweep_perplexity_boundaries(mutant, match):
    fails("perplexity_errors", match, perplexity=mutant)


def test_sweep_data_preparation_arguments_and_inputs_kept():
    fails("lm_blocks", "changed the token lists it was given, in place", prepare_lm_blocks=eos_appended_in_place)
    fails("lm_batch_padding", "changed the token lists it was given, in place", causal_lm_batch=pads_the_lists_in_place)
    fails("lm_batch_padding", f"with pad_id={c.OTHER_PAD} the padding is 0", causal_lm_batch=pads_with_zero)


# ------------------------------------------------------------------------ the fourth held-out list (heldout4/ch09)

def returns_a_float32_tensor(model, ids, window=None, stride=None):   # h4-ppl-returns-float32-tensor
    return torch.exp(torch.tensor(math.log(ref.perplexity(model, ids, window, stride))))


@pytest.mark.parametrize("returned, what", [(returns_a_float32_tensor, "0-d torch.Tensor of torch.float32"),
                                            (lambda *a: torch.tensor(ref.perplexity(*a), dtype=torch.float64),
                                             "0-d torch.Tensor of torch.float64")])
def test_a_perplexity_returned_as_a_tensor_is_named_not_taken_for_an_underflow(returned, what):
    """The statement asks for a Python float. A 0-d tensor (float32: exp of the sharp model's mean NLL overflows to inf,
    which the sharp case used to misname as log of a softmax) fails the values cell naming the type; the mode and
    errors cells, which judge something else, still accept its number."""
    with pytest.raises(JudgeFailure) as failure:
        verdict("perplexity_values", perplexity=returned)
    message = str(failure.value)
    assert what in message and "not a Python float" in message and ".item()" in message, message
    assert "softmax" not in message and "underflow" not in message, message
    verdict("perplexity_mode", perplexity=returned)
    verdict("perplexity_errors", perplexity=returned)


def test_a_numpy_float_is_a_python_float():
    verdict("perplexity_values", perplexity=lambda *a: np.float64(ref.perplexity(*a)))


def test_the_visible_probe_names_windows_that_stop_at_the_last_whole_one():
    """Held-out list 5 (h5_ppl_tail_not_scored): windows begin in range(0, max(1, N - window + 1), stride), so a text
    shorter than a window is read right but the tokens after the last whole window of a longer one go unscored; the
    probe equals that learner's perplexity, and is left out when every window is whole."""
    from tfs.teaching import probes_pretrained as probes

    model, ids = c.tiny_gpt(), c.token_ids("overlap", 43)
    window, stride = 16, 6
    key = "the windows stop at the last one that fits whole"
    spans = ref.window_spans(len(ids), window, stride)
    wrong = probes.perplexity_mistakes(model, ids, spans)
    probe = next(v for k, v in wrong.items() if k.startswith(key))
    total, count, previous_end = 0.0, 0, 0
    with torch.no_grad():
        for begin in range(0, max(1, len(ids) - window + 1), stride):
            end = min(begin + window, len(ids))
            first = max(previous_end, begin + 1)
            log_probs = F.log_softmax(model(ids[begin:end][None]).logits[0].double(), -1)
            total -= log_probs[first - begin - 1:end - begin - 1].gather(1, ids[first:end, None]).sum().item()
            count += end - first
            previous_end = end
    assert float(probe) == pytest.approx(math.exp(total / count), rel=1e-9)
    assert float(probe) != pytest.approx(ref.perplexity(model, ids, window, stride), rel=1e-3)
    whole_spans = ref.window_spans(40, window, stride)          # 40 = 24 + 16: the last window ends the text
    assert not any(k.startswith(key) for k in probes.perplexity_mistakes(model, c.token_ids("overlap", 40), whole_spans))
