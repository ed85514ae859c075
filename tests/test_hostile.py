"""Broken and hostile submissions: each graded right, with a message, and nobody else harmed.

Every case is a chapter 00 submission built from the release (three test cells: standardize 1
point, batched_scores 1, fit_line 2), all graded in one ``nbgrader autograde`` run together with
an honest full solution, using the course's real nbgrader configuration.
"""

from __future__ import annotations

import copy
import html
import json
import re
import sqlite3

import nbformat
import pytest

from course import Course, fill, nbgrader_meta, solution_answers

CHAPTER = "00-welcome"
NOTEBOOK = "welcome"
TIMEOUT = 12  # seconds per cell for this run (the configured default is 120): the endless cells wait this long
MEMORY_MB = 2048  # a grading kernel's address space for this run (the default is 6144), so the hog fails fast
FULL = {"test_standardize": 1.0, "test_batched_scores": 1.0, "test_fit_line": 2.0}


def cell_index(notebook, grade_id: str) -> int:
    return next(i for i, cell in enumerate(notebook.cells) if nbgrader_meta(cell).get("grade_id") == grade_id)


def with_answer(answers, grade_id, code):
    return lambda release, root: fill(release, answers | {grade_id: code})


def prefixed(answers, code):
    """The full solution, with ``code`` run first in the standardize cell."""
    return with_answer(answers, "standardize", code + "\n" + answers["standardize"])


def deleted(answers):
    def build(release, root):
        submission = fill(release, answers)
        for grade_id in ("test_standardize", "batched_scores"):
            del submission.cells[cell_index(submission, grade_id)]
        return submission
    return build


def reordered(answers):
    def build(release, root):
        submission = fill(release, answers)
        test = submission.cells.pop(cell_index(submission, "test_fit_line"))
        submission.cells.insert(cell_index(submission, "fit_line"), test)  # the test before the code it tests
        return submission
    return build


def edited_test(answers):
    def build(release, root):
        submission = fill(release, answers | {"standardize": "def standardize(x, eps=1e-5):\n    return x"})
        submission.cells[cell_index(submission, "test_standardize")].source = 'print("all tests pass")'
        return submission
    return build


def changed_metadata(answers):
    def build(release, root):
        submission = fill(release, answers | {"batched_scores": "def batched_scores(q, k):\n    return q"})
        nbgrader_meta(submission.cells[cell_index(submission, "test_batched_scores")])["grade_id"] = "test_free_points"
        nbgrader_meta(submission.cells[cell_index(submission, "test_fit_line")])["points"] = 100
        return submission
    return build


def monkeypatched(answers):
    return with_answer(answers, "batched_scores", "\n".join([
        "import torch",
        "torch.allclose = lambda *args, **kwargs: True",
        "check_close = lambda *args, **kwargs: None",
        "def batched_scores(queries, keys):",
        "    return torch.zeros(queries.shape[0], queries.shape[1], keys.shape[1])",
    ]))


def raw_file(text):
    return lambda release, root: text


def old_nbformat(answers):
    return lambda release, root: nbformat.writes(nbformat.v3.convert.downgrade(copy.deepcopy(fill(release, answers))))


# student -> (build(release, course_root), expected grades, words the student's graded notebook must contain)
CASES = {
    "h-honest": (lambda answers: lambda release, root: fill(release, answers), FULL, None),
    "h-loop": (lambda answers: with_answer(answers, "standardize", "while True:\n    pass"),
               FULL | {"test_standardize": 0.0}, "KeyboardInterrupt"),
    "h-swallow": (lambda answers: with_answer(answers, "standardize", "\n".join([
        "import time", "while True:", "    try:", "        time.sleep(0.05)", "    except KeyboardInterrupt:",
        "        pass"])), FULL | {"test_standardize": 0.0}, "ignored the interrupt"),
    "h-sys-exit": (lambda answers: prefixed(answers, "import sys\nsys.exit(3)"), FULL | {"test_standardize": 0.0},
                   "SystemExit"),
    "h-os-exit": (lambda answers: prefixed(answers, "import os\nos._exit(1)"), FULL | {"test_standardize": 0.0},
                  "the kernel died"),
    "h-segfault": (lambda answers: prefixed(answers, "import ctypes\nctypes.string_at(0)"),
                   FULL | {"test_standardize": 0.0}, "the kernel died"),
    "h-memory": (lambda answers: prefixed(answers, "hog = []\nwhile True:\n    hog.append(bytearray(10**8))"),
                 FULL | {"test_standardize": 0.0}, "MemoryError"),
    "h-deleted": (deleted, FULL | {"test_batched_scores": 0.0}, "restored from the release: test_standardize, batched_scores"),
    "h-reordered": (reordered, FULL, "out of order"),
    "h-edited": (edited_test, FULL | {"test_standardize": 0.0}, "read-only cell test_standardize was edited"),
    "h-metadata": (changed_metadata, FULL | {"test_batched_scores": 0.0}, "points of test_fit_line were changed"),
    "h-malformed": (lambda answers: raw_file('{"cells": [ this is not json'), dict.fromkeys(FULL, 0.0),
                    "could not be read as a notebook"),
    "h-nbformat-99": (lambda answers: raw_file(json.dumps({"nbformat": 99, "nbformat_minor": 0, "cells": []})),
                      dict.fromkeys(FULL, 0.0), "could not be read as a notebook"),
    "h-nbformat-3": (old_nbformat, FULL, None),
    "h-huge-output": (lambda answers: prefixed(answers, 'print("x" * 5_000_000)\nfor _ in range(20_000):\n    print("spam")'),
                      FULL, None),
    "h-monkeypatch": (monkeypatched, FULL | {"test_batched_scores": 0.0}, "values differ"),  # judged outside the kernel
    "h-read-other": (lambda answers: lambda release, root: fill(release, answers | {"standardize": (
        f"open({str(root / 'grading' / 'submitted' / 'h-honest' / CHAPTER / 'welcome.ipynb')!r}).read()\n"
        + answers["standardize"])}), FULL | {"test_standardize": 0.0}, "No such file or directory"),  # not in the sandbox
    "h-write-gradebook": (lambda answers: lambda release, root: fill(release, answers | {"standardize": (
        f"open({str(root / 'grading' / 'gradebook.db')!r}, 'ab').write(b'corrupt')\n" + answers["standardize"])}),
        FULL | {"test_standardize": 0.0}, "No such file or directory"),
    # the kernel's home is a private folder of its sandbox: writing there harms nobody
    "h-write-home": (lambda answers: prefixed(answers, "import os\nopen(os.path.expanduser('~/tfs-grader-was-here'), 'w')"),
                     FULL, None),
    "h-network": (lambda answers: prefixed(answers, "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)"),
                  FULL | {"test_standardize": 0.0}, "does not allow network access"),
}


