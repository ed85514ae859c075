"""Students check themselves: ``tfs check <notebook>`` (or ``python -m tfs check <notebook>``).

Runs the notebook as it would be submitted, top to bottom in a fresh kernel, and prints one line per visible
test cell, grouped under its exercise: ✓ passed, ✗ failed with the learner-friendly message, · not attempted,
with the points at stake and the seconds it took. No instructor setup is needed: only the notebook and the course
package. Hidden tests (the grader's) are not run; a test cell made only of hidden tests is reported as such and
counts for nothing here. The check tells the truth about the visible tests because it runs the notebook as the
grader does:

- in **small-run mode** (:func:`tfs.grader.isolation.small_run_environment`, the same signals as grading), so
  the chapter's demonstrations are as short as under grading;
- with the **chapter's own references hidden** (:mod:`tfs.grader.references`: a rewritten package first on the
  kernel's ``PYTHONPATH``), so an answer that imports one fails here as it fails when graded;
- on a **copy** of the notebook's folder in a private temporary folder: the student's files are never written;
- in a **worker process** (``python -m tfs.grader.selfcheck --worker``) watched by this one, which reports when
  the worker is killed (a cell that kills its parent), then kills every process the check started, detached
  ones included (Linux: this process is their subreaper while it runs);
- refusing, before reading anything, a path that is a link, a FIFO, a device or larger than
  :data:`MAX_NOTEBOOK_MB`; and printing every field the notebook controls (grade ids, messages) with control
  characters and terminal escape codes shown as text (:func:`printable`).

Exit status: 0 when every visible test passes, 1 otherwise, 2 when the file cannot be checked
(missing, not a notebook, malformed JSON, a link or a special file, too large), 130 when interrupted.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import io
import json
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

DEFAULT_TIMEOUT = 120  # seconds per cell: the grader's Execute.timeout (autograder/nbgrader_config.py)
PROBE_TIMEOUT = 10  # after a timeout: how long the interrupted kernel gets to become responsive again
MAX_NOTEBOOK_MB = 32  # a larger file is refused before it is read (the course's notebooks are under 1 MB)
MAX_FOLDER_MB = 256  # at most this much of the notebook's folder is copied beside it (hidden folders are not)
HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?", re.MULTILINE | re.DOTALL)
STUB = re.compile(r"raise\s+NotImplementedError")
TIMEOUT_NAME = "CellTimeout"
# C0 and C1 controls but newline and tab, DEL, and the Unicode marks that reorder or break displayed text
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
CONTROLS_AND_NEWLINES = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

PASSED, FAILED, NOT_ATTEMPTED, TIMED_OUT, NOT_RUN = "passed", "failed", "not attempted", "timed out", "not run"
HIDDEN_ONLY = "hidden tests only"
SYMBOLS = {PASSED: "✓", FAILED: "✗", NOT_ATTEMPTED: "·", TIMED_OUT: "✗", NOT_RUN: "·", HIDDEN_ONLY: "-"}


class NotebookProblem(Exception):
    """The file cannot be checked (missing, not a notebook, malformed). Exit status 2."""


@dataclass
class CellRun:
    """What happened when one code cell ran."""

    status: str = NOT_RUN  # "ok", "error", TIMED_OUT, NOT_RUN or HIDDEN_ONLY
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
    stopped: str = ""  # why the check ended before the last cell (the process running it was killed, ...)

    @property
    def tests(self) -> list[TestResult]:
        """The visible tests (a cell made only of hidden tests is none)."""
        return [test for exercise in self.exercises for test in exercise.tests if test.status != HIDDEN_ONLY]

    @property
    def hidden_only(self) -> list[TestResult]:
        return [test for exercise in self.exercises for test in exercise.tests if test.status == HIDDEN_ONLY]

    @property
    def score(self) -> float:
        return sum(test.points for test in self.tests if test.status == PASSED)

    @property
    def max_score(self) -> float:
        return sum(test.points for test in self.tests)

    @property
    def all_passed(self) -> bool:
        return bool(self.tests) and all(test.status == PASSED for test in self.tests) and not self.stopped


def printable(text: object, one_line: bool = False) -> str:
    """``text`` safe to print on a terminal: control characters, escape codes and reordering marks shown as
    ``\\x1b``-style text (newlines too when ``one_line``), so that nothing a notebook holds moves the cursor,
    recolours the screen or rewrites a line of the report."""
    text = str(text)
    pattern = CONTROLS_AND_NEWLINES if one_line else CONTROLS
    return pattern.sub(lambda match: match.group(0).encode("unicode_escape").decode("ascii"), text)


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




def read_notebook_file(path: Path, limit_mb: int = MAX_NOTEBOOK_MB) -> bytes:
    """The bytes of the regular file at ``path``, or :class:`NotebookProblem`: never through a link, never from a
    FIFO, socket or device (opened without blocking, checked on the open file), never more than ``limit_mb``."""
    shown = printable(path, one_line=True)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise NotebookProblem(f"{shown}: no such file.") from None
    except OSError as error:
        raise NotebookProblem(f"{shown} cannot be read: {printable(error.strerror, True)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise NotebookProblem(f"{shown} is a folder; give the path of a notebook (.ipynb) inside it.")
    if path.suffix != ".ipynb":
        raise NotebookProblem(f"{shown} is not a notebook: expected a file ending in .ipynb.")
    if stat.S_ISLNK(info.st_mode):
        raise NotebookProblem(f"{shown} is a link, not a notebook file: check the notebook itself "
                              f"({printable(os.path.realpath(path), True)}).")
    if not stat.S_ISREG(info.st_mode):
        raise NotebookProblem(f"{shown} is not a regular file (a FIFO, a socket or a device): it cannot be a notebook.")
    limit = limit_mb * 1024 * 1024
    if info.st_size > limit:
        raise NotebookProblem(f"{shown} is {info.st_size / 2**20:.0f} MiB: larger than the {limit_mb} MiB a notebook "
                              "may be (the course's are under 1 MiB). Clear its outputs (Edit > Clear Outputs of All "
                              "Cells), save, and check again.")
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise NotebookProblem(f"{shown} cannot be read: {printable(error.strerror, True)}") from None
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # swapped between the lstat and the open
            raise NotebookProblem(f"{shown} is not a regular file: it cannot be a notebook.")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise NotebookProblem(f"{shown} is larger than the {limit_mb} MiB a notebook may be.")
    return data


def load(path: str | Path):
    """The notebook at ``path`` as an nbformat v4 node, or :class:`NotebookProblem` with a clear message."""
    import nbformat

    path = Path(path)
    data = read_notebook_file(path)
    path = printable(path, one_line=True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
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
        raise NotebookProblem(f"{path} is not a valid course notebook:\n"
                              + "\n".join(f"  - {printable(p, True)}" for p in problems[:10])
                              + "\nUndo these edits (or start again from a fresh copy); the grader restores them "
                                "from the release anyway.")
    try:
        notebook = nbformat.reads(text, as_version=4)
        nbformat.validate(notebook)
    except RecursionError:
        raise NotebookProblem(f"{path} is nested too deeply to be a notebook.") from None
    except Exception as error:  # nbformat raises several kinds for broken structure
        first = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise NotebookProblem(f"{path} is not a valid notebook (nbformat's schema): {printable(first, True)}") from None
    if not any(_meta(cell).get("grade") for cell in notebook.cells):
        raise NotebookProblem(f"{path} has no graded test cells: is it a course notebook from course/?")
    return notebook


def only_hidden_tests(source: str) -> bool:
    """Whether a test cell holds nothing but hidden tests: its visible part has no code, only blanks and comments."""
    visible = HIDDEN_TESTS.sub("", source)
    try:
        kinds = {token.type for token in tokenize.generate_tokens(io.StringIO(visible).readline)}
    except (tokenize.TokenError, SyntaxError):  # broken code is code: it runs and fails
        return False
    return kinds <= {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.INDENT,
                     tokenize.DEDENT}


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


def copy_folder(source: Path, destination: Path, budget: int = MAX_FOLDER_MB * 1024 * 1024) -> list[str]:
    """Copy the regular files below ``source`` into ``destination`` (no link followed, no FIFO or device opened, no
    hidden folder such as ``.git`` or ``.ipynb_checkpoints``), up to ``budget`` bytes in all; returns the names of
    what was left out (files the notebook reads, such as a ``my_layers.py`` beside it, are there as in grading)."""
    left_out: list[str] = []
    remaining = [budget]

    def walk(folder: Path, target: Path) -> None:
        target.mkdir(exist_ok=True)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            if entry.is_symlink():
                left_out.append(entry.name)
            elif entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith("."):
                    walk(Path(entry.path), target / entry.name)
            elif entry.is_file(follow_symlinks=False):
                size = entry.stat(follow_symlinks=False).st_size
                if size > remaining[0] or not _copy_regular(Path(entry.path), target / entry.name, size):
                    left_out.append(entry.name)
                else:
                    remaining[0] -= size

    walk(source, destination)
    return left_out


def _copy_regular(source: Path, target: Path, size: int) -> bool:
    """Copy at most ``size`` bytes of the regular file ``source`` (opened without following a link or blocking)."""
    try:
        descriptor = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return False
        with open(target, "wb") as copied:
            left = size
            while left > 0 and (chunk := file.read(min(left, 1 << 20))):
                copied.write(chunk)
                left -= len(chunk)
    return True


def execute(notebook, folder: Path, timeout: float = DEFAULT_TIMEOUT, env: dict[str, str] | None = None,
            progress=None) -> list[CellRun]:
    """Run every code cell of ``notebook`` (modified in place) in a fresh kernel started in ``folder``.

    ``env`` is the kernel's environment (default: this process's); ``progress(event)`` is told
    ``{"start": index}`` before each cell and ``{"cell": index, "run": {...}}`` after it."""
    return asyncio.run(_execute(notebook, folder, timeout, env, progress or (lambda event: None)))


async def _execute(notebook, folder: Path, timeout: float, env: dict[str, str] | None, progress) -> list[CellRun]:
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

    def record(index: int, run: CellRun) -> None:
        runs[index] = run
        progress({"cell": index, "run": dataclasses.asdict(run)})

    client.on_cell_executed = on_executed

    # stderr of the kernel process is jupyter_client's noise (transport warnings); cell errors come over iopub
    async with client.async_setup_kernel(stderr=subprocess.DEVNULL, env=dict(os.environ if env is None else env)):
        await client.async_wait_for_reply(await _ensure(client.kc.kernel_info()))
        stop_note = ""
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code" and _meta(cell).get("grade") and only_hidden_tests(cell.source):
                record(index, CellRun(status=HIDDEN_ONLY))
                continue
            if cell.cell_type != "code" or not cell.source.strip():
                record(index, CellRun(status="ok"))
                continue
            if stop_note:
                record(index, CellRun(status=NOT_RUN, note=stop_note))
                continue
            progress({"start": index})
            start = time.perf_counter()
            try:
                await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except DeadKernelError:
                record(index, CellRun(status="error", ename="KernelDied",
                                      evalue="the Python kernel died while running this cell "
                                             "(os._exit, a crash, or it ran out of memory)",
                                      seconds=time.perf_counter() - start))
                stop_note = f"the kernel died in {describe_cell(notebook, index)}"
                continue
            seconds = time.perf_counter() - start
            content = replies.get(index, {}).get("content", {})
            if id(cell) in timed_out:
                record(index, CellRun(status=TIMED_OUT, ename=TIMEOUT_NAME,
                                      evalue=f"stopped after {timeout:g} s (an endless loop, or far too slow?)",
                                      seconds=seconds))
                if not await _responsive(client, timed_out):
                    client.shutdown_kernel = "immediate"  # it ignores interrupts: a graceful shutdown would wait
                    stop_note = f"the kernel is still busy with {describe_cell(notebook, index)}, which ignored the interrupt"
            elif content.get("status") == "error":
                record(index, CellRun(status="error", ename=str(content.get("ename", ""))[:200],
                                      evalue=str(content.get("evalue", ""))[:20_000], seconds=seconds))
            else:
                record(index, CellRun(status="ok", seconds=seconds))
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

    JupyterLab shows no cell numbers, so a report never names a cell by its index. What the notebook holds is
    shown on one line, control characters as text (:func:`printable`).
    """
    cell = notebook.cells[index]
    grade_id = _meta(cell).get("grade_id")
    if isinstance(grade_id, str) and grade_id:
        return printable(grade_id, one_line=True)
    source = cell.source if isinstance(cell.source, str) else ""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    what = f"the cell starting {first[:60] + ('…' if len(first) > 60 else '')!r}" if first else "an empty cell"
    for previous in reversed(notebook.cells[:index]):
        if previous.cell_type == "markdown" and isinstance(previous.source, str):
            headings = [line.lstrip("#").strip() for line in previous.source.splitlines() if line.startswith("#")]
            if headings:
                return printable(f"{what} (under \"{headings[-1][:60]}\")", one_line=True)
    return printable(what, one_line=True)


