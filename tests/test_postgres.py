"""nbgrader against a PostgreSQL gradebook (``CourseDirectory.db_url``), as a class on JupyterHub would run it.

A real PostgreSQL server is started for this module in a temporary directory, by an unprivileged
user (PostgreSQL refuses to run as root), listening only on a unix socket in that directory; the
fixture stops it and removes the directory at the end. Skipped, with the reason, only where the
PostgreSQL server programs (``initdb``, ``pg_ctl``) or the driver (``psycopg2``) are missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from course import COURSE_ID, Course, fill, points_by_cell, solution_answers

CHAPTER = "00-welcome"
DATABASE = "gradebook"
PORT = 5433  # only names the socket file; the server listens on no TCP port


def _server_programs() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: on PATH, or a Debian/Ubuntu postgresql-NN package."""
    candidates = [Path(p).resolve().parent for p in filter(None, [shutil.which("pg_ctl")])]
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    candidates += [Path(p).parent for p in sorted(glob.glob("/usr/local/pgsql/bin/pg_ctl"))]
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _unprivileged_user() -> dict:
    """subprocess keyword arguments that run the server as a non-root user (the current one if not root)."""
    if os.geteuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


@contextlib.contextmanager
def postgres_database(name: str, port: int, socket_readable_by_all: bool = False):
    """Start a PostgreSQL server in a temporary folder, yield the ``postgresql+psycopg2://`` URL of an empty
    database ``name``, then stop the server and remove the folder.

    The server runs as an unprivileged user and listens only on a unix socket in that folder (``port`` only names
    the socket file); ``socket_readable_by_all`` lets other local users (JupyterHub's instructor) connect.
    """
    psycopg2 = pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2 is not installed "
                                                       "(pip install -e '.[test]' installs psycopg2-binary)")
    programs = _server_programs()
    if programs is None:
        pytest.skip("PostgreSQL server programs (initdb, pg_ctl, postgres) not found on PATH or in "
                    "/usr/lib/postgresql/*/bin; install them with: apt-get install -y postgresql")
    run_as = _unprivileged_user()
    home = Path(tempfile.mkdtemp(prefix="tfs-postgres-"))
    if socket_readable_by_all:
        os.chmod(home, 0o755)
    data, log = home / "data", home / "server.log"
    if run_as:
        os.chown(home, run_as["user"], run_as["group"])

    def server(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(programs / command[0]), *command[1:]], cwd=home, capture_output=True, text=True,
                              timeout=120, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"}, **run_as)

    started = False
    try:
        made = server("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        assert made.returncode == 0, f"initdb failed:\n{made.stdout}\n{made.stderr}"
        options = f"-k {home} -p {port} -c listen_addresses='' -F"
        up = server("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = up.returncode == 0
        assert started, f"pg_ctl start failed:\n{up.stdout}\n{up.stderr}\n{log.read_text() if log.exists() else ''}"

        connection = psycopg2.connect(dbname="postgres", user="postgres", host=str(home), port=port)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        connection.close()
        yield f"postgresql+psycopg2://postgres@/{name}?host={home}&port={port}"
    finally:
        if started:
            server("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url():
    """``postgresql+psycopg2://`` URL of an empty database on a PostgreSQL server started for this module."""
    with postgres_database(DATABASE, PORT) as url:
        yield url


@pytest.mark.slow
def test_autograde_records_grades_in_postgresql(postgres_url, tmp_path):
    from nbgrader.api import Gradebook

    course = Course(tmp_path / "course")
    db = f"--CourseDirectory.db_url={postgres_url}"
    course.nbgrader("generate_assignment", CHAPTER, "--force", db)
    sources, releases = course.source(CHAPTER), course.released(CHAPTER)
    course.submit("pg-solution", CHAPTER, {name: fill(releases[name], solution_answers(src)) for name, src in sources.items()})
    course.submit("pg-release", CHAPTER, releases)

    course.nbgrader("autograde", CHAPTER, "--CourseDirectory.student_id=pg-*", "--force", db)

    points = {}
    for source in sources.values():
        points |= points_by_cell(source)
    with Gradebook(postgres_url, course_id=COURSE_ID) as gradebook:
        assert gradebook.db.get_bind().dialect.name == "postgresql"
        solution = gradebook.find_submission(CHAPTER, "pg-solution")
        untouched = gradebook.find_submission(CHAPTER, "pg-release")
        assert solution.max_score == sum(points.values()) > 0
        assert solution.score == solution.max_score
        assert untouched.score == 0
        assert sorted(s.id for s in gradebook.students) == ["pg-release", "pg-solution"]
    assert not (course.root / "grading" / "gradebook.db").exists(), "nbgrader wrote to the SQLite gradebook instead"

    export = course.nbgrader("export", db, f"--CsvExportPlugin.to={tmp_path / 'grades.csv'}")
    rows = (tmp_path / "grades.csv").read_text().splitlines()
    assert len(rows) == 3 and any("pg-solution" in row for row in rows), export.stdout + export.stderr
