"""A class's whole term in one test, with nbgrader's own commands and a temporary exchange.

generate → release_assignment → (each student) fetch_assignment, work, submit → collect →
autograde → generate_feedback → release_feedback → (each student) fetch_feedback → export;
then autograde again (same gradebook) and a resubmission that replaces only its own grades.
"""

from __future__ import annotations

import csv
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course import COURSE_ID, Course, fill, read_notebooks, solution_answers

CHAPTER = "00-welcome"
WRONG_SCORES = "def batched_scores(queries, keys):\n    return queries @ keys  # forgot the transpose"


def student_nbgrader(home: Path, exchange: Path, *args: str) -> subprocess.CompletedProcess:
    """nbgrader as a student runs it: from their own folder and home, no instructor configuration."""
    env = dict(os.environ, HOME=str(home), JUPYTER_DATA_DIR=str(home / ".jupyter-data"))  # their own submission cache
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--course={COURSE_ID}",
                             f"--Exchange.root={exchange}"], cwd=home, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def scores(course: Course, students) -> dict[str, dict[str, float]]:
    return {student: course.grades(CHAPTER, student) for student in students}


def export(course: Course, exchange: Path, path: Path) -> dict[str, float]:
    course.nbgrader("export", f"--CsvExportPlugin.to={path}", f"--Exchange.root={exchange}")
    with path.open() as rows:
        return {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(rows) if row["assignment"] == CHAPTER}


# every student here is this test's own user: collect's owner check (tfs.grader.exchange) is off, its other checks on
ONE_USER = ("--ExchangeCollect.check_owner=False",)


@pytest.mark.slow
def test_a_term_of_nbgrader_with_three_students(tmp_path, timing_report):
    course = Course(tmp_path / "course")  # its own course: feedback and export cover every student in it
    course.release([CHAPTER])
    exchange = tmp_path / "exchange"
    exchange.mkdir(mode=0o777)
    course.nbgrader("release_assignment", CHAPTER, f"--Exchange.root={exchange}", "--force")
    answers = solution_answers(course.source(CHAPTER)["welcome"])
    work = {  # what each student types into the fetched notebook
        "alice": answers,
        "bob": answers | {"batched_scores": WRONG_SCORES, "fit_line": None},
        "carol": {},
    }
    for student, typed in work.items():
        home = tmp_path / student
        home.mkdir()
        student_nbgrader(home, exchange, "fetch_assignment", CHAPTER)
        path = home / CHAPTER / "welcome.ipynb"
        fetched = nbformat.read(path, as_version=4)
        nbformat.write(fill(fetched, {k: v for k, v in typed.items() if v is not None}), path)
        student_nbgrader(home, exchange, "submit", CHAPTER, f"--CourseDirectory.student_id={student}")

    course.nbgrader("collect", CHAPTER, f"--Exchange.root={exchange}", *ONE_USER)
    for student in work:
        assert (course.root / "grading" / "submitted" / student / CHAPTER / "welcome.ipynb").exists()
    _, seconds = course.autograde(CHAPTER, "*")
    timing_report.append(f"{seconds:7.1f} s  autograde 3 students' chapter-00 submissions collected from the exchange")
    first = scores(course, work)
    assert {student: sum(grades.values()) for student, grades in first.items()} == {"alice": 4, "bob": 1, "carol": 0}

    course.nbgrader("generate_feedback", CHAPTER, "--force")
    course.nbgrader("release_feedback", CHAPTER, f"--Exchange.root={exchange}")
    student_nbgrader(tmp_path / "bob", exchange, "fetch_feedback", CHAPTER, "--CourseDirectory.student_id=bob")
    [feedback] = (tmp_path / "bob" / CHAPTER / "feedback").glob("*/welcome.html")
    text = html.unescape(re.sub(r"<[^>]+>", "", feedback.read_text()))
    assert "✗ ch00.batched_scores: your code raised RuntimeError" in text  # the judge's verdict, not the kernel's output
    assert "Score: 0.0 / 1.0" in text and "BEGIN HIDDEN TESTS" not in text

    grades_csv = export(course, exchange, tmp_path / "grades.csv")
    assert grades_csv == {"alice": 4.0, "bob": 1.0, "carol": 0.0}

    course.autograde(CHAPTER, "*")  # again, unchanged submissions
    assert scores(course, work) == first, "autograding twice changed the gradebook"

    bob = tmp_path / "bob" / CHAPTER / "welcome.ipynb"  # bob fixes his work and submits again
    nbformat.write(fill(nbformat.read(bob, as_version=4), answers), bob)
    student_nbgrader(tmp_path / "bob", exchange, "submit", CHAPTER, "--CourseDirectory.student_id=bob")
    course.nbgrader("collect", CHAPTER, "--update", f"--Exchange.root={exchange}", *ONE_USER)
    course.autograde(CHAPTER, "bob")
    assert export(course, exchange, tmp_path / "grades-after.csv") == {"alice": 4.0, "bob": 4.0, "carol": 0.0}
    assert scores(course, ["alice", "carol"]) == {s: first[s] for s in ["alice", "carol"]}


def test_every_exercise_heading_states_the_points_its_test_cells_give():
    """A student sees '(N points)' in a heading; the test cells under it must add up to N.

    A heading's own test cells are those before the next heading with points. A heading with none of its own groups
    the exercises under it: '## 4. ... (4 points)' followed by '### How wide? (2 points)' and '### The network
    (2 points)' (in one cell or several) states the sum of the deeper headings up to the next one at its level."""
    pattern = re.compile(r"^(#+) .*\((\d+) points?\)", re.MULTILINE)
    for folder in sorted((Path(__file__).resolve().parents[1] / "solutions").iterdir()):
        for name, notebook in read_notebooks(folder).items():
            headings = []  # [level, stated points, points of its own test cells, text], in notebook order
            for cell in notebook.cells:
                for stated in pattern.finditer(cell.source) if cell.cell_type == "markdown" else ():
                    headings.append([len(stated.group(1)), int(stated.group(2)), 0.0, stated.group(0)])
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("grade") and headings:
                    headings[-1][2] += float(meta["points"])
            for position, (level, stated_points, own, text) in enumerate(headings):
                counted = own
                if not own:
                    for deeper_level, _, deeper_own, _ in headings[position + 1:]:
                        if deeper_level <= level:
                            break
                        counted += deeper_own
                assert stated_points == counted, \
                    f"{folder.name}/{name}: {text}: says {stated_points} points, its tests give {counted}"
