"""Judged test cells: the grade comes from a judge process, never from the student's kernel.

:class:`JudgedExecute` is the autograde execute step (it runs in nbgrader's own process). For a
graded test cell whose hidden block is made of ``judge("chNN.name", obj=obj, ...)`` calls:

1. the hidden block is taken out of the source before the cell goes to the kernel, so the hidden
   code never reaches the kernel, its ``In``/history or its outputs; the visible part runs as usual
   (it helps the honest student; it decides nothing);
2. each ``judge(...)`` call is sent as an extra ``store_history=False`` execution that runs the
   public collector (:func:`tfs.grader.judging.collect_to`) and writes plain data (or the learner's
   error line) into a fresh scratch folder the grader made for it; the grader moves the file out at
   once into a folder of its own (regular files only, size-capped); what that execution printed is
   dropped;
3. one fresh process per notebook (memory- and time-limited, a minimal environment), forked by the
   grading process's judge zygote (``python -I -m tfs.grader.run_judge --zygote``, started with the first
   kernel so that it imports torch meanwhile, :class:`JudgeZygote`), judges all the data after the last
   cell; the grader then
   **replaces the outputs of each judged cell** with the verdict: a ``✓`` stream when every judge of
   the cell passed, an ``error`` output carrying the judges' course messages when one failed. So
   nbgrader's ``SaveAutoGrades`` scores the judges' verdicts, whatever the kernel printed.

Hidden blocks that are not only ``judge(...)`` calls (none in the course now; ``tests/test_judged_cells.py``
keeps it so) run in the kernel as ordinary code. A kernel that dies or hangs in the visible part or in a collection: that cell scores 0
with the reason, the kernel is restarted (see :class:`tfs.grader.grading.ResilientExecute`). A judge
process that crashes or runs out of time: every judged cell of the notebook scores 0, with a note.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import json
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets import Enum, Integer, Unicode

from tfs.grader import judge_names
from tfs.grader.grading import ResilientExecute, _add_note, _grade_id
from tfs.grader.selfcheck import HIDDEN_TESTS

MEGABYTE = 1024 * 1024
VERDICT_NAME = "GraderVerdict"


class HiddenBlockError(ValueError):
    """A hidden block that mixes ``judge(...)`` calls with other code."""


def judge_calls(source: str) -> list[tuple[str, str]] | None:
    """``[(test, keyword source), ...]`` for a hidden block made only of ``judge`` calls; else ``None``.

    ``keyword source`` is the text after the test name, e.g. ``", causal_mask=causal_mask"``.
    ``None`` when the cell has no hidden block or the block is ordinary test code (run in the kernel).
    """
    match = HIDDEN_TESTS.search(source)
    if not match:
        return None
    block = "\n".join(match.group(0).splitlines()[1:-1])
    try:
        tree = ast.parse(block)
    except SyntaxError:
        return None
    calls = []
    for statement in tree.body:
        call = statement.value if isinstance(statement, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "judge"):
            if calls:
                raise HiddenBlockError(f"a hidden block mixes judge(...) calls with other code: {ast.unparse(statement)}")
            return None
        if (len(call.args) != 1 or not isinstance(call.args[0], ast.Constant)
                or not isinstance(call.args[0].value, str) or any(k.arg is None for k in call.keywords)):
            raise HiddenBlockError(f"a judge call is judge('chNN.name', name=object, ...): {ast.unparse(call)}")
        test = call.args[0].value
        judge_names.split_test(test)  # a well-formed name, or ValueError
        keywords = "".join(f", {k.arg}={ast.unparse(k.value)}" for k in call.keywords)
        calls.append((test, keywords))
    return calls or None


def visible_source(source: str) -> str:
    """The cell without its hidden block."""
    return HIDDEN_TESTS.sub("", source).rstrip() + "\n"


VISIBLE_FAILED = "Your notebook's visible test of this cell failed:"


def visible_message(error: dict, limit: int = 2000) -> str:
    """What a failed visible part said (the course's checks name the mistake), printable, at most ``limit`` characters.

    The text comes from the student's kernel: it is shown, never trusted (the score comes from the judges).
    """
    text = str(error.get("evalue", ""))
    if error.get("ename") not in ("CheckError", "AssertionError"):
        text = f"{error.get('ename', 'Error')}: {text}"
    text = "".join(c if c.isprintable() or c == "\n" else "?" for c in text)
    text = text if len(text) <= limit else text[:limit] + " [...]"
    return "\n".join("    " + line for line in text.splitlines())  # indented: never read as a verdict line


def with_visible_failure(verdict: str, visible: str, passed: bool) -> str:
    """The verdict of a judged cell, with what its visible part said when that failed."""
    if passed:
        return (f"{verdict}\n{VISIBLE_FAILED}\n{visible}\nThe hidden tests passed on your code, so this costs nothing "
                "here; the failure usually comes from an earlier exercise or from the notebook's state.")
    return f"{VISIBLE_FAILED}\n{visible}\nThe hidden tests:\n{verdict}"


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file (never through a link), or None; at most ``limit`` + 1 bytes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(descriptor, "rb") as file:
        return file.read(limit + 1)


class JudgedExecute(ResilientExecute):
    """nbgrader's execute step, with hidden tests decided by judges outside the kernel."""

    judges_dir = Unicode("", help="folder of the chNN.py judge modules (default: autograder/judges)").tag(config=True)
    judge_timeout = Integer(300, help="seconds the judge process of one notebook may take").tag(config=True)
    judge_memory_mb = Integer(8192, help="address-space limit of the judge process, in MiB").tag(config=True)
    max_data_mb = Integer(256, help="largest data file one hidden test may produce, in MiB").tag(config=True)
    # nbclient's default, "graceful", waits while the sandboxed interpreter tears torch down (about 2 s per
    # notebook); every output and collected result is in by then, and the sandbox dies with its launcher
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                           help="how the kernel is stopped after the last cell").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._replaying = self._isolated = False
        self._manifest: list[dict] = []
        self._seed = judge_names.new_run_seed()  # the hidden tests' inputs, drawn anew for every grading run
        self._judged: dict[int, list[str]] = {}  # cell index -> data keys of its judge calls
        self._cell_failure: dict[int, str] = {}  # cell index -> why it could not be judged
        self._visible_failure: dict[int, str] = {}  # cell index -> what its visible part's failure said
        self._private = Path(tempfile.mkdtemp(prefix="tfs-judge-"))  # never seen by the kernel
        cwd = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
        self._scratch_root = Path(tempfile.mkdtemp(prefix=".tfs-judge-", dir=cwd))
        before = self._gradebook_snapshot(resources)
        JudgeZygote.running()  # the first time: it imports torch while the kernel runs
        try:
            nb, resources = super().preprocess(nb, resources, km)
            self._judge_all(nb)
            self._restore_gradebook(nb, resources, before)
        finally:
            shutil.rmtree(self._private, ignore_errors=True)
            shutil.rmtree(self._scratch_root, ignore_errors=True)
        return nb, resources

    @staticmethod
    def _gradebook_tables(automatic: bool = True):
        """The gradebook's score and comment columns; ``automatic=False`` leaves out those autograding writes.

        Other graders sharing the gradebook (parallel workers on PostgreSQL) write ``auto_score`` and
        ``auto_comment`` of their own students while this kernel runs; no grader ever writes the manual columns.
        """
        from nbgrader.api import Comment, Grade

        if not automatic:
            return ((Grade, ("manual_score", "extra_credit")), (Comment, ("manual_comment",)))
        return ((Grade, ("manual_score", "extra_credit", "auto_score")), (Comment, ("manual_comment", "auto_comment")))

    def _kernel_isolated(self) -> bool:
        """Whether the kernel ran in the OS sandbox, which reaches neither a gradebook file nor a database.

        Recorded while it ran (:meth:`preprocess_cell`): nbclient drops its kernel manager when the kernel stops.
        """
        return self._isolated

    def _gradebook_snapshot(self, resources) -> dict | None:
        """Every score and comment in the gradebook, before the student's kernel runs."""
        url = (resources or {}).get("nbgrader", {}).get("db_url")
        if not url:
            return None
        from sqlalchemy import create_engine, select

        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                return {table.__tablename__: {row[0]: tuple(row[1:]) for row in connection.execute(
                    select(table.id, *(getattr(table, column) for column in columns)))}
                        for table, columns in self._gradebook_tables()}
        finally:
            engine.dispose()

    def _restore_gradebook(self, nb, resources, before: dict | None) -> None:
        """Put back any score or comment changed while the kernel ran (a submission writing the gradebook).

        For an isolated kernel only the manual columns are put back: it cannot reach the gradebook, and the
        automatic columns may have been written meanwhile by a concurrent grader, whose scores must stand. An
        unisolated kernel could have written any column, so all are put back (grade it with one worker).
        """
        if before is None:
            return
        from sqlalchemy import create_engine, update

        after = self._gradebook_snapshot(resources)
        changed = 0
        engine = create_engine(resources["nbgrader"]["db_url"])
        try:
            with engine.begin() as connection:
                everything = dict((table.__tablename__, columns) for table, columns in self._gradebook_tables())
                for table, columns in self._gradebook_tables(automatic=not self._kernel_isolated()):
                    kept = [everything[table.__tablename__].index(column) for column in columns]
                    old, new = before[table.__tablename__], after[table.__tablename__]
                    for row_id in old.keys() & new.keys():
                        values = tuple(old[row_id][i] for i in kept)
                        if tuple(new[row_id][i] for i in kept) != values:
                            connection.execute(update(table).where(table.id == row_id).values(dict(zip(columns, values))))
                            changed += 1
                    changed += len(old.keys() - new.keys())
        finally:
            engine.dispose()
        if changed:
            self.log.error("A submission changed %d gradebook rows while its kernel ran; they were put back", changed)
            _add_note(nb, f"Your notebook changed the gradebook while it ran ({changed} scores or comments); "
                          "the grader put them back and told your instructor.")

    def _restart_and_replay(self, index, resources):
        replaying, self._replaying = self._replaying, True
        try:
            super()._restart_and_replay(index, resources)
        finally:
            self._replaying = replaying

    def preprocess_cell(self, cell, resources, index):
        self._isolated = self._isolated or bool(getattr(self.km, "isolated", False))
        calls = None
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            try:
                calls = judge_calls(cell.source)
            except ValueError as error:  # the instructor's block mixes judge calls with code: run it as before
                self.log.error("Cell %d: %s; its hidden block runs in the kernel", index, error)
        if calls is None:
            return super().preprocess_cell(cell, resources, index)
        original = cell.source
        cell.source = visible_source(original)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        finally:
            cell.source = original
        if self._replaying:
            return cell, resources
        failed = [output for output in cell.outputs if output.get("output_type") == "error"]
        if failed:
            self._visible_failure[index] = visible_message(failed[0])
        keys = [f"{index:03d}-{n}" for n in range(len(calls))]
        self._judged[index] = keys
        for key, (test, _) in zip(keys, calls):
            self._manifest.append({"key": key, "test": test, "seed": self._seed})
        if index in self._failed_cells or self._restarts > self.max_restarts:
            self._cell_failure[index] = cell.outputs[0].evalue if cell.outputs else "the cell did not run"
            return cell, resources
        for key, (test, keywords) in zip(keys, calls):
            if not self._collect(cell, key, test, keywords, index, resources):
                break
        return cell, resources

    def _collection_folder(self) -> tuple[Path, str]:
        """A fresh folder for one collection: (its path here, the expression the kernel evaluates to reach it).

        An isolated kernel (:class:`tfs.grader.grading.SandboxKernelManager`) sees only its sandbox: the
        folder is made in the host side of its ``TFS_JUDGE_OUT`` (``km.judge_out``), owned by the kernel's
        user, and the kernel reaches it through that variable. Other kernels write beside the notebook.
        """
        judge_out = getattr(self.km, "judge_out", None)
        if judge_out is None:
            folder = Path(tempfile.mkdtemp(dir=self._scratch_root))
            return folder, repr(str(folder))
        folder = Path(tempfile.mkdtemp(dir=judge_out))
        if os.geteuid() == 0:
            owner = os.stat(judge_out)
            os.chown(folder, owner.st_uid, owner.st_gid)
        return folder, f"__import__('os').path.join(__import__('os').environ['TFS_JUDGE_OUT'], {folder.name!r})"

    def _collect(self, cell, key: str, test: str, keywords: str, index: int, resources) -> bool:
        """Run one collector in the kernel; False when the kernel died or hung doing it."""
        scratch, folder_expression = self._collection_folder()
        source = (f"__import__('tfs.grader.judging', fromlist=['collect_to']).collect_to("
                  f"{folder_expression}, {key!r}, {test!r}, {self._seed}{keywords})")
        probe = nbformat.v4.new_code_cell(source)
        try:
            try:
                self.execute_cell(probe, index, store_history=False)
            finally:
                self.nb.cells[index] = cell  # nbclient puts the cell it executed (the collection) at the index
        except (DeadKernelError, CellTimeoutError) as error:
            reason = ("the kernel died" if isinstance(error, DeadKernelError) else
                      "the kernel ran past the time limit and ignored the interrupt")
            self._cell_failure[index] = f"{reason} while the grader ran the hidden tests of this cell"
            _add_note(self.nb, f"Cell {index}: {self._cell_failure[index]}. Its tests score 0.")
            self._restart_and_replay(index + 1, resources)
            return False
        limit = self.max_data_mb * MEGABYTE
        data = _read_regular(scratch / f"{key}.pt", limit)
        error = _read_regular(scratch / f"{key}.error", 4096)
        if error is not None:
            (self._private / f"{key}.error").write_bytes(error[:500])
        elif data is not None and len(data) <= limit:
            (self._private / f"{key}.pt").write_bytes(data)
        elif data is not None:
            (self._private / f"{key}.error").write_text(f"results larger than {self.max_data_mb} MiB")
        else:
            failed = [o for o in probe.outputs if o.get("output_type") == "error"]
            line = f"{failed[0].ename}: {failed[0].evalue}" if failed else "no result"
            (self._private / f"{key}.error").write_text(line[:500], encoding="utf-8")
        shutil.rmtree(scratch, ignore_errors=True)
        return True

    def _run_judges(self) -> dict[str, dict]:
        """All verdicts of the notebook from a judge process of its own; raises RuntimeError when it fails."""
        (self._private / "manifest.json").write_text(json.dumps(self._manifest), encoding="utf-8")
        out, errors = self._private / "verdicts.json", self._private / "judge-stderr.txt"
        judges = self.judges_dir or str(judge_names.judges_dir())
        request = {"argv": ["--judges", judges, "--data", str(self._private), "--out", str(out)],
                   "env": {**JudgeZygote.environment(), "HOME": str(self._private),
                           "MPLCONFIGDIR": str(self._private / "mpl"), "TFS_JUDGES_DIR": judges},
                   "cwd": str(self._private), "stderr": str(errors), "memory_mb": self.judge_memory_mb,
                   "cpu_s": self.judge_timeout}
        status = JudgeZygote.running().judge(request, self.judge_timeout)
        if status is None:
            raise RuntimeError(f"the judge process ran past {self.judge_timeout} s")
        if status != 0 or not out.is_file():
            stderr = errors.read_text(encoding="utf-8", errors="replace") if errors.is_file() else ""
            self.log.error("judge process failed (exit %s):\n%s", status, stderr[-4000:])
            last = (stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"the judge process failed (exit {status}: {last[:200]})")
        return json.loads(out.read_text(encoding="utf-8"))

    def _judge_all(self, nb) -> None:
        if not self._judged:
            return
        try:
            verdicts = self._run_judges()
        except Exception as error:  # the grader's own step failed: zero for what could not be judged, and a note
            verdicts = {}
            _add_note(nb, f"The grader could not judge the hidden tests ({error}); the judged test cells score 0 "
                          "for now. Your instructor has been told (the submission is flagged).")
        for index, keys in self._judged.items():
            cell = nb.cells[index]
            if index in self._cell_failure:
                messages, passed = [f"✗ {_grade_id(cell)}: {self._cell_failure[index]}."], False
            else:
                results = [verdicts.get(key, {"passed": False, "message": "✗ not judged"}) for key in keys]
                passed = all(result["passed"] is True for result in results)
                messages = [str(result["message"]) for result in results if passed or not result["passed"]]
            text = "\n".join(messages)
            if index in self._visible_failure:
                text = with_visible_failure(text, self._visible_failure[index], passed)
            if passed:
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
            else:
                cell.outputs = [nbformat.v4.new_output("error", ename=VERDICT_NAME, evalue=text,
                                                       traceback=text.splitlines())]


