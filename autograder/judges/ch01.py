"""Chapter 01 (attention): judges. Oracles: ``torch.softmax``, the definition of a causal mask,
``F.scaled_dot_product_attention`` and torch's autograd through it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tfs.grader.collectors import ch01 as inputs
from tfs.grader.judging import check_close, expect, results
from tfs.teaching.checks import check_shape
from tfs.teaching.probes import attention_mistakes, causal_mask_mistakes, overflow_mistakes, softmax_mistakes




def pair(result, name: str):
    expect(type(result) is list and len(result) == 2, name, "expected a tuple of 2 values (output, weights).",
           hint="return weights @ v, weights")
    return result


def softmax_values(data):
    for (x, dim), received in zip(inputs.softmax_values_inputs(), results(data, 9, "softmax_stable")):
        check_close(received, torch.softmax(x, dim=dim), f"softmax_stable(x of shape {tuple(x.shape)}, dim={dim})",
                    op="softmax", mistakes=softmax_mistakes(x, dim=dim), hint="use the `dim` argument; each slice sums to 1.")
    return "✓ softmax_stable: the grader's tests pass (every dimension of 1-, 2- and 3-D inputs)"


def softmax_large_logits(data):
    for x, received in zip(inputs.softmax_large_logits_inputs(), results(data, 4, "softmax_stable")):
        check_close(received, torch.softmax(x, dim=-1), f"softmax_stable(logits up to {x.abs().nan_to_num(0, 0, 0).max().item():.3g}, "
                    f"{x.dtype})", op="softmax", mistakes=overflow_mistakes(x),
                    hint="subtract the maximum before torch.exp; -inf (a masked position) must give exactly 0.")
    return "✓ softmax_stable: the grader's tests pass (±1000, ±3e38, -inf, float64)"


def softmax_temperature(data):
    case = inputs.softmax_temperature_inputs()
    expect(type(data) is dict and set(data) == {"values", "grad"}, "softmax_stable", "the grader's calls returned no result.")
    for (x, t), received in zip(case["cases"], results(data["values"], 3, "softmax_stable")):
        check_close(received, torch.softmax(x / t, dim=-1), f"softmax_stable(x, temperature={t})", op="softmax",
                    mistakes=softmax_mistakes(x, dim=-1, temperature=t), hint="divide the logits by the temperature.")
    x = case["grad_x"].clone().requires_grad_(True)
    (torch.softmax(x / case["grad_temperature"], dim=-1) * case["grad_weights"]).sum().backward()
    expect(isinstance(data["grad"], torch.Tensor), "softmax_stable", "no gradient reached the input.",
           hint="use differentiable torch operations only (no .item(), no .detach()).")
    check_close(data["grad"], x.grad, "the gradient of softmax_stable(x, temperature=0.7)", op="softmax",
                hint="use differentiable torch operations only (no .item(), no in-place on x).")
    return "✓ softmax_stable: the grader's tests pass (temperatures 2, 0.5, 0.01 and gradients)"


def causal_mask_values(data):
    for n, received in zip(inputs.CAUSAL_SIZES, results(data, len(inputs.CAUSAL_SIZES), "causal_mask")):
        positions = torch.arange(n)
        check_close(received, positions[None, :] <= positions[:, None], f"causal_mask({n})", op="exact",
                    check_dtype=False, mistakes=causal_mask_mistakes(n),
                    hint="row i is query i; it may see keys 0..i, itself included.")
    return "✓ causal_mask: the grader's tests pass (sizes 1, 2, 4, 7, 64)"


def causal_mask_dtype(data):
    expect(type(data) is dict and {"mask3", "mask1", "shape5", "device5"} <= set(data), "causal_mask", "no result.")
    check_shape(data["mask3"], (3, 3), "causal_mask(3)")
    expect(data["mask3"].dtype == torch.bool, "causal_mask(3)", f"expected dtype torch.bool, received {data['mask3'].dtype}.",
           hint="build it from torch.ones(..., dtype=torch.bool), or compare two aranges.")
    expect(data["device5"] == "meta", "causal_mask(5, device='meta')",
           f"expected the mask on the device asked for, received one on {data['device5']}.",
           hint="pass device=device to the function that creates the tensor.")
    expect(data["shape5"] == [5, 5], "causal_mask(5, device='meta')", f"expected shape (5, 5), received {data['shape5']}.")
    expect(isinstance(data["mask1"], torch.Tensor) and data["mask1"].tolist() == [[True]], "causal_mask(1)",
           "a single token must see itself: expected [[True]].")
    return "✓ causal_mask: the grader's tests pass (bool dtype, device, a single token)"


def attention_shapes(data):
    for (q, k, v), result in zip(inputs.attention_shapes_inputs(), results(data, 3, "scaled_dot_product_attention")):
        name = f"scaled_dot_product_attention(q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)})"
        output, weights = pair(result, name)
        check_shape(output, (*q.shape[:-1], v.shape[-1]), f"{name}: output", hint="output is (..., L_q, d_v).")
        check_shape(weights, (*q.shape[:-1], k.shape[-2]), f"{name}: weights", hint="weights are (..., L_q, L_k).")
    return "✓ scaled_dot_product_attention: the grader's tests pass (shapes with and without a batch, length 1)"


def attention_values(data):
    for (q, k, v), result in zip(inputs.attention_values_inputs(), results(data, 4, "scaled_dot_product_attention")):
        name = f"scaled_dot_product_attention(q {tuple(q.shape)}, {q.dtype})"
        output, weights = pair(result, name)
        check_close(output, F.scaled_dot_product_attention(q, k, v), f"{name}: output", op="attention",
                    mistakes=attention_mistakes(q, k, v), hint="scores = q @ k.transpose(-2, -1) / sqrt(d_k).")
        expected_weights = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1]), dim=-1)
        check_close(weights, expected_weights, f"{name}: weights", op="attention",
                    mistakes=attention_mistakes(q, k, v, which="weights"), hint="softmax over the keys: dim=-1.")
    return "✓ scaled_dot_product_attention: the grader's tests pass (3-D, 4-D float64, very large scores, a (4, 4, 4, 4) cube)"


def _reference(q, k, v, mask):
    """F.scaled_dot_product_attention, with queries that may see no key given zeros (the course's rule)."""
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    seen = mask.expand(*q.shape[:-1], k.shape[-2]).any(-1, keepdim=True)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.where(seen, output, 0.0), torch.where(seen, weights, 0.0)


def attention_masks(data):
    names = ["a causal mask", "a key padding mask", "a fully masked query", "a fully masked query, batched",
             "a (batch, 1, L, L) mask over heads"]
    for name, (q, k, v, mask), result in zip(names, inputs.attention_masks_inputs(),
                                             results(data, 5, "scaled_dot_product_attention")):
        output, weights = pair(result, f"scaled_dot_product_attention with {name}")
        expected_output, expected_weights = _reference(q, k, v, mask)
        expect(isinstance(output, torch.Tensor) and not torch.isnan(output).any(), f"output with {name}",
               "contains NaN or is not a tensor.",
               hint="a fully masked row is softmax of all -inf = 0/0; replace it with zeros (nan_to_num).")
        check_close(output, expected_output, f"output with {name}", op="attention",
                    mistakes=attention_mistakes(q, k, v, mask), hint="masked_fill the scores with -inf where mask is False, "
                    "before the softmax; a query that sees no key gets zeros.")
        check_close(weights, expected_weights, f"weights with {name}", op="attention",
                    hint="masked positions must get exactly zero weight.")
    return "✓ scaled_dot_product_attention: the grader's tests pass (causal, padding, fully masked, per-head masks)"


def attention_gradients(data):
    for case, grads in zip(inputs.attention_gradients_inputs(), results(data, 2, "scaled_dot_product_attention")):
        q, k, v = (t.clone().requires_grad_(True) for t in case["qkv"])
        output = F.scaled_dot_product_attention(q, k, v, attn_mask=case["mask"])
        (output * case["weights"]).sum().backward()
        expect(type(grads) is list and len(grads) == 3, "gradients", "no result.")
        for name, received, expected in zip("qkv", grads, (q.grad, k.grad, v.grad)):
            expect(isinstance(received, torch.Tensor) and bool(torch.isfinite(received).all()), "gradients",
                   f"no finite gradient reached {name} ({tuple(expected.shape)}, {expected.dtype}).",
                   hint="avoid .detach(), .item() and numpy inside the function; a nan anywhere also poisons the gradients.")
            check_close(received, expected, f"the gradient with respect to {name} ({expected.dtype})", op="attention",
                        hint="use differentiable torch operations only.")
    return "✓ scaled_dot_product_attention: the grader's tests pass (gradients to q, k and v, float32 and float64)"
