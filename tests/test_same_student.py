"""Two graders of the same student at once (issue 31, section 4): they take turns on that student, never undo each
other's work (``tfs.grader.student_lock``), while graders of different students run at once.

The unit tests check the lock itself (a second holder waits; links are refused). The slow test runs, with the course's
configuration, ``nbgrader autograde`` over three chapter 00 submissions (a slow one first, then two honest ones) and,
while its kernel runs the slow one, a second ``nbgrader autograde`` of that student alone. nbgrader alone let the
second run remove the first one's graded folder mid-run (a run whose notebook vanished so failed, and a failed run's
clean-up deletes the graded folder while the gradebook keeps the score); here the second run waits, both exit 0, every
graded notebook exists and every gradebook score is the graded notebook's.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import nbformat
import pytest
from nbgrader.utils import determine_grade, is_grade

from course import REPO, Course, fill, solution_answers
import release  # autograder/release.py: course.py puts autograder/ on the path
from tfs.grader import student_lock

CHAPTER = "00-welcome"
NOTEBOOK = "welcome"
LOG = logging.getLogger("test")


def test_a_second_grader_of_the_same_student_waits_for_the_first(tmp_path, caplog):
    first = student_lock.acquire(tmp_path, CHAPTER, "ada", LOG)
    other = student_lock.acquire(tmp_path, CHAPTER, "bob", LOG)  # another student: no wait
    taken = threading.Event()
    second = threading.Thread(target=lambda: (student_lock.release(student_lock.acquire(tmp_path, CHAPTER, "ada", LOG)),
                                              taken.set()))
    with caplog.at_level(logging.INFO):
        second.start()
        assert not taken.wait(0.3), "the second grader did not wait"
        student_lock.release(first)
        assert taken.wait(5), "the second grader did not go on once the first released the lock"
        second.join()
    student_lock.release(other)
    assert "waiting for it to finish" in caplog.text and "going on" in caplog.text
    assert student_lock.acquire(tmp_path, ".", ".", LOG) is None  # generate_assignment's id: no student, no lock


def test_links_in_place_of_the_lock_or_its_folder_are_refused(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "locks" / CHAPTER).mkdir(parents=True)
    (tmp_path / "locks" / CHAPTER / "ada.lock").symlink_to(target)
    with pytest.raises(student_lock.LockError, match="without following a link"):
        student_lock.acquire(tmp_path / "locks", CHAPTER, "ada", LOG)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "locks" / "01-attention").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(student_lock.LockError, match="not a plain folder"):
        student_lock.acquire(tmp_path / "locks", "01-attention", "ada", LOG)
    assert target.read_text() == "keep" and not list((tmp_path / "elsewhere").iterdir())


def notebook_score(course: Course, student: str) -> float | None:
    """What the graded notebook's test cells earned (nbgrader's own rule), or None when there is no graded notebook."""
    path = course.root / "grading" / "autograded" / student / CHAPTER / f"{NOTEBOOK}.ipynb"
    if not path.exists():
        return None
    return sum(determine_grade(cell, LOG)[0] for cell in nbformat.read(path, as_version=4).cells if is_grade(cell))


@pytest.mark.slow
def test_two_graders_of_one_student_at_once_take_turns(tmp_path):
    course = Course(tmp_path / "course")
    course.release([CHAPTER])
    released = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(course.source(CHAPTER)[NOTEBOOK])
    slow = answers | {"standardize": "import time\ntime.sleep(5)\n" + answers["standardize"]}
    submissions = {"t-both": fill(released, slow), "t-honest-a": fill(released, answers),
                   "t-honest-z": fill(released, {"standardize": answers["standardize"]})}
    for student, notebook in submissions.items():
        course.submit(student, CHAPTER, {NOTEBOOK: notebook})
    command = [sys.executable, "-m", "nbgrader", "autograde", CHAPTER, "--force", "--Execute.timeout=30"]
    environment = release.nbgrader_environment(course.root)

    def start(pattern: str) -> subprocess.Popen:
        return subprocess.Popen([*command, f"--CourseDirectory.student_id={pattern}"], cwd=REPO / "autograder",
                                env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = start("t-*")  # t-both first, then the honest students
    seen = []
    for line in first.stdout:  # the second grader starts while the first one's kernel runs t-both's notebook
        seen.append(line)
        if "Autograding" in line:
            break
    second = start("t-both")
    logs = ["".join(seen) + first.communicate(timeout=300)[0], second.communicate(timeout=300)[0]]
    assert [first.returncode, second.returncode] == [0, 0], "\n".join(log[-3000:] for log in logs)
    expected = {"t-both": 4.0, "t-honest-a": 4.0, "t-honest-z": 1.0}
    assert {student: notebook_score(course, student) for student in expected} == expected
    assert {student: sum(course.grades(CHAPTER, student).values()) for student in expected} == expected
    assert "waiting for it to finish" in logs[1], "the second grader did not meet the first on t-both"