def _message(run: CellRun, limit: int = 25) -> str:
    if run.ename in ("CheckError", TIMEOUT_NAME):
        text = run.evalue  # already written for a learner: expected, received, hint
    else:
        text = f"{run.ename}: {run.evalue}" if run.evalue else run.ename
    lines = [printable(line, one_line=True) for line in text.rstrip().splitlines()] or [printable(run.ename, True)]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines: run the cell in JupyterLab to see them all)"]
    return "\n".join(lines)


def build_report(path: Path, notebook, runs: list[CellRun], seconds: float, stopped: str = "") -> Report:
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
            if run.status == HIDDEN_ONLY:
                result = TestResult(grade_id, points, HIDDEN_ONLY)
            elif run.status == "ok":
                result = TestResult(grade_id, points, PASSED, seconds=run.seconds)
            elif run.status == TIMED_OUT:
                result = TestResult(grade_id, points, TIMED_OUT, _message(run), run.seconds)
            elif run.status == NOT_RUN:
                result = TestResult(grade_id, points, NOT_RUN, printable(run.note, one_line=True))
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
    return Report(path=path, exercises=exercises, other_errors=other_errors, seconds=seconds, stopped=stopped)


def _points(value: float) -> str:
    text = f"{value:g}"
    return f"{text} point" if value == 1 else f"{text} points"


