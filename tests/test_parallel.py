"""Parallel grading (``autograder/grade_parallel.py``, ``tfs.grader.parallel``) leaves the same gradebook as a serial run.

Four chapter 00 submissions (the full solution, the untouched release, one exercise answered, one
whose kernel dies) are autograded serially by ``nbgrader autograde`` (once, on SQLite) and then again by
the parallel command with 2 workers, on the SQLite gradebook (per-worker copies merged) and on a real
PostgreSQL server (concurrent writers); every recorded score and flag must be the same as the serial run's.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from course import COURSE_ID, REPO, Course, fill, solution_answers
from test_postgres import postgres_url  # noqa: F401  (the fixture: a real PostgreSQL server)
from tfs.grader import parallel

CHAPTER = "00-welcome"
NOTEBOOK = "welcome"


def submit_all(course: Course) -> list[str]:
    release = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(course.source(CHAPTER)[NOTEBOOK])
    notebooks = {
        "p-full": fill(release, answers),
        "p-release": release,
        "p-partial": fill(release, {"standardize": answers["standardize"]}),
        "p-dies": fill(release, answers | {"batched_scores": "import os\nos._exit(1)"}),
    }
    for student, notebook in notebooks.items():
        course.submit(student, CHAPTER, {NOTEBOOK: notebook})
    return sorted(notebooks)


def snapshot(db_url: str, students: list[str]) -> dict:
    """Every score, flag and the number of submissions, as nbgrader's API reads them."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id=COURSE_ID) as gradebook:
        result = {"submissions": len(gradebook.assignment_submissions(CHAPTER))}
        for student in students:
            submission = gradebook.find_submission(CHAPTER, student)
            result[student] = (submission.score, submission.max_score, sorted(
                (notebook.name, grade.name, grade.auto_score, grade.manual_score, notebook.flagged)
                for notebook in submission.notebooks for grade in notebook.grades))
    return result


def run_parallel(course: Course, db_url: str, workers: int = 2) -> parallel.Result:
    return parallel.grade(CHAPTER, root=course.root, autograder=REPO / "autograder", db_url=db_url, workers=workers,
                          pattern="p-*", options=("--Execute.timeout=60",), progress=False)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> tuple[Course, dict]:
    """A course whose four submissions ``nbgrader autograde`` graded one after another, and its gradebook's grades."""
    course = Course(tmp_path_factory.mktemp("serial") / "course")
    course.release([CHAPTER])
    students = submit_all(course)
    course.autograde(CHAPTER, "p-*", "--Execute.timeout=60")
    grades = snapshot(f"sqlite:///{course.root}/grading/gradebook.db", students)
    assert grades["p-full"][0] == grades["p-full"][1] > 0 and grades["p-release"][0] == 0  # the run graded for real
    return course, grades


@pytest.mark.slow
def test_parallel_sqlite_gradebook_equals_the_serial_one(serial):
    course, grades = serial
    students = sorted(s for s in grades if s != "submissions")
    db_url = f"sqlite:///{course.root}/grading/gradebook.db"
    result = run_parallel(course, db_url)  # --force over the serial grades: the merge replaces them
    assert result.failed == {}, result.logs
    assert result.workers == 2 and sorted(result.times) == students
    assert snapshot(db_url, students) == grades
    database = sqlite3.connect(course.root / "grading" / "gradebook.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert database.execute("PRAGMA foreign_key_check").fetchall() == []
    assert not list((course.root / "grading").glob("tfs-grade-*")), "the workers' folders were left behind"
    assert len(list((course.root / "grading" / "logs").glob(f"autograde-{CHAPTER}-worker-*.log"))) == 2


@pytest.mark.slow
def test_parallel_postgresql_gradebook_equals_the_serial_one(serial, postgres_url, tmp_path):  # noqa: F811
    """Concurrent writers on one PostgreSQL gradebook record what the serial run recorded (on SQLite: the same
    submissions, graded by the same commands; a gradebook's scores do not depend on its database)."""
    course = Course(tmp_path / "course")
    course.nbgrader("generate_assignment", CHAPTER, "--force", f"--CourseDirectory.db_url={postgres_url}")
    students = submit_all(course)
    result = run_parallel(course, postgres_url)
    assert result.failed == {}, result.logs
    assert snapshot(postgres_url, students) == serial[1]


@pytest.mark.slow
def test_the_command_shows_progress_and_throughput(tmp_path):
    course = Course(tmp_path / "course")
    course.release([CHAPTER])
    release = course.released(CHAPTER)[NOTEBOOK]
    course.submit("c-one", CHAPTER, {NOTEBOOK: release})
    course.submit("c-two", CHAPTER, {NOTEBOOK: release})
    command = [sys.executable, str(REPO / "autograder" / "grade_parallel.py"), CHAPTER, "-j", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "TFS_COURSE_ROOT": str(course.root)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2/2" in result.stderr and "student" in result.stderr, result.stderr  # tqdm's bar, in its final state
    assert "2 submissions in" in result.stdout and "submissions/minute" in result.stdout, result.stdout


def test_students_are_dealt_largest_first_to_the_least_loaded_worker():
    sizes = {"a": 10, "b": 9, "c": 5, "d": 4, "e": 1}
    shares = parallel.deal(list(sizes), sizes, 2)
    assert shares == [["a", "d", "e"], ["b", "c"]]
    assert sorted(sum(shares, [])) == sorted(sizes)
    assert parallel.deal(["a"], sizes, 4) == [["a"]]  # never an idle worker


def test_nbgraders_start_of_a_student_is_recognised():
    line = "[AutogradeApp | INFO] Creating/updating student with ID 'p-full': {}"
    assert parallel.STARTED.search(line).group(1) == "p-full"
