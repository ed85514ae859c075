"""Regenerate the student release ``course/`` from ``solutions/`` with nbgrader.

    python autograder/release.py            # every chapter
    python autograder/release.py 01-attention

Runs ``nbgrader generate_assignment --force`` for each chapter folder in ``solutions/``, from
the ``autograder/`` folder so that ``nbgrader_config.py`` applies (``TFS_COURSE_ROOT`` selects
another course root, as in the tests).
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


def nbgrader(*args: str, root: Path | None = None, check: bool = True, timeout: float | None = None
             ) -> subprocess.CompletedProcess:
    """Run ``nbgrader ARGS`` with this folder's configuration on course ``root``; output captured."""
    env = dict(os.environ)
    # nbgrader runs `alembic` as a command: the venv's scripts must be on PATH even when it is not activated
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if root is not None:
        env["TFS_COURSE_ROOT"] = str(root)
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=AUTOGRADER, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def release(chapter_ids: list[str], root: Path | None = None) -> None:
    """``nbgrader generate_assignment`` for each chapter: ``solutions/<id>`` -> ``course/<id>``."""
    for chapter in chapter_ids:
        nbgrader("generate_assignment", chapter, "--force", root=root)
        print(f"released {chapter} -> {(root or course_root()) / 'course' / chapter}")


if __name__ == "__main__":
    release(sys.argv[1:] or chapters())