def format_report(report: Report) -> str:
    """The report as printed; every field a notebook controls has been through :func:`printable`."""
    lines = [f"Visible tests of {printable(report.path.name, one_line=True)}", ""]
    width = max([len(test.grade_id) for exercise in report.exercises for test in exercise.tests] + [10])
    for exercise in report.exercises:
        visible = [t for t in exercise.tests if t.status != HIDDEN_ONLY]
        earned = sum(t.points for t in visible if t.status == PASSED)
        at_stake = sum(t.points for t in visible)
        hidden = sum(t.points for t in exercise.tests if t.status == HIDDEN_ONLY)
        title = exercise.grade_id or "(tests before the first exercise)"
        extra = f", and {_points(hidden)} in hidden tests only" if hidden else ""
        lines.append(f"{title}  [{earned:g} / {_points(at_stake)}{extra}]")
        if exercise.problem:
            lines.append("  your cell raised an error:")
            lines += [f"      {line}" for line in exercise.problem.splitlines()]
        for test in exercise.tests:
            status = test.status
            if status == HIDDEN_ONLY:
                lines.append(f"  {SYMBOLS[status]} {test.grade_id:<{width}}  {_points(test.points):>9}  "
                             "hidden tests only: the grader runs them, this check does not")
                continue
            lines.append(f"  {SYMBOLS[status]} {test.grade_id:<{width}}  {_points(test.points):>9}  "
                         f"{status:<13} {test.seconds:5.1f} s")
            if test.message and status != NOT_ATTEMPTED:
                lines += [f"      {line}" for line in test.message.splitlines()]
        lines.append("")
    if report.other_errors:
        lines.append("Other cells that raised an error (an error early on can make later tests fail):")
        lines += [f"  {line}" for line in report.other_errors]
        lines.append("")
    if report.stopped:
        lines += [f"The check stopped early: {report.stopped}", ""]
    counts = {status: sum(t.status == status for t in report.tests) for status in SYMBOLS if status != HIDDEN_ONLY}
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    lines.append(f"{report.score:g} / {report.max_score:g} points from visible tests  ({summary})")
    if report.hidden_only:
        hidden = sum(t.points for t in report.hidden_only)
        cells = f"{len(report.hidden_only)} cell{'' if len(report.hidden_only) == 1 else 's'}"
        lines.append(f"{_points(hidden)} in {cells} of hidden tests only: not run here, not counted above.")
    lines.append(f"Checked in {report.seconds:.1f} s, as the grader runs it (small demonstrations; this chapter's "
                 "own package references hidden).")
    lines.append("Hidden tests decide your grade: the grader runs more tests in the same cells, so passing "
                 "every visible test is necessary, not sufficient.")
    return "\n".join(printable(line) for line in lines)


