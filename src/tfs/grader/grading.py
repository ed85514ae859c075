"""Grading untrusted notebooks: nbgrader extensions wired in ``autograder/nbgrader_config.py``.

nbgrader 0.9.6 alone grades a crashing, exiting or interrupt-swallowing submission as nothing at
all (the student's autograde fails and no grade is recorded), trusts a notebook's cell order and
cell list, and runs student code with the grader's own rights. These classes plug into nbgrader's
own extension points, so instructors keep using ``nbgrader autograde``:

- :class:`SandboxKernelManager` starts the kernel as ``python -m tfs.grader.sandbox`` (limits, audit hook;
  see :mod:`tfs.grader.sandbox`), with the course's grading folders protected.
- :class:`ResilientExecute` replaces nbgrader's ``Execute``: when the kernel dies or will not stop,
  the cell gets an error (so its tests score 0), the kernel is restarted, the cells before it are
  run again, and grading goes on; a whole notebook has a time limit (restarts and replays included), output is
  capped as it streams (and in the kernel: :mod:`tfs.grader.kernel_output`), an output that is not valid is dropped.
- :class:`RestoreStructure` (sanitising step) puts back deleted, reordered or renamed graded
  cells from the release and notes every edit of a read-only cell.
- :class:`RecordIntegrity` caps huge outputs, flags the submission in the gradebook and puts a note
  for the student at the top of the graded notebook when the grader restored or noticed anything.
- :func:`make_repair_hook` gives nbgrader a ``pre_convert_hook`` that refuses a submission holding links, devices
  or oversized files (:mod:`tfs.grader.intake`) and turns an unreadable notebook
  (malformed JSON, an unknown nbformat version) into a recorded zero with a message.
"""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from nbformat.validator import ValidationError, validate
from nbgrader.api import Gradebook
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from tfs.grader import intake, isolation, references

NOTES = "tfs_grader_notes"  # notebook metadata key: what the grader changed or saw, for the student
MEGABYTE = 1024 * 1024
OUTSTREAM = "--IPKernelApp.outstream_class=tfs.grader.kernel_output.CappedOutStream"  # what a cell prints, capped


