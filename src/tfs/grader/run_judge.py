"""The judge process: decides hidden tests on collected data, where no student code ever ran.

The grader (:class:`tfs.grader.judged.JudgedExecute`) starts it once per notebook, in a fresh
interpreter that imports only torch, the course package from disk and the judges' files::

    python -I -m tfs.grader.run_judge --judges autograder/judges --data DIR --out verdicts.json

``DIR/manifest.json`` lists ``[{"key": "003-0", "test": "ch01.causal_mask_values", "seed": 1234}, ...]`` (``seed``: the
run seed the collector drew its inputs with, :func:`tfs.grader.judging.seeded_run`; 0 when absent); beside it,
``<key>.pt`` holds the data a collector produced (read with ``weights_only``, plain data only) or
``<key>.error`` the learner's error line when their code raised. The verdicts are written as JSON:
``{key: {"passed": bool, "message": str}}``. A judge raising ``AssertionError`` (``JudgeFailure`` or a
course check's ``CheckError``) fails the test with its message; any other exception of a judge
fails it with a message that says the data could not be judged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

MAX_BYTES = 256 * 1024 * 1024  # largest data file a judge reads


def verdict(test: str, data_file: Path, error_file: Path, seed: int = 0) -> dict:
    from tfs.grader import judging

    if error_file.is_file():
        line = error_file.read_text(encoding="utf-8", errors="replace")[:500].strip()
        if line.startswith("NotImplementedError"):
            return {"passed": False, "message": f"✗ {test}: not answered yet (your code raised {line})."}
        if line.startswith("ReferenceHidden: "):  # the answer used the chapter's own reference: the rule, as it is
            return {"passed": False, "message": f"✗ {test}: {line[len('ReferenceHidden: '):]}."}
        return {"passed": False, "message": f"✗ {test}: your code raised {line}\n"
                                            "  Run the exercise's cell and its visible tests to see where."}
    if not data_file.is_file():
        return {"passed": False, "message": f"✗ {test}: the grader received no result from your code (it did not "
                                            "finish, or the kernel stopped)."}
    if data_file.stat().st_size > MAX_BYTES:
        return {"passed": False, "message": f"✗ {test}: your code produced more than {MAX_BYTES // 2**20} MiB of "
                                            "results; the grader did not read them."}
    try:
        data = judging.read_data(data_file)
    except Exception as error:  # not plain data, a pickle that weights_only refuses, a truncated file
        return {"passed": False, "message": f"✗ {test}: the grader could not read your results "
                                            f"({judging.error_line(error)})."}
    try:
        with judging.seeded_run(seed):
            message = judging.load_judge(test)(data)
    except AssertionError as failure:
        return {"passed": False, "message": str(failure) or f"✗ {test}: failed"}
    except Exception as error:  # wrong types or shapes that the judge's own arithmetic tripped over
        return {"passed": False, "message": f"✗ {test}: your results could not be judged "
                                            f"({judging.error_line(error)}): check their types and shapes."}
    return {"passed": True, "message": message if isinstance(message, str) else f"✓ {test}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -I -m tfs.grader.run_judge")
    parser.add_argument("--judges", required=True, help="the folder of chNN.py judge modules")
    parser.add_argument("--data", required=True, help="the folder with manifest.json and the collected data")
    parser.add_argument("--out", required=True, help="where to write the verdicts (JSON)")
    parser.add_argument("--wait", action="store_true", help="import torch and the course package, then wait for a "
                        "line on stdin before reading the data (the grader starts the judge while the kernel runs)")
    args = parser.parse_args(argv)
    if args.wait:
        import tfs.teaching.checks  # noqa: F401  (torch and the checks: most of the start-up time)

        sys.stdin.readline()
    os.environ["TFS_JUDGES_DIR"] = args.judges
    data = Path(args.data)
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    verdicts = {}
    for entry in manifest:
        key, test, seed = str(entry["key"]), str(entry["test"]), int(entry.get("seed", 0))
        verdicts[key] = verdict(test, data / f"{key}.pt", data / f"{key}.error", seed)
    Path(args.out).write_text(json.dumps(verdicts, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
