"""Autograde every submission of an assignment in parallel, with a progress bar and ETA.

    python autograder/grade_parallel.py 01-attention               # one worker per core
    python autograder/grade_parallel.py 01-attention -j 2 --students 'a*'
    python autograder/grade_parallel.py 01-attention --db-url postgresql+psycopg2://...   # concurrent writers
    python autograder/grade_parallel.py 01-attention -- --Execute.timeout=60              # options for nbgrader

Each worker is an ordinary ``nbgrader autograde`` with this folder's ``nbgrader_config.py`` (kernel
isolation and limits included) over its share of the students; the gradebook ends up as a serial
``nbgrader autograde <assignment> --force`` would leave it (see ``tfs.grader.parallel``). Workers'
logs are kept in ``grading/logs/``. Exit status 1 when any worker's nbgrader reported an error. Ended by
SIGTERM (exit status 143) or Ctrl-C, it stops its workers, each removing what its kernels made on the host, and
merges nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

AUTOGRADER = Path(__file__).resolve().parent
sys.path.insert(0, str(AUTOGRADER))
import release  # noqa: E402  (autograder/release.py)

from tfs.grader import parallel  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment", help="the chapter id, e.g. 01-attention")
    parser.add_argument("-j", "--workers", type=int, default=parallel.cores(),
                        help=f"nbgrader processes at once (default: the number of cores, {parallel.cores()})")
    parser.add_argument("--students", default="*", help="glob of student ids (default: all)")
    parser.add_argument("--db-url", help="gradebook URL (default: the course's SQLite grading/gradebook.db)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    root = release.course_root()
    db_url = args.db_url or f"sqlite:///{root / 'grading' / 'gradebook.db'}"
    result = parallel.grade(args.assignment, root=root, autograder=AUTOGRADER, db_url=db_url, workers=args.workers,
                            pattern=args.students, options=tuple(options), progress=not args.no_progress)
    slowest = sorted(result.times.items(), key=lambda item: -item[1])[:3]
    print(f"{args.assignment}: {len(result.students)} submissions in {result.seconds:.1f} s with {result.workers} "
          f"workers: {result.per_minute:.1f} submissions/minute; slowest: "
          + ", ".join(f"{student} {seconds:.1f} s" for student, seconds in slowest))
    for index, status in result.failed.items():
        tail = "\n".join(result.logs[index].splitlines()[-10:])
        print(f"worker {index}: nbgrader exited with {status}; log in grading/logs/:\n{tail}", file=sys.stderr)
    return 1 if result.failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # workers are stopped on the way out
    raise SystemExit(main())