def _nbgrader(cell: NotebookNode) -> dict:
    """The cell's nbgrader metadata, or {} when it is missing or not a dict (a student may edit it)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def _grade_id(cell: NotebookNode) -> str | None:
    grade_id = _nbgrader(cell).get("grade_id")
    return grade_id if isinstance(grade_id, str) else None


def _is_protected(cell: NotebookNode) -> bool:
    meta = _nbgrader(cell)
    return bool(meta.get("grade") or meta.get("solution") or meta.get("locked"))


def _add_note(nb: NotebookNode, note: str) -> None:
    nb.metadata.setdefault(NOTES, []).append(note)


_WARNED: set[str] = set()  # the totals this grading run could not limit, each warned about once


class SandboxKernelManager(AsyncKernelManager):
    """Starts each grading kernel in an OS-level sandbox (bubblewrap, :mod:`tfs.grader.isolation`).

    The kernel runs ``python -m tfs.grader.sandbox`` (in-process limits, audit hook) inside
    ``bwrap``: its own PID and network namespaces and user id, a read-only view of the system and of the
    course's Python, nothing of the course's folders, a clean environment, limits on memory, CPU time,
    file size, processes and disk, and a private scratch folder removed when the kernel is shut down.
    It talks to nbgrader over ZeroMQ's ``ipc`` transport (Unix sockets in ``<scratch>/ipc``).

    ``judge_out`` is the host-side folder that the kernel sees as ``TFS_JUDGE_OUT``: what the
    collectors write there can be read by the grader after each cell (``executor.km.judge_out``);
    it is created with the kernel and removed with it.

    Where bubblewrap cannot run, the kernel is not started (grading of that submission fails with
    the reason) unless ``allow_unisolated`` is set: then the in-process sandbox alone is used.

    ``chapter`` (``"07"``, set by :class:`ResilientExecute` from the assignment's name) is the chapter being
    graded: its own references are hidden from the kernel (:mod:`tfs.grader.references`), by binds over the real
    package in the sandbox, by a rewritten copy first on ``PYTHONPATH`` without it. The kernel gets the small-run
    signals (:func:`tfs.grader.isolation.small_run_environment`) either way, as under ``tfs check``.
    """

    memory_mb = Integer(6144, help="address-space limit of a grading kernel, in MiB").tag(config=True)
    cpu_seconds = Integer(1800, help="CPU-time limit of a grading kernel, in seconds").tag(config=True)
    file_mb = Integer(100, help="largest file a submission may write, in MiB").tag(config=True)
    max_processes = Integer(256, help="processes and threads a grading kernel may run at once (RLIMIT_NPROC)"
                            ).tag(config=True)
    disk_mb = Integer(512, help="size of each of the kernel's private folders (/tmp and its working folder), in MiB"
                      ).tag(config=True)
    total_memory_mb = Integer(6144, help="memory of the whole sandbox: every process and its private folders' files, "
                                         "in MiB (a memory cgroup, where the grader may make one)").tag(config=True)
    judge_mb = Integer(512, help="size of the folder the kernel writes its collected results to, in MiB (a tmpfs, "
                                 "where the grader may mount one: root)").tag(config=True)
    threads = Integer(0, help="OMP_NUM_THREADS of a grading kernel (0: the grader's own OMP_NUM_THREADS if set, "
                                 "else torch's default)").tag(config=True)
    bwrap = Unicode("bwrap", help="the bubblewrap program").tag(config=True)
    allow_unisolated = Bool(False, help="grade with the in-process sandbox only where bubblewrap cannot run: "
                                        "only for submissions you trust").tag(config=True)
    scratch_root = Unicode("", help="where kernels' scratch folders are made (default: the temp folder)"
                           ).tag(config=True)
    uid_base = Integer(1_000_000, help="a root grader runs each kernel as user uid_base + its own pid").tag(config=True)
    hide_references = Bool(True, help="hide the graded chapter's own references from the kernel (tfs.grader.references)"
                           ).tag(config=True)

    scratch: Path | None = None
    judge_out: Path | None = None
    cgroup: Path | None = None
    judge_mounted: bool = False
    isolated: bool = False
    chapter: str | None = None
    hidden_binds: list[tuple[str, str]] = []

    def protected_folders(self) -> list[str]:
        coursedir = CourseDirectory(config=self.config)
        folders = [coursedir.submitted_directory, coursedir.autograded_directory, coursedir.feedback_directory,
                   coursedir.solution_directory, coursedir.source_directory, "autograder"]
        protected = {os.path.join(coursedir.root, folder) for folder in folders}
        if coursedir.db_url.startswith("sqlite:///"):
            protected.add(os.path.dirname(coursedir.db_url[len("sqlite:///"):]))
        return sorted(protected)

    async def _async_pre_start_kernel(self, **kw):
        if self.scratch is None:  # the first start; a restart keeps the folder
            reason = isolation.unavailable_reason(self.bwrap)
            if reason and not self.allow_unisolated:
                raise RuntimeError(f"refusing to run an untrusted submission without OS-level isolation: {reason}. "
                                   "To grade anyway (trusted submissions only), pass "
                                   "--SandboxKernelManager.allow_unisolated=True.")
            if reason:
                self.log.warning("Grading WITHOUT OS-level isolation (allow_unisolated is set): %s", reason)
            self.isolated = reason is None
            too_deep = isolation.scratch_root_problem(self.scratch_root) if self.isolated else None
            if too_deep:  # the kernel could not open its sockets: say why once, instead of a ZMQError per cell
                raise RuntimeError(f"refusing to start the grading kernel: {too_deep}")
            self.scratch = Path(tempfile.mkdtemp(prefix="tfs-kernel-", dir=self.scratch_root or None))
            _LIVE_KERNELS.add(self)
            _handle_sigterm()
            self.judge_out = self.scratch / "judge"
            for folder in (self.scratch / "ipc", self.judge_out):
                folder.mkdir()
            self._hide_references()
            if self.isolated:
                self._limit_totals()
                self.transport = "ipc"
                self.ip = str(self.scratch / "ipc" / "k")
                self.connection_file = str(self.scratch / "ipc" / "kernel.json")
                if os.geteuid() == 0:
                    for path in (self.scratch, self.scratch / "ipc", self.judge_out):
                        os.chown(path, self._uid(), self._uid())
                    os.chmod(self.scratch, 0o755)
        self._submitted = kw.get("cwd")
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self.isolated:
            if os.geteuid() == 0:
                os.chown(self.connection_file, self._uid(), self._uid())
            kw["cwd"] = str(self.scratch)
        else:  # the in-process sandbox only: the grader's environment, the small-run signals, the filtered package
            env = {**kw.get("env", os.environ), **isolation.small_run_environment(str(self.judge_out))}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.scratch / "package"), env.get("PYTHONPATH")]))
            kw["env"] = env
        return kernel_cmd, kw

    def _limit_totals(self) -> None:
        """One memory limit for the whole sandbox (a cgroup) and a size-limited judge folder (a tmpfs), where this
        grader may make them; otherwise a warning, once per grading run, and the per-process limits alone."""
        parent, reason = isolation.memory_cgroup_parent()
        if parent is not None:
            self.cgroup = parent / f"tfs-{self.scratch.name}"
        if os.geteuid() == 0:
            mount_failure = isolation.mount_capped_tmpfs(self.judge_out, self.judge_mb, self._uid())
            self.judge_mounted = mount_failure is None
        else:
            mount_failure = "the grader is not root"
        for name, why in (("total memory", reason if parent is None else None),
                          ("judge folder's size", mount_failure)):
            if why and name not in _WARNED:
                _WARNED.add(name)
                self.log.warning("The grading sandbox's %s is not limited (%s): the per-process limits still hold",
                                 name, why)

    def _hide_references(self) -> None:
        """The graded chapter's references out of the kernel's reach: binds over the real package (sandbox), or a
        rewritten copy of the package for ``PYTHONPATH`` (in-process sandbox only)."""
        chapter = self.chapter if self.hide_references else None
        if self.isolated:
            self.hidden_binds = references.overlay(chapter, self.scratch / "hidden")
        else:
            references.package_tree(chapter, self.scratch / "package")

    def _uid(self) -> int:
        return self.uid_base + os.getpid()

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        extra_arguments = [*(extra_arguments or []), OUTSTREAM]
        limits = [f"--memory-mb={self.memory_mb}", f"--cpu-seconds={self.cpu_seconds}", f"--file-mb={self.file_mb}"]
        if not self.isolated:
            protect = [argument for folder in self.protected_folders() for argument in ("--protect", folder)]
            return [sys.executable, "-m", "tfs.grader.sandbox", *limits, *protect, "--",
                    "-f", os.path.realpath(self.connection_file), *(extra_arguments or [])]
        kernel = [sys.executable, "-m", "tfs.grader.sandbox", *limits, "--",
                  "-f", self.connection_file, *(extra_arguments or [])]
        arguments = isolation.bwrap_arguments(
            ipc=str(self.scratch / "ipc"), judge=str(self.judge_out),
            submitted=self._submitted, env=isolation.kernel_environment(sys.executable, self.threads),
            tmp_mb=self.disk_mb, command=kernel, uid=self._uid() if os.geteuid() == 0 else None,
            overlay=self.hidden_binds)
        totals = [f"--cgroup={self.cgroup}", f"--total-memory-mb={self.total_memory_mb}"] if self.cgroup else []
        return [sys.executable, "-m", "tfs.grader.isolation", f"--nproc={self.max_processes}", *limits, *totals,
                "--", shutil.which(self.bwrap), *arguments]

    async def _async_interrupt_kernel(self) -> None:
        """SIGINT to the kernel itself: bwrap does not pass signals on to the sandbox."""
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        if self.isolated and process is not None and self.kernel_spec.interrupt_mode == "signal":
            pid = isolation.kernel_pid(process.pid)
            if pid is not None:
                os.kill(pid, signal.SIGINT)
            return
        await super()._async_interrupt_kernel()

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self.release_host()

    cleanup_resources = _async_cleanup_resources

    def release_host(self, stop_kernel: bool = False) -> None:
        """Remove what this kernel made on the host: its judge tmpfs, its memory cgroup, its scratch folder.

        ``stop_kernel``: kill the kernel's process first (bubblewrap ends the whole sandbox with it), for a grader
        that ends without shutting its kernels down (:func:`_release_live_kernels`)."""
        _LIVE_KERNELS.discard(self)
        if self.scratch is None:
            return
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        if stop_kernel and process is not None and process.poll() is None:
            process.kill()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.judge_mounted:
            isolation.unmount(self.judge_out)
        if self.cgroup is not None and not isolation.remove_cgroup(self.cgroup):
            self.log.warning("The kernel's memory cgroup %s is still busy; left in place", self.cgroup)
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch = self.judge_out = self.cgroup = None
        self.judge_mounted = False


_LIVE_KERNELS: set[SandboxKernelManager] = set()  # kernels started and not yet cleaned up, in this grader process


def _release_live_kernels() -> None:
    """Stop the kernels this grader still runs and remove their tmpfs, cgroups and scratch folders."""
    for manager in list(_LIVE_KERNELS):
        manager.release_host(stop_kernel=True)


def _end_on_sigterm(signum: int, frame) -> None:
    """SIGTERM (``kill``, a job scheduler, a stopped container) would end the grader at once, leaving its kernels'
    tmpfs and cgroups on the host: release them, then end by the same signal."""
    _release_live_kernels()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _handle_sigterm() -> None:
    """Where nothing else handles SIGTERM, release the kernels on it (other exits: the atexit below)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _end_on_sigterm)


