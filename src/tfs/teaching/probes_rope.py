"""Rotary position embedding (chapter 03's optional exercise): an oracle by complex numbers, and the usual mistakes.

:func:`rope_by_complex_numbers` is an independent formulation (pair ``j`` read as the complex number
``x_j + i x_{j+d/2}``, multiplied by ``e^{i p theta_j}``) that the visible tests compare with; it shares no code
with :func:`tfs.nn.apply_rope`. :func:`rope_mistakes` returns ``{description: wrong_result}`` like
:mod:`tfs.teaching.probes`: those are deliberately wrong.
"""

from __future__ import annotations

import torch

__all__ = ["outcome_on_odd_d", "rope_by_complex_numbers", "rope_mistakes"]


def _positions(x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    return torch.arange(x.shape[-2]) if positions is None else positions


def _frequencies(d: int, base: float, exponent_step: float = 2.0) -> torch.Tensor:
    """``base^(-step * j / d)`` for the pairs ``j = 0 .. d/2 - 1`` (the right step is 2)."""
    return base ** (-exponent_step * torch.arange(d // 2, dtype=torch.float64) / d)


def rope_by_complex_numbers(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0) -> torch.Tensor:
    """RoPE, "rotate half" pairing, as a complex multiplication (float64 inside); the dtype of ``x``."""
    d = x.shape[-1]
    half = d // 2
    z = torch.complex(x[..., :half].double(), x[..., half:].double())                     # (..., L, d/2)
    angles = _positions(x, positions).double()[..., None] * _frequencies(d, base)         # (L, d/2)
    z = z * torch.polar(torch.ones_like(angles), angles)
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


def _interleaved(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Pairs (2j, 2j+1) rotated by ``angles`` (the RoFormer paper's / GPT-J's layout)."""
    z = torch.complex(x[..., 0::2].double(), x[..., 1::2].double()) * torch.polar(torch.ones_like(angles), angles)
    return torch.stack([z.real, z.imag], dim=-1).flatten(-2).to(x.dtype)


def rope_mistakes(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0) -> dict[str, torch.Tensor]:
    """Wrong rotary embeddings of ``x (..., L, d)``."""
    d = x.shape[-1]
    p = _positions(x, positions).double()[..., None]
    half = d // 2
    first, second = x[..., :half], x[..., half:]
    angles = p * _frequencies(d, base)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    feature_angles = (p * base ** (-torch.arange(d, dtype=torch.float64) / d)).to(x.dtype)
    mistakes = {
        "the interleaved pairing (2j, 2j+1): this exercise pairs feature j with feature j + d/2 (rotate half)":
            _interleaved(x, angles),
        "angles with the exponent j/d instead of 2j/d (theta_j = base^(-2j/d) for pair j = 0 .. d/2 - 1)":
            rope_by_complex_numbers(x, positions, base ** 0.5),
        "the rotation in the wrong direction (rotate_half(x) is cat(-second half, first half))":
            rope_by_complex_numbers(x, -_positions(x, positions), base),
        "x * cos + x * sin: the sin term multiplies rotate_half(x), not x (a rotation keeps the norm)":
            x * torch.cat([cos, cos], -1) + x * torch.cat([sin, sin], -1),
        "one angle per feature, base^(-k/d) for k = 0 .. d-1, instead of one per pair j (the same angle for j and j + d/2)":
            x * torch.cos(feature_angles) + torch.cat([-second, first], -1) * torch.sin(feature_angles),
        "the angles of pair j applied to features (2j, 2j+1) of cos/sin, i.e. cos/sin interleaved with rotate half":
            x * cos.repeat_interleave(2, -1) + torch.cat([-second, first], -1) * sin.repeat_interleave(2, -1),
    }
    if positions is not None:
        mistakes["the positions argument ignored (arange(L) used instead)"] = rope_by_complex_numbers(x, None, base)
    if base != 10000.0:
        mistakes["the base argument ignored (10000 used instead)"] = rope_by_complex_numbers(x, positions, 10000.0)
    return mistakes


def outcome_on_odd_d(apply_rope, x: torch.Tensor | None = None) -> str:
    """What ``apply_rope`` does with an odd feature dimension: ``"raised ValueError"`` is what the exercise asks.

    ``NotImplementedError`` (the exercise not yet answered) passes through.
    """
    x = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(0)) if x is None else x
    try:
        result = apply_rope(x)
    except NotImplementedError:
        raise
    except Exception as error:  # raising is what the exercise asks for; which error is the question
        return f"raised {type(error).__name__}"
    shape = f" of shape {tuple(result.shape)}" if isinstance(result, torch.Tensor) else ""
    return f"returned a {type(result).__name__}{shape}"