class JudgeZygote:
    """The parent of this grading process's judge processes: ``python -I -m tfs.grader.run_judge --zygote``.

    It imports torch and the judging code once; for each notebook it forks a judge process that starts with
    them imported (a new interpreter took about 1.3 s of CPU to import them, per notebook). It talks to the
    grader through its own stdin and stdout only, and it ends when the grader does (its stdin closes).
    """

    _current: JudgeZygote | None = None
    START_TIMEOUT = 120  # seconds to import torch and answer the first request, on a busy machine

    def __init__(self):
        self._home = tempfile.mkdtemp(prefix="tfs-judge-zygote-")
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-m", "tfs.grader.run_judge", "--zygote"], cwd=self._home,
            env={**self.environment(), "HOME": self._home}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        self._buffer = b""

    @staticmethod
    def environment() -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_NUM_THREADS": "1"}

    @classmethod
    def running(cls) -> JudgeZygote:
        """This process's zygote, started (again) when there is none alive."""
        if cls._current is None or cls._current.process.poll() is not None:
            cls._current = cls()
        return cls._current

    def judge(self, request: dict, timeout: float) -> int | None:
        """Fork one judge process for ``request`` and wait for it: its exit status, or None when it ran past
        ``timeout`` seconds (it is then killed)."""
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            pid = self._message(self.START_TIMEOUT)["pid"]
            try:
                return int(self._message(timeout)["exit"])
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._message(self.START_TIMEOUT)  # the zygote reaps it and reports its end
                return None
        except (OSError, EOFError, ValueError, KeyError, TypeError) as error:  # the zygote died or said something else
            self.close()  # the next notebook starts a fresh one
            raise RuntimeError(f"the judge zygote failed ({type(error).__name__}: {error})") from None

    def _message(self, timeout: float) -> dict:
        """The zygote's next line, as JSON; TimeoutError after ``timeout`` seconds, EOFError when it ended."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise TimeoutError
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    raise EOFError("the judge zygote ended")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._home, ignore_errors=True)
        if JudgeZygote._current is self:
            JudgeZygote._current = None


atexit.register(lambda: JudgeZygote._current and JudgeZygote._current.close())
