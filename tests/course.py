"""A temporary nbgrader course for the tests: the real configuration, a throwaway root.

``autograder/nbgrader_config.py`` reads ``TFS_COURSE_ROOT``; these helpers copy ``solutions/`` into
a temporary root, run nbgrader's own commands there, build student submissions from the release,
and read scores back from the real gradebook.
"""

from __future__ import annotations

import copy
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader.api import Gradebook

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "autograder"))
import release  # noqa: E402  (autograder/release.py)

CHAPTERS = release.chapters(REPO)
COURSE_ID = "transformers-from-scratch"
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.MULTILINE)


def nbgrader_meta(cell: NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_answers(source: NotebookNode) -> dict[str, str]:
    """The instructor's answer for each solution cell, as a student would type it."""
    return {
        nbgrader_meta(cell)["grade_id"]: SOLUTION_MARKERS.sub("", cell.source)
        for cell in source.cells
        if nbgrader_meta(cell).get("solution")
    }


def points_by_cell(source: NotebookNode) -> dict[str, float]:
    """``{grade_id: points}`` for every autograded test cell."""
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in source.cells
            if nbgrader_meta(c).get("grade")}


def exercises(source: NotebookNode) -> list[tuple[str, list[str]]]:
    """``[(solution grade_id, [its test grade_ids])]``: test cells belong to the solution cell before them."""
    result: list[tuple[str, list[str]]] = []
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            result.append((meta["grade_id"], []))
        elif meta.get("grade") and result:
            result[-1][1].append(meta["grade_id"])
    return result


def read_notebooks(folder: Path) -> dict[str, NotebookNode]:
    """``{name: notebook}`` for the ``.ipynb`` files of a folder."""
    return {p.stem: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}


def fill(release_nb: NotebookNode, answers: dict[str, str]) -> NotebookNode:
    """A copy of the released notebook with the given solution cells answered."""
    submission = copy.deepcopy(release_nb)
    for cell in submission.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    return submission


class Course:
    """nbgrader course root in a temporary directory, with ``solutions/`` copied from the repo."""

    def __init__(self, root: Path):
        self.root = root
        shutil.copytree(REPO / "solutions", root / "solutions")

    def nbgrader(self, *args: str, check: bool = True, timeout: float = 900):
        return release.nbgrader(*args, root=self.root, check=check, timeout=timeout)

    def release(self, chapters: list[str]) -> None:
        release.release(chapters, root=self.root)

    def source(self, chapter: str) -> dict[str, NotebookNode]:
        return read_notebooks(self.root / "solutions" / chapter)

    def released(self, chapter: str) -> dict[str, NotebookNode]:
        return read_notebooks(self.root / "course" / chapter)

    def submit(self, student: str, chapter: str, notebooks: dict[str, NotebookNode]) -> None:
        folder = self.root / "grading" / "submitted" / student / chapter
        folder.mkdir(parents=True, exist_ok=True)
        for name, notebook in notebooks.items():
            nbformat.write(notebook, folder / f"{name}.ipynb")

    def autograde(self, chapter: str, students: str, *options: str):
        """Autograde the submissions matching the glob ``students``; returns (process, seconds)."""
        start = time.perf_counter()
        result = self.nbgrader("autograde", chapter, f"--CourseDirectory.student_id={students}", "--force", *options)
        return result, time.perf_counter() - start

    def grades(self, chapter: str, student: str) -> dict[str, float]:
        """``{grade_id: score}`` from the gradebook, over all the chapter's notebooks."""
        scores: dict[str, float] = {}
        with Gradebook(f"sqlite:///{self.root}/grading/gradebook.db", course_id=COURSE_ID) as gradebook:
            for name in self.source(chapter):
                notebook = gradebook.find_submission_notebook(name, chapter, student)
                scores.update({grade.name: grade.score for grade in notebook.grades})
        return scores

    def flagged(self, chapter: str, student: str) -> bool:
        """Whether the grader flagged any of the student's notebooks for the instructor."""
        with Gradebook(f"sqlite:///{self.root}/grading/gradebook.db", course_id=COURSE_ID) as gradebook:
            return any(gradebook.find_submission_notebook(name, chapter, student).flagged for name in self.source(chapter))
