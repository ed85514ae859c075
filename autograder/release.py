"""Regenerate the student release ``course/`` from ``solutions/`` with nbgrader.

    python autograder/release.py            # every chapter
    python autograder/release.py 01-attention

Runs nbgrader's ``generate_assignment`` (with ``force``) for each chapter folder in ``solutions/``, from
the ``autograder/`` folder so that ``nbgrader_config.py`` applies (``TFS_COURSE_ROOT`` selects
another course root, as in the tests). All chapters go through nbgrader's own API in one process: the
release is the same as ``nbgrader generate_assignment --force`` run per chapter (the tests compare it with the
committed ``course/``), and the 14 chapters take about 8 s instead of about 60 s of starting nbgrader 14 times.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

AUTOGRADER = Path(__file__).resolve().parent


def course_root() -> Path:
    return Path(os.environ.get("TFS_COURSE_ROOT") or AUTOGRADER.parent).resolve()


def chapters(root: Path | None = None) -> list[str]:
    """Chapter ids (``00-welcome``, ...) in the order of the course."""
    source = (root or course_root()) / "solutions"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))


def nbgrader_environment(root: Path | None = None) -> dict[str, str]:
    """The environment nbgrader runs in: this venv's scripts on PATH, ``TFS_COURSE_ROOT`` set to ``root``."""
    env = dict(os.environ)
    # nbgrader runs `alembic` as a command: the venv's scripts must be on PATH even when it is not activated
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if root is not None:
        env["TFS_COURSE_ROOT"] = str(root)
    return env


def run_here(command: list[str], root: Path | None, check: bool, timeout: float | None) -> subprocess.CompletedProcess:
    """Run ``command`` from this folder in :func:`nbgrader_environment`; output captured."""
    result = subprocess.run(command, cwd=AUTOGRADER, env=nbgrader_environment(root), capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[1:])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def nbgrader(*args: str, root: Path | None = None, check: bool = True, timeout: float | None = None
             ) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` with this folder's configuration on course ``root``; output captured."""
    return run_here([sys.executable, "-m", "nbgrader", *args], root, check, timeout)


def release(chapter_ids: list[str], root: Path | None = None, timeout: float | None = 900) -> None:
    """``solutions/<id>`` -> ``course/<id>`` for each chapter, in one nbgrader process (this file run as a script)."""
    print(run_here([sys.executable, __file__, *chapter_ids], root, check=True, timeout=timeout).stdout, end="")


def generate_here(chapter_ids: list[str]) -> None:
    """nbgrader's ``generate_assignment --force`` for each chapter, in this process (run from this folder)."""
    from nbgrader.apps.api import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(AUTOGRADER)).load_config()
    api = NbGraderAPI(config=config)
    for chapter in chapter_ids:
        result = api.generate_assignment(chapter, force=True)
        if not result["success"]:
            sys.exit(f"nbgrader generate_assignment {chapter} failed:\n{result['log']}\n{result['error']}")
        print(f"released {chapter} -> {course_root() / 'course' / chapter}")


if __name__ == "__main__":
    os.chdir(AUTOGRADER)
    os.environ.update(nbgrader_environment())
    generate_here(sys.argv[1:] or chapters())
