"""Students check themselves: ``tfs check <notebook>`` (or ``python -m tfs check <notebook>``).

Runs the notebook as it would be submitted, top to bottom in a fresh kernel (a copy in memory: the
student's file is never written), and prints one line per visible test cell, grouped under its
exercise: ✓ passed, ✗ failed with the learner-friendly message, · not attempted, with the points at
stake and the seconds it took. No instructor setup is needed: only the notebook and the course
package. Hidden tests (the grader's) are not run; they decide the grade.

Exit status: 0 when every visible test passes, 1 otherwise, 2 when the file cannot be checked
(missing, not a notebook, malformed JSON).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

DEFAULT_TIMEOUT = 60  # seconds per cell
PROBE_TIMEOUT = 10  # after a timeout: how long the interrupted kernel gets to become responsive again
HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?", re.MULTILINE | re.DOTALL)
STUB = re.compile(r"raise\s+NotImplementedError")
TIMEOUT_NAME = "CellTimeout"

PASSED, FAILED, NOT_ATTEMPTED, TIMED_OUT, NOT_RUN = "passed", "failed", "not attempted", "timed out", "not run"
SYMBOLS = {PASSED: "✓", FAILED: "✗", NOT_ATTEMPTED: "·", TIMED_OUT: "✗", NOT_RUN: "·"}


class NotebookProblem(Exception):
    """The file cannot be checked (missing, not a notebook, malformed). Exit status 2."""


@dataclass
class CellRun:
    """What happened when one code cell ran."""

    status: str = NOT_RUN  # "ok", "error", TIMED_OUT or NOT_RUN
    ename: str = ""
    evalue: str = ""
    seconds: float = 0.0
    note: str = ""  # why a cell did not run


@dataclass
class TestResult:
    grade_id: str
    points: float
    status: str
    message: str = ""
    seconds: float = 0.0


@dataclass
class Exercise:
    grade_id: str  # the solution cell's grade_id ("" for tests before any solution cell)
    problem: str = ""  # the solution cell's own error, other than the stub's NotImplementedError
    tests: list[TestResult] = field(default_factory=list)


@dataclass
class Report:
    path: Path
    exercises: list[Exercise]
    other_errors: list[str]
    seconds: float

    @property
    def tests(self) -> list[TestResult]:
        return [test for exercise in self.exercises for test in exercise.tests]

    @property
    def score(self) -> float:
        return sum(test.points for test in self.tests if test.status == PASSED)

    @property
    def max_score(self) -> float:
        return sum(test.points for test in self.tests)

    @property
    def all_passed(self) -> bool:
        return bool(self.tests) and all(test.status == PASSED for test in self.tests)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def field_problems(raw: dict) -> list[str]:
    """What is wrong with the fields ``tfs check`` reads: one line per problem, in the learner's terms."""
    cells = raw.get("cells")
    if "worksheets" in raw and cells is None:
        return []  # nbformat 3: converted (and checked) by nbformat
    if not isinstance(cells, list):
        return [f"'cells' must be a list, not {type(cells).__name__}"]
    problems = []
    for number, cell in enumerate(cells, 1):
        where = f"cell {number}"
        if not isinstance(cell, dict):
            problems.append(f"{where} is a {type(cell).__name__}, not a cell")
            continue
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            problems.append(f"{where}: cell_type is {cell.get('cell_type')!r}")
        source = cell.get("source", "")
        if not (isinstance(source, str) or isinstance(source, list) and all(isinstance(line, str) for line in source)):
            problems.append(f"{where}: its source is a {type(source).__name__}, not text")
        metadata = cell.get("metadata", {})
        if not isinstance(metadata, dict):
            problems.append(f"{where}: its metadata is a {type(metadata).__name__}, not a dictionary")
            continue
        meta = metadata.get("nbgrader", {})
        if not isinstance(meta, dict):
            problems.append(f"{where}: metadata.nbgrader is a {type(meta).__name__}, not a dictionary")
            continue
        for flag in ("grade", "solution", "locked", "task"):
            if flag in meta and not isinstance(meta[flag], bool):
                problems.append(f"{where}: metadata.nbgrader.{flag} is {meta[flag]!r}, not true or false")
        if "grade_id" in meta and not isinstance(meta["grade_id"], str):
            problems.append(f"{where}: metadata.nbgrader.grade_id is {meta['grade_id']!r}, not text")
        points = meta.get("points", 0)
        if meta.get("grade") and (isinstance(points, bool) or not isinstance(points, (int, float))):
            problems.append(f"{where} ({meta.get('grade_id')}): metadata.nbgrader.points is {points!r}, not a number")
    return problems


