"""Judges against data written by hand instead of a collector: NaN, partial structures, deflate bombs.

A collector can be replaced in the student's kernel, so a judge may receive any plain data. Each attack here was
found to pass (or to blow up the judge's memory) before the judges validated their data; the honest data of the
reference code must still pass beside it."""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import io
import math
import re
import zipfile

import pytest
import torch

from course import REPO
from judge_helpers import solution_namespace
from tfs.grader import judging, run_judge

NAN = float("nan")


@functools.cache
def _namespace(chapter: str) -> dict:
    """The solution notebook's answers of ``chapter`` (``"ch06"``), executed once."""
    folder = next((REPO / "solutions").glob(f"{chapter[2:]}-*")).name
    return solution_namespace(folder)


@functools.cache
def _honest(test: str):
    """The data the real collector returns on correct objects: the package's references named in REFERENCES, else
    the solution notebook's answers (the collector's parameters name them)."""
    if test in ORACLE_DATA:
        return ORACLE_DATA[test]()
    chapter, name = test.split(".")
    collector = getattr(importlib.import_module(f"tfs.grader.collectors.{chapter}"), name)
    parameters = inspect.signature(collector).parameters
    if chapter in REFERENCES:
        objects = {parameter: getattr(importlib.import_module(REFERENCES[chapter][parameter]), parameter)
                   for parameter in parameters}
    else:
        objects = {parameter: _namespace(chapter)[parameter] for parameter in parameters}
    return judging.read_data_roundtrip(judging.collect(test, **objects))


ORACLE_DATA = {  # honest data made with the judges' own oracles, on the collectors' public inputs
    "ch01.softmax_values": lambda: [torch.softmax(x, dim=d) for x, d in _collectors("ch01").softmax_values_inputs()],
    "ch03.encoder_parameters_counts": lambda: [judging.load_judge("ch03.torch_count")(*config)
                                               for config in _collectors("ch03").PARAMETER_CONFIGS],
    "ch04.gpt2_encode_examples": lambda: judging.load_judge("ch04._gpt2_ids")(_collectors("ch04").GPT2_EXAMPLES),
}


def _collectors(chapter: str):
    return importlib.import_module(f"tfs.grader.collectors.{chapter}")


REFERENCES = {  # chapter -> {collector parameter: the module of the package that holds it under that name}
    "ch07": {"generate": "tfs.generate", "apply_repetition_penalty": "tfs.generate", "top_k_filter": "tfs.generate"},
    "ch12": {"chat_prompt": "tfs.chat", "reply": "tfs.chat", "swiglu_hidden": "tfs.nn.modern"},
    "ch06": {"init_gpt_weights": "tfs.models.gpt", "GPT": "tfs.models.gpt", "GPTConfig": "tfs.models.gpt",
             "lr_schedule": "tfs.train", "clip_gradients": "tfs.train", "param_groups": "tfs.train"},
}


def honest(test: str):
    return copy.deepcopy(_honest(test))


def verdict(test: str, data) -> str:
    """``"passed"``, or the judge's failure message (an exception other than a failure fails the test too)."""
    try:
        judging.load_judge(test)(data)
    except AssertionError as failure:
        return str(failure)
    except Exception as error:  # the grader turns this into a failed test ("could not be judged")
        return f"could not be judged: {judging.error_line(error)}"
    return "passed"


def _each_number(value, replace):
    """``value`` with every float replaced by ``replace(float)`` (tensors and ints left alone)."""
    if type(value) is float:
        return replace(value)
    if type(value) is list:
        return [_each_number(item, replace) for item in value]
    if type(value) is dict:
        return {key: _each_number(item, replace) for key, item in value.items()}
    return value


def nan_everywhere(data):
    return _each_number(data, lambda number: NAN)


