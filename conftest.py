"""Repository-wide pytest hooks: a timing report, and the grouping that lets ``pytest -n 2`` run the suite safely.

**Timings.** nbval runs each solution notebook as one test per cell; this adds the cells' durations up per
notebook. Tests add their own lines (grading times) through the ``timing_report`` fixture. The report, with
the 15 slowest tests, is printed at the end of the run and written to ``build/timings.txt``; every test's seconds,
and each file's total, go to ``build/test-seconds.txt`` (where the time goes, for the next speed-up). With
pytest-xdist the lines travel from the workers to the controller inside each test's report
(``user_properties``), so the report is the same with one process or several.

**Groups** (``--dist loadgroup``, as ``make test`` runs it). Every test runs in the same worker as the other
tests of its file: the cells of a notebook share one kernel, and modules share expensive fixtures (a lab, a
hub, a graded batch). A test marked ``spread`` is its own group instead (the per-chapter autograding, which
needs only the session's course root), so the two workers can share a long parametrized test.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

NOTEBOOK_SECONDS: dict[str, float] = defaultdict(float)
TEST_SECONDS: dict[str, float] = defaultdict(float)
TIMINGS: list[str] = []  # the controller's collected lines
_PENDING: list[str] = []  # lines a test added in this process and not yet attached to a report
SLOWEST = 15


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "spread: a test that may run in any worker (its own xdist group)")
    config.addinivalue_line("markers", "inner: a slow test that `make test-fast` runs too (the release sync)")


# A scheduling hint: roughly how many seconds the slowest groups take (full runs of 2026-12-06/07, two workers).
# xdist hands groups out in this order, slowest first, so that no long group starts last and leaves one worker
# idle (its default order, by number of tests, started the one-test per-chapter autogrades last). A wrong number
# costs balance only, never a test.
GROUP_SECONDS = {"test_hostile": 210, "test_hostile_v2": 180, "test_workflow": 150, "test_parallel": 120,
                 "test_isolation": 100, "test_autograde": 90, "test_hostile_grading": 75, "test_browser": 75,
                 "test_hostile_host": 60, "test_hub": 60,
                 "finetuning": 90, "sft_dpo": 55, "faster_smaller": 47, "generation": 45, "applications": 35}
AUTOGRADE_SECONDS = {"13": 133, "08": 105, "10": 63, "04": 60, "09": 58, "05": 57, "12": 56, "07": 56, "06": 55,
                     "11": 44, "03": 34, "02": 27, "01": 24, "00": 22}  # the per-chapter autograde tests (spread)


def _seconds(group: str) -> float:
    chapter = re.search(r"\[(\d\d)-", group)
    return AUTOGRADE_SECONDS.get(chapter.group(1), 30) if chapter else GROUP_SECONDS.get(group, 0)


def _group(item) -> str:
    """The xdist group of a test: its file's name, or for a ``spread`` test the test itself."""
    if item.get_closest_marker("spread"):
        return item.name
    return Path(item.nodeid.split("::")[0]).stem


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Under ``--dist loadgroup``: the slowest groups first (:data:`GROUP_SECONDS`; ``make test`` passes
    ``--no-loadscope-reorder`` so that xdist keeps this order), and every test id suffixed with its group, which is
    what xdist's scheduler reads.

    pytest-xdist 3.8 writes the suffix into ``item._nodeid``, which pytest 9 no longer reads (the id is
    ``item._id``), so its own grouping silently does nothing: a notebook's cells ran in two kernels.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    items.sort(key=lambda item: -_seconds(_group(item)))  # stable: each group's own order is kept
    for item in items:
        item._id = coerce_node_id(f"{item.nodeid}@{_group(item)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if _PENDING and call.when == "teardown":  # module fixtures add their line at the last test's teardown
        outcome.get_result().user_properties.extend(("timing", line) for line in _PENDING)
        _PENDING.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid.split("@")[0]  # without the xdist group
    path = nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        NOTEBOOK_SECONDS[path] += report.duration
    TEST_SECONDS[nodeid] += report.duration
    TIMINGS.extend(value for key, value in report.user_properties if key == "timing")


def pytest_terminal_summary(terminalreporter) -> None:
    if hasattr(terminalreporter.config, "workerinput"):  # an xdist worker: the controller reports
        return
    TIMINGS.extend(_PENDING)  # lines added after the last teardown (session fixtures)
    _PENDING.clear()
    lines = [f"{seconds:7.1f} s  execute {path}" for path, seconds in sorted(NOTEBOOK_SECONDS.items())]
    if NOTEBOOK_SECONDS:
        lines.append(f"{sum(NOTEBOOK_SECONDS.values()):7.1f} s  execute all solution notebooks")
    lines += TIMINGS
    slowest = sorted(TEST_SECONDS.items(), key=lambda item: -item[1])[:SLOWEST]
    if slowest:
        lines.append(f"the {len(slowest)} slowest tests (setup, call and teardown):")
        lines += [f"{seconds:7.1f} s  {nodeid}" for nodeid, seconds in slowest]
    if not lines:
        return
    terminalreporter.section("timings")
    for line in lines:
        terminalreporter.write_line(line)
    build = Path(__file__).parent / "build"
    build.mkdir(exist_ok=True)
    (build / "timings.txt").write_text("\n".join(lines) + "\n")
    (build / "test-seconds.txt").write_text(seconds_by_file_and_test())


def seconds_by_file_and_test() -> str:
    """Each file's seconds (setup, call and teardown of its tests), then every test's, slowest first."""
    by_file: dict[str, float] = defaultdict(float)
    for nodeid, seconds in TEST_SECONDS.items():
        by_file[nodeid.split("::")[0]] += seconds
    ranked = [sorted(table.items(), key=lambda item: -item[1]) for table in (by_file, TEST_SECONDS)]
    return "".join(f"{seconds:8.1f} s  {name}\n" for table in ranked for name, seconds in table)


@pytest.fixture(scope="session")
def timing_report() -> list[str]:
    """Lines appended here are printed in the run's "timings" section and saved with it."""
    return _PENDING
