"""Two graders sharing one gradebook (PostgreSQL on JupyterHub, hub/z2jh's grading Job): a known bug, pinned down.

Grader v2's guard (``JudgedExecute._gradebook_snapshot`` / ``_restore_gradebook``, src/tfs/grader/judged.py)
snapshots every score in the gradebook before a student's kernel runs and puts back whatever changed when it
stops. When another grader saves another student's scores in between, as concurrent workers on one PostgreSQL
gradebook do, those honest scores are reverted and the student being graded is told their notebook changed the
gradebook. tests/test_hub.py saw it with ``grade_parallel.py -j 2`` (a student lost their points in each of three
runs) and grades with one worker; this test shows the mechanism on a SQLite gradebook in a fraction of a second,
and is expected to fail until the guard only restores what the kernel could have written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfs.grader.judged import JudgedExecute


@pytest.mark.xfail(strict=True, reason="known bug: JudgedExecute's gradebook guard reverts scores saved by a "
                                       "concurrent grader (autograder/INSTRUCTORS.md, JupyterHub limits)")
def test_a_concurrent_graders_scores_survive_the_guard(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")  # alembic
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as gradebook:
        gradebook.add_assignment("01-attention")
        gradebook.add_notebook("attention", "01-attention")
        gradebook.add_grade_cell("test_softmax_values", "attention", "01-attention", max_score=1, cell_type="code")
        for student in ("being-graded", "graded-by-the-other-worker"):
            gradebook.add_student(student)
            gradebook.add_submission("01-attention", student)

    guard = JudgedExecute()
    resources = {"nbgrader": {"db_url": url}}
    before = guard._gradebook_snapshot(resources)  # this worker's kernel starts

    with Gradebook(url) as gradebook:  # meanwhile the other worker saves its student's honest score
        grade = gradebook.find_grade("test_softmax_values", "attention", "01-attention", "graded-by-the-other-worker")
        grade.auto_score = 1.0
        gradebook.db.commit()

    notebook = nbformat.v4.new_notebook()
    guard._restore_gradebook(notebook, resources, before)  # this worker's kernel stops

    with Gradebook(url) as gradebook:
        kept = gradebook.find_grade("test_softmax_values", "attention", "01-attention", "graded-by-the-other-worker")
        assert kept.auto_score == 1.0, "the other worker's score was reverted"
    assert "changed the gradebook" not in str(notebook), "an honest student was told they changed the gradebook"
