"""The committed student release is what nbgrader makes from solutions/ (that it runs as a student finds it, until
the first unanswered exercise, is checked on its grading in tests/test_autograde.py)."""

from __future__ import annotations

import pytest

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
