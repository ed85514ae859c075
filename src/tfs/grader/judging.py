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

**Inputs drawn per run.** Every collection and its judging share a *run seed* (:func:`seeded_run`): the grader
draws one per notebook it grades and gives it to the kernel's collection calls and, through the manifest, to
the judge process; the instructor's notebook draws one per ``judge`` call (``TFS_JUDGE_SEED`` fixes it, to
reproduce a failure). Collectors make their random inputs with :func:`generator`, which mixes that seed in, so
the hidden tests' inputs differ from one grading run to the next and no result of an earlier run can be sent
back in place of running the code. Run seed 0 gives the fixed inputs of earlier versions.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from tfs.grader.judge_names import judges_dir, new_run_seed, split_test

__all__ = ["JudgeDataError", "JudgeFailure", "check_close", "check_data", "close", "collect_to", "expect", "finite",
           "generator", "judge", "load_judge", "new_run_seed", "off", "per_run", "plain", "read_data", "results",
           "run_seed", "seeded_run", "write_data"]

PLAIN_DTYPES = {torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                torch.float16, torch.bfloat16, torch.float32, torch.float64}
MAX_ELEMENTS = 50_000_000  # in all the tensors of one test's data
MAX_DEPTH = 20
MAX_DATA_BYTES = 256 * 1024 * 1024  # the most one test's data file may hold once unpacked


_run_seed = 0  # see "Inputs drawn per run" above


def run_seed() -> int:
    """The run seed in force (0 outside :func:`seeded_run`)."""
    return _run_seed


@contextlib.contextmanager
def seeded_run(seed: int):
    """Collectors' and judges' inputs drawn with run seed ``seed`` inside the ``with`` block."""
    global _run_seed
    if type(seed) is not int or not 0 <= seed < 2**31:
        raise ValueError(f"a run seed is an int in [0, 2**31), not {seed!r}")
    previous, _run_seed = _run_seed, seed
    try:
        yield seed
    finally:
        _run_seed = previous


def per_run(function):
    """For judges: ``function``'s results cached per arguments and run seed (one judge process judges one run,
    the course's tests judge several runs in one process)."""
    cached = functools.lru_cache(maxsize=None)(lambda seed, *args: function(*args))
    return functools.wraps(function)(lambda *args: cached(_run_seed, *args))


@contextlib.contextmanager
def stand_ins(answer, make=None, /, **references):
    """While the learner's ``answer`` runs (a function, or a class: its methods), each earlier exercise named in
    ``references`` that the answer's namespace defines is replaced by the reference given (put back afterwards): a
    mistake in an earlier exercise costs that exercise's points only. The learner's earlier function is still probed
    on its own, for its message. ``make(namespace)`` gives references that depend on the namespace (a stand-in built
    on the learner's own attention class); the answer's own name is never replaced."""
    saved = []
    for space in _namespaces(answer):
        wanted = make(space) if make is not None else references
        kept = {name: space[name] for name in wanted
                if space.get(name) is not None and name != getattr(answer, "__name__", None)}
        space.update({name: wanted[name] for name in kept})
        saved.append((space, kept))
    try:
        yield
    finally:
        for space, kept in saved:
            space.update(kept)


def _namespaces(answer) -> list[dict]:
    """The global namespaces the learner's function, or the methods of their class, look names up in."""
    functions = [answer] if hasattr(answer, "__globals__") else (
        [f for f in vars(answer).values() if hasattr(f, "__globals__")] if isinstance(answer, type) else [])
    spaces = {id(f.__globals__): f.__globals__ for f in functions if isinstance(f.__globals__, dict)}
    return list(spaces.values())


def answer_on_its_own(make=None, /, **references):
    """Decorator for a collector whose first argument is the learner's answer: :func:`stand_ins` while it runs."""
    def decorate(collect):
        @functools.wraps(collect)
        def collect_on_its_own(*args, **kwargs):
            answer = next(iter(args), None) or next(iter(kwargs.values()))
            with stand_ins(answer, make, **references):
                return collect(*args, **kwargs)
        return collect_on_its_own
    return decorate


