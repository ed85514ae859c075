"""Two graders sharing one gradebook (PostgreSQL on JupyterHub, hub/z2jh's grading Job).

Grader v2's guard (``JudgedExecute._gradebook_snapshot`` / ``_restore_gradebook``, src/tfs/grader/judged.py)
snapshots the gradebook's scores before a student's kernel runs and puts back what changed when it stops. Another
grader saving another student's automatic scores in between (concurrent workers on one PostgreSQL gradebook) must
not be reverted: tests/test_hub.py once saw a student lose their points that way with two workers. An isolated
kernel cannot reach the gradebook, so for it only the manual columns, which no grader writes, are put back.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfs.grader.judged import JudgedExecute


def _two_submissions(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")  # alembic
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as gradebook:
        gradebook.add_assignment("01-attention")
        gradebook.add_notebook("attention", "01-attention")
        gradebook.add_grade_cell("test_softmax_values", "attention", "01-attention", max_score=1, cell_type="code")
        for student in ("being-graded", "graded-by-the-other-worker"):
            gradebook.add_student(student)
            gradebook.add_submission("01-attention", student)
    return url


def test_a_concurrent_graders_scores_survive_the_guard(tmp_path, monkeypatch):
    url = _two_submissions(tmp_path, monkeypatch)
    guard = JudgedExecute()
    monkeypatch.setattr(guard, "_kernel_isolated", lambda: True)  # as every kernel of the parallel command is
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


@pytest.mark.parametrize("isolated, column, put_back", [
    (True, "manual_score", True),  # no grader writes it: whoever did is put back, isolated or not
    (False, "manual_score", True),
    (False, "auto_score", True),  # an unisolated kernel could have written it
    (True, "auto_score", False),  # an isolated one could not: a concurrent grader did
])
def test_what_the_guard_puts_back(tmp_path, monkeypatch, isolated, column, put_back):
    url = _two_submissions(tmp_path, monkeypatch)
    guard = JudgedExecute()
    monkeypatch.setattr(guard, "_kernel_isolated", lambda: isolated)
    resources = {"nbgrader": {"db_url": url}}
    before = guard._gradebook_snapshot(resources)
    with Gradebook(url) as gradebook:
        grade = gradebook.find_grade("test_softmax_values", "attention", "01-attention", "graded-by-the-other-worker")
        setattr(grade, column, 1.0)
        gradebook.db.commit()
    notebook = nbformat.v4.new_notebook()
    guard._restore_gradebook(notebook, resources, before)
    with Gradebook(url) as gradebook:
        grade = gradebook.find_grade("test_softmax_values", "attention", "01-attention", "graded-by-the-other-worker")
        assert (getattr(grade, column) is None) == put_back
    assert ("changed the gradebook" in str(notebook)) == put_back