# (test, attack, forged data from the honest data): each must fail; the honest data must pass.
ATTACKS = [
    ("ch06.init_statistics", "NaN statistics", nan_everywhere),
    ("ch06.init_statistics", "no statistics at all", lambda d: {"stats": {}, "tied": True}),
    ("ch06.init_statistics", "one parameter left out", lambda d: {**d, "stats": dict(list(d["stats"].items())[1:])}),
    ("ch06.lr_schedule", "NaN rates", nan_everywhere),
    ("ch06.lr_schedule", "a one-element list", lambda d: {"lr": d["lr"][:1]}),
    ("ch06.lr_schedule", "an infinite rate after warm-up", lambda d: {"lr": d["lr"][:20] + [math.inf] * 91}),
    ("ch06.clipping", "a NaN norm", lambda d: {k: {**v, "norm": NAN} for k, v in d.items()}),
    ("ch06.clipping", "one max_norm left out", lambda d: {"1.0": d["1.0"]}),
    ("ch06.gpt_model", "a NaN loss", lambda d: {**d, "loss": NAN}),
    ("ch08.schedule", "NaN multipliers", nan_everywhere),
    ("ch08.schedule", "one step of each schedule", lambda d: [run[:1] for run in d]),
    ("ch08.classification_metrics", "NaN metrics", nan_everywhere),
    ("ch08.early_stopping", "one decision", lambda d: {m: {**run, "decisions": run["decisions"][:1]} for m, run in d.items()}),
    ("ch09.perplexity_errors", "four hand-written error lines", lambda d: {
        "stride_over_window": "ValueError: bad", "window_over_context": "ValueError: bad", "empty": "ValueError: bad",
        "fine": "no error"}),
    ("ch09.perplexity_values", "NaN perplexities", nan_everywhere),
    ("ch09.perplexity_mode", "a NaN perplexity", nan_everywhere),
    ("ch09.scaling_fit", "NaN exponents and constants", nan_everywhere),
    ("ch09.scaling_fit", "one case left out", lambda d: {"exact": d["exact"]}),
    ("ch11.entity_scores", "NaN scores", nan_everywhere),
    ("ch11.entity_scores", "f1 left out", lambda d: [{k: v for k, v in case.items() if k != "f1"} for case in d]),
    ("ch11.greedy_decode_eos", "one eos case", lambda d: {"4": d["4"]}),
    ("ch11.align_labels", "one case", lambda d: {**d, "results": d["results"][:1]}),
    ("ch05.mask_tokens_invariants", "the in-place check left out",
     lambda d: {k: v for k, v in d.items() if k != "input_changed"}),
    ("ch10.prune_edges", "no error lines at all", lambda d: {**d, "errors": []}),
    ("ch10.distill_soft", "NaN losses", nan_everywhere),
    ("ch10.lora_forward", "a NaN output", lambda d: {"out": torch.full_like(d["out"], NAN)}),
    ("ch10.lora_errors", "hand-written error lines and 'no error'", lambda d: {
        "errors": ["ValueError: bad"] * len(d["errors"]), "full_rank": "no error"}),
    ("ch10.lora_errors", "the base layer's output for the full rank", lambda d: {
        **d, "full_rank": _collectors("ch10").lora_base()(_collectors("ch10").lora_x()).detach()}),
    ("ch10.lora_errors", "a made-up output for the full rank", lambda d: {**d, "full_rank": torch.randn_like(d["full_rank"])}),
    ("ch10.prune_edges", "masks that keep everything at every sparsity",
     lambda d: forged_masks(d, lambda mask, sparsity: torch.ones_like(mask))),
    ("ch10.prune_edges", "masks that prune the first weights, not the smallest", lambda d: forged_masks(d, first_pruned)),
    ("ch10.prune_edges", "the tied weights' mask pruning the first k weights, the other masks honest",
     lambda d: {**d, _collectors("ch10").TIED_KEY: [first_pruned(mask, _collectors("ch10").TIED_SPARSITY)
                                                      for mask in d[_collectors("ch10").TIED_KEY]]}),
    ("ch10.prune_global", "masks that prune the first weights, not the smallest", lambda d: forged_masks(d, first_pruned)),
    ("ch12.chat_prompt", "no bad-role calls", lambda d: {**d, "bad_roles": []}),
    ("ch12.swiglu_hidden", "one width", lambda d: d[:1]),
    ("ch07.generate", "no single-prompt results", lambda d: {**d, "alone": []}),
    ("ch07.repetition_penalty", "the in-place flags left out",
     lambda d: {"cases": [{k: v for k, v in case.items() if k != "input_changed"} for case in d["cases"]]}),
    ("ch07.top_k", "NaN instead of -inf after the first row", lambda d: {**d, "cases": [
        {"out": torch.cat([item["out"][:1], item["out"][1:].nan_to_num(neginf=NAN)])} for item in d["cases"]]}),
    ("ch06.param_groups", "made-up parameter names", lambda d: {"groups": [
        {"weight_decay": 0.1, "params": [f"w{i}.weight" for i in range(len(d["groups"][0]["params"]))]},
        {"weight_decay": 0.0, "params": [f"b{i}.bias" for i in range(len(d["groups"][1]["params"]))]}]}),
]


