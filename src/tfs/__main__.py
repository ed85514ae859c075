"""Command line: ``python -m tfs env`` (or ``tfs env``) prints the environment check."""

from __future__ import annotations

import argparse

from tfs.utils import environment_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tfs", description="Transformers from Scratch course tools")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("env", help="print Python, library versions and the device the course will use")
    args = parser.parse_args(argv)
    if args.command == "env":
        for key, value in environment_report().items():
            print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