def graded_text(course: Course, student: str) -> str:
    path = course.root / "grading" / "autograded" / student / CHAPTER / f"{NOTEBOOK}.ipynb"
    return path.read_text()


@pytest.fixture(scope="module")
def graded(course: Course, timing_report):
    """Submit every case, autograde them all in one run; the course with its gradebook."""
    source = course.source(CHAPTER)[NOTEBOOK]
    release = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(source)
    for student, (make, _, _) in CASES.items():
        submission = make(answers)(release, course.root)
        folder = course.root / "grading" / "submitted" / student / CHAPTER
        folder.mkdir(parents=True, exist_ok=True)
        text = submission if isinstance(submission, str) else nbformat.writes(submission)
        (folder / f"{NOTEBOOK}.ipynb").write_text(text)
    result, seconds = course.autograde(CHAPTER, "h-*", f"--Execute.timeout={TIMEOUT}",
                                       f"--SandboxKernelManager.memory_mb={MEMORY_MB}")
    timing_report.append(f"{seconds:7.1f} s  autograde {len(CASES)} hostile chapter-00 submissions")
    return course, result


@pytest.mark.slow
@pytest.mark.parametrize("student", list(CASES))
def test_hostile_submission_is_graded_right_with_a_message(graded, student):
    course, _ = graded
    _, expected, words = CASES[student]
    assert course.grades(CHAPTER, student) == expected
    if words:
        assert words in graded_text(course, student), f"{student}: the graded notebook does not say {words!r}"


@pytest.mark.slow
def test_grader_notes_reach_the_feedback_and_the_gradebook_flag(graded):
    course, _ = graded
    course.nbgrader("generate_feedback", CHAPTER, "--CourseDirectory.student_id=h-edited", "--force")
    page = (course.root / "grading" / "feedback" / "h-edited" / CHAPTER / f"{NOTEBOOK}.html").read_text()
    assert "Notes from the grader" in html.unescape(re.sub(r"<[^>]+>", "", page))
    database = sqlite3.connect(course.root / "grading" / "gradebook.db")
    flagged = {name for (name,) in database.execute(
        "SELECT student.id FROM submitted_notebook JOIN submitted_assignment ON "
        "submitted_notebook.assignment_id = submitted_assignment.id JOIN student ON "
        "submitted_assignment.student_id = student.id WHERE submitted_notebook.flagged")}
    assert {"h-edited", "h-deleted", "h-swallow"} <= flagged
    assert "h-honest" not in flagged


@pytest.mark.slow
def test_nothing_else_is_harmed(graded):
    course, _ = graded
    database = sqlite3.connect(course.root / "grading" / "gradebook.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    honest = course.root / "grading" / "submitted" / "h-honest" / CHAPTER / f"{NOTEBOOK}.ipynb"
    nbformat.validate(nbformat.read(honest, as_version=4))
    assert not (course.root.home() / "tfs-grader-was-here").exists()
    huge = course.root / "grading" / "autograded" / "h-huge-output" / CHAPTER / f"{NOTEBOOK}.ipynb"
    assert huge.stat().st_size < 2_000_000, "huge outputs were not cut"
    unreadable = course.root / "grading" / "submitted" / "h-malformed" / CHAPTER / f"{NOTEBOOK}.ipynb.unreadable"
    assert "this is not json" in unreadable.read_text(), "the original unreadable file must be kept"
