"""Learner-friendly checks.

Every visible and hidden test in the course calls these instead of a bare ``assert``, so that a
failure reads like a good teaching assistant: what was expected, what was received, where the
worst difference is and how large, which known mistake it looks like, and a hint.

A failed check raises :class:`CheckError`, a subclass of ``AssertionError``, so nbgrader and
pytest count it as an ordinary test failure. Inside Jupyter, importing this module registers a
handler that shows a failed check as the learner's own lines and the message, without the
frames of this module.
"""

from __future__ import annotations

import math
import sysconfig
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

_LIBRARY_DIRS = tuple({str(Path(__file__).resolve().parent)} |
                      {sysconfig.get_path(kind) for kind in ("stdlib", "platstdlib", "purelib", "platlib")})

# (rtol, atol) per operation and dtype. "Correct code written another way" must always pass:
# `rsqrt` instead of `1/sqrt`, `einsum` instead of `matmul`, `logsumexp` instead of max-shift all
# change rounding, and reductions (matmul, sums) change it in proportion to their length.
TOLERANCES: dict[str, dict[torch.dtype, tuple[float, float]]] = {
    "exact": {torch.float64: (0.0, 0.0), torch.float32: (0.0, 0.0)},
    "elementwise": {torch.float64: (1e-10, 1e-12), torch.float32: (1e-5, 1e-6)},
    "softmax": {torch.float64: (1e-9, 1e-12), torch.float32: (1e-5, 1e-6)},
    "matmul": {torch.float64: (1e-8, 1e-10), torch.float32: (1e-4, 1e-5)},
    "attention": {torch.float64: (1e-8, 1e-10), torch.float32: (1e-4, 1e-5)},
    "training": {torch.float64: (1e-3, 1e-3), torch.float32: (1e-2, 1e-3)},
}
_HALF_PRECISION = (1e-2, 1e-3)  # float16 / bfloat16, any operation


class CheckError(AssertionError):
    """A failed course check. Its message is written for a learner, not for a developer."""


def tolerance(op: str, dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol)`` used for operation ``op`` (a key of :data:`TOLERANCES`) in ``dtype``."""
    if op not in TOLERANCES:
        raise KeyError(f"unknown operation {op!r}; choose one of {sorted(TOLERANCES)}")
    if dtype in (torch.float16, torch.bfloat16):
        return _HALF_PRECISION
    return TOLERANCES[op].get(dtype, TOLERANCES[op][torch.float32])


def _fail(name: str, problem: str, details: Sequence[str] = (), hint: str | None = None) -> None:
    lines = [f"✗ {name}: {problem}"]
    lines += [f"    {line}" for line in details]
    if hint:
        lines.append(f"  Hint: {hint}")
    raise CheckError("\n".join(lines))


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


def check_true(condition: bool, name: str, problem: str, hint: str | None = None) -> None:
    """Fail with ``problem`` (and ``hint``) unless ``condition`` holds."""
    if not condition:
        _fail(name, problem, hint=hint)


def check_tensor(received: object, name: str) -> torch.Tensor:
    """Fail unless ``received`` is a tensor; catches the classic forgotten ``return``."""
    if received is None:
        _fail(name, "received None instead of a tensor.", hint="did the function end without `return`?")
    if not isinstance(received, torch.Tensor):
        _fail(name, f"expected a torch.Tensor, received {_describe(received)}.",
              hint="build the result with torch operations (torch.tensor(...) converts a list).")
    return received


def check_shape(received: object, expected_shape: Sequence[int], name: str, hint: str | None = None) -> None:
    """Fail unless ``received`` is a tensor of exactly ``expected_shape``."""
    tensor = check_tensor(received, name)
    expected = tuple(expected_shape)
    got = tuple(tensor.shape)
    if got == expected:
        return
    details = [f"shape     expected {expected}, received {got}"]
    if sorted(got) == sorted(expected):
        details.append("the same sizes in another order: a transpose, permute or reshape went the wrong way?")
    elif len(got) == len(expected) + 1 and 1 in got:
        details.append("one extra dimension of size 1: a missing squeeze, or keepdim=True where it should not be?")
    elif len(got) + 1 == len(expected):
        details.append("one dimension short: a reduction (sum, mean, max) that should keep its dimension, "
                       "or a tuple unpacked along the first dimension?")
    _fail(name, "wrong shape.", details, hint)


def _worst_mismatch(received: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float):
    """(number of mismatching elements, index of the worst one, its difference, its allowance)."""
    both_nan = torch.isnan(received) & torch.isnan(expected)
    diff = (received - expected).abs()
    allowed = atol + rtol * expected.abs()
    nan_mismatch = torch.isnan(received) ^ torch.isnan(expected)
    excess = torch.where(both_nan, torch.zeros_like(diff), diff - allowed)
    excess = torch.where(nan_mismatch, torch.full_like(diff, float("inf")), excess)
    excess = torch.nan_to_num(excess, nan=float("inf"))  # inf - inf, e.g. received inf where inf expected
    same_inf = torch.isinf(received) & (received == expected)
    excess = torch.where(same_inf, torch.zeros_like(excess), excess)
    bad = excess > 0
    count = int(bad.sum())
    flat = int(torch.argmax(excess))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), excess.shape)) if excess.dim() else ()
    return count, index, diff.reshape(-1)[flat].item(), allowed.reshape(-1)[flat].item()


def _distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest elementwise difference; NaN in both at a place counts 0 there, NaN in one of them infinity."""
    if a.numel() == 0:
        return 0.0
    both_nan = torch.isnan(a) & torch.isnan(b)
    difference = torch.where(both_nan, torch.zeros_like(a), (a - b).abs())
    return float(torch.nan_to_num(difference, nan=math.inf).max())


