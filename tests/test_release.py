"""The committed student release is what nbgrader makes from solutions/, and it runs as a student finds it."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course import CHAPTERS, REPO, Course, nbgrader_meta, read_notebooks

REGENERATE = "python autograder/release.py (or make release)"


def comparable(notebook) -> list[tuple]:
    """What must not drift: cell types, sources and nbgrader metadata (not ids or outputs)."""
    return [(cell.cell_type, cell.source, nbgrader_meta(cell)) for cell in notebook.cells]


@pytest.mark.slow
@pytest.mark.inner
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_committed_release_matches_a_fresh_generate_assignment(course: Course, chapter: str):
    committed_files = sorted(p.name for p in (REPO / "course" / chapter).iterdir())
    fresh_files = sorted(p.name for p in (course.root / "course" / chapter).iterdir())
    assert committed_files == fresh_files, f"course/{chapter} has other files than a fresh release: run {REGENERATE}"
    committed = read_notebooks(REPO / "course" / chapter)
    for name, fresh in course.released(chapter).items():
        drift = [i for i, (a, b) in enumerate(zip(comparable(committed[name]), comparable(fresh))) if a != b]
        assert len(committed[name].cells) == len(fresh.cells) and not drift, (
            f"course/{chapter}/{name}.ipynb differs from solutions/ (cells {drift[:5]}): run {REGENERATE}"
        )


def first_error(path) -> tuple[int, str]:
    """Run a released notebook as a student would; (index of the first failing cell, exception name)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as error:
        failing = [i for i, cell in enumerate(notebook.cells)
                   if any(out.get("output_type") == "error" for out in cell.get("outputs", []))]
        return failing[0], error.ename
    return -1, ""


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted((REPO / "course").glob("*/*.ipynb")), ids=lambda p: p.parent.name)
def test_release_runs_until_the_first_unanswered_exercise(path):
    cells = nbformat.read(path, as_version=4).cells
    first_test = next(i for i, cell in enumerate(cells) if nbgrader_meta(cell).get("grade"))
    index, name = first_error(path)
    assert (index, name) == (first_test, "NotImplementedError"), (
        f"{path.relative_to(REPO)}: expected the first failure at cell {first_test} (the first test cell) with "
        f"NotImplementedError, got cell {index} with {name or 'no error at all'}"
    )