def generator(seed: int) -> torch.Generator:
    """For collectors' inputs: a generator from ``seed`` and the run seed (the same pair gives the same draws)."""
    return torch.Generator().manual_seed(_run_seed * 1_000_003 + seed)


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


def finite(value: Any) -> bool:
    """For judges: ``value`` is a real number (not a bool) or a tensor, with no NaN or infinity in it."""
    if isinstance(value, torch.Tensor):
        return not (value.is_floating_point() or value.is_complex()) or bool(torch.isfinite(value).all())
    return type(value) in (int, float) and math.isfinite(value)


def close(received: Any, expected: float, tol: float, rel: float = 0.0) -> bool:
    """For judges: ``received`` is a finite real number within ``tol + rel * |expected|`` of ``expected``.

    Use it for every comparison of numbers: ``abs(x - y) > tol`` is False for a NaN ``x``, so a judge written
    that way lets NaN through; ``not close(x, y, tol)`` does not."""
    return finite(received) and abs(received - expected) <= tol + rel * abs(expected)


def check_close(received: Any, expected: torch.Tensor, name: str, **options: Any) -> None:
    """For judges: :func:`tfs.teaching.checks.check_close` (type, shape, dtype, values; NaN differs from any
    number), whose failure does not print the hidden expected values."""
    from tfs.teaching.checks import check_close as visible_check_close

    visible_check_close(received, expected, name, reveal=False, **options)


def off(received: float, expected: float) -> str:
    """For judges' messages: where ``received`` lies from ``expected`` (``"far above"``, ``"slightly below"``), in
    words that do not give the hidden ``expected`` away (a printed value could be sent back in its place)."""
    if not finite(received):
        return "not a finite number, unlike"
    share = abs(received - expected) / max(abs(expected), 1e-300)
    size = "slightly " if share < 0.01 else "" if share < 0.5 else "far "
    return f"{size}{'above' if received > expected else 'below'}"


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if type(value) in (list, dict):
        return f"a {type(value).__name__} of {len(value)} items"
    return "None" if value is None else f"a {type(value).__name__}"


_KINDS = {torch.Tensor: "a tensor", str: "a string", bool: "True or False", int: "an integer", float: "a number",
          list: "a list", dict: "a dict"}


def _matches(value: Any, kind: type) -> bool:
    if kind is float:  # a real number: an int will do, a bool will not
        return type(value) in (int, float)
    if kind is int:
        return type(value) is int
    return isinstance(value, kind)


