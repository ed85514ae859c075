"""Autograde a whole assignment with N ``nbgrader autograde`` workers, with a progress bar.

``autograder/grade_parallel.py`` is the instructor's command; this module does the work:

1. the submissions of the assignment are dealt out to the workers, longest notebooks first;
2. each worker is one ordinary ``nbgrader autograde`` process (the course's configuration, its
   isolation and limits) that sees only its own students: a folder of links to their submitted
   folders is its ``submitted_directory``; graded notebooks go to the usual ``autograded/`` folder;
3. with a SQLite gradebook each worker writes a copy of the gradebook, and the workers' submissions
   are merged into the real one at the end (rows are keyed by nbgrader's random ids, so they copy
   as they are; a student's earlier grades of this assignment are replaced, as ``--force`` does);
   with any other database (PostgreSQL) the workers write to it concurrently;
4. progress: a tqdm bar over students, with the last student's time and the ETA, fed by the
   workers' own log lines (nbgrader logs one line when it starts a student).

Kernels are limited to ``cores // workers`` threads each (``SandboxKernelManager.threads``) so that
the workers do not oversubscribe the CPU.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from tfs.grader import intake

STARTED = re.compile(r"Creating/updating student with ID '([^']+)'")
SUBMISSION_TABLES = ("submitted_assignment", "submitted_notebook", "grade", "comment")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class Worker:
    index: int
    students: list[str]
    folder: Path
    db_url: str
    process: subprocess.Popen | None = None
    log: list[str] = field(default_factory=list)
    current: str | None = None
    started: float = 0.0


@dataclass
class Result:
    assignment: str
    workers: int
    seconds: float
    students: list[str]
    times: dict[str, float]
    failed: dict[int, int]  # worker -> nbgrader's exit status, where not 0
    logs: dict[int, str]

    @property
    def per_minute(self) -> float:
        return 60 * len(self.students) / self.seconds if self.seconds else 0.0


def submissions(submitted: Path, assignment: str, pattern: str = "*") -> list[str]:
    """Students (folders of ``submitted``) with a submission of ``assignment``, matching the glob ``pattern``.

    A folder whose name is not a valid student id (:func:`tfs.grader.intake.valid_student_id`: a newline or a glob
    character) is left out with a message; hidden ones (submissions the grader put aside) silently."""
    if not submitted.is_dir():
        return []
    found = []
    for student in sorted(submitted.iterdir()):
        if not fnmatch.fnmatchcase(student.name, pattern) or not (student / assignment).is_dir():
            continue
        if intake.valid_student_id(student.name):
            found.append(student.name)
        elif not student.name.startswith("."):
            print(f"Refusing the submission of the student id {student.name!r}: a student id is letters, digits and "
                  "'._@+-', starting with a letter or digit; rename the folder to grade it", file=sys.stderr)
    return found


def deal(students: list[str], sizes: dict[str, int], n: int) -> list[list[str]]:
    """Largest first, each to the worker with the least work so far."""
    shares: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for student in sorted(students, key=lambda s: (-sizes.get(s, 0), s)):
        k = load.index(min(load))
        shares[k].append(student)
        load[k] += max(1, sizes.get(student, 0))
    return [share for share in shares if share]


def merge_sqlite(main_db: Path, worker_db: Path, assignment: str, students: list[str]) -> None:
    """Replace ``students``' submissions of ``assignment`` in ``main_db`` by the worker's."""
    connection = sqlite3.connect(main_db, timeout=60)
    try:
        connection.execute("ATTACH DATABASE ? AS worker", (str(worker_db),))
        with connection:  # one transaction
            for student in students:
                for schema in ("main", "worker"):
                    ids = [row[0] for row in connection.execute(
                        f"SELECT s.id FROM {schema}.submitted_assignment s JOIN {schema}.assignment a "
                        "ON s.assignment_id = a.id WHERE a.name = ? AND s.student_id = ?", (assignment, student))]
                    if schema == "main":
                        _delete(connection, ids)
                    else:
                        connection.execute("INSERT OR REPLACE INTO main.student SELECT * FROM worker.student "
                                           "WHERE id = ?", (student,))
                        _copy(connection, ids)
    finally:
        connection.close()


def _marks(ids: list[str]) -> str:
    return ",".join("?" * len(ids))


def _notebooks(connection, schema: str, ids: list[str]) -> list[str]:
    return [row[0] for row in connection.execute(
        f"SELECT id FROM {schema}.submitted_notebook WHERE assignment_id IN ({_marks(ids)})", ids)]


def _delete(connection, ids: list[str]) -> None:
    notebooks = _notebooks(connection, "main", ids)
    for table in ("grade", "comment"):
        connection.execute(f"DELETE FROM main.{table} WHERE notebook_id IN ({_marks(notebooks)})", notebooks)
    connection.execute(f"DELETE FROM main.submitted_notebook WHERE assignment_id IN ({_marks(ids)})", ids)
    connection.execute(f"DELETE FROM main.submitted_assignment WHERE id IN ({_marks(ids)})", ids)


def _copy(connection, ids: list[str]) -> None:
    notebooks = _notebooks(connection, "worker", ids)
    connection.execute(f"INSERT INTO main.submitted_assignment SELECT * FROM worker.submitted_assignment "
                       f"WHERE id IN ({_marks(ids)})", ids)
    connection.execute(f"INSERT INTO main.submitted_notebook SELECT * FROM worker.submitted_notebook "
                       f"WHERE assignment_id IN ({_marks(ids)})", ids)
    for table in ("grade", "comment"):
        connection.execute(f"INSERT INTO main.{table} SELECT * FROM worker.{table} "
                           f"WHERE notebook_id IN ({_marks(notebooks)})", notebooks)


def stop(pool: list[Worker], seconds: float = 60) -> None:
    """SIGTERM to every worker still running (each stops its kernels and removes what they made), then wait."""
    for worker in pool:
        if worker.process is not None and worker.process.poll() is None:
            worker.process.terminate()
    for worker in pool:
        if worker.process is not None:
            try:
                worker.process.wait(seconds)
            except subprocess.TimeoutExpired:
                worker.process.kill()


def grade(assignment: str, *, root: Path, autograder: Path, db_url: str, workers: int | None = None,
          pattern: str = "*", options: tuple[str, ...] = (), progress: bool = True,
          submitted_directory: str = "grading/submitted") -> Result:
    """Autograde every submission of ``assignment`` under ``root`` with ``workers`` nbgrader processes."""
    workers = max(1, workers or cores())
    submitted = root / submitted_directory
    students = submissions(submitted, assignment, pattern)
    if not students:
        raise SystemExit(f"no submissions of {assignment} matching {pattern!r} in {submitted}")
    sizes = {s: sum(p.stat().st_size for p in (submitted / s / assignment).glob("*.ipynb")) for s in students}
    shares = deal(students, sizes, min(workers, len(students)))
    sqlite = db_url.startswith("sqlite:///")
    main_db = Path(db_url[len("sqlite:///"):]) if sqlite else None
    if sqlite and not main_db.exists():
        raise SystemExit(f"the gradebook {main_db} does not exist: run `nbgrader generate_assignment {assignment}` first")
    scratch = Path(tempfile.mkdtemp(prefix=f"tfs-grade-{assignment}-", dir=root / "grading"))
    threads = max(1, cores() // len(shares))
    env = dict(os.environ, TFS_COURSE_ROOT=str(root))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])

    pool: list[Worker] = []
    for k, share in enumerate(shares):
        folder = scratch / f"worker-{k}"
        (folder / "submitted").mkdir(parents=True)
        for student in share:
            (folder / "submitted" / student).symlink_to(submitted / student, target_is_directory=True)
        worker_url = db_url
        if sqlite:
            shutil.copyfile(main_db, folder / "gradebook.db")
            worker_url = f"sqlite:///{folder / 'gradebook.db'}"
        pool.append(Worker(k, share, folder, worker_url))

    times: dict[str, float] = {}
    lock = threading.Lock()
    bar = tqdm(total=len(students), unit="student", desc=f"autograde {assignment} ({len(pool)} workers)",
               disable=not progress, dynamic_ncols=True)

    def finish(worker: Worker, now: float) -> None:
        if worker.current is not None:
            with lock:
                times[worker.current] = now - worker.started
                bar.set_postfix_str(f"{worker.current} {times[worker.current]:.1f} s", refresh=False)
                bar.update(1)
            worker.current = None

    def follow(worker: Worker) -> None:
        for line in worker.process.stdout:
            worker.log.append(line)
            match = STARTED.search(line)
            if match:
                now = time.perf_counter()
                finish(worker, now)
                worker.current, worker.started = match.group(1), now
        worker.process.wait()
        finish(worker, time.perf_counter())

    start = time.perf_counter()
    followers = []
    for worker in pool:
        command = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--force",
                   f"--CourseDirectory.submitted_directory={worker.folder / 'submitted'}",
                   f"--CourseDirectory.db_url={worker.db_url}", f"--SandboxKernelManager.threads={threads}", *options]
        worker.process = subprocess.Popen(command, cwd=autograder, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, errors="replace")
        followers.append(threading.Thread(target=follow, args=(worker,), daemon=True))
        followers[-1].start()
    try:
        for follower in followers:
            follower.join()
    except BaseException:  # Ctrl-C, or SIGTERM (grade_parallel.py turns it into SystemExit): nothing is merged
        stop(pool)
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    seconds = time.perf_counter() - start
    bar.close()

    try:
        if sqlite:
            for worker in pool:
                merge_sqlite(main_db, worker.folder / "gradebook.db", assignment, worker.students)
    finally:
        logs = {worker.index: "".join(worker.log) for worker in pool}
        log_folder = root / "grading" / "logs"
        log_folder.mkdir(parents=True, exist_ok=True)
        for index, text in logs.items():
            (log_folder / f"autograde-{assignment}-worker-{index}.log").write_text(text)
        shutil.rmtree(scratch, ignore_errors=True)
    failed = {w.index: w.process.returncode for w in pool if w.process.returncode != 0}
    return Result(assignment, len(pool), seconds, students, times, failed, logs)
