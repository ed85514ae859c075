"""``tfs check`` on malformed notebooks: exit 2 with a clear message, never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from course import REPO
from tfs.grader import selfcheck

RELEASE = REPO / "course" / "00-welcome" / "welcome.ipynb"


def first_graded(raw: dict) -> dict:
    return next(cell for cell in raw["cells"] if cell["metadata"].get("nbgrader", {}).get("grade"))


def points_string(raw):
    first_graded(raw)["metadata"]["nbgrader"]["points"] = "1"


def nbgrader_list(raw):
    first_graded(raw)["metadata"]["nbgrader"] = ["grade", True]


def source_number(raw):
    first_graded(raw)["source"] = 42


def grade_id_number(raw):
    first_graded(raw)["metadata"]["nbgrader"]["grade_id"] = 7


def cells_not_list(raw):
    raw["cells"] = {"0": raw["cells"][0]}


def invalid_mime(raw):
    code = next(cell for cell in raw["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "display_data", "data": {"text/plain": 5}, "metadata": {}}]


MALFORMED = {
    "points as a string": (points_string, "points is '1', not a number"),
    "metadata.nbgrader a list": (nbgrader_list, "metadata.nbgrader is a list"),
    "source a number": (source_number, "its source is a int, not text"),
    "grade_id a number": (grade_id_number, "grade_id is 7, not text"),
    "cells not a list": (cells_not_list, "'cells' must be a list"),
    "an invalid MIME type": (invalid_mime, "nbformat's schema"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_notebook_exits_2_with_a_clear_message(tmp_path, case):
    edit, words = MALFORMED[case]
    raw = json.loads(RELEASE.read_text())
    edit(raw)
    path = tmp_path / "welcome.ipynb"
    path.write_text(json.dumps(raw))
    out = io.StringIO()
    assert selfcheck.check(path, out=out) == 2
    assert words in out.getvalue() and "Traceback" not in out.getvalue()


def test_nesting_5000_deep_exits_2_without_a_traceback(tmp_path):
    raw = json.loads(RELEASE.read_text())
    text = json.dumps(raw)
    path = tmp_path / "welcome.ipynb"
    path.write_text(text[:-1] + ', "deep": ' + "[" * 5000 + "]" * 5000 + "}")
    result = subprocess.run([sys.executable, "-m", "tfs", "check", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "nested too deeply" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
