"""``autograder/benchmark.py`` works (its output format, not its speed: speed is measured, not tested)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course import REPO

sys.path.insert(0, str(REPO / "autograder"))
import benchmark  # noqa: E402  (autograder/benchmark.py)


def test_heaviest_chapter_comes_from_recorded_execution_times():
    def timed(*seconds):
        cells = []
        for i, s in enumerate(seconds):
            cell = new_code_cell("pass")
            cell.metadata["execution"] = {"iopub.execute_input": f"2026-01-01T00:00:{i * 10:02d}.000000Z",
                                          "shell.execute_reply": f"2026-01-01T00:00:{i * 10 + s:02d}.500000Z"}
            cells.append(cell)
        return new_notebook(cells=cells)

    assert benchmark.recorded_seconds(timed(1, 2)) == pytest.approx(4.0)
    assert benchmark.recorded_seconds(new_notebook(cells=[new_code_cell("pass")])) is None


@pytest.mark.slow
def test_benchmark_runs_one_submission_of_chapter_00():
    result = subprocess.run([sys.executable, str(REPO / "autograder" / "benchmark.py"), "-n", "1", "-w", "serial,1",
                             "00-welcome"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"^machine: .+, \d+ CPU cores usable", out, re.MULTILINE), out
    assert "command: nbgrader autograde <chapter> --CourseDirectory.student_id=bench-* --force" in out
    for how in ("serial", "1 worker"):
        assert re.search(rf"^00-welcome \[{how}, load [\d.]+\]: 1 submissions in [\d.]+ s: [\d.]+ submissions/minute, "
                         r"[\d.]+ s per submission \(1 of 1 scored full marks, 4 points\)$", out, re.MULTILINE), out
    assert "WARNING" not in out
