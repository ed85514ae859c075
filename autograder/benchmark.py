"""Grading throughput: how many submissions per minute ``nbgrader autograde`` grades on this machine.

    python autograder/benchmark.py                       # 8 submissions of 01-attention and of the heaviest chapter
    python autograder/benchmark.py -n 30 01-attention    # 30 submissions of one chapter
    python autograder/benchmark.py -w serial,1,2 01-attention   # plain nbgrader autograde, then 1 and 2 workers

For each chapter, in a temporary course root (the real ``nbgrader_config.py``, selected with
``TFS_COURSE_ROOT``, as the tests do): ``nbgrader generate_assignment``, then N submissions that
are the full solution typed into the released notebook, then one ``nbgrader autograde`` command for
all of them, timed (``-w``: ``serial`` is that plain command; a number N is
``autograder/grade_parallel.py -j N``, the parallel command with N workers). Full solutions run every cell, so this is the realistic upper end of the work
per submission (an unanswered notebook fails fast). Every submission's score is read back from the
gradebook and must be the maximum; if not, a WARNING says so and the exit status is 1.

The heaviest chapter is the one whose executed solution notebook took longest, from the execution
timestamps nbclient/JupyterLab record in each code cell's metadata (chapters without them are
executed once here to time them).

This is a measurement, not a test: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat

AUTOGRADER = Path(__file__).resolve().parent
sys.path.insert(0, str(AUTOGRADER))
import release  # noqa: E402  (autograder/release.py)

REPO = AUTOGRADER.parent
COURSE_ID = "transformers-from-scratch"
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*\n", re.MULTILINE)
DEFAULT_CHAPTER = "01-attention"


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def notebooks(folder: Path) -> dict[str, nbformat.NotebookNode]:
    return {p.stem: nbformat.read(p, as_version=4) for p in sorted(folder.glob("*.ipynb"))}


def full_solution(released: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The released notebook with every solution cell answered as the instructor's solution, markers removed."""
    answers = {_meta(c)["grade_id"]: SOLUTION_MARKERS.sub("", c.source) for c in source.cells if _meta(c).get("solution")}
    submission = copy.deepcopy(released)
    for cell in submission.cells:
        if _meta(cell).get("solution") and _meta(cell).get("grade_id") in answers:
            cell.source = answers[_meta(cell)["grade_id"]]
    return submission