def load(path: str | Path):
    """The notebook at ``path`` as an nbformat v4 node, or :class:`NotebookProblem` with a clear message."""
    import nbformat

    path = Path(path)
    if not path.exists():
        raise NotebookProblem(f"{path}: no such file.")
    if path.is_dir():
        raise NotebookProblem(f"{path} is a folder; give the path of a notebook (.ipynb) inside it.")
    if path.suffix != ".ipynb":
        raise NotebookProblem(f"{path} is not a notebook: expected a file ending in .ipynb.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise NotebookProblem(f"{path} cannot be read: {error}") from None
    try:
        raw = json.loads(text)
    except RecursionError:
        raise NotebookProblem(f"{path} is nested too deeply to be a notebook (thousands of levels of brackets). "
                              "Start again from a fresh copy of the notebook.") from None
    except json.JSONDecodeError as error:
        raise NotebookProblem(f"{path} is not valid notebook JSON (line {error.lineno}, column {error.colno}: "
                              f"{error.msg}). Was it edited in a text editor, or saved while cut short? "
                              "Open it in JupyterLab, or start again from a fresh copy.") from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise NotebookProblem(f"{path} is JSON but not a Jupyter notebook (it has no cells).")
    problems = field_problems(raw)
    if problems:
        raise NotebookProblem(f"{path} is not a valid course notebook:\n" + "\n".join(f"  - {p}" for p in problems[:10])
                              + "\nUndo these edits (or start again from a fresh copy); the grader restores them "
                                "from the release anyway.")
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except RecursionError:
        raise NotebookProblem(f"{path} is nested too deeply to be a notebook.") from None
    except Exception as error:  # nbformat raises several kinds for broken structure
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise NotebookProblem(f"{path} is not a valid notebook (nbformat's schema): {first}") from None
    if not any(_meta(cell).get("grade") for cell in notebook.cells):
        raise NotebookProblem(f"{path} has no graded test cells: is it a course notebook from course/?")
    return notebook


def _prepare(notebook):
    """A copy to execute: outputs cleared, hidden tests removed (only the visible tests run)."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if _meta(cell).get("grade"):
                cell.source = HIDDEN_TESTS.sub("", cell.source)
    return notebook


def execute(notebook, folder: Path, timeout: float = DEFAULT_TIMEOUT) -> list[CellRun]:
    """Run every code cell of ``notebook`` (modified in place) in a fresh kernel started in ``folder``."""
    return asyncio.run(_execute(notebook, folder, timeout))


async def _execute(notebook, folder: Path, timeout: float) -> list[CellRun]:
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    runs = [CellRun() for _ in notebook.cells]
    timed_out: set[int] = set()

    class Client(NotebookClient):
        async def _async_handle_timeout(self, seconds, cell=None):  # noqa: D401  (nbclient 0.11 hook)
            timed_out.add(id(cell))
            return await super()._async_handle_timeout(seconds, cell)

    client = Client(
        notebook,
        timeout=max(1, math.ceil(timeout)),  # nbclient takes whole seconds; 0 would mean no limit
        allow_errors=True,
        interrupt_on_timeout=True,
        # the cell ends at once with this error; the interrupt stops the kernel's work
        error_on_timeout={"ename": TIMEOUT_NAME, "evalue": f"the cell ran longer than {timeout:g} s", "traceback": []},
        kernel_name="python3",  # the kernel of the Python running this command, as the grader overrides it too
        resources={"metadata": {"path": str(folder)}},
        iopub_timeout=2,
    )
    replies: dict[int, dict] = {}

    def on_executed(cell, cell_index, execute_reply):
        replies[cell_index] = execute_reply or {}

    client.on_cell_executed = on_executed

    # stderr of the kernel process is jupyter_client's noise (transport warnings); cell errors come over iopub
    async with client.async_setup_kernel(stderr=subprocess.DEVNULL):
        interrupted = []
        task = asyncio.current_task()

        def on_ctrl_c():  # cancel this run; leaving the block shuts the kernel down
            interrupted.append(True)
            task.cancel()

        try:  # (nbclient's own handler would shut the kernel down but not stop this loop)
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_ctrl_c)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass
        await client.async_wait_for_reply(await _ensure(client.kc.kernel_info()))
        stop_note = ""
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                runs[index] = CellRun(status="ok")
                continue
            if stop_note:
                runs[index] = CellRun(status=NOT_RUN, note=stop_note)
                continue
            start = time.perf_counter()
            try:
                await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except DeadKernelError:
                if interrupted:  # nbclient reports a cancelled cell as a dead kernel
                    raise KeyboardInterrupt from None
                runs[index] = CellRun(status="error", ename="KernelDied",
                                      evalue="the Python kernel died while running this cell "
                                             "(os._exit, a crash, or it ran out of memory)",
                                      seconds=time.perf_counter() - start)
                stop_note = f"the kernel died in {describe_cell(notebook, index)}"
                continue
            seconds = time.perf_counter() - start
            content = replies.get(index, {}).get("content", {})
            if id(cell) in timed_out:
                runs[index] = CellRun(status=TIMED_OUT, ename=TIMEOUT_NAME,
                                      evalue=f"stopped after {timeout:g} s (an endless loop, or far too slow?)",
                                      seconds=seconds)
                if not await _responsive(client, timed_out):
                    client.shutdown_kernel = "immediate"  # it ignores interrupts: a graceful shutdown would wait
                    stop_note = f"the kernel is still busy with {describe_cell(notebook, index)}, which ignored the interrupt"
            elif content.get("status") == "error":
                runs[index] = CellRun(status="error", ename=content.get("ename", ""),
                                      evalue=content.get("evalue", ""), seconds=seconds)
            else:
                runs[index] = CellRun(status="ok", seconds=seconds)
    return runs


async def _ensure(value):
    return await value if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future) else value


async def _responsive(client, timed_out: set[int]) -> bool:
    """After a timeout and interrupt: does the kernel run a trivial cell within PROBE_TIMEOUT seconds?"""
    from nbformat.v4 import new_code_cell

    probe = new_code_cell("pass")
    timed_out_before = client.timeout
    client.timeout = PROBE_TIMEOUT
    client.error_on_timeout = {"ename": TIMEOUT_NAME, "evalue": "probe", "traceback": []}
    try:
        client.nb.cells.append(probe)
        await client.async_execute_cell(probe, len(client.nb.cells) - 1)
        return id(probe) not in timed_out
    finally:
        client.nb.cells.remove(probe)
        client.timeout = timed_out_before
        client.error_on_timeout = {"ename": TIMEOUT_NAME, "evalue": f"the cell ran longer than {timed_out_before:g} s",
                                   "traceback": []}


def describe_cell(notebook, index: int) -> str:
    """A cell as a learner finds it in JupyterLab: its grade_id, or its first line and the heading above it.

    JupyterLab shows no cell numbers, so a report never names a cell by its index.
    """
    cell = notebook.cells[index]
    grade_id = _meta(cell).get("grade_id")
    if isinstance(grade_id, str) and grade_id:
        return grade_id
    source = cell.source if isinstance(cell.source, str) else ""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    what = f"the cell starting {first[:60] + ('…' if len(first) > 60 else '')!r}" if first else "an empty cell"
    for previous in reversed(notebook.cells[:index]):
        if previous.cell_type == "markdown" and isinstance(previous.source, str):
            headings = [line.lstrip("#").strip() for line in previous.source.splitlines() if line.startswith("#")]
            if headings:
                return f"{what} (under \"{headings[-1][:60]}\")"
    return what


def _message(run: CellRun, limit: int = 25) -> str:
    if run.ename in ("CheckError", TIMEOUT_NAME):
        text = run.evalue  # already written for a learner: expected, received, hint
    else:
        text = f"{run.ename}: {run.evalue}" if run.evalue else run.ename
    lines = text.rstrip().splitlines() or [run.ename]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines: run the cell in JupyterLab to see them all)"]
    return "\n".join(lines)


def build_report(path: Path, notebook, runs: list[CellRun], seconds: float) -> Report:
    """Group the test cells' outcomes under their exercises."""
    exercises: list[Exercise] = []
    other_errors: list[str] = []
    stub_left: dict[str, bool] = {}
    for index, (cell, run) in enumerate(zip(notebook.cells, runs)):
        meta = _meta(cell)
        if meta.get("solution"):
            exercise = Exercise(grade_id=describe_cell(notebook, index))
            stub_left[exercise.grade_id] = bool(STUB.search(cell.source))
            if run.status == "error" and run.ename != "NotImplementedError":
                exercise.problem = _message(run)
            elif run.status == TIMED_OUT:
                exercise.problem = _message(run)
            exercises.append(exercise)
        elif meta.get("grade"):
            if not exercises:
                exercises.append(Exercise(grade_id=""))
            exercise = exercises[-1]
            points = float(meta.get("points", 0) or 0)
            grade_id = describe_cell(notebook, index)
            not_written = stub_left.get(exercise.grade_id, False)
            if run.status == "ok":
                result = TestResult(grade_id, points, PASSED, seconds=run.seconds)
            elif run.status == TIMED_OUT:
                result = TestResult(grade_id, points, TIMED_OUT, _message(run), run.seconds)
            elif run.status == NOT_RUN:
                result = TestResult(grade_id, points, NOT_RUN, run.note)
            elif not_written and run.ename in ("NotImplementedError", "NameError"):
                result = TestResult(grade_id, points, NOT_ATTEMPTED, seconds=run.seconds)
            elif run.ename == "NotImplementedError":
                result = TestResult(grade_id, points, FAILED,
                                    "NotImplementedError: this test uses a function from another exercise that is "
                                    "not written yet.", run.seconds)
            else:
                result = TestResult(grade_id, points, FAILED, _message(run), run.seconds)
            exercise.tests.append(result)
        elif cell.cell_type == "code" and run.status in ("error", TIMED_OUT) and run.ename != "NotImplementedError":
            first = _message(run).splitlines()[0]
            other_errors.append(f"{describe_cell(notebook, index)}: {first}")
    return Report(path=path, exercises=exercises, other_errors=other_errors, seconds=seconds)


def _points(value: float) -> str:
    text = f"{value:g}"
    return f"{text} point" if value == 1 else f"{text} points"


def format_report(report: Report) -> str:
    lines = [f"Visible tests of {report.path.name}", ""]
    width = max([len(test.grade_id) for test in report.tests] + [10])
    for exercise in report.exercises:
        earned = sum(t.points for t in exercise.tests if t.status == PASSED)
        at_stake = sum(t.points for t in exercise.tests)
        title = exercise.grade_id or "(tests before the first exercise)"
        lines.append(f"{title}  [{earned:g} / {_points(at_stake)}]")
        if exercise.problem:
            lines.append("  your cell raised an error:")
            lines += [f"      {line}" for line in exercise.problem.splitlines()]
        for test in exercise.tests:
            status = test.status
            lines.append(f"  {SYMBOLS[status]} {test.grade_id:<{width}}  {_points(test.points):>9}  "
                         f"{status:<13} {test.seconds:5.1f} s")
            if test.message and status != NOT_ATTEMPTED:
                lines += [f"      {line}" for line in test.message.splitlines()]
        lines.append("")
    if report.other_errors:
        lines.append("Other cells that raised an error (an error early on can make later tests fail):")
        lines += [f"  {line}" for line in report.other_errors]
        lines.append("")
    counts = {status: sum(t.status == status for t in report.tests) for status in SYMBOLS}
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    lines.append(f"{report.score:g} / {report.max_score:g} points from visible tests  ({summary})")
    lines.append(f"Checked in {report.seconds:.1f} s.")
    lines.append("Hidden tests decide your grade: the grader runs more tests in the same cells, so passing "
                 "every visible test is necessary, not sufficient.")
    return "\n".join(lines)


def check(path: str | Path, timeout: float = DEFAULT_TIMEOUT, out: TextIO | None = None) -> int:
    """Run the self-check on ``path``, print the report to ``out``; returns the exit status."""
    out = out or sys.stdout
    path = Path(path)
    try:
        notebook = load(path)
    except NotebookProblem as problem:
        print(f"tfs check: {problem}", file=out)
        return 2
    runnable = _prepare(notebook)
    print(f"Running {path} in a fresh kernel (at most {timeout:g} s per cell) ...", file=out, flush=True)
    start = time.perf_counter()
    try:
        runs = execute(runnable, path.resolve().parent, timeout)
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("tfs check: interrupted.", file=out)
        return 130
    except Exception as error:  # the kernel could not start, etc.
        print(f"tfs check: could not run {path}: {type(error).__name__}: {error}", file=out)
        return 2
    report = build_report(path, runnable, runs, time.perf_counter() - start)
    print(format_report(report), file=out, flush=True)
    return 0 if report.all_passed else 1
