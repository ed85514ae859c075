"""The SQLite gradebook, made whole: nbgrader's commands and the formgrader work without an activated venv.

nbgrader 0.9.6 runs the ``alembic`` *executable by name* in two places: ``nbgrader.api.get_alembic_version``
(when ``Gradebook()`` creates a new gradebook) and ``nbgrader.dbutil.upgrade`` (``nbgrader db upgrade``).
Started as ``.venv/bin/jupyter lab`` or ``.venv/bin/nbgrader`` without activating the venv, ``alembic`` is
not on PATH: creating the gradebook fails *after* ``Base.metadata.create_all`` made the tables but *before*
``alembic_version`` was written. The formgrader then answers 500 ("Loading" forever), and every later
``nbgrader db upgrade`` fails, because alembic finds no version and tries to create tables that exist.

:func:`prepare` (called by ``autograder/nbgrader_config.py`` before any command opens the gradebook):

1. puts this interpreter's ``bin`` folder (where pip put ``alembic``) first on PATH, so nbgrader's
   subprocess finds the ``alembic`` of the environment that runs nbgrader;
2. looks at an existing SQLite gradebook: a *half-made* one (nbgrader's tables missing, or no
   ``alembic_version`` row) that holds no work (no students, submissions, grades or comments) and has not
   changed for a minute (so not one that another nbgrader process is creating right now) is rebuilt;
   one that holds work is refused with instructions, never changed behind the instructor's back.

``python -m tfs.grader.gradebook [--complete] [PATH]`` diagnoses a gradebook; ``--complete`` finishes a
half-made one in place, as nbgrader would have (adds missing tables, records alembic's head revision),
keeping everything it holds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# Tables whose rows are the term's work: a gradebook holding any of them is never rebuilt automatically.
# (assignment, notebook, *_cells and course rows are remade by `nbgrader generate_assignment`.)
WORK_TABLES = ("student", "submitted_assignment", "submitted_notebook", "grade", "comment")
# A half-made gradebook without work is rebuilt only once it has not changed for this long: nbgrader itself
# leaves a new gradebook without alembic_version for the second it takes to run `alembic heads`.
SETTLE_SECONDS = 60


class GradebookError(RuntimeError):
    """A half-made gradebook that holds work: refused, with what to do."""


def use_this_environment() -> str | None:
    """Put the folder holding this environment's ``alembic`` first on PATH; return that folder (None if none has it)."""
    for folder in (os.path.dirname(sys.executable), sysconfig.get_path("scripts")):
        if folder and os.access(os.path.join(folder, "alembic"), os.X_OK):
            entries = os.environ.get("PATH", "").split(os.pathsep)
            if entries[:1] != [folder]:
                os.environ["PATH"] = os.pathsep.join([folder] + [e for e in entries if e and e != folder])
            return folder
    return None