atexit.register(_release_live_kernels)


class ResilientExecute(Execute):
    """nbgrader's ``Execute`` that survives kernels which die or ignore the timeout's interrupt, with limits on a
    whole notebook: its running time (restarts and replays included) and the output kept while cells run."""

    max_restarts = Integer(3, help="kernel restarts allowed per notebook before the rest is marked not run").tag(
        config=True)
    notebook_timeout = Integer(600, help="seconds one notebook may run in all (restarts and replays included); the "
                                         "cells left then are not run and score 0").tag(config=True)
    max_cell_output_mb = Integer(5, help="output kept per cell while it runs (MiB of text); the rest is dropped"
                                 ).tag(config=True)
    max_output_mb = Integer(50, help="output kept per notebook while it runs (MiB of text); the rest is dropped"
                            ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._failed_cells: set[int] = set()
        self._restarts = 0
        self._stopped: str | None = None  # why the cells left are not run
        self._deadline = time.monotonic() + self.notebook_timeout
        self._output_chars: dict[int, int] = {}  # cell index -> characters of output kept in its current run
        self._chapter = references.chapter_of((resources or {}).get("nbgrader", {}).get("assignment"))
        return super().preprocess(nb, resources, km)

    def create_kernel_manager(self):
        """nbclient's kernel manager, told which chapter is graded (its references are hidden from the kernel)."""
        km = super().create_kernel_manager()
        km.chapter = self._chapter
        return km

    def preprocess_cell(self, cell, resources, index):
        if self._stopped is None and time.monotonic() >= self._deadline:
            self._stop(index, f"the notebook ran past the time limit of the whole notebook ({self.notebook_timeout} s)")
        if self._stopped is not None:
            if cell.cell_type == "code":
                self._mark_failed(cell, "NotRun", f"grading stopped: {self._stopped}")
                self._failed_cells.add(index)
            return cell, resources
        self._output_chars[index] = 0
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._mark_failed(cell, "KernelDied", "the kernel died while running this cell (os._exit, a crash, or "
                                                  "running out of memory); the grader restarted it and went on")
        except CellTimeoutError:
            self._mark_failed(cell, "KernelUnresponsive", "this cell ran past the time limit and ignored the "
                                                          "interrupt; the grader restarted the kernel and went on")
        _add_note(self.nb, f"Cell {index}: {cell.outputs[0].evalue}. Its tests, if any, score 0.")
        self._failed_cells.add(index)
        self._restart_and_replay(index, resources)
        return cell, resources

    def _mark_failed(self, cell, name: str, message: str) -> None:
        cell.outputs = [nbformat.v4.new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])]

    def _stop(self, index: int, reason: str) -> None:
        """No more cells run in this notebook, from ``index`` on: they score 0, with ``reason``."""
        self._stopped = reason
        _add_note(self.nb, f"Cell {index} and the cells after it were not run: {reason}. Their tests score 0.")

    def _get_timeout(self, cell):
        """The cell's limit, cut to what is left of the notebook's."""
        timeout = super()._get_timeout(cell)
        left = max(1, int(self._deadline - time.monotonic()) + 1)
        return left if timeout is None else min(timeout, left)

    def _restart_and_replay(self, index: int, resources) -> None:
        """A fresh kernel, with the cells before ``index`` (except failed ones) run again.

        Replays run on copies: they rebuild the kernel's state; the outputs of the first run stand."""
        self._restarts += 1
        if self._restarts > self.max_restarts:
            self._stop(index + 1, "the kernel failed too often in this notebook")
            return
        if time.monotonic() >= self._deadline:
            self._stop(index + 1, f"the notebook ran past the time limit of the whole notebook "
                                  f"({self.notebook_timeout} s)")
            return
        self.log.warning("Restarting the kernel after cell %d and replaying the cells before it", index)
        run_sync(self.km.restart_kernel)(now=True)
        run_sync(self.kc._async_wait_for_ready)(timeout=self.startup_timeout)
        for earlier in range(index):
            original = self.nb.cells[earlier]
            if earlier in self._failed_cells or original.cell_type != "code":
                continue
            self.preprocess_cell(copy.deepcopy(original), resources, earlier)
            self.nb.cells[earlier] = original  # nbclient put the copy it ran there
            if self._stopped is not None:
                return

    def process_message(self, msg, cell, cell_index):
        """nbclient's message step; an output that is not valid (a display payload that is not text) is dropped
        with a line saying so, instead of failing the whole notebook."""
        try:
            return super().process_message(msg, cell, cell_index)
        except ValidationError as error:
            _add_note(self.nb, f"Cell {cell_index}: an output was not a valid output "
                               f"({str(error).splitlines()[0][:120]}); the grader dropped it.")
            cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=f"[{INVALID}]\n"))
            return None

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output step, keeping at most ``max_cell_output_mb`` per cell and ``max_output_mb`` per
        notebook as the kernel sends it: what comes after is dropped, with one line saying so."""
        size = _text_size(msg.get("content"))
        kept = self._output_chars.get(cell_index, 0)
        total = sum(self._output_chars.values())
        if kept + size > self.max_cell_output_mb * MEGABYTE or total + size > self.max_output_mb * MEGABYTE:
            if not (outs and outs[-1].get("name") == "stderr" and DROPPED in outs[-1].get("text", "")):
                outs.append(nbformat.v4.new_output("stream", name="stderr", text=f"\n[{DROPPED}]\n"))
            return None
        self._output_chars[cell_index] = kept + size
        return super().output(outs, msg, display_id, cell_index)


DROPPED = "further output of this cell was dropped by the grader: too much output"
INVALID = "an output that was not valid was dropped by the grader"


def _text_size(value, depth: int = 0) -> int:
    """Characters in a message's content (strings, keys and items of dicts and lists), about."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if depth > 20:  # no honest output nests this deep
        return MEGABYTE
    if isinstance(value, dict):
        return sum(len(str(key)) + _text_size(item, depth + 1) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_text_size(item, depth + 1) for item in value)
    return 8


