"""Autograde one batch of a chapter's submissions: batch ``--index`` of ``--batches``, into a shared gradebook.

For grading spread over machines (``hub/z2jh/grading-job.yaml``: one Kubernetes Job pod per batch, each
with ``JOB_COMPLETION_INDEX``), or over processes on one machine. The collected submissions
(``grading/submitted/<student>/<chapter>/``) are sorted by student id and dealt round-robin: batch ``i``
grades students ``i, i + batches, ...``. Each batch runs the parallel grader (``tfs.grader.parallel``:
``nbgrader autograde`` workers with this folder's configuration, isolation included) on its own students
only, writing to ``--db-url``: a PostgreSQL gradebook, which concurrent batches share (SQLite does not
take concurrent batches: run them one after another).

    cd autograder
    ../.venv/bin/python grade_batch.py 01-attention --batches 4 --index 0 --db-url postgresql+psycopg2://...
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from tfs.grader import parallel

AUTOGRADER = Path(__file__).resolve().parent
sys.path.insert(0, str(AUTOGRADER))
import release  # noqa: E402  (autograder/release.py: the course root, TFS_COURSE_ROOT)


def batch(students: list[str], batches: int, index: int) -> list[str]:
    """Round-robin share ``index`` of ``batches`` over the sorted student ids."""
    if not 0 <= index < batches:
        raise SystemExit(f"--index must be in 0..{batches - 1}, got {index}")
    return sorted(students)[index::batches]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment")
    parser.add_argument("--batches", type=int, required=True)
    parser.add_argument("--index", type=int, default=int(os.environ.get("JOB_COMPLETION_INDEX", "-1")),
                        help="this batch (default: $JOB_COMPLETION_INDEX, set by an Indexed Kubernetes Job)")
    parser.add_argument("--db-url", required=True, help="the shared gradebook (postgresql+psycopg2://...)")
    parser.add_argument("-j", "--workers", type=int, default=parallel.cores())
    args = parser.parse_args(argv)
    root = release.course_root()
    submitted = root / "grading" / "submitted"
    mine = batch(parallel.submissions(submitted, args.assignment, "*"), args.batches, args.index)
    if not mine:
        print(f"batch {args.index} of {args.batches}: no submissions of {args.assignment}")
        return 0
    # this batch's view of the submissions: links to its students' folders only
    view = root / "grading" / "batches" / f"{args.assignment}-{args.index}-of-{args.batches}"
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir(parents=True)
    for student in mine:
        (view / student).symlink_to(submitted / student, target_is_directory=True)
    try:
        result = parallel.grade(args.assignment, root=root, autograder=AUTOGRADER, db_url=args.db_url,
                                workers=args.workers, progress=False,
                                submitted_directory=str(view.relative_to(root)))
    finally:
        shutil.rmtree(view, ignore_errors=True)
    print(f"batch {args.index} of {args.batches}: {len(result.students)} submissions of {args.assignment} in "
          f"{result.seconds:.1f} s ({result.per_minute:.1f}/minute)")
    for index, status in result.failed.items():
        print(f"worker {index}: nbgrader exited with {status}:\n" + "\n".join(result.logs[index].splitlines()[-10:]),
              file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
