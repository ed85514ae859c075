"""``tfs update``: bring a local copy of the course up to date without losing a learner's answers.

Students edit ``course/`` in place, so a plain ``git pull`` stops at every notebook they touched. This
command, run at the repository's root:

1. finds the course notebooks that differ from the last commit (the learner's work);
2. copies each of them, whole, into ``course/.my-work/<time>/`` (nothing a learner typed is ever lost);
3. reads the learner's answers from them: every graded answer cell (nbgrader ``solution`` cells), by ``grade_id``;
4. puts those notebooks back as committed and runs ``git pull --ff-only``;
5. writes each answer into the cell with the same ``grade_id`` of the new version of its notebook.

An answer whose cell no longer exists upstream is listed (it stays in the copy). Other local changes (a
learner's own files outside ``course/``, or tracked files edited elsewhere) are git's to handle: if the pull
cannot fast-forward, the notebooks are restored as they were and the command says why. On a JupyterHub the
same job is done by nbgitpuller's links (README).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

BACKUP = Path("course") / ".my-work"


@dataclass
class Report:
    """What an update did, notebook by notebook."""

    backup: Path | None = None
    restored: dict[str, list[str]] = field(default_factory=dict)  # notebook -> grade_ids put back
    orphaned: dict[str, list[str]] = field(default_factory=dict)  # notebook -> answers with no cell upstream


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def changed_notebooks(root: Path) -> list[Path]:
    """Tracked notebooks under ``course/`` that differ from HEAD, relative to ``root``."""
    result = _git(root, "diff", "--name-only", "HEAD", "--", "course")
    if result.returncode != 0:
        raise RuntimeError(f"git could not list the changed notebooks: {result.stderr.strip()}")
    return [Path(line) for line in result.stdout.splitlines() if line.endswith(".ipynb")]


def answers(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """``{grade_id: source}`` of the notebook's answer cells."""
    found = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id"):
            found[meta["grade_id"]] = cell.source
    return found


def put_answers(notebook: nbformat.NotebookNode, given: dict[str, str]) -> list[str]:
    """Write ``given`` into the answer cells with the same ``grade_id``; the ids that found no cell."""
    placed = set()
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if meta.get("solution") and grade_id in given:
            cell.source = given[grade_id]
            placed.add(grade_id)
    return sorted(set(given) - placed)


def update(root: Path | str = ".") -> Report:
    """Update the course at ``root`` (a git checkout of it), keeping every answer; see the module's docstring."""
    root = Path(root).resolve()
    if _git(root, "rev-parse", "--is-inside-work-tree").returncode != 0 or not (root / "course").is_dir():
        raise RuntimeError(f"{root} is not a git checkout of the course (no course/ folder or no .git)")
    report = Report()
    changed = changed_notebooks(root)
    saved: dict[Path, dict[str, str]] = {}
    if changed:
        report.backup = root / BACKUP / time.strftime("%Y%m%d-%H%M%S")
        for path in changed:
            if not (root / path).is_file():
                continue  # deleted by the learner: git restores it
            copy = report.backup / path.relative_to("course")
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / path, copy)
            saved[path] = answers(nbformat.read(root / path, as_version=4))
        _git(root, "checkout", "--", *map(str, changed))
    pulled = _git(root, "pull", "--ff-only")
    if pulled.returncode != 0:
        for path in saved:  # as they were: the update did not happen
            shutil.copy2(report.backup / path.relative_to("course"), root / path)
        raise RuntimeError(f"git pull could not fast-forward, nothing was changed ({pulled.stderr.strip()}). "
                           f"Your notebooks are as they were (a copy is in {report.backup}).")
    for path, given in saved.items():
        if not (root / path).is_file():
            report.orphaned[str(path)] = sorted(given)
            continue
        notebook = nbformat.read(root / path, as_version=4)
        report.orphaned[str(path)] = put_answers(notebook, given)
        report.restored[str(path)] = sorted(set(given) - set(report.orphaned[str(path)]))
        nbformat.write(notebook, root / path)
    report.orphaned = {path: ids for path, ids in report.orphaned.items() if ids}
    return report


def main(root: str = ".") -> int:
    try:
        report = update(root)
    except RuntimeError as error:
        print(f"error: {error}")
        return 1
    if report.backup is None:
        print("The course is up to date; you had no answers to carry over.")
        return 0
    print(f"Your notebooks before the update are copied in {report.backup}.")
    for path, ids in report.restored.items():
        print(f"  {path}: {len(ids)} answers kept")
    for path, ids in report.orphaned.items():
        print(f"  {path}: no cell for {', '.join(ids)} in the new version: see the copy")
    return 0