# ------------------------------------------------------------------------------------------ the two processes

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


def _subreaper(on: bool) -> bool:
    """Make this process the subreaper of its descendants (Linux): an orphan, detached or not, is re-parented
    here instead of to init, so that :func:`_kill_started` finds it. False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _living_descendants() -> set[int]:
    """This process's descendants that are not zombies (from ``/proc``; empty where there is none)."""
    from tfs.grader.isolation import descendants

    if not os.path.isdir("/proc"):
        return set()
    living = set()
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != b"Z":
            living.add(pid)
    return living


def _kill_started(before: set[int], worker: subprocess.Popen) -> None:
    """Kill every process the check started: the worker's process group, then every living descendant that was
    not there before (the kernel, what it started, daemons re-parented here), until none is left."""
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    worker.wait()
    killed: set[int] = set()
    for _ in range(100):
        started = _living_descendants() - before
        if not started:
            break
        for pid in started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
        _reap(killed)
    _reap(killed)


def _reap(pids: set[int]) -> None:
    """Collect the exit status of those of ``pids`` that are this process's children (re-parented orphans)."""
    for pid in list(pids):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                pids.discard(pid)
        except ChildProcessError:  # not a child of this process: its own parent collects it
            pids.discard(pid)


def _supervise(runnable, folder: Path, timeout: float, kernel_env: dict[str, str]) -> tuple[list[CellRun], str]:
    """Run ``runnable`` in a worker process; returns ``(runs, why it stopped early or "")``. The runs of cells the
    worker did not report: the one it was running when it died gets the reason, the later ones are not run."""
    import nbformat

    read, write = os.pipe()
    settings = {"fd": write, "folder": str(folder), "timeout": timeout, "env": kernel_env}
    reaping = _subreaper(True)
    before = _living_descendants()
    runs = [CellRun() for _ in runnable.cells]
    reported: set[int] = set()
    current = None
    with tempfile.TemporaryFile() as errors:
        try:
            worker = subprocess.Popen([sys.executable, "-m", "tfs.grader.selfcheck", "--worker", json.dumps(settings)],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                                      pass_fds=(write,), start_new_session=True)
        finally:
            os.close(write)
        try:
            try:
                worker.stdin.write(nbformat.writes(runnable).encode("utf-8"))
                worker.stdin.close()
            except BrokenPipeError:
                pass
            with os.fdopen(read, "r", encoding="utf-8") as messages:
                for line in messages:
                    event = json.loads(line)
                    if "start" in event:
                        current = int(event["start"])
                    elif "cell" in event:
                        index = int(event["cell"])
                        runs[index] = CellRun(**event["run"])
                        reported.add(index)
                        current = None
            worker.wait()
        finally:
            _kill_started(before, worker)
            if reaping:
                _subreaper(False)
        if len(reported) == len(runnable.cells) and worker.returncode == 0:
            return runs, ""
        errors.seek(0)
        last = (errors.read().decode("utf-8", "replace").strip().splitlines() or [""])[-1][:300]
    how = (f"was killed by signal {-worker.returncode}" if worker.returncode < 0
           else f"ended with status {worker.returncode}" + (f" ({last})" if last else ""))
    if current is None:
        stopped = f"the process that ran your notebook {how}, before its first cell or between two cells."
    else:
        stopped = (f"the process that ran your notebook {how} while it ran {describe_cell(runnable, current)}; the "
                   "cells after it were not run. Does that cell stop or kill its parent process "
                   "(os.kill(os.getppid(), ...))?")
        runs[current] = CellRun(status="error", ename="CheckStopped",
                                evalue=f"the process running the notebook {how} while this cell ran")
        reported.add(current)
    for index in range(len(runs)):
        if index not in reported:
            runs[index] = CellRun(status=NOT_RUN, note="the check stopped before this cell")
    return runs, stopped


