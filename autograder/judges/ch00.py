"""Chapter 00 (welcome): judges. Oracles: ``F.batch_norm``, dot products one at a time, least squares."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tfs.grader.collectors.ch00 import batched_scores_inputs, fit_line_inputs, standardize_inputs
from tfs.grader.judging import check_close, expect, results
from tfs.teaching.checks import check_shape
from tfs.teaching.probes_welcome import (batched_scores_mistakes, first_loss_mistakes, fit_line_mistakes,
                                         standardize_mistakes)




def standardize(data):
    for (x, eps), received in zip(standardize_inputs(), results(data, 2, "standardize")):
        expected = F.batch_norm(x, None, None, training=True, eps=eps)
        check_close(received, expected, f"standardize(x of shape {tuple(x.shape)}, {x.dtype}, eps={eps})", op="matmul",
                    mistakes=standardize_mistakes(x, eps),
                    hint="per column: dim=0; population variance: correction=0; eps inside the square root; keep the dtype.")
    return "✓ standardize: the grader's tests pass (two batches, float32 and float64)"


def batched_scores(data):
    for (queries, keys), received in zip(batched_scores_inputs(), results(data, 4, "batched_scores")):
        name = f"batched_scores(queries {tuple(queries.shape)}, keys {tuple(keys.shape)})"
        expected = torch.tensor([[[torch.dot(q, k).item() for k in ks] for q in qs] for qs, ks in zip(queries, keys)])
        check_shape(received, expected.shape, name,
                    hint="(batch, n, d) @ (batch, d, m) -> (batch, n, m): transpose the keys' last two dimensions.")
        check_close(received, expected, name, op="matmul", mistakes=batched_scores_mistakes(queries, keys))
    return "✓ batched_scores: the grader's tests pass (four shapes)"


def _least_squares(x: torch.Tensor, y: torch.Tensor) -> list[float]:
    design = torch.stack([x.double(), torch.ones_like(x, dtype=torch.float64)], dim=1)
    return torch.linalg.lstsq(design, y.double()[:, None]).solution.squeeze(1).tolist()


def fit_line(data):
    for (x, y, steps, lr), result in zip(fit_line_inputs(), results(data, 3, "fit_line")):
        name = f"fit_line(x, y, steps={steps}, lr={lr})"
        expect(type(result) is list and len(result) == 3, name, "expected three values: w, b, losses.",
               hint="return w.item(), b.item(), losses")
        w, b, losses = result
        expect(type(w) is float and type(b) is float, f"{name}: (w, b)",
               f"expected two Python floats, received {type(w).__name__} and {type(b).__name__}.", hint="use w.item().")
        expect(type(losses) is list and len(losses) == steps and all(type(v) is float for v in losses),
               f"{name}: losses", f"expected a list of {steps} Python floats.", hint="append loss.item() once per step.")
        check_close(torch.tensor(losses[0], dtype=torch.float64), (y.double() ** 2).mean(),
                    f"{name}: losses[0], the loss at w = b = 0", atol=1e-4, rtol=0,
                    mistakes=first_loss_mistakes(x.double(), y.double()),
                    hint="record the loss before the update, and start from zeros.")
        if steps > 1:
            expect(losses[-1] < losses[0], f"{name}: losses", "the loss did not go down.",
                   hint="step against the gradient: w -= lr * w.grad.")
            check_close(torch.tensor([w, b]), torch.tensor(_least_squares(x, y), dtype=torch.float32), f"{name}: (w, b)",
                        atol=1e-3, rtol=0, mistakes=fit_line_mistakes(x, y, steps, lr),
                        hint="each step: the loss, backward(), both updates under torch.no_grad(), then zero both gradients.")
        if steps == 3000:
            expect(all(later <= earlier + 1e-9 for earlier, later in zip(losses, losses[1:])), f"{name}: losses",
                   "with a small enough step the loss must never go up on a straight line.")
    return "✓ fit_line: the grader's tests pass (a noisy line, an exact line, a single step)"
