"""The host side of grading: student files handled as hostile before any sandbox exists.

nbgrader and the course's hooks read, copy and write a submission with the grader's own rights: a link in
``grading/submitted/<student>/`` made nbgrader grade the solution, copy the gradebook into the kernel's view and,
through ``timestamp.txt -> /dev/zero``, fill the disk; a planted ``.invalid`` link made the repair hook overwrite
the gradebook. Here every submission is checked without following anything (``lstat``) before nbgrader touches it:

- :func:`problems` lists what the grader will not read: links (symbolic or hard), devices, FIFOs, sockets, files
  over :class:`Limits`, a ``timestamp.txt`` that is not a timestamp;
- :func:`refuse` puts such a submission aside (renamed, never read: the instructor has it) and puts the release's
  notebooks in its place, each with a note saying why: it is graded 0, flagged, and the student is told;
- :func:`keep_aside` and :func:`write_new` are the only ways the hooks change a student's folder: renames that
  never replace, writes with ``O_CREAT | O_EXCL | O_NOFOLLOW`` (nothing planted is written through);
- :func:`valid_student_id` and :func:`guard_student_ids`: an id with a newline or a glob character (``zz-hones[t]``
  globbed onto ``zz-honest``) is refused with a message before nbgrader lists its notebooks;
- :func:`copy_tree` copies a folder of regular files with no-follow opens and the size caps counted while copying
  (``nbgrader collect``, :mod:`tfs.grader.exchange`).

The threat is what a student puts in a submission, not a process racing the grader: nobody but the grader writes
to ``grading/`` while it runs.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")  # no glob characters, separators, spaces or commas
MEGABYTE = 1024 * 1024
NO_FOLLOW_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # O_NONBLOCK: a FIFO does not block the open
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
KINDS = ((stat.S_ISLNK, "a link"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
         (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


class Refused(Exception):
    """A submission the grader will not read, with the reason in words for the student."""


@dataclass(frozen=True)
class Limits:
    """What one submission (a student's folder for one assignment) may hold."""

    max_file_mb: int = 100
    max_total_mb: int = 250
    max_files: int = 1000


def valid_student_id(student: str) -> bool:
    """Letters, digits and ``. _ @ + -``, starting with a letter or digit: safe in paths, globs and nbgrader's regexes."""
    return STUDENT_ID.fullmatch(student) is not None


def _kind(mode: int) -> str | None:
    """What a non-regular, non-folder entry is, in words; None for regular files and folders."""
    return next((name for test, name in KINDS if test(mode)), None)


def problems(folder: Path, limits: Limits = Limits()) -> list[str]:
    """Why the grader will not read ``folder`` (a student's submission), or []: nothing is followed or opened
    except a regular ``timestamp.txt`` of at most 100 bytes."""
    found: list[str] = []
    try:
        top = os.lstat(folder)
    except OSError as error:
        return [f"{folder.name} cannot be inspected ({error.strerror})"]
    if not stat.S_ISDIR(top.st_mode):
        return [f"{folder.name} is {_kind(top.st_mode) or 'not a folder'}"]
    files = total = 0
    for parent, folders, names in os.walk(folder, onerror=lambda error: found.append(
            f"{error.filename} cannot be listed ({error.strerror})")):
        for name in folders + names:
            path = os.path.join(parent, name)
            where = os.path.relpath(path, folder)
            mode = os.lstat(path)
            kind = _kind(mode.st_mode)
            if kind:
                found.append(f"{where} is {kind}")
            elif stat.S_ISREG(mode.st_mode):
                files, total = files + 1, total + mode.st_size
                if mode.st_nlink > 1:
                    found.append(f"{where} is a hard link (one of {mode.st_nlink} names of one file)")
                if mode.st_size > limits.max_file_mb * MEGABYTE:
                    found.append(f"{where} is larger than {limits.max_file_mb} MB")
    if files > limits.max_files:
        found.append(f"it holds {files} files (at most {limits.max_files})")
    if total > limits.max_total_mb * MEGABYTE:
        found.append(f"its files add up to more than {limits.max_total_mb} MB")
    return found or _timestamp_problems(folder / "timestamp.txt")


def _timestamp_problems(path: Path) -> list[str]:
    """nbgrader reads ``timestamp.txt`` whole, and a malformed one ended ``autograde``: at most 100 bytes, parseable."""
    from nbgrader.utils import parse_utc

    if not os.path.lexists(path):
        return []
    if os.lstat(path).st_size > 100:
        return ["timestamp.txt is longer than a timestamp"]
    try:
        parse_utc(read_small(path, 100).decode().strip())
    except (ValueError, OverflowError, UnicodeDecodeError, Refused):
        return ["timestamp.txt does not hold a timestamp"]
    return []


def read_small(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file, opened without following a link."""
    descriptor = os.open(path, NO_FOLLOW_READ)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise Refused(f"{path.name} is not a regular file")
        return os.read(descriptor, limit)
    finally:
        os.close(descriptor)


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def keep_aside(path: Path, suffix: str) -> Path:
    """Rename ``path`` (a file, a folder or a link: never followed) to ``<name><suffix>``, or, where that name is
    taken, ``<name><suffix>-<time>``: nothing is replaced or written through. Returns the new path."""
    for target in (path.with_name(path.name + suffix), path.with_name(f"{path.name}{suffix}-{_stamp()}")):
        if not os.path.lexists(target):
            os.rename(path, target)
            return target
    raise FileExistsError(f"no free name to keep {path} aside")


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` and write ``data``: fails where anything (a planted link included) is already there."""
    descriptor = os.open(path, NEW_FILE, 0o644)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def submission_folder(notebook: str, student: str, submitted_directory: str) -> Path:
    """The student's folder for the assignment of ``notebook`` (a path nbgrader is about to grade).

    The grader's own views of the submissions (``tfs.grader.parallel``'s workers, ``grade_batch``'s batches) link
    ``<view>/<student>`` to ``<submitted_directory>/<student>``: such a link is followed to the real folder, which
    :func:`problems` then checks. Any other link stays as it is, to be refused."""
    folder = Path(notebook).parent
    student_folder = folder.parent
    anchor = Path(submitted_directory) / student
    if student_folder.is_symlink() and os.path.realpath(student_folder) == os.path.realpath(anchor) \
            and student_folder != anchor:
        return anchor / folder.name
    return folder


def submission_problems(folder: Path, limits: Limits = Limits()) -> list[str]:
    """:func:`problems` of the submission ``folder`` and of the student's folder above it (not a link)."""
    student_folder = os.lstat(folder.parent) if os.path.lexists(folder.parent) else None
    if student_folder is not None and not stat.S_ISDIR(student_folder.st_mode):
        return [f"the student's folder is {_kind(student_folder.st_mode) or 'not a folder'}"]
    return problems(folder, limits)


def refuse(folder: Path, notebooks: dict[str, bytes]) -> Path:
    """Put the submission ``folder`` aside (renamed ``.refused-<time>-<name>`` beside it, or the student's folder
    when that is the link) and write ``notebooks`` (``{file name: content}``) into a new folder in its place.
    Returns where the original went. Hidden names: nbgrader's globs do not list them."""
    student_folder = folder.parent
    if not stat.S_ISDIR(os.lstat(student_folder).st_mode):
        moved = student_folder.with_name(f".refused-{_stamp()}-{student_folder.name}")
        os.rename(student_folder, moved)
        os.mkdir(student_folder, 0o755)
    else:
        moved = student_folder / f".refused-{_stamp()}-{folder.name}"
        if os.path.lexists(folder):
            os.rename(folder, moved)
    os.mkdir(folder, 0o755)
    for name, data in notebooks.items():
        write_new(folder / name, data)
    return moved


def copy_tree(source: Path, target: Path, limits: Limits = Limits(), ignore=None) -> None:
    """Copy the folder ``source`` to the new folder ``target``: folders and regular files only, nothing followed
    (``O_NOFOLLOW``, and each file checked regular after opening), files and the whole capped while copying.
    ``ignore(folder, names)`` (as for ``shutil.copytree``) gives names to leave out. Raises :class:`Refused`
    (``target`` then holds what was copied so far: the caller removes it)."""
    budget = [limits.max_total_mb * MEGABYTE, limits.max_files]
    os.mkdir(target, 0o755)
    _copy_folder(source, target, source, limits, budget, ignore or (lambda folder, names: set()))


def _copy_folder(source: Path, target: Path, top: Path, limits: Limits, budget: list[int], ignore) -> None:
    with os.scandir(source) as listing:
        entries = list(listing)
    left_out = ignore(str(source), [entry.name for entry in entries])
    for entry in entries:
        if entry.name in left_out:
            continue
        where = os.path.relpath(entry.path, top)
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(target / entry.name, 0o755)
            _copy_folder(Path(entry.path), target / entry.name, top, limits, budget, ignore)
        elif stat.S_ISREG(mode):
            budget[1] -= 1
            if budget[1] < 0:
                raise Refused(f"it holds more than {limits.max_files} files")
            _copy_file(Path(entry.path), target / entry.name, where, limits, budget)
        else:
            raise Refused(f"{where} is {_kind(mode)}")


def _copy_file(source: Path, target: Path, where: str, limits: Limits, budget: list[int]) -> None:
    try:
        descriptor = os.open(source, NO_FOLLOW_READ)
    except OSError as error:
        raise Refused(f"{where} cannot be opened without following a link ({error.strerror})") from error
    with os.fdopen(descriptor, "rb") as reader, os.fdopen(os.open(target, NEW_FILE, 0o644), "wb") as writer:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink > 1:
            raise Refused(f"{where} is not a plain regular file")
        left = limits.max_file_mb * MEGABYTE
        while chunk := reader.read(MEGABYTE):
            left -= len(chunk)
            budget[0] -= len(chunk)
            if left < 0:
                raise Refused(f"{where} is larger than {limits.max_file_mb} MB")
            if budget[0] < 0:
                raise Refused(f"its files add up to more than {limits.max_total_mb} MB")
            writer.write(chunk)


def guard_student_ids() -> None:
    """Make nbgrader's converters (``autograde``, ``generate_feedback``, ...) drop every submission whose student id
    :func:`valid_student_id` refuses, with an error in the log, right after listing them: nbgrader 0.9.6 has no hook
    there, and a newline in an id ended the whole run, ``zz-hones[t]`` globbed onto ``zz-honest``'s notebooks."""
    from nbgrader.converters.base import BaseConverter

    if getattr(BaseConverter.init_notebooks, "guards_student_ids", False):
        return
    listing = BaseConverter.init_notebooks

    def init_notebooks(self) -> None:
        listing(self)
        pattern = re.compile(self._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True), re.DOTALL)
        for assignment in list(self.assignments):
            match = pattern.fullmatch(assignment)
            student = match.group("student_id") if match else assignment
            if student != "." and not valid_student_id(student):
                self.log.error("Refusing the submission of the student id %r: a student id is letters, digits and "
                               "'._@+-', starting with a letter or digit; rename the folder to grade it", student)
                del self.assignments[assignment]

    init_notebooks.guards_student_ids = True
    BaseConverter.init_notebooks = init_notebooks
