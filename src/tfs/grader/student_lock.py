"""One grader per student at a time: graders of different students run at once, two of the same student wait.

nbgrader 0.9.6 locks nothing. Two ``nbgrader autograde --force`` runs that reach one student at once (an instructor
starting the command twice, a retried grading Job) each remove the student's graded folder when they start on it,
also while the other run is grading: a run whose notebook vanished between nbgrader's two passes failed
(``FileNotFoundError``), and a failed run's clean-up removes the graded folder again, which can delete the notebook
the other run graded while the gradebook keeps its score. The course's parallel grader, its batches
(``autograder/grade_batch.py``) and the Kubernetes grading Job give every student to one worker only, so they never
wait here.

nbgrader's ``pre_convert_hook`` runs after that removal, so :func:`one_grader_per_student` takes the lock where a
converter starts a student (``init_destination``) and releases it when the converter starts the next student or
ends: the removal, the copy, the execution, the scores saved and the clean-up after a failure all happen under it.
``generate_feedback`` takes the same lock, so feedback never reads a notebook being graded.

The lock is ``flock`` on ``<folder>/<assignment>/<student>.lock``, in folders made by the grader and opened without
following a link (no kernel sees ``grading/``). The operating system drops a lock when its process ends, however it
ends, so a killed grader leaves nothing to clean up.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from tfs.grader.intake import valid_student_id

LOCK_FILE = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC  # flock needs no write access
_settings: dict[str, Path] = {}


class LockError(Exception):
    """The student's lock file could not be made or opened safely."""


def _plain_folder(path: Path) -> Path:
    """``path`` as a folder made here or found as a plain folder (a link in its place is refused)."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise LockError(f"{path} is not a plain folder (a link?): remove it")
    return path


def acquire(folder: Path, assignment: str, student: str, log) -> int | None:
    """Hold the lock of ``student``'s ``assignment`` (waiting, with a log line, while another grader holds it); the
    open descriptor to give to :func:`release`. None for ids that are no student's (``.``, nbgrader's id when it
    generates a release) or that are not plain names: :func:`tfs.grader.intake.guard_student_ids` drops those."""
    if not (valid_student_id(assignment) and valid_student_id(student)):
        return None
    path = _plain_folder(_plain_folder(Path(folder)) / assignment) / f"{student}.lock"
    try:
        descriptor = os.open(path, LOCK_FILE, 0o644)
    except OSError as error:
        raise LockError(f"cannot open the lock file {path} without following a link ({error.strerror})") from error
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise LockError(f"{path} is not a regular file: remove it")
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.warning("Another grader is working on %s of student %s: waiting for it to finish (lock %s)",
                    assignment, student, path)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        log.info("The other grader finished with %s of student %s: going on", assignment, student)
    return descriptor


def release(descriptor: int | None) -> None:
    if descriptor is not None:
        os.close(descriptor)  # closing the only descriptor of the open file drops its flock


def one_grader_per_student(folder: str) -> None:
    """Make nbgrader's converters hold the student's lock (under ``folder``) while they work on a submission.

    nbgrader 0.9.6 has no hook before ``init_destination``: its ``convert_notebooks`` is wrapped (the lock still held
    is released when it ends) and ``init_destination`` takes each student's lock first. A lock that cannot be taken
    safely is an error for that student only: nothing of theirs is removed, the others are graded, and the command
    exits with an error."""
    from nbgrader.converters.base import BaseConverter, NbGraderException

    _settings["folder"] = Path(folder)  # the course of the configuration loaded last
    if getattr(BaseConverter.init_destination, "locks_the_student", False):
        return
    start_student, convert_all = BaseConverter.init_destination, BaseConverter.convert_notebooks

    def init_destination(self, assignment_id: str, student_id: str) -> bool:
        release(self.__dict__.pop("_student_lock", None))  # the previous student's
        try:
            self._student_lock = acquire(_settings["folder"], assignment_id, student_id, self.log)
        except (LockError, OSError) as error:
            self.log.error("Not grading %s of student %s: %s", assignment_id, student_id, error)
            self.__dict__.setdefault("_unlocked", []).append(student_id)
            return False  # skipped: nothing of this student's is removed
        return start_student(self, assignment_id, student_id)

    def convert_notebooks(self) -> None:
        try:
            convert_all(self)
        finally:
            release(self.__dict__.pop("_student_lock", None))
        unlocked = self.__dict__.pop("_unlocked", [])
        if unlocked:
            raise NbGraderException(f"the grading lock of {', '.join(unlocked)} could not be taken (see above)")

    init_destination.locks_the_student = True
    BaseConverter.init_destination, BaseConverter.convert_notebooks = init_destination, convert_notebooks