FLOAT32_STEP = ("a step computed in float32 although the input is float64 (the difference is at float32's rounding "
                "level: torch.float, .float(), a float32 constant or table): keep every step in x's dtype")


def _match_mistake(received: torch.Tensor, expected: torch.Tensor, mistakes: Mapping[str, torch.Tensor]) -> str | None:
    """The known mistake whose result ``received`` matches, or None. A mistake is named only when ``received`` is at
    least ten times closer to its result than to the right answer: a mistake whose result equals the right answer on
    this input (to float rounding) is never blamed for a miss it cannot explain. Of several that match, the closest
    is named (not the first listed).

    When none matches and a float64 ``received`` misses a float64 ``expected`` by no more than float32's rounding
    (1e-6 of the values' scale), the miss is named :data:`FLOAT32_STEP`."""
    dtypes = received.dtype, expected.dtype
    received, expected = received.detach().double().cpu(), expected.detach().double().cpu()
    from_right = _distance(received, expected) if received.shape == expected.shape else math.inf
    best = None
    for description, wrong in mistakes.items():
        wrong = wrong.detach().double().cpu()
        if wrong.shape != received.shape:
            continue
        near = _distance(received, wrong)
        if (torch.allclose(received, wrong, rtol=1e-3, atol=1e-5, equal_nan=True) and 10 * near <= from_right
                and (best is None or near < best[0])):
            best = (near, description)
    if best is not None:
        return best[1]
    scale = max(1.0, float(expected.abs().nan_to_num(0.0, posinf=0.0, neginf=0.0).max())) if expected.numel() else 1.0
    if dtypes == (torch.float64, torch.float64) and 0 < from_right <= 1e-6 * scale:
        return FLOAT32_STEP
    return None