def _worker(settings_json: str) -> int:
    """The worker: read the notebook on stdin, run it, report each cell on the descriptor it was given."""
    import nbformat

    settings = json.loads(settings_json)
    notebook = nbformat.reads(sys.stdin.read(), as_version=4)
    with os.fdopen(settings["fd"], "w", encoding="utf-8", buffering=1) as channel:
        def progress(event):
            channel.write(json.dumps(event) + "\n")

        execute(notebook, Path(settings["folder"]), settings["timeout"], env={**os.environ, **settings["env"]},
                progress=progress)
    return 0


def check(path: str | Path, timeout: float = DEFAULT_TIMEOUT, out: TextIO | None = None) -> int:
    """Run the self-check on ``path``, print the report to ``out``; returns the exit status."""
    from tfs.grader import references
    from tfs.grader.isolation import small_run_environment

    out = out or sys.stdout
    path = Path(path)
    try:
        notebook = load(path)
    except NotebookProblem as problem:
        print(printable(f"tfs check: {problem}"), file=out)
        return 2
    runnable = _prepare(notebook)
    chapter = references.chapter_of_notebook(notebook)
    print(f"Running {printable(path, one_line=True)} in a fresh kernel (at most {timeout:g} s per cell) ...",
          file=out, flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tfs-check-") as private:
        private = Path(private)
        work, judge = private / "work", private / "judge"
        left_out = copy_folder(path.absolute().parent, work)
        judge.mkdir()
        package = references.package_tree(chapter, private / "package")
        kernel_env = {**small_run_environment(str(judge)),
                      "PYTHONPATH": os.pathsep.join(filter(None, [str(package), os.environ.get("PYTHONPATH")]))}
        try:
            runs, stopped = _supervise(runnable, work, timeout, kernel_env)
        except KeyboardInterrupt:
            print("tfs check: interrupted.", file=out)
            return 130
        except Exception as error:  # the worker could not start, etc.
            print(printable(f"tfs check: could not run {path}: {type(error).__name__}: {error}"), file=out)
            return 2
    if left_out:
        print(printable(f"Not copied beside the notebook for this check (links, special files, or past "
                        f"{MAX_FOLDER_MB} MiB): {', '.join(left_out[:10])}"), file=out)
    report = build_report(path, runnable, runs, time.perf_counter() - start, stopped)
    print(format_report(report), file=out, flush=True)
    return 0 if report.all_passed else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        sys.exit(_worker(sys.argv[2]))
    sys.exit("usage: tfs check <notebook> (python -m tfs.grader.selfcheck --worker is the check's own worker)")
