"""nbgrader works without an activated venv, and a half-made gradebook is rebuilt or refused (tfs.grader.gradebook)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfs.grader import gradebook

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a shell that never ran `. .venv/bin/activate` has: no venv on PATH, so no `alembic`.
BARE_PATH = os.pathsep.join(p for p in ("/usr/local/bin", "/usr/bin", "/bin") if os.path.isdir(p))


def bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PATH")}
    env.update(PATH=BARE_PATH, **extra)
    return env


def half_made(path: Path) -> None:
    """A gradebook made the way the bug makes it: nbgrader's own Gradebook() with no `alembic` on PATH."""
    code = ("from nbgrader.api import Gradebook\n"
            f"Gradebook('sqlite:///{path}', course_id='c')\n")
    result = subprocess.run([sys.executable, "-c", code], env=bare_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "alembic" in result.stderr, "expected nbgrader to fail without alembic on PATH"
    assert path.exists()


def settle(path: Path) -> None:
    """Date the file back, as a gradebook that was left half-made a while ago."""
    old = time.time() - 10 * gradebook.SETTLE_SECONDS
    os.utime(path, (old, old))


def add_work(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO student (id) VALUES ('ada'), ('alan')")


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def alembic_heads() -> str:
    """The head revision as alembic's own executable reports it (what nbgrader writes into a new gradebook)."""
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite:////nonexistent/unused.db") as ini:
        output = subprocess.run([str(BIN / "alembic"), "-c", ini, "heads"], capture_output=True, text=True, check=True)
    return output.stdout.split()[0]


def db_upgrade(path: Path) -> subprocess.CompletedProcess:
    """`nbgrader db upgrade` on the gradebook at ``path`` (run with alembic on PATH, so only the gradebook matters)."""
    env = dict(os.environ, PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    return subprocess.run([str(BIN / "nbgrader"), "db", "upgrade", f"--CourseDirectory.db_url=sqlite:///{path}"],
                          cwd=path.parent, env=env, capture_output=True, text=True, timeout=300)


def test_this_environments_alembic_goes_first_on_path(monkeypatch):
    monkeypatch.setenv("PATH", BARE_PATH)
    folder = gradebook.use_this_environment()
    assert folder == str(BIN)
    assert shutil.which("alembic") == str(BIN / "alembic")
    before = os.environ["PATH"]
    gradebook.use_this_environment()
    assert os.environ["PATH"] == before, "calling it again must not grow PATH"


@pytest.mark.slow
def test_half_made_gradebook_is_diagnosed_and_rebuilt_when_it_holds_no_work(tmp_path):
    path = tmp_path / "gradebook.db"
    half_made(path)
    diagnosis = gradebook.diagnose(path)
    assert diagnosis.half_made and "alembic_version table is missing" in diagnosis.problems[0]
    assert not diagnosis.holds_work
    assert db_upgrade(path).returncode != 0, "nbgrader db upgrade was expected to fail on a half-made gradebook"
    # ... and the failed upgrade leaves it half-made another way: an old revision recorded over the newest schema
    after_upgrade = gradebook.diagnose(path)
    assert after_upgrade.half_made and "failed `nbgrader db upgrade`" in after_upgrade.problems[0]

    before = path.read_bytes()
    gradebook.repair(path)  # just changed: maybe another nbgrader is creating it right now, so left alone
    assert path.read_bytes() == before and gradebook.diagnose(path).half_made
    settle(path)
    gradebook.repair(path)
    assert not gradebook.diagnose(path).half_made
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(alembic_heads(),)]
    upgrade = db_upgrade(path)
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]


def test_missing_tables_count_as_half_made(tmp_path):
    path = tmp_path / "gradebook.db"
    gradebook.complete(path)
    assert not gradebook.diagnose(path).half_made
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE comment")
    diagnosis = gradebook.diagnose(path)
    assert diagnosis.problems == ["nbgrader's tables comment are missing"]
    settle(path)
    gradebook.repair(path)
    assert "comment" in tables(path) and not gradebook.diagnose(path).half_made


def test_absent_or_empty_gradebook_is_left_to_nbgrader(tmp_path):
    assert not gradebook.diagnose(tmp_path / "none.db").half_made
    (tmp_path / "empty.db").touch()
    gradebook.repair(tmp_path / "empty.db")
    assert (tmp_path / "empty.db").stat().st_size == 0


@pytest.mark.slow
def test_half_made_gradebook_holding_work_is_refused_then_completed_by_hand(tmp_path, capsys):
    path = tmp_path / "gradebook.db"
    half_made(path)
    add_work(path)
    before = path.read_bytes()
    with pytest.raises(gradebook.GradebookError) as refused:
        gradebook.repair(path)
    message = str(refused.value)
    assert "half-made" in message and "2 student rows" in message and "--complete" in message and ".bak" in message
    assert path.read_bytes() == before, "a refused gradebook must not be touched"
    with pytest.raises(SystemExit) as stopped:  # from nbgrader_config.py, on the command line: the message, exit 1
        gradebook.prepare(f"sqlite:///{path}")
    assert "--complete" in str(stopped.value.code)

    assert gradebook.main([str(path)]) == 1 and "--complete" in capsys.readouterr().out
    assert gradebook.main(["--complete", str(path)]) == 0
    after = gradebook.diagnose(path)
    assert not after.half_made and after.work["student"] == 2
    assert db_upgrade(path).returncode == 0


@pytest.mark.slow
def test_nbgrader_commands_work_without_activating_the_venv(tmp_path):
    """`.venv/bin/nbgrader generate_assignment` from autograder/ with a PATH that lacks the venv, as in the issue."""
    shutil.copytree(REPO / "solutions" / "00-welcome", tmp_path / "solutions" / "00-welcome")
    result = subprocess.run([str(BIN / "nbgrader"), "generate_assignment", "00-welcome", "--force"],
                            cwd=REPO / "autograder", env=bare_env(TFS_COURSE_ROOT=str(tmp_path)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "course" / "00-welcome").is_dir()
    diagnosis = gradebook.diagnose(tmp_path / "grading" / "gradebook.db")
    assert diagnosis.exists and not diagnosis.half_made
    assert db_upgrade(tmp_path / "grading" / "gradebook.db").returncode == 0


def test_an_older_gradebook_is_not_mistaken_for_a_half_made_one(tmp_path):
    """A whole gradebook at revision 167914646830 (before the course table and student.lms_user_id) is left to `db upgrade`."""
    path = tmp_path / "gradebook.db"
    gradebook.complete(path)
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE course")
        connection.execute("ALTER TABLE student DROP COLUMN lms_user_id")
        connection.execute("UPDATE alembic_version SET version_num = '167914646830'")
    add_work(path)
    diagnosis = gradebook.diagnose(path)
    assert not diagnosis.half_made, diagnosis.problems
    before = path.read_bytes()
    gradebook.repair(path)
    assert path.read_bytes() == before