def sqlite_path(db_url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL; None for other databases (PostgreSQL is not inspected here)."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or db_url[len(prefix):] in ("", ":memory:"):
        return None
    return Path(db_url[len(prefix):])


def nbgrader_columns() -> dict[str, set[str]]:
    """Every table of nbgrader's newest schema, with its columns."""
    from nbgrader.api import Base

    return {name: {column.name for column in table.columns} for name, table in Base.metadata.tables.items()}


def head_revision() -> str:
    """nbgrader's newest alembic revision, read by alembic's Python API (no executable, no PATH)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


@dataclass
class Diagnosis:
    path: Path
    exists: bool = False
    problems: list[str] = field(default_factory=list)  # empty: whole (or absent, or empty: nbgrader builds it)
    work: dict[str, int] = field(default_factory=dict)  # rows in WORK_TABLES

    @property
    def half_made(self) -> bool:
        return bool(self.problems)

    @property
    def holds_work(self) -> bool:
        return any(self.work.values())

    def describe_work(self) -> str:
        return ", ".join(f"{n} {table} row{'s' * (n != 1)}" for table, n in self.work.items() if n) or "no work"


def diagnose(path: str | os.PathLike) -> Diagnosis:
    """What state the SQLite gradebook at ``path`` is in; reads only."""
    path = Path(path)
    diagnosis = Diagnosis(path=path, exists=path.exists())
    if not diagnosis.exists or path.stat().st_size == 0:
        return diagnosis
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return diagnosis  # an empty file: nbgrader builds it from scratch
        schema = nbgrader_columns()
        missing = sorted(set(schema) - tables)
        versions = []
        if "alembic_version" not in tables:
            diagnosis.problems.append("its alembic_version table is missing")
        else:
            versions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
            if not versions:
                diagnosis.problems.append("its alembic_version table is empty")
        head = head_revision()
        if missing and (not versions or versions == [head]):
            # (a gradebook at an older revision lacks the newer tables by right: `nbgrader db upgrade` adds them)
            diagnosis.problems.append(f"nbgrader's tables {', '.join(missing)} are missing")
        elif versions and versions != [head] and not missing and all(
                columns <= {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}
                for table, columns in schema.items()):
            # What a failed `nbgrader db upgrade` of a half-made gradebook leaves: alembic recorded its first
            # revision, then failed on a column that create_all had already made. (An old gradebook that
            # really is at that revision lacks the newer tables and columns: `nbgrader db upgrade` is its fix.)
            diagnosis.problems.append(
                f"it records schema revision {', '.join(versions)} but already has every table and column of "
                f"nbgrader's newest revision {head} (a failed `nbgrader db upgrade` leaves this)")
        for table in WORK_TABLES:
            if table in tables:
                diagnosis.work[table] = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        connection.close()
    return diagnosis


def complete(path: str | os.PathLike) -> None:
    """Finish a half-made gradebook in place as nbgrader's ``Gradebook()`` would have: every table, and the head revision.

    Only for a gradebook :func:`diagnose` calls half-made (or a new one): one at an older revision that lacks
    the newer columns needs ``nbgrader db upgrade`` instead, and :func:`main` refuses to complete it.
    """
    from nbgrader.api import Base
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{Path(path)}", future=True)
    try:
        Base.metadata.create_all(bind=engine)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(text("DELETE FROM alembic_version"))  # all tables and columns are the head's now
            connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head_revision()})
    finally:
        engine.dispose()


def refusal(diagnosis: Diagnosis) -> str:
    path = diagnosis.path
    return (
        f"The gradebook {path} is half-made: {'; '.join(diagnosis.problems)}. This happens when nbgrader created it "
        f"without finding the `alembic` executable (a venv that was not activated); "
        f"{os.path.dirname(sys.executable)} is now put on PATH first, so it will not recur. It holds "
        f"{diagnosis.describe_work()}, so it is not rebuilt automatically. Back it up "
        f"(cp {path} {path}.bak), then complete it in place, keeping everything it holds: "
        f"{sys.executable} -m tfs.grader.gradebook --complete {path}  "
        f"(it adds the missing tables and records nbgrader's schema revision; `nbgrader db upgrade` works afterwards)."
    )


def repair(path: str | os.PathLike) -> Diagnosis:
    """Rebuild a half-made gradebook that holds no work; raise :class:`GradebookError` for one that does."""
    diagnosis = diagnose(path)
    if not diagnosis.half_made:
        return diagnosis
    if diagnosis.holds_work:
        raise GradebookError(refusal(diagnosis))
    if time.time() - diagnosis.path.stat().st_mtime < SETTLE_SECONDS:
        # Possibly another nbgrader process between its create_all and its alembic_version (parallel graders
        # starting on a new gradebook): a half-made gradebook that is really broken stays so. Leave it for now.
        log.info("The gradebook %s looks half-made but changed %.0f s ago: left alone for now.",
                 diagnosis.path, time.time() - diagnosis.path.stat().st_mtime)
        return diagnosis
    log.warning("Rebuilding the half-made gradebook %s (%s; it held no work).", diagnosis.path, "; ".join(diagnosis.problems))
    diagnosis.path.unlink()
    complete(diagnosis.path)
    return diagnosis


def prepare(db_url: str) -> None:
    """Called by nbgrader_config.py: alembic on PATH, then a half-made SQLite gradebook rebuilt or refused.

    A refusal ends a command-line nbgrader (or a starting JupyterLab) with the message; inside a running
    server (the formgrader reloads its configuration on every request) it is raised as GradebookError,
    which the server logs, instead of stopping the server.
    """
    use_this_environment()
    path = sqlite_path(db_url)
    if path is None:
        return
    try:
        repair(path)
    except GradebookError as refused:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise SystemExit(f"[nbgrader] {refused}") from None
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfs.grader.gradebook", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", default="grading/gradebook.db", help="the SQLite gradebook (default: %(default)s)")
    parser.add_argument("--complete", action="store_true",
                        help="finish a half-made gradebook in place, keeping what it holds (back it up first)")
    args = parser.parse_args(argv)
    diagnosis = diagnose(args.path)
    if not diagnosis.exists:
        print(f"{args.path}: no gradebook (nbgrader creates it)")
        return 0
    if not diagnosis.half_made:
        print(f"{args.path}: whole ({diagnosis.describe_work()})")
        return 0
    if not args.complete:
        print(refusal(diagnosis))
        return 1
    complete(args.path)
    after = diagnose(args.path)
    print(f"{args.path}: completed ({after.describe_work()})" if not after.half_made else f"{args.path}: {after.problems}")
    return 0 if not after.half_made else 1


if __name__ == "__main__":
    sys.exit(main())
