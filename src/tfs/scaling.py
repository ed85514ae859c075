"""Chapter 09, Part 2: the scaling experiment's shipped results and the power-law fit.

``scripts/train_scaling.py`` trains a family of tiny GPTs on the same tokens and writes
``src/tfs/assets/checkpoints/scaling/scaling.json``; :func:`load_scaling` reads it (checksums verified),
:func:`fit_power_law` fits ``L(N) = (N_c / N) ** alpha`` by least squares on ``log L = alpha log N_c - alpha log N``,
:func:`fit_scaling_law` does it on the table's rows with Kaplan et al.'s count, the non-embedding parameters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

__all__ = ["KAPLAN_ALPHA_N", "fit_power_law", "fit_scaling_law", "load_scaling", "scaling_path"]

KAPLAN_ALPHA_N = 0.076  # Kaplan et al. 2020, L(N) = (N_c / N)^alpha_N, N = non-embedding parameters


def scaling_path(verify: bool = True):
    """The folder of the shipped scaling results (``scaling.json``, ``README.md``, ``SHA256SUMS``)."""
    from tfs.data import _checkpoint

    return _checkpoint("scaling", "python scripts/train_scaling.py", verify)


def load_scaling() -> dict:
    """The shipped ``scaling.json``: the run's settings and one row per model size."""
    return json.loads((scaling_path() / "scaling.json").read_text())


def fit_power_law(params: Sequence[float], losses: Sequence[float]) -> tuple[float, float]:
    """``(alpha, N_c)`` of ``L = (N_c / N) ** alpha``: a least-squares line through ``(log N, log L)``."""
    if len(params) != len(losses) or len(params) < 2:
        raise ValueError("fit_power_law needs at least two (parameters, loss) pairs of equal length.")
    xs, ys = [math.log(n) for n in params], [math.log(v) for v in losses]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    alpha = -slope
    intercept = my - slope * mx            # log L = intercept - alpha log N = alpha (log N_c - log N)
    return alpha, math.exp(intercept / alpha) if alpha else math.inf


def fit_scaling_law(rows: Sequence[dict], losses: Sequence[float]) -> tuple[float, float]:
    """``(alpha, N_c)`` of ``L(N) = (N_c / N) ** alpha`` for the scaling table's ``rows`` (dicts with
    ``non_embedding_params``) and one loss per row: :func:`fit_power_law` with ``N`` the non-embedding parameters."""
    return fit_power_law([row["non_embedding_params"] for row in rows], losses)