def forged_masks(data: dict, forge) -> dict:
    """Chapter 10's pruning data with every mask replaced by ``forge(mask, sparsity)``, laid out as the collector
    lays it out: one list of masks of ``prune_weights()`` per sparsity of ``SPARSITIES`` and ``TINY_SPARSITY`` (keyed
    by ``str(sparsity)``), the one mask of ``tied_weights()`` under ``TIED_KEY`` (its sparsity is ``TIED_SPARSITY``),
    the bad sparsities' error lines under ``"errors"`` and whether the weights were left unchanged under
    ``"weights_kept"``, both kept as they were."""
    c = _collectors("ch10")
    sparsities = {str(sparsity): sparsity for sparsity in c.SPARSITIES + (c.TINY_SPARSITY,)} | {c.TIED_KEY: c.TIED_SPARSITY}
    assert set(data) == set(sparsities) | {"errors", "weights_kept"}, f"the collector's layout changed: {sorted(data)}"
    return {key: [forge(mask, sparsities[key]) for mask in masks] if key in sparsities else masks
            for key, masks in data.items()}


def first_pruned(mask: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A bool mask of ``mask``'s shape that prunes the first round(sparsity · n) entries, whatever their size."""
    kept = torch.ones(mask.numel(), dtype=torch.bool)
    kept[:round(sparsity * mask.numel())] = False
    return kept.reshape(mask.shape)


def _numbers(value) -> list[float]:
    if type(value) is float or type(value) is int and abs(value) >= 100:
        return [float(value)]
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() <= 64:
        return [float(v) for v in value.reshape(-1)]
    items = value.values() if type(value) is dict else value if type(value) is list else []
    return [number for item in items for number in _numbers(item)]


def _answers(value) -> list[str]:
    """Whole answers as a message would print them: lists of ids (tensors or lists), ``[start, end]`` pairs."""
    if isinstance(value, torch.Tensor) and not value.is_floating_point() and 2 <= value.numel() <= 400:
        return [str(value.tolist())] + [str(row) for row in value.tolist() if isinstance(row, list) and len(row) > 2]
    if type(value) is list and len(value) >= 2 and all(type(item) is int for item in value):
        return [str(value)]
    if type(value) is str and len(value) >= 6 and not value.startswith(("ValueError", "no error")):  # a hidden text
        return [value, repr(value)]
    items = value.values() if type(value) is dict else value if type(value) is list else []
    return [text for item in items for text in _answers(item)]


def leaked(message: str, honest_data) -> list[str]:
    """The honest (hidden expected) values that ``message`` prints: numbers at 3 significant digits or more, lists
    of ids."""
    shown = [text for text in _answers(honest_data) if text in message]
    for number in _numbers(honest_data):
        if number != 0 and math.isfinite(number):
            shown += [text for text in {f"{number:{form}}" for form in (".3g", ".4g", ".6g", ".3f", ".4f", ".6f", "g", ",.0f")}
                      if len(text.strip("-0.")) >= 3 and re.search(rf"(?<![\d.]){re.escape(text)}(?!\d)", message)]
    return shown


# (test, a wrong answer made from the honest data): the failure must not print the honest values.
WRONG = [
    ("ch06.gpt_model", lambda d: {**d, "loss": d["loss"] * 1.1}),
    ("ch06.lr_schedule", lambda d: {"lr": [v * 1.1 for v in d["lr"]]}),
    ("ch06.clipping", lambda d: {k: {**v, "norm": v["norm"] * 1.1} for k, v in d.items()}),
    ("ch01.softmax_values", lambda d: [v * 1.1 for v in d]),
    ("ch03.encoder_parameters_counts", lambda d: [v + 1 for v in d]),
    ("ch04.gpt2_encode_examples", lambda d: [[i + 1 for i in ids] for ids in d]),
    ("ch08.schedule", lambda d: [[v * 1.1 for v in run] for run in d]),
    ("ch09.perplexity_values", lambda d: {k: v * 1.1 for k, v in d.items()}),
    ("ch09.perplexity_mode", lambda d: {**d, "value": d["value"] * 1.1}),
    ("ch10.distill_soft", lambda d: {**d, "values": [v * 1.1 for v in d["values"]]}),
    ("ch10.distill_mixed", lambda d: {**d, "values": [v * 1.1 for v in d["values"]]}),
    ("ch12.chat_prompt", lambda d: {**d, "cases": [text.replace("<|im_end|>", "<|end|>", 1) for text in d["cases"]]}),
    ("ch12.reply", lambda d: ["#" + text[1:] for text in d]),
    ("ch12.swiglu_hidden", lambda d: [width + 1 for width in d]),
    ("ch11.greedy_decode", lambda d: {k: torch.cat([v[:, :1], v[:, 1:] + 1], 1) for k, v in d.items()}),
    ("ch11.greedy_decode_eos", lambda d: {k: torch.cat([v[:, :1], v[:, 1:] + 1], 1) for k, v in d.items()}),
    ("ch11.shift_right", lambda d: {**d, "outputs": [v + 1 for v in d["outputs"]]}),
    ("ch11.align_labels", lambda d: {**d, "results": [[v + 1 for v in row] for row in d["results"]]}),
    ("ch11.extract_answer", lambda d: [[0, 1] for _ in d]),
    ("ch11.entity_scores", lambda d: [{k: v * 0.5 + 0.01 for k, v in case.items()} for case in d]),
    ("ch08.classification_metrics", lambda d: [{k: v * 1.1 for k, v in case.items()} for case in d]),
    ("ch08.classification_metrics", lambda d: [{**case, "f1": case["f1"] * 1.1} for case in d]),
]


@pytest.mark.parametrize(("test", "wrong"), WRONG, ids=[t for t, _ in WRONG])
def test_feedback_does_not_print_the_expected_values(test, wrong):
    data = honest(test)
    message = verdict(test, wrong(data))
    assert message != "passed" and not leaked(message, data), message


@pytest.mark.parametrize("test", sorted({test for test, _, _ in ATTACKS} | {test for test, _ in WRONG}))
def test_honest_data_passes(test):
    assert verdict(test, honest(test)) == "passed"


@pytest.mark.parametrize(("test", "attack", "forge"), ATTACKS, ids=[f"{t}-{a}" for t, a, _ in ATTACKS])
def test_forged_data_fails(test, attack, forge):
    message = verdict(test, forge(honest(test)))
    assert message != "passed", f"{test} passed {attack}"


# ------------------------------------------------------------------------------------------ deflate bombs

def deflate_bomb(path, nbytes: int) -> None:
    """A torch.save archive of ``nbytes`` zero bytes, its members deflated (a few KiB on disk per MiB)."""
    buffer = io.BytesIO()
    torch.save(torch.zeros(nbytes, dtype=torch.uint8), buffer)
    saved = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(path, "w") as bomb:
        for member in saved.infolist():
            bomb.writestr(member.filename, saved.read(member), compress_type=zipfile.ZIP_DEFLATED)


def test_a_deflate_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(judging, "MAX_DATA_BYTES", 2**20)  # 1 MiB here stands for the real 256 MiB
    deflate_bomb(tmp_path / "k.pt", 8 * 2**20)
    assert (tmp_path / "k.pt").stat().st_size < 2**20 // 16
    loads = []
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: loads.append(args))
    verdict = run_judge.verdict("ch06.batches", tmp_path / "k.pt", tmp_path / "k.error")
    assert not verdict["passed"] and "8 MiB once unpacked" in verdict["message"], verdict
    assert loads == [], "torch.load ran on the bomb"


def test_data_that_is_not_a_torch_archive_is_refused(tmp_path):
    (tmp_path / "k.pt").write_bytes(b"\x80\x02}q\x00.")  # a bare pickle
    verdict = run_judge.verdict("ch06.batches", tmp_path / "k.pt", tmp_path / "k.error")
    assert not verdict["passed"] and "not a torch.save archive" in verdict["message"], verdict


def test_honest_data_under_the_cap_is_read(tmp_path):
    data = {"x": torch.arange(6.0).reshape(2, 3), "names": ["a", "b"], "n": 3}
    judging.write_data(data, tmp_path / "k.pt")
    read = judging.read_data(tmp_path / "k.pt")
    assert torch.equal(read["x"], data["x"]) and read["names"] == ["a", "b"] and read["n"] == 3