def _release_notebook(config, assignment: str, notebook: str) -> NotebookNode | None:
    coursedir = CourseDirectory(config=config)
    path = Path(coursedir.format_path(coursedir.release_directory, ".", assignment)) / f"{notebook}.ipynb"
    return nbformat.read(path, as_version=4) if path.exists() else None


class RestoreStructure(NbGraderPreprocessor):
    """Puts graded cells back in the release's order, restores deleted ones, notes every change.

    Cells the student added stay where they were, after the graded cell they followed. Cells whose
    nbgrader id is unknown (a changed ``grade_id``) lose their nbgrader metadata: their code still
    runs as the student's own, and the original cell is restored from the release.
    """

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        release = _release_notebook(self.config, info["assignment"], info["notebook"])
        if release is None:
            return nb, resources
        release_ids = [_grade_id(cell) for cell in release.cells if _grade_id(cell)]
        release_by_id = {_grade_id(cell): cell for cell in release.cells if _grade_id(cell)}

        segments: dict[str | None, list] = {None: []}  # anchor id -> the student's cells after it
        anchor, seen = None, []
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if grade_id in release_by_id and grade_id not in seen:
                anchor = grade_id
                seen.append(grade_id)
                segments[anchor] = [cell]
                continue
            if "nbgrader" in cell.metadata and not isinstance(cell.metadata["nbgrader"], dict):
                _add_note(nb, "A cell carried grader metadata that is not a dictionary; it was graded as an ordinary "
                              "cell of yours.")
                cell.metadata.pop("nbgrader")
            elif grade_id is not None or _is_protected(cell):  # an unknown or repeated id, or flags without an id
                _add_note(nb, f"A cell carried the unknown grader id {grade_id!r} (a changed or copied grade_id); "
                              "it was graded as an ordinary cell of yours.")
                cell.metadata.pop("nbgrader", None)
            segments[anchor].append(cell)

        missing = [grade_id for grade_id in release_ids if grade_id not in seen]
        if missing:
            _add_note(nb, f"Graded cells missing from the submission were restored from the release: {', '.join(missing)}.")
        if seen != [grade_id for grade_id in release_ids if grade_id in seen]:
            _add_note(nb, "Graded cells were out of order; the release's order was restored before grading.")
        for grade_id in seen:
            submitted, original = segments[grade_id][0], release_by_id[grade_id]
            if original.metadata["nbgrader"].get("locked") and submitted.source != original.source:
                _add_note(nb, f"The read-only cell {grade_id} was edited; the original was restored before grading.")
            if submitted.metadata["nbgrader"].get("points") != original.metadata["nbgrader"].get("points"):
                _add_note(nb, f"The points of {grade_id} were changed in the metadata; the release's points count.")
            elif submitted.metadata["nbgrader"] != original.metadata["nbgrader"] or submitted.cell_type != original.cell_type:
                _add_note(nb, f"The grader metadata or type of {grade_id} was changed; the release's was restored.")
            # every nbgrader field of every known cell comes from the release (grade: true on a solution
            # cell, points as a string, a changed cell type would otherwise stop nbgrader recording a grade)
            submitted.metadata["nbgrader"] = copy.deepcopy(original.metadata["nbgrader"])
            if submitted.cell_type != original.cell_type:
                submitted.cell_type = original.cell_type
                for key in ("outputs", "execution_count", "attachments"):
                    submitted.pop(key, None)
                if original.cell_type == "code":
                    submitted.outputs, submitted.execution_count = [], None

        cells = list(segments[None])
        for grade_id in release_ids:
            cells += segments[grade_id] if grade_id in segments else [copy.deepcopy(release_by_id[grade_id])]
        nb.cells = cells
        return nb, resources