def _check(value: Any, spec: Any, where: str) -> str | None:
    """The first place where ``value`` does not have the structure ``spec`` describes, or None."""
    if spec is None:  # anything: the judge itself checks this value and names the mistake
        return None
    if isinstance(spec, dict):
        if type(value) is not dict:
            return f"{where} should be a dict; received {_describe(value)}"
        for key, inner in spec.items():
            if key not in value:
                return f"{where} has no {key!r}"
            problem = _check(value[key], inner, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    if isinstance(spec, list):
        if type(value) is not list:
            return f"{where} should be a list of {len(spec)}; received {_describe(value)}"
        if len(value) != len(spec):
            return f"{where} holds {len(value)} item(s); the grader's calls give {len(spec)}"
        return next((p for i, (item, inner) in enumerate(zip(value, spec)) if (p := _check(item, inner, f"{where}[{i}]"))),
                    None)
    if isinstance(spec, tuple):  # one of these
        problems = [_check(value, inner, where) for inner in spec]
        return None if None in problems else problems[0]
    if not _matches(value, spec):
        return f"{where} should be {_KINDS.get(spec, spec.__name__)}; received {_describe(value)}"
    return None


def check_data(data: Any, spec: Any, name: str) -> Any:
    """For judges, before any comparison: ``data`` has the complete structure ``spec`` describes, or a failure.

    A collector can be replaced in the student's kernel, so a judge may receive any plain data; one that loops
    over what it is given would pass ``{}`` or a list of one. ``spec`` describes what the real collector returns:

    - a dict ``{key: spec}``: a dict with every one of these keys (each value checked against its spec);
    - a list ``[spec, ...]``: a list of exactly that many items (``[float] * 40``: forty numbers);
    - a type: ``torch.Tensor``, ``str``, ``bool``, ``int``, ``float`` (a real number: an int will do), ``list``, ``dict``;
    - a tuple of specs: any one of them (``(torch.Tensor, str)``: a result or the error line);
    - ``None``: anything (a value the judge examines itself, to name the mistake).

    Returns ``data``, so that a judge can write ``data = check_data(data, {...}, name)``.
    """
    problem = _check(data, spec, "results")
    expect(problem is None, name, f"the grader received incomplete results: {problem}. The hidden tests collect "
           "every case they check; results made or changed by hand are graded as missing.")
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


def check_archive(path: str | os.PathLike, limit: int | None = None) -> None:
    """Refuse a data file that is not a ``torch.save`` zip archive, or that would inflate to more than ``limit`` bytes.

    ``torch.save`` stores its members uncompressed, but ``torch.load`` also inflates deflated ones: a 2 MB file of
    zeros deflated would take 2 GB of memory before any check of the data could run. The zip directory gives each
    member's size once inflated; nothing is inflated here."""
    import zipfile

    limit = MAX_DATA_BYTES if limit is None else limit
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise JudgeDataError(f"not a torch.save archive ({type(error).__name__})") from None
    total = sum(member.file_size for member in members)
    if total > limit:
        raise JudgeDataError(f"the data would take {total / 2**20:.0f} MiB once unpacked, more than the "
                             f"{limit // 2**20} MiB a judge reads")


def read_data(path: str | os.PathLike) -> Any:
    """Load data written by :func:`write_data`, refusing anything but plain data (and archives that inflate
    beyond :data:`MAX_DATA_BYTES`, before they are unpacked)."""
    check_archive(path)
    return plain(torch.load(path, weights_only=True, map_location="cpu"))


def load_judge(test: str):
    """The judge function of ``test`` (``"ch01.causal_mask_values"``), imported from its file."""
    chapter, name = split_test(test)
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


def collect(test: str, seed: int = 0, /, **objects: Any) -> Any:
    """Run the collector of ``test`` on the learner's objects, with run seed ``seed``; return its plain data."""
    chapter, name = split_test(test)
    collector = getattr(importlib.import_module(f"tfs.grader.collectors.{chapter}"), name)
    with seeded_run(seed):
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


def collect_to(folder: str | os.PathLike, key: str, test: str, seed: int = 0, /, **objects: Any) -> None:
    """The grader's collection call in the kernel: ``<key>.pt`` with the data, or ``<key>.error``.

    Never raises for the learner's mistakes: an exception of the learner's code (or data that is
    not plain) is written as its first line, which the judge then reports as the cell's failure; so is
    a hidden reference's refusal (:class:`tfs.grader.references.ReferenceHidden`), whatever caught what.
    """
    from tfs.grader.references import ReferenceHidden

    folder = Path(folder)
    try:
        data = collect(test, seed, **objects)
    except (Exception, SystemExit, ReferenceHidden) as error:
        (folder / f"{key}.error").write_text(error_line(error), encoding="utf-8")
        return
    write_data(data, folder / f"{key}.pt")


def judge(test: str, /, **objects: Any) -> None:
    """The call in a notebook's hidden-test block (see the module's documentation): inputs drawn with a fresh run
    seed, or ``TFS_JUDGE_SEED``'s, which a failure names."""
    seed = int(os.environ.get("TFS_JUDGE_SEED") or new_run_seed())
    data = collect(test, seed, **objects)
    out = os.environ.get("TFS_JUDGE_OUT")
    if out:
        write_data(data, Path(out) / f"{test}.pt")
        return
    try:
        with seeded_run(seed):
            load_judge(test)(read_data_roundtrip(data))
    except AssertionError as failure:
        raise type(failure)(f"{failure}\n  (inputs drawn with run seed {seed}: TFS_JUDGE_SEED={seed} draws them "
                            "again)") from None


def read_data_roundtrip(data: Any) -> Any:
    """The data as a judge in another process would receive it (saved and loaded once)."""
    import io

    buffer = io.BytesIO()
    torch.save(data, buffer)
    buffer.seek(0)
    return plain(torch.load(buffer, weights_only=True, map_location="cpu"))
