"""Hidden tests in two halves: a *collector* that runs the learner's code, a *judge* that decides.

A student's kernel runs untrusted code, so nothing that decides a grade may run there. A hidden
test is therefore split:

- the **collector** (``tfs.grader.collectors.<chapter>.<name>``, public, runs in the kernel) calls
  the learner's functions and classes on fixed inputs and returns *plain data*: tensors of the base
  ``torch.Tensor`` type, numbers, strings, ``None``, and lists/tuples/dicts of these;
- the **judge** (``autograder/judges/<chapter>.py::<name>``, private to the instructor) receives that
  data in a fresh process that imports nothing the student touched, rebuilds the inputs itself,
  computes the oracle and raises :class:`JudgeFailure` with a course message when the data is wrong.

A notebook's hidden-test block calls ``judge("<chapter>.<name>", learner_object=..., ...)``. What that
call does depends on who runs the notebook:

- **grading** (``TFS_JUDGE_OUT`` is set by the grader): the collected data is written to that folder,
  and the grader runs the judge outside the kernel and writes its verdict into the cell's outputs;
- **the instructor's notebook** (``solutions/``, nbval): the judge runs right here, so the hidden
  tests are exercised on the solution in every test run;
- **a student's release**: hidden blocks are removed, so ``judge`` is never called.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["JudgeDataError", "JudgeFailure", "collect_to", "expect", "judge", "load_judge", "plain", "read_data", "results", "write_data"]

TEST_NAME = re.compile(r"^(ch\d\d)\.([a-z_][a-z0-9_]*)$")
PLAIN_DTYPES = {torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                torch.float16, torch.bfloat16, torch.float32, torch.float64}
MAX_ELEMENTS = 50_000_000  # in all the tensors of one test's data
MAX_DEPTH = 20


class JudgeFailure(AssertionError):
    """A hidden test failed: the message is what the student reads in the feedback."""


def expect(condition: bool, name: str, problem: str, hint: str | None = None) -> None:
    """For judges: fail with ``✗ name: problem`` (and the hint) unless ``condition``."""
    if not condition:
        raise JudgeFailure(f"✗ {name}: {problem}" + (f"\n  Hint: {hint}" if hint else ""))


def results(data: Any, count: int, name: str) -> list:
    """For judges: ``data`` as the list of ``count`` results a collector returns, or a failure."""
    expect(type(data) is list and len(data) == count, name, f"expected {count} results from the grader's calls.")
    return data


class JudgeDataError(ValueError):
    """The collected data is not plain data (a tensor subclass, an object, too deep, too large)."""


def plain(value: Any, _depth: int = 0, _budget: list[int] | None = None) -> Any:
    """A copy of ``value`` made of plain data only, or :class:`JudgeDataError`.

    Tensors become detached, contiguous CPU copies of the base ``torch.Tensor`` type; a subclass
    (whose ``__torch_function__`` could fake arithmetic) is refused, as is any other object.
    """
    budget = [MAX_ELEMENTS] if _budget is None else _budget
    if _depth > MAX_DEPTH:
        raise JudgeDataError(f"data nested deeper than {MAX_DEPTH} levels")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is torch.Tensor or type(value) is torch.nn.Parameter:
        if value.dtype not in PLAIN_DTYPES:
            raise JudgeDataError(f"tensor of dtype {value.dtype} is not plain data")
        if value.is_sparse or value.is_quantized:
            raise JudgeDataError("sparse or quantized tensors are not plain data")
        budget[0] -= value.numel()
        if budget[0] < 0:
            raise JudgeDataError(f"more than {MAX_ELEMENTS} tensor elements")
        return torch.Tensor(value.detach().cpu().contiguous()).clone()
    if type(value) in (list, tuple):
        return [plain(item, _depth + 1, budget) for item in value]
    if type(value) is dict:
        if not all(type(key) is str for key in value):
            raise JudgeDataError("dict keys must be strings")
        return {key: plain(item, _depth + 1, budget) for key, item in value.items()}
    raise JudgeDataError(f"{type(value).__module__}.{type(value).__qualname__} is not plain data "
                         "(expected tensors, numbers, strings, None, lists and dicts)")


def write_data(data: Any, path: str | os.PathLike) -> None:
    """Save plain data for a judge (``torch.save``; read back with ``weights_only=True``)."""
    torch.save(plain(data), path)


def read_data(path: str | os.PathLike) -> Any:
    """Load data written by :func:`write_data`, refusing anything but plain data."""
    return plain(torch.load(path, weights_only=True, map_location="cpu"))


def _split(test: str) -> tuple[str, str]:
    match = TEST_NAME.match(test)
    if not match:
        raise ValueError(f"a hidden test is named 'chNN.name'; received {test!r}")
    return match.group(1), match.group(2)


def judges_dir() -> Path:
    """``autograder/judges`` of this checkout (``TFS_JUDGES_DIR`` overrides it)."""
    configured = os.environ.get("TFS_JUDGES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "autograder" / "judges"


def load_judge(test: str):
    """The judge function of ``test`` (``"ch01.causal_mask_values"``), imported from its file."""
    chapter, name = _split(test)
    path = judges_dir() / f"{chapter}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no judges for {chapter}: {path} is missing")
    module_name = f"tfs_judges_{chapter}"
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return getattr(module, name)


def collect(test: str, **objects: Any) -> Any:
    """Run the collector of ``test`` on the learner's objects; return its plain data."""
    chapter, name = _split(test)
    collector = getattr(importlib.import_module(f"tfs.grader.collectors.{chapter}"), name)
    return plain(collector(**objects))


def error_line(error: BaseException) -> str:
    """``"ValueError: the message"``: the first line of an exception, as the learner would read it."""
    try:
        text = str(error)
    except Exception:  # an exception whose __str__ raises
        text = ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    line = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return line[:500]


def raised(function, *args, **kwargs) -> str:
    """What calling ``function(*args, **kwargs)`` raised, as :func:`error_line` writes it, or ``"no error"``.

    Collectors use it for the bad-input cases: the learner's error is data, reported as the learner reads it."""
    try:
        function(*args, **kwargs)
    except Exception as error:
        return error_line(error)
    return "no error"


def collect_to(folder: str | os.PathLike, key: str, test: str, /, **objects: Any) -> None:
    """The grader's collection call in the kernel: ``<key>.pt`` with the data, or ``<key>.error``.

    Never raises for the learner's mistakes: an exception of the learner's code (or data that is
    not plain) is written as its first line, which the judge then reports as the cell's failure; so is
    a hidden reference's refusal (:class:`tfs.grader.references.ReferenceHidden`), whatever caught what.
    """
    from tfs.grader.references import ReferenceHidden

    folder = Path(folder)
    try:
        data = collect(test, **objects)
    except (Exception, SystemExit, ReferenceHidden) as error:
        (folder / f"{key}.error").write_text(error_line(error), encoding="utf-8")
        return
    write_data(data, folder / f"{key}.pt")


def judge(test: str, /, **objects: Any) -> None:
    """The call in a notebook's hidden-test block (see the module's documentation)."""
    data = collect(test, **objects)
    out = os.environ.get("TFS_JUDGE_OUT")
    if out:
        write_data(data, Path(out) / f"{test}.pt")
        return
    load_judge(test)(read_data_roundtrip(data))


def read_data_roundtrip(data: Any) -> Any:
    """The data as a judge in another process would receive it (saved and loaded once)."""
    import io

    buffer = io.BytesIO()
    torch.save(data, buffer)
    buffer.seek(0)
    return plain(torch.load(buffer, weights_only=True, map_location="cpu"))
