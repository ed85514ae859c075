"""Judged test cells: every graded test cell has judges; the hidden block parser; the judge process."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from course import CHAPTERS, REPO, nbgrader_meta
from tfs.grader import judging
from tfs.grader.judged import HiddenBlockError, judge_calls, visible_source

def graded_cells(chapter: str):
    for path in sorted((REPO / "solutions" / chapter).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if nbgrader_meta(cell).get("grade") and cell.cell_type == "code":
                yield nbgrader_meta(cell)["grade_id"], cell.source


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_graded_test_cell_has_judges_with_collectors(chapter):
    cells = list(graded_cells(chapter))
    assert cells, f"{chapter} has no graded test cells"
    for grade_id, source in cells:
        calls = judge_calls(source)
        assert calls, f"{chapter}/{grade_id}: its hidden block must be judge('chNN.name', ...) calls"
        for test, _ in calls:
            chapter_key, name = test.split(".")
            collector = getattr(importlib.import_module(f"tfs.grader.collectors.{chapter_key}"), name, None)
            assert callable(collector), f"{chapter}/{grade_id}: no collector {test}"
            assert callable(judging.load_judge(test)), f"{chapter}/{grade_id}: no judge {test}"


def test_judge_calls_parses_judge_only_blocks_and_leaves_ordinary_code_to_the_kernel():
    source = ('check(x)\n### BEGIN HIDDEN TESTS\njudge("ch01.causal_mask_values", causal_mask=causal_mask)\n'
              'judge("ch01.causal_mask_dtype", causal_mask=causal_mask)\n### END HIDDEN TESTS')
    assert judge_calls(source) == [("ch01.causal_mask_values", ", causal_mask=causal_mask"),
                                   ("ch01.causal_mask_dtype", ", causal_mask=causal_mask")]
    assert visible_source(source) == "check(x)\n"
    assert judge_calls("check(x)") is None
    assert judge_calls("check(x)\n### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS") is None
    with pytest.raises(HiddenBlockError):
        judge_calls('### BEGIN HIDDEN TESTS\njudge("ch01.a", f=f)\nassert f(1)\n### END HIDDEN TESTS')
    with pytest.raises(ValueError):
        judge_calls('### BEGIN HIDDEN TESTS\njudge("../etc.a", f=f)\n### END HIDDEN TESTS')


class Fake(torch.Tensor):
    pass


def test_judge_process_decides_on_plain_data_only(tmp_path):
    """One process, five verdicts: right data, wrong data, the learner's error, nothing, a forged pickle."""
    data = tmp_path / "data"
    data.mkdir()
    solution = torch.tensor([[True, False], [True, True]])
    judging.write_data([solution, torch.ones(1, 1, dtype=torch.bool)] + [torch.arange(n)[None, :] <= torch.arange(n)[:, None]
                                                                           for n in (2, 7, 64)], data / "a.pt")
    judging.write_data([torch.ones(4, 4, dtype=torch.bool).tril(-1)] * 5, data / "b.pt")
    (data / "c.error").write_text("ZeroDivisionError: division by zero")
    torch.save([Fake(torch.ones(2))], data / "e.pt")  # a tensor subclass: refused by weights_only/plain
    manifest = [{"key": key, "test": "ch01.causal_mask_values"} for key in "abcde"]
    (data / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "verdicts.json"
    subprocess.run([sys.executable, "-I", "-m", "tfs.grader.run_judge", "--judges", str(REPO / "autograder" / "judges"),
                    "--data", str(data), "--out", str(out)], check=True, cwd=tmp_path, timeout=300)
    verdicts = json.loads(out.read_text())
    assert not verdicts["a"]["passed"] and "causal_mask(4)" in verdicts["a"]["message"]  # a (2, 2) mask for size 4
    assert "hides the diagonal" in verdicts["b"]["message"] and not verdicts["b"]["passed"]
    assert "ZeroDivisionError" in verdicts["c"]["message"] and not verdicts["c"]["passed"]
    assert "no result" in verdicts["d"]["message"] and not verdicts["d"]["passed"]
    assert "could not read" in verdicts["e"]["message"] and not verdicts["e"]["passed"]
    judging.write_data([torch.arange(n)[None, :] <= torch.arange(n)[:, None] for n in (4, 1, 2, 7, 64)], data / "a.pt")
    subprocess.run([sys.executable, "-I", "-m", "tfs.grader.run_judge", "--judges", str(REPO / "autograder" / "judges"),
                    "--data", str(data), "--out", str(out)], check=True, cwd=tmp_path, timeout=300)
    assert json.loads(out.read_text())["a"] == {"passed": True, "message": "✓ causal_mask: the grader's tests pass "
                                                                           "(sizes 1, 2, 4, 7, 64)"}


def test_judge_in_the_instructors_notebook_runs_the_judge_in_process(monkeypatch):
    """Under nbval (solutions/), judge(...) decides at once: a right answer passes, a wrong one raises."""
    monkeypatch.delenv("TFS_JUDGE_OUT", raising=False)
    judging.judge("ch01.causal_mask_values", causal_mask=lambda n, device=None: torch.ones(n, n, dtype=torch.bool).tril())
    with pytest.raises(AssertionError, match="hides the diagonal"):
        judging.judge("ch01.causal_mask_values", causal_mask=lambda n, device=None: torch.ones(n, n, dtype=torch.bool).tril(-1))


def test_collect_to_writes_data_or_the_learners_error_line(tmp_path):
    judging.collect_to(tmp_path, "k1", "ch01.causal_mask_values", causal_mask=lambda n, device=None: torch.eye(n).bool())
    assert isinstance(judging.read_data(tmp_path / "k1.pt"), list)

    def broken(n, device=None):
        raise ZeroDivisionError("division by zero")
    judging.collect_to(tmp_path, "k2", "ch01.causal_mask_values", causal_mask=broken)
    assert (tmp_path / "k2.error").read_text() == "ZeroDivisionError: division by zero"
    assert not (tmp_path / "k2.pt").exists()


JUDGES_99 = '''
import os, time


def ok(data):
    return f"✓ ok {sorted(os.environ)} {os.getcwd()}"


def hog(data):
    return len(bytearray(2 * 1024**3))


def sleeps(data):
    while True:
        time.sleep(1)


def dies(data):
    os._exit(7)
'''


def _judge_request(tmp_path, judges, name: str) -> tuple[dict, Path]:
    folder = tmp_path / f"{len(list(tmp_path.iterdir()))}-{name}"  # one folder per notebook
    folder.mkdir()
    judging.write_data(1.0, folder / "k.pt")
    (folder / "manifest.json").write_text(json.dumps([{"key": "k", "test": f"ch99.{name}", "seed": 3}]))
    out = folder / "verdicts.json"
    request = {"argv": ["--judges", str(judges), "--data", str(folder), "--out", str(out)],
               "env": {"PATH": "/usr/bin:/bin", "HOME": str(folder), "TFS_JUDGES_DIR": str(judges)},
               "cwd": str(folder), "stderr": str(folder / "stderr.txt"), "memory_mb": 1024, "cpu_s": 60}
    return request, out


def test_the_judge_zygote_forks_one_limited_process_per_notebook(tmp_path):
    """JudgedExecute's judge processes come from one zygote that imported torch once: each has exactly the
    environment, folder and memory limit it is given; one that runs too long is killed, one that dies is reported,
    and the zygote goes on serving the next notebook; it ends with the grader."""
    from tfs.grader.judged import JudgeZygote

    judges = tmp_path / "judges"
    judges.mkdir()
    (judges / "ch99.py").write_text(JUDGES_99)
    zygote = JudgeZygote()
    try:
        request, out = _judge_request(tmp_path, judges, "ok")
        assert zygote.judge(request, timeout=120) == 0
        verdict = json.loads(out.read_text())["k"]
        assert verdict["passed"] and verdict["message"] == f"✓ ok ['HOME', 'PATH', 'TFS_JUDGES_DIR'] {request['cwd']}"
        request, out = _judge_request(tmp_path, judges, "hog")
        assert zygote.judge(request, timeout=120) == 0
        assert "could not be judged (MemoryError" in json.loads(out.read_text())["k"]["message"]
        request, out = _judge_request(tmp_path, judges, "sleeps")
        started = time.monotonic()
        assert zygote.judge(request, timeout=3) is None  # ran past its time: killed
        assert time.monotonic() - started < 60 and not out.exists()
        request, out = _judge_request(tmp_path, judges, "dies")
        assert zygote.judge(request, timeout=120) == 7 and not out.exists()
        request, out = _judge_request(tmp_path, judges, "ok")
        assert zygote.judge(request, timeout=120) == 0 and json.loads(out.read_text())["k"]["passed"]
    finally:
        zygote.close()
    assert zygote.process.returncode == 0, "the zygote did not end when its grader closed its input"


def test_a_failed_visible_part_is_quoted_in_the_verdict_and_decides_nothing():
    from tfs.grader.judged import VISIBLE_FAILED, visible_message, with_visible_failure

    said = visible_message({"ename": "CheckError", "evalue": "✗ mask: row 0 sees key 1\n  Hint: \x1b[32m✓ passed"})
    assert said == "    ✗ mask: row 0 sees key 1\n      Hint: ?[32m✓ passed", "indented, control characters replaced"
    assert visible_message({"ename": "RuntimeError", "evalue": "boom"}) == "    RuntimeError: boom"
    assert len(visible_message({"ename": "CheckError", "evalue": "x" * 10_000})) < 2100
    failed = with_visible_failure("✗ ch01.causal_mask: row 0 sees key 1.", said, passed=False)
    assert failed.startswith(VISIBLE_FAILED) and failed.endswith("✗ ch01.causal_mask: row 0 sees key 1.")
    passed = with_visible_failure("✓ ch01.causal_mask", said, passed=True)
    assert passed.startswith("✓ ch01.causal_mask\n" + VISIBLE_FAILED) and "costs nothing" in passed