class RecordIntegrity(NbGraderPreprocessor):
    """After execution: cap huge outputs, and record what the grader noticed.

    When anything was noticed, the submission is flagged in the gradebook (for the instructor) and
    a note opens the graded notebook (for the student, in the feedback).
    """

    max_output_chars = Integer(100_000, help="longest text kept per output").tag(config=True)

    def preprocess(self, nb, resources):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            self._drop_invalid_outputs(nb, index, cell)
            for output in cell.get("outputs", []):
                text = output.get("text", "")
                if len(text) > self.max_output_chars:
                    output["text"] = text[: self.max_output_chars] + f"\n... [{len(text):,} characters, cut by the grader]"
        notes = nb.metadata.get(NOTES, [])
        if notes:
            self._flag(resources)
            message = "**Notes from the grader**\n\n" + "\n".join(f"- {note}" for note in notes)
            nb.cells.insert(0, new_markdown_cell(message))
        return nb, resources

    @staticmethod
    def _drop_invalid_outputs(nb, index: int, cell) -> None:
        """Outputs that break the notebook format (a display payload that is not text, a stream of numbers, ...)
        replaced by a line saying so: nbgrader would fail validating the whole notebook and record no grade."""
        outputs = []
        for output in cell.get("outputs", []):
            try:
                validate(output, ref="output", version=4, version_minor=5)
                outputs.append(output)
            except ValidationError as error:
                problem = str(error).splitlines()[0][:120]
                _add_note(nb, f"Cell {index}: an output was not a valid output ({problem}); the grader dropped it.")
                outputs.append(nbformat.v4.new_output("stream", name="stderr", text=f"[{INVALID}]\n"))
        cell.outputs = outputs
        if not (cell.get("execution_count") is None or isinstance(cell.execution_count, int)):
            cell.execution_count = None

    def _flag(self, resources) -> None:
        info = resources["nbgrader"]
        with Gradebook(info["db_url"], CourseDirectory(config=self.config).course_id) as gradebook:
            submission = gradebook.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
            submission.flagged = True
            gradebook.db.commit()