def check_close(
    received: object,
    expected: torch.Tensor,
    name: str,
    *,
    op: str = "elementwise",
    rtol: float | None = None,
    atol: float | None = None,
    check_dtype: bool = True,
    mistakes: Mapping[str, torch.Tensor] | None = None,
    hint: str | None = None,
    reveal: bool = True,
) -> None:
    """Fail unless ``received`` matches ``expected`` in type, shape, dtype, device and values.

    Args:
        received: what the learner's code returned.
        expected: the answer from an independent oracle (``torch.nn.functional``, analytic result).
        name: what is being checked, as the learner knows it (``"softmax_stable(x)"``).
        op: which tolerance row of :data:`TOLERANCES` applies; ``rtol``/``atol`` override it.
        mistakes: known wrong answers keyed by a description (see :mod:`tfs.teaching.probes`); when the
            received values match one, the failure names that mistake.
        hint: what to look at if nothing more specific is found.
        reveal: print the expected value at the worst index (a hidden test's judge passes False: its expected
            values are never printed, so they cannot be sent back in place of an answer).
    """
    tensor = check_tensor(received, name)
    check_shape(tensor, expected.shape, name, hint)
    if check_dtype and tensor.dtype != expected.dtype:
        _fail(name, "wrong dtype.", [f"dtype     expected {expected.dtype}, received {tensor.dtype}"],
              "keep the input's dtype: create new tensors with dtype=x.dtype (or torch.*_like).")
    if tensor.device != expected.device:
        _fail(name, "wrong device.", [f"device    expected {expected.device}, received {tensor.device}"],
              "create new tensors with device=x.device so the code runs on GPU inputs too.")
    default_rtol, default_atol = tolerance(op, expected.dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    received_f = tensor.detach().double().cpu()
    expected_f = expected.detach().double().cpu()
    count, index, diff, allowed = _worst_mismatch(received_f, expected_f, rtol, atol)
    if count == 0:
        return
    worst = (f"expected {expected_f[index].item():.6g}, received {received_f[index].item():.6g} (difference "
             f"{diff:.3g}, allowed {allowed:.3g})" if reveal else f"received {received_f[index].item():.6g}")
    details = [
        f"shape     {tuple(expected.shape)} as expected",
        f"mismatch  {count} of {expected.numel()} elements differ",
        f"worst     at index {index}: {worst}",
    ]
    if torch.isnan(received_f).any() and not torch.isnan(expected_f).any():
        details.append("the result contains NaN: an overflow (exp of a large number) or 0/0 somewhere?")
    diagnosis = _match_mistake(tensor, expected, mistakes or {})
    if diagnosis:  # specific beats generic: the hint is left out
        details.append(f"diagnosis this looks like {diagnosis}")
    _fail(name, "values differ from the expected result.", details, None if diagnosis else hint)


def call(function, *args, name: str | None = None, hint: str | None = None, **kwargs):
    """``function(*args, **kwargs)``, with an exception it raises turned into a course message.

    ``NotImplementedError`` (an exercise not yet answered) passes through unchanged.
    """
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:
        shapes = ", ".join(str(tuple(a.shape)) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args)
        problem = f"your function raised {type(error).__name__} when called with ({shapes})."
        label = name or getattr(function, "__name__", type(function).__name__)  # a module is named by its class
        raise CheckError("\n".join([f"✗ {label}: {problem}", f"    {type(error).__name__}: {error}"]
                                   + ([f"  Hint: {hint}"] if hint else []))) from error


def unpack(result: object, count: int, name: str, hint: str | None = None) -> tuple:
    """``result`` as a tuple of ``count`` values, or a failure saying what came back instead."""
    if not isinstance(result, tuple) or len(result) != count:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else _describe(result)
        _fail(name, f"expected a tuple of {count} values, received {got}.", hint=hint)
    return result


def _is_learner_frame(frame: traceback.FrameSummary) -> bool:
    """Code the learner sees (notebook cells, their own files), not this package, IPython or libraries."""
    return not frame.filename.startswith(_LIBRARY_DIRS)


def _where(shell, frame: traceback.FrameSummary) -> str:
    """``Cell In[5], line 3, in softmax_stable`` for a notebook cell (as IPython names it), else the file's path."""
    label = shell.compile.format_code_name(frame.filename) if hasattr(shell.compile, "format_code_name") else None
    place = f"{label[0]} {label[1]}" if label else f'File "{frame.filename}"'
    line = f"\n    {frame.line}" if frame.line else ""
    return f"  {place}, line {frame.lineno}, in {frame.name}{line}\n"


def _show_check_error(shell, etype, value, tb, tb_offset=None):
    """IPython handler for :class:`CheckError`: the learner's frames (cells named as JupyterLab shows them) and
    the message, nothing else."""
    frames = [_where(shell, frame) for frame in traceback.extract_tb(tb) if _is_learner_frame(frame)]
    text = "".join(["Traceback (most recent call last):\n", *frames, f"{etype.__name__}: {value}"])
    shell._showtraceback(etype, value, [text])  # publishes a normal error output: nbgrader still sees the failure


def _register_with_ipython() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((CheckError,), _show_check_error)


_register_with_ipython()