def recorded_seconds(notebook: nbformat.NotebookNode) -> float | None:
    """Execution time recorded in the cells' metadata (``iopub.execute_input`` to ``shell.execute_reply``)."""
    total, found = 0.0, False
    for cell in notebook.cells:
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            start = datetime.fromisoformat(stamps["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(stamps["shell.execute_reply"].replace("Z", "+00:00"))
            total += max(0.0, (end - start).total_seconds())
            found = True
    return total if found else None


def measured_seconds(path: Path) -> float:
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def execution_seconds(chapter: str, root: Path = REPO) -> float:
    """Seconds the chapter's solution notebooks take to execute (recorded, or measured now)."""
    total = 0.0
    for path in sorted((root / "solutions" / chapter).glob("*.ipynb")):
        seconds = recorded_seconds(nbformat.read(path, as_version=4))
        total += measured_seconds(path) if seconds is None else seconds
    return total


def heaviest_chapter(root: Path = REPO) -> tuple[str, float]:
    times = {chapter: execution_seconds(chapter, root) for chapter in release.chapters(root)}
    chapter = max(times, key=times.get)
    return chapter, times[chapter]


def machine() -> str:
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    except OSError:
        model = platform.processor()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import nbgrader
    import torch

    return (f"{platform.system()} {platform.machine()}, {usable} CPU cores usable ({os.cpu_count()} online, "
            f"{model or 'unknown CPU'}), Python {platform.python_version()}, torch {torch.__version__}, "
            f"nbgrader {nbgrader.__version__}; load average {os.getloadavg()[0]:.1f} at start")


def benchmark(chapter: str, n: int, keep: bool = False, workers: int | None = None) -> dict:
    """Autograde ``n`` full-solution submissions of ``chapter`` with one command; returns the measurements.

    ``workers=None``: one plain ``nbgrader autograde``; a number: the parallel command with that many workers.
    """
    from nbgrader.api import Gradebook

    root = Path(tempfile.mkdtemp(prefix=f"tfs-bench-{chapter}-"))
    try:
        shutil.copytree(REPO / "solutions" / chapter, root / "solutions" / chapter)
        release.nbgrader("generate_assignment", chapter, "--force", root=root)
        sources = notebooks(root / "solutions" / chapter)
        released = notebooks(root / "course" / chapter)
        students = [f"bench-{i:03d}" for i in range(n)]
        for student in students:
            folder = root / "grading" / "submitted" / student / chapter
            folder.mkdir(parents=True)
            for name, source in sources.items():
                nbformat.write(full_solution(released[name], source), folder / f"{name}.ipynb")

        start = time.perf_counter()
        if workers is None:
            result = release.nbgrader("autograde", chapter, "--CourseDirectory.student_id=bench-*", "--force",
                                      root=root, check=False)
        else:
            from tfs.grader import parallel

            graded = parallel.grade(chapter, root=root, autograder=AUTOGRADER, workers=workers, pattern="bench-*",
                                    db_url=f"sqlite:///{root}/grading/gradebook.db", progress=False)
            log = "".join(graded.logs.values())
            result = subprocess.CompletedProcess([], 1 if graded.failed else 0, log, "")
        seconds = time.perf_counter() - start

        scores = []
        with Gradebook(f"sqlite:///{root}/grading/gradebook.db", course_id=COURSE_ID) as gradebook:
            for student in students:
                try:
                    submission = gradebook.find_submission(chapter, student)
                    scores.append((submission.score, submission.max_score))
                except Exception:  # no grade recorded
                    scores.append((None, None))
        full = sum(score is not None and score == top and top > 0 for score, top in scores)
        problem = ""
        if result.returncode != 0 or full != n:
            problem = (f"autograde exit status {result.returncode}; {full} of {n} submissions scored full marks "
                       f"(score, max) {sorted(set(scores), key=str)}: the configuration, the solution or the grader is "
                       "broken, so these numbers do not measure normal grading.\n"
                       + "\n".join((result.stdout + result.stderr).splitlines()[-15:]))
        return {"chapter": chapter, "n": n, "workers": workers, "seconds": seconds, "per_minute": 60 * n / seconds,
                "per_submission": seconds / n, "max_score": scores[0][1] or 0, "full": full, "problem": problem,
                "root": root}
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help=f"chapter ids (default: {DEFAULT_CHAPTER} and the heaviest chapter)")
    parser.add_argument("-n", "--submissions", type=int, default=8, help="submissions per chapter (default: 8)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary course roots (their paths are printed)")
    parser.add_argument("-w", "--workers", default="serial",
                        help="comma-separated: 'serial' (plain nbgrader autograde) and/or worker counts (default: serial)")
    args = parser.parse_args(argv)
    if args.submissions < 1:
        parser.error("-n must be at least 1")

    chapters = list(args.chapters)
    if not chapters:
        heaviest, seconds = heaviest_chapter()
        print(f"heaviest chapter: {heaviest} (its solution executes in {seconds:.1f} s)", flush=True)
        chapters = list(dict.fromkeys([DEFAULT_CHAPTER, heaviest]))
    print(f"machine: {machine()}", flush=True)
    print(f"command: nbgrader autograde <chapter> --CourseDirectory.student_id=bench-* --force (serial) or "
          f"autograder/grade_parallel.py <chapter> -j N (N workers); {args.submissions} full-solution submissions, "
          "autograder/nbgrader_config.py", flush=True)
    counts = [None if w.strip() == "serial" else int(w) for w in args.workers.split(",")]
    failed = False
    for chapter, workers in [(chapter, workers) for chapter in chapters for workers in counts]:
        r = benchmark(chapter, args.submissions, keep=args.keep, workers=workers)
        how = "serial" if workers is None else f"{workers} worker{'s' if workers > 1 else ''}"
        print(f"{chapter} [{how}, load {os.getloadavg()[0]:.1f}]: {r['n']} submissions in {r['seconds']:.1f} s: "
              f"{r['per_minute']:.1f} submissions/minute, "
              f"{r['per_submission']:.1f} s per submission ({r['full']} of {r['n']} scored full marks, "
              f"{r['max_score']:g} points)" + (f"  [kept {r['root']}]" if args.keep else ""), flush=True)
        if r["problem"]:
            print(f"WARNING {chapter}: {r['problem']}", flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
