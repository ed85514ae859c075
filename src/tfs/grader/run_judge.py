"""The judge process: decides hidden tests on collected data, where no student code ever ran.

One judge process per notebook, in an interpreter that imports only torch, the course package from disk and
the judges' files::

    python -I -m tfs.grader.run_judge --judges autograder/judges --data DIR --out verdicts.json

The grader (:class:`tfs.grader.judged.JudgedExecute`) does not start a new interpreter for each notebook: it
starts one *zygote* per grading process (``python -I -m tfs.grader.run_judge --zygote``), which imports torch
and the judging code once and then forks a fresh judge process for each notebook (:func:`zygote`). The zygote
never reads student data; each fork does, with its own memory and CPU limits, environment and folder, and exits.

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
import resource
import sys
import traceback
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
    parser.add_argument("--zygote", action="store_true", help="import torch and the judging code, then fork one "
                        "judge process per request line on stdin (see zygote())")
    parser.add_argument("--judges", help="the folder of chNN.py judge modules")
    parser.add_argument("--data", help="the folder with manifest.json and the collected data")
    parser.add_argument("--out", help="where to write the verdicts (JSON)")
    args = parser.parse_args(argv)
    if args.zygote:
        return zygote()
    if not (args.judges and args.data and args.out):
        parser.error("--judges, --data and --out are required")
    os.environ["TFS_JUDGES_DIR"] = args.judges
    data = Path(args.data)
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    verdicts = {}
    for entry in manifest:
        key, test, seed = str(entry["key"]), str(entry["test"]), int(entry.get("seed", 0))
        verdicts[key] = verdict(test, data / f"{key}.pt", data / f"{key}.error", seed)
    Path(args.out).write_text(json.dumps(verdicts, ensure_ascii=False), encoding="utf-8")
    return 0


def zygote() -> int:
    """Fork one judge process per request, from an interpreter that imported torch once.

    Each line on stdin is a request, ``{"argv": [...], "env": {...}, "cwd": DIR, "stderr": FILE, "memory_mb": N,
    "cpu_s": N}``: a judge process is forked and runs :func:`main` with ``argv`` in ``cwd``, with exactly the
    environment ``env``, its standard error written to ``FILE``, an address-space limit of ``memory_mb`` MiB and a
    CPU-time limit of ``cpu_s`` seconds (it outlives no grader that stops waiting for it). The zygote answers
    ``{"pid": PID}`` at once and ``{"exit": STATUS}`` when that process has ended (negative: killed by that signal),
    one request at a time. The end of stdin (the grader ended) ends it."""
    import tfs.teaching.checks  # noqa: F401  (torch and the checks: most of a judge's start-up time)
    from tfs.grader import judging  # noqa: F401

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _judge_child(request)
        _answer({"pid": pid})
        _, status = os.waitpid(pid, 0)
        _answer({"exit": os.waitstatus_to_exitcode(status)})
    return 0


def _answer(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _judge_child(request: dict):
    """In the forked process: the limits, folder, environment and files of one judge process, then :func:`main`."""
    status = 1
    try:
        memory = int(request["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (int(request["cpu_s"]), int(request["cpu_s"])))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        errors = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        nothing = os.open(os.devnull, os.O_RDWR)
        for target, source in ((0, nothing), (1, nothing), (2, errors)):  # the zygote's pipes stay its own
            os.dup2(source, target)
        status = main(list(request["argv"]))
    except BaseException:  # noqa: BLE001 (whatever happens, this process ends here and never returns to the loop)
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