def _without_outputs(path: Path) -> NotebookNode | None:
    """The notebook with every output, execution count and non-dict nbgrader metadata removed, if that
    makes it valid; else None. Cells whose source is not text are left to the caller (None)."""
    import json

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
            return None
        for cell in raw["cells"]:
            if not isinstance(cell, dict):
                return None
            if cell.get("cell_type") == "code":
                cell["outputs"], cell["execution_count"] = [], None
            metadata = cell.get("metadata")
            if isinstance(metadata, dict) and "nbgrader" in metadata and not isinstance(metadata["nbgrader"], dict):
                del metadata["nbgrader"]
        notebook = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(notebook)
        return notebook
    except Exception:  # deeply nested, wrong types, an unknown version: graded as the release
        return None


class RepairHook(dict):
    """A ``pre_convert_hook``: a submission the grader will not read is refused, a notebook nbgrader cannot read is
    graded as the release.

    First the student's folder is checked without following anything (:mod:`tfs.grader.intake`): a link, device,
    FIFO, oversized file or malformed ``timestamp.txt`` anywhere in it, or a link as the folder itself, and the
    whole submission is put aside unread (``.refused-<time>-<name>`` beside it) and replaced by the release's
    notebooks with a note: graded 0, flagged, the student told why. Then each notebook nbgrader cannot read is
    kept as ``<name>.ipynb.unreadable`` (``<name>.ipynb.invalid`` when only its outputs or grader metadata were
    invalid and it is repaired); the replacement carries a note, so the student's feedback says why. Originals are
    renamed, never copied, and replacements written with exclusive, no-follow opens. A ``dict`` holding its
    settings, so that Formgrader can show the configuration as JSON (a plain function made it warn "not
    serializable").
    """

    def __init__(self, release_directory: str, submitted_directory: str, limits: intake.Limits = intake.Limits()):
        super().__init__(release_directory=str(release_directory), submitted_directory=str(submitted_directory),
                         max_file_mb=limits.max_file_mb, max_total_mb=limits.max_total_mb, max_files=limits.max_files)

    def __call__(self, assignment: str, student: str, notebooks: list[str]) -> None:
        if not notebooks:
            return
        # nbgrader passes its student *pattern* (``*`` for a parallel worker): the id is the notebook's folder's parent
        folder = intake.submission_folder(notebooks[0], Path(notebooks[0]).parent.parent.name, self["submitted_directory"])
        limits = intake.Limits(self["max_file_mb"], self["max_total_mb"], self["max_files"])
        refused = intake.submission_problems(folder, limits)
        if refused:
            self._refuse(assignment, folder, [Path(path).name for path in notebooks], refused)
            return
        for path in (folder / Path(notebook).name for notebook in notebooks):
            self._repair(assignment, path)

    def _release(self, assignment: str, name: str) -> NotebookNode:
        return nbformat.read(Path(self["release_directory"]) / assignment / name, as_version=4)

    def _refuse(self, assignment: str, folder: Path, names: list[str], reasons: list[str]) -> None:
        replacements = {}
        for name in names:
            if (Path(self["release_directory"]) / assignment / name).is_file():
                release = self._release(assignment, name)
                _add_note(release, "Your submission was not graded: " + "; ".join(reasons[:10]) + ". The grader "
                                   "reads only plain files and folders. It was graded as unanswered; your instructor "
                                   "has the original files.")
                replacements[name] = nbformat.writes(release).encode()
        intake.refuse(folder, replacements)

    def _repair(self, assignment: str, path: Path) -> None:
        try:
            notebook = nbformat.read(path, as_version=4)
            nbformat.validate(notebook)
            if all(isinstance(cell.get("metadata", {}).get("nbgrader", {}), dict) for cell in notebook.cells):
                return
            problem = "grader metadata (metadata.nbgrader) that is not a dictionary"
        except Exception as error:  # malformed JSON, an unsupported nbformat, an invalid schema
            problem = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        repaired = _without_outputs(path)
        if repaired is not None:  # only outputs (cleared before grading anyway) or metadata were invalid
            intake.keep_aside(path, ".invalid")
            _add_note(repaired, f"Your file {path.name} was not a valid notebook ({problem}). Its outputs and "
                                "invalid grader metadata were removed and your code was graded.")
            intake.write_new(path, nbformat.writes(repaired).encode())
            return
        intake.keep_aside(path, ".unreadable")
        release = self._release(assignment, path.name)
        _add_note(release, f"Your file {path.name} could not be read as a notebook ({problem}). It was graded "
                           "as an unanswered notebook; your instructor has the original file.")
        intake.write_new(path, nbformat.writes(release).encode())


def make_repair_hook(release_directory: str, submitted_directory: str) -> RepairHook:
    """The repair hook for the release in ``release_directory`` and the course's ``submitted_directory`` (where the
    grader's own views of the submissions link to; see :class:`RepairHook`)."""
    return RepairHook(release_directory, submitted_directory)
