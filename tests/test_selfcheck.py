"""``tfs check``: the students' self-check runs a notebook's visible tests and reports per exercise."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course import REPO, fill, nbgrader_meta, read_notebooks, solution_answers
from tfs.__main__ import main

CH00 = "00-welcome"
WRONG_STANDARDIZE = ("def standardize(x, eps=1e-5):\n"
                     "    return (x - x.mean(dim=0)) / x.std(dim=0)  # sample std: a classic slip\n")


def chapter(name: str):
    """(source notebook, released notebook, path of the released file) of a one-notebook chapter."""
    (stem, source), = read_notebooks(REPO / "solutions" / name).items()
    released = read_notebooks(REPO / "course" / name)[stem]
    return source, released, REPO / "course" / name / f"{stem}.ipynb"


def graded_ids(notebook) -> list[str]:
    return [nbgrader_meta(c)["grade_id"] for c in notebook.cells if nbgrader_meta(c).get("grade")]


def total_points(notebook) -> float:
    return sum(float(nbgrader_meta(c)["points"]) for c in notebook.cells if nbgrader_meta(c).get("grade"))


def points_of(notebook, grade_id: str) -> float:
    return next(float(nbgrader_meta(c)["points"]) for c in notebook.cells if nbgrader_meta(c).get("grade_id") == grade_id)


def report_lines(text: str) -> dict[str, str]:
    """``{test grade_id: its report line}`` (``  ✓ test_x   1 point  passed   0.1 s``)."""
    lines = {}
    for line in text.splitlines():
        match = re.match(r"^  ([✓✗·]) (\S+) +[\d.]+ points? ", line)
        if match:
            lines[match.group(2)] = line
    return lines


def run_check(capsys, path: Path, *options: str) -> tuple[int, str]:
    code = main(["check", str(path), *options])
    return code, capsys.readouterr().out


def test_untouched_release_is_not_attempted_and_file_unchanged(capsys):
    """On the real released file, no instructor setup: every test not attempted, exit 1, file untouched."""
    _, released, path = chapter(CH00)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    siblings = sorted(p.name for p in path.parent.iterdir())

    code, out = run_check(capsys, path)

    assert code == 1
    lines = report_lines(out)
    assert set(lines) == set(graded_ids(released))
    assert all(line.split()[0] == "·" and "not attempted" in line for line in lines.values()), out
    assert f"0 / {total_points(released):g} points from visible tests" in out
    assert "Hidden tests decide your grade" in out
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before, "the student's notebook was modified"
    assert sorted(p.name for p in path.parent.iterdir()) == siblings, "files appeared beside the notebook"


def test_partly_wrong_submission_shows_the_friendly_message(capsys, tmp_path):
    source, released, _ = chapter(CH00)
    answers = solution_answers(source) | {"standardize": WRONG_STANDARDIZE}
    path = tmp_path / "welcome.ipynb"
    nbformat.write(fill(released, answers), path)

    code, out = run_check(capsys, path)

    assert code == 1
    lines = report_lines(out)
    assert lines["test_standardize"].split()[0] == "✗" and "failed" in lines["test_standardize"]
    assert f"{points_of(released, 'test_standardize'):g} point" in lines["test_standardize"]
    # the CheckError text from tfs.teaching.checks, not a traceback
    assert "standardize(data): values differ from the expected result" in out
    assert "Hint: per column: dim=0; population variance: correction=0" in out
    assert "Traceback" not in out
    assert all(line.split()[0] == "✓" for test, line in lines.items() if test != "test_standardize"), out
    earned = total_points(released) - points_of(released, "test_standardize")
    assert f"{earned:g} / {total_points(released):g} points from visible tests" in out
    assert "standardize  [0 / " in out  # the exercise heading with its points


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ('{"cells": [', "not valid notebook JSON"),
    ('{"name": "not a notebook"}', "not a Jupyter notebook"),
    ("print('hello')", "not valid notebook JSON"),
])
def test_unreadable_files_exit_2_with_a_clear_message(capsys, tmp_path, content, message):
    path = tmp_path / "broken.ipynb"
    if content is not None:
        path.write_text(content)
    code, out = run_check(capsys, path)
    assert code == 2
    assert message in out and "Traceback" not in out


def test_command_line_entry_points(tmp_path):
    """``python -m tfs check`` on a malformed file: exit 2, one clear line, no traceback."""
    path = tmp_path / "attention.ipynb"
    path.write_text('{"cells": [{"cell_type": "code", ')
    result = subprocess.run([sys.executable, "-m", "tfs", "check", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "is not valid notebook JSON" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert subprocess.run([sys.executable, "-m", "tfs", "check", "--help"], capture_output=True).returncode == 0
    assert "not a notebook" in subprocess.run([sys.executable, "-m", "tfs", "check", str(REPO / "README.md")],
                                              capture_output=True, text=True).stdout


@pytest.mark.slow
def test_full_solution_passes_every_visible_test(capsys, tmp_path):
    source, released, _ = chapter("01-attention")
    path = tmp_path / "attention.ipynb"
    nbformat.write(fill(released, solution_answers(source)), path)

    code, out = run_check(capsys, path)

    assert code == 0, out
    lines = report_lines(out)
    assert set(lines) == set(graded_ids(released))
    assert all(line.split()[0] == "✓" and "passed" in line for line in lines.values()), out
    total = total_points(released)
    assert f"{total:g} / {total:g} points from visible tests" in out


def tiny_instructor_notebook() -> nbformat.NotebookNode:
    """Two exercises and no imports, so that no cell but the loop can come near a timeout however loaded
    the machine: ``square``, whose hidden test would raise, and ``spin``, which never returns."""
    def cell(source, grade_id, solution=False, grade=False, points=0):
        meta = {"grade_id": grade_id, "locked": not solution, "schema_version": 3, "solution": solution,
                "grade": grade, "task": False}
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta | ({"points": points} if grade else {})})

    return nbformat.v4.new_notebook(cells=[
        cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION", "square", solution=True),
        cell('assert square(3) == 9\nprint("✓ square")\n### BEGIN HIDDEN TESTS\nraise RuntimeError("hidden ran")\n'
             "### END HIDDEN TESTS", "test_square", grade=True, points=1),
        cell("def spin():\n    ### BEGIN SOLUTION\n    while True:\n        pass\n    ### END SOLUTION", "spin",
             solution=True),
        cell('spin()\nprint("✓ spin")', "test_spin", grade=True, points=1),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


@pytest.mark.slow
def test_hidden_tests_are_not_run_and_a_timeout_is_reported(capsys, tmp_path):
    """On an instructor notebook the hidden tests are stripped; a looping exercise is reported as timed out."""
    path = tmp_path / "tiny.ipynb"
    nbformat.write(tiny_instructor_notebook(), path)

    code, out = run_check(capsys, path, "--timeout", "8")

    assert code == 1
    lines = report_lines(out)
    assert "passed" in lines["test_square"], out  # the hidden part (which would raise) was not run
    assert "timed out" in lines["test_spin"] and "stopped after 8 s" in out
