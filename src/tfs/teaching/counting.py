"""Checks for chapter 03's dropout and parameter-counting exercises, against analytic results and ``torch.nn``.

Dropout's output is random, so it is judged by what must hold for every draw (kept values equal to
``x / (1 - p)``, eval mode the identity) and by statistics with a bound of 6 standard deviations (the
fraction dropped, the mean), which a correct implementation fails about once in 10^9 runs.
Parameter counts are compared with ``sum(p.numel())`` of ``nn.TransformerEncoderLayer`` stacks built on the
``meta`` device (shapes only, no memory), so a model of any size can serve as the oracle.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tfs.teaching.checks import call, check_true

__all__ = ["check_dropout_training", "encoder_parameter_mistakes", "check_encoder_parameters", "torch_encoder_parameters"]


def dropout_statistics(out: torch.Tensor, x: torch.Tensor, p: float) -> dict[str, float]:
    """Fraction of zeros, value of the kept elements relative to ``x``, and the mean, of ``out = dropout(x)``."""
    kept = out != 0
    ratio = (out[kept] / x[kept]) if kept.any() else torch.ones(1)
    return {"dropped": 1.0 - kept.double().mean().item(), "ratio_min": ratio.min().item(), "ratio_max": ratio.max().item(),
            "mean": out.double().mean().item()}


def check_dropout_training(dropout: nn.Module, p: float, n: int = 200_000, name: str | None = None) -> None:
    """``dropout`` (in training mode) on ``n`` copies of 2.0: about ``p`` of them zero, the rest ``2 / (1 - p)``,
    the mean about 2 (inverted dropout preserves the expectation), and a fresh draw on each call."""
    name = name or f"Dropout({p}) in training mode"
    dropout.train()
    x = torch.full((n,), 2.0, dtype=torch.float64)
    out = call(dropout, x, name=name)
    check_true(isinstance(out, torch.Tensor) and out.shape == x.shape and bool(torch.isfinite(out).all()), name,
               "expected a finite tensor of the input's shape.")
    stats = dropout_statistics(out, x, p)
    sigma = math.sqrt(p * (1 - p) / n)
    if abs(stats["dropped"] - (1 - p)) < 6 * sigma and abs(p - 0.5) > 6 * sigma:
        check_true(False, name, f"{stats['dropped']:.3f} of the elements are zero, expected about p = {p}.",
                   hint="p is the probability to DROP an element: keep it when torch.rand(...) >= p.")
    check_true(abs(stats["dropped"] - p) < 6 * sigma, name,
               f"{stats['dropped']:.4f} of the elements are zero, expected {p} ± {6 * sigma:.4f}.",
               hint="drop each element independently with probability p (torch.rand_like(x) >= p keeps it).")
    scale = 1 / (1 - p)
    if math.isclose(stats["ratio_max"], 1.0) and math.isclose(stats["ratio_min"], 1.0):
        check_true(False, name, "the kept elements are unchanged.",
                   hint="inverted dropout divides the kept elements by 1 - p, so that the expected value stays x.")
    if math.isclose(stats["ratio_max"], 1 - p):
        check_true(False, name, "the kept elements are multiplied by 1 - p.",
                   hint="divide by 1 - p in training (inverted dropout); the original paper's multiply-by-(1 - p) "
                        "happened at test time.")
    check_true(math.isclose(stats["ratio_min"], scale, rel_tol=1e-6) and math.isclose(stats["ratio_max"], scale, rel_tol=1e-6),
               name, f"kept elements are {stats['ratio_min']:.4f}·x to {stats['ratio_max']:.4f}·x, expected {scale:.4f}·x.",
               hint="kept elements are x / (1 - p).")
    sigma_mean = 2 * math.sqrt(p / (1 - p) / n)
    check_true(abs(stats["mean"] - 2.0) < 6 * sigma_mean, name,
               f"the mean is {stats['mean']:.4f}, expected 2 ± {6 * sigma_mean:.4f}: dropout must preserve the expectation.")
    again = call(dropout, x[:1000], name=name)
    check_true(not torch.equal(again, call(dropout, x[:1000], name=name)), name, "two calls dropped the same elements.",
               hint="draw a new random mask on every call (no fixed seed inside forward).")


def torch_encoder_parameters(n_layers: int, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False,
                             bias: bool = True) -> int:
    """``sum(p.numel())`` of ``n_layers`` ``nn.TransformerEncoderLayer`` (+ a final ``nn.LayerNorm`` when pre-LN),
    built on the ``meta`` device: any size, no memory."""
    layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, bias=bias, batch_first=True, device="meta")
    per_layer = sum(p.numel() for p in layer.parameters())
    final = sum(p.numel() for p in nn.LayerNorm(d_model, bias=bias, device="meta").parameters()) if norm_first else 0
    return n_layers * per_layer + final


def encoder_parameter_mistakes(n_layers: int, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False,
                               bias: bool = True) -> dict[str, int]:
    """Counts that the usual mistakes give (computed from the sizes, for the diagnosis only)."""
    b = 1 if bias else 0
    attention, ff = 4 * d_model**2 + 4 * b * d_model, 2 * d_model * d_ff + b * (d_ff + d_model)
    norms, final = 2 * (1 + b) * d_model, ((1 + b) * d_model if norm_first else 0)
    right = n_layers * (attention + ff + norms) + final
    mistakes = {
        "the biases left out": n_layers * (4 * d_model**2 + 2 * d_model * d_ff + 2 * d_model) + (d_model if norm_first else 0),
        "the LayerNorms left out": n_layers * (attention + ff),
        "attention counted once per head (the heads share one d × 3d projection; n_heads does not change the count)":
            n_layers * (n_heads * attention + ff + norms) + final,
        "d_ff taken as 4·d_model instead of the argument": n_layers * (attention + 8 * d_model**2 + b * 5 * d_model + norms) + final,
        "the final LayerNorm of a pre-LN stack left out": right - final,
        "a final LayerNorm counted for a post-LN stack (it has none)": right + (0 if norm_first else (1 + b) * d_model),
        "the final LayerNorm counted once per layer": right + (n_layers - 1) * final,
        "the attention weights counted once per head (4·d²·n_heads; the heads share one d × 3d projection)":
            right + n_layers * (n_heads - 1) * 4 * d_model**2,
        "one LayerNorm per block counted (each block has two: norm1 and norm2)": right - n_layers * norms // 2,
    }
    if bias:
        mistakes["the LayerNorms' biases left out (they have weight and bias)"] = right - (2 * n_layers + (1 if norm_first else 0)) * d_model
        mistakes["the output projection's bias left out (qkv has 3·d biases, out.bias d more)"] = right - n_layers * d_model
    else:
        mistakes["the LayerNorms' biases counted although bias=False (they go too)"] = right + 2 * n_layers * d_model
    return {name: value for name, value in mistakes.items() if value != right}


def check_encoder_parameters(encoder_parameters, n_layers: int, d_model: int, n_heads: int, d_ff: int,
                             norm_first: bool = False, bias: bool = True) -> None:
    """``encoder_parameters(...)`` against ``torch_encoder_parameters(...)``, naming the usual mistakes."""
    config = dict(n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_ff=d_ff, norm_first=norm_first, bias=bias)
    label = "encoder_parameters(" + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"
    received = call(encoder_parameters, name=label, **config)
    expected = torch_encoder_parameters(**config)
    check_true(isinstance(received, int) and not isinstance(received, bool), label,
               f"expected an int, received {type(received).__name__}.", hint="return the count as a Python int.")
    if received != expected:
        diagnosis = [name for name, value in encoder_parameter_mistakes(**config).items() if value == received]
        check_true(False, label, f"expected {expected:,d} parameters (nn.TransformerEncoderLayer's count), received "
                   f"{received:,d}." + (f"\n    diagnosis this looks like {', or '.join(diagnosis)}" if diagnosis else ""),
                   hint=None if diagnosis else "per block: attention 4·d² + 4·d, feed-forward 2·d·d_ff + d_ff + d, two "
                   "LayerNorms 2·2·d; then the final LayerNorm of a pre-LN stack.")
