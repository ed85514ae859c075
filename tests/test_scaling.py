"""Chapter 09's shipped scaling table: the script still reproduces it, and the power-law fit recovers known exponents."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from course import REPO
from tfs.scaling import fit_power_law, load_scaling


def test_power_law_fit_recovers_a_known_exponent():
    params = [1e3, 1e4, 1e5, 1e6]
    alpha, n_c = fit_power_law(params, [(8.8e13 / n) ** 0.076 for n in params])
    assert alpha == pytest.approx(0.076, rel=1e-9) and n_c == pytest.approx(8.8e13, rel=1e-6)
    with pytest.raises(ValueError):
        fit_power_law([1.0], [2.0])


def test_shipped_table_is_complete_and_loss_falls_with_size():
    table = load_scaling()
    rows = table["rows"]
    assert [r["name"] for r in rows] == [f"s{i}" for i in range(1, 8)]
    assert table["tokens_per_model"] == table["steps"] * table["batch"] * table["block"]
    sizes = [r["non_embedding_params"] for r in rows]
    assert sizes == sorted(sizes)
    assert all(math.isfinite(r["val_loss"]) for r in rows)
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]


def test_script_reproduces_the_smallest_models_recorded_training_curve():
    """Rerun size s1 for its first 50 steps (same seed, data, batches and schedule): its recorded losses come back."""
    spec = importlib.util.spec_from_file_location("train_scaling", REPO / "scripts" / "train_scaling.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    recorded = next(r for r in load_scaling()["rows"] if r["name"] == "s1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script ran
    try:
        train, val = script.token_streams()
        rerun = script.train_one("s1", train, val, 1024, stop=2 * script.CURVE_EVERY)
    finally:
        torch.set_num_threads(threads)
    assert rerun["train_curve"] == pytest.approx(recorded["train_curve"][:2], abs=2e-3)
