"""Chapter 00 (welcome): collectors of the hidden tests. Inputs come from the generators below."""

from __future__ import annotations

import torch

from tfs.grader.judging import generator


def standardize_inputs() -> list[tuple[torch.Tensor, float]]:
    """``[(x, eps), ...]``: small data, then a float64 batch with another eps, a constant column (no eps: 0 / 0) and
    one that barely varies (where eps inside or outside the square root differ)."""
    visible = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 60.0]])
    hidden = torch.randn(50, 7, dtype=torch.float64, generator=generator(5)) * 3 + 10
    hidden[:, 5] = 4.0
    hidden[:, 6] = 10 + hidden[:, 6] * 1e-4
    return [(visible, 1e-5), (hidden, 1e-3)]


def standardize(standardize):
    return [standardize(x, eps=eps) for x, eps in standardize_inputs()]


def batched_scores_inputs() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(queries, keys), ...]``: batch = n = m = d (where a wrong transpose runs too), the visible shapes, one
    query, a batch of 4 with two keys."""
    g = generator(13)
    return [(torch.randn(b, n, d, generator=g), torch.randn(b, m, d, generator=g))
            for b, n, m, d in ((3, 3, 3, 3), (2, 3, 5, 4), (1, 1, 6, 9), (4, 7, 2, 3))]


def batched_scores(batched_scores):
    return [batched_scores(queries, keys) for queries, keys in batched_scores_inputs()]


def fit_line_inputs() -> list[tuple[torch.Tensor, torch.Tensor, int, float]]:
    """``[(x, y, steps, lr), ...]``: a noisy line (as in the notebook), an exact line, one step."""
    x = torch.linspace(-2, 2, 100)
    y = 3.0 * x - 1.0 + 0.3 * torch.randn(100, generator=generator(7))
    x_exact = torch.linspace(0, 1, 50)
    y_exact = -2.0 * x_exact + 0.5
    return [(x, y, 200, 0.1), (x_exact, y_exact, 3000, 0.5), (x_exact, y_exact, 1, 0.5)]


def fit_line(fit_line):
    results = []
    for x, y, steps, lr in fit_line_inputs():
        result = fit_line(x, y, steps=steps, lr=lr)
        results.append(list(result) if isinstance(result, tuple) else result)
    return results
