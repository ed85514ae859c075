"""Repository-wide pytest hooks: a timing report for notebooks and grading.

nbval runs each solution notebook as one test per cell; this adds the cells' durations up per
notebook. Tests add their own lines (grading times) with :func:`record_timing` from
``tests/course.py``. The report is printed at the end of the run and written to
``build/timings.txt``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

NOTEBOOK_SECONDS: dict[str, float] = defaultdict(float)
TIMINGS: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        NOTEBOOK_SECONDS[path] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    lines = [f"{seconds:7.1f} s  execute {path}" for path, seconds in sorted(NOTEBOOK_SECONDS.items())]
    if NOTEBOOK_SECONDS:
        lines.append(f"{sum(NOTEBOOK_SECONDS.values()):7.1f} s  execute all solution notebooks")
    lines += TIMINGS
    if not lines:
        return
    terminalreporter.section("timings")
    for line in lines:
        terminalreporter.write_line(line)
    report = Path(__file__).parent / "build" / "timings.txt"
    report.parent.mkdir(exist_ok=True)
    report.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def timing_report() -> list[str]:
    """Lines appended here are printed in the run's "timings" section and saved with it."""
    return TIMINGS
