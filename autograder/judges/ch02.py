"""Chapter 02 (multi-head attention): judges. Oracles: chunks of the features stacked per head,
``torch.cat`` of the heads, and ``nn.MultiheadAttention`` loaded with the learner's weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tfs.grader.collectors import ch02 as inputs
from tfs.convert import torch_mha_from_state
from tfs.grader.judging import check_close, expect, results
from tfs.teaching.checks import check_shape

ATOL = 1e-6  # float64 against nn.MultiheadAttention, as in the visible tests




def fields(data, keys, name: str) -> dict:
    expect(type(data) is dict and set(keys) <= set(data), name, "the grader's calls returned no result.")
    return data


def pair(result, name: str):
    expect(type(result) is list and len(result) == 2, name, "expected a tuple of 2 values (output, weights).",
           hint="return the output and the attention weights of every head.")
    return result


def split_oracle(x: torch.Tensor, h: int) -> torch.Tensor:
    return torch.stack(x.split(x.shape[-1] // h, dim=-1), dim=1)


def torch_mha(parameters: dict, d_model: int, n_heads: int, dtype: torch.dtype) -> nn.MultiheadAttention:
    """nn.MultiheadAttention with the learner's projections: in_proj = qkv, out_proj = out."""
    shapes = {"qkv.weight": (3 * d_model, d_model), "qkv.bias": (3 * d_model,), "out.weight": (d_model, d_model),
              "out.bias": (d_model,)}
    for name, shape in shapes.items():
        expect(isinstance(parameters.get(name), torch.Tensor), f"MultiHeadAttention({d_model}, {n_heads}).{name}",
               "missing: the exercise names the layers self.qkv and self.out (nn.Linear with a bias).")
        check_shape(parameters[name], shape, f"MultiHeadAttention({d_model}, {n_heads}).{name}")
    return torch_mha_from_state({name: parameters[name].to(dtype) for name in shapes}, n_heads)


def mha_mistakes(parameters: dict, n_heads: int, x: torch.Tensor, mask=None) -> dict:
    """Known wrong outputs (computed on purpose, for the diagnosis only)."""
    batch, length, d = x.shape
    h = n_heads
    q, k, v = F.linear(x, parameters["qkv.weight"], parameters["qkv.bias"]).chunk(3, dim=-1)

    def run(split, scale, project=True):
        qh, kh, vh = split(q), split(k), split(v)
        s = qh @ kh.transpose(-2, -1) * scale
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        o = (s.softmax(-1) @ vh).transpose(1, 2).reshape(batch, length, d)
        return F.linear(o, parameters["out.weight"], parameters["out.bias"]) if project else o

    right = lambda t: t.reshape(batch, length, h, d // h).transpose(1, 2)  # noqa: E731
    return {"heads split by reshape(batch, h, L, d_head) without the transpose":
            run(lambda t: t.reshape(batch, h, length, d // h), (d // h) ** -0.5),
            "scores scaled by √d_model instead of √d_head": run(right, d ** -0.5),
            "the output projection self.out left out": run(right, (d // h) ** -0.5, project=False)}


def split_heads_shapes(data):
    for (x, h), received in zip(inputs.split_heads_shapes_inputs(), results(data, 4, "split_heads")):
        d = x.shape[-1]
        check_shape(received, (x.shape[0], h, x.shape[1], d // h), f"split_heads(x {tuple(x.shape)}, n_heads={h})",
                    hint="(batch, L, d_model) -> (batch, n_heads, L, d_model // n_heads).")
    return "✓ split_heads: the grader's tests pass (shapes, one token, d_head = 1)"


def split_heads_values(data):
    case = inputs.split_heads_values_inputs()
    data = fields(data, ("values", "grad"), "split_heads")
    for (x, h), received in zip(case["cases"], results(data["values"], 6, "split_heads")):
        b, length, d = x.shape
        check_close(received, split_oracle(x, h), f"split_heads(x {tuple(x.shape)}, {h})", op="exact",
                    mistakes={"reshape(batch, h, L, d_head) without the transpose": x.reshape(b, h, length, d // h),
                              "the heads taken from interleaved features (reshape(batch, L, d_head, h))":
                              x.reshape(b, length, d // h, h).permute(0, 3, 1, 2)},
                    hint="reshape to (batch, L, n_heads, d_head), then transpose(1, 2).")
    x = case["grad_x"].clone().requires_grad_(True)
    (split_oracle(x, 2) * case["grad_weights"]).sum().backward()
    expect(isinstance(data["grad"], torch.Tensor), "split_heads", "no gradient flows back.", hint="use torch operations only.")
    check_close(data["grad"], x.grad, "the gradient through split_heads", op="exact")
    return "✓ split_heads: the grader's tests pass (values for 1 to 16 heads, gradients)"


def merge_heads(data):
    case = inputs.merge_heads_inputs()
    data = fields(data, ("values", "roundtrip"), "merge_heads")
    for heads, received in zip(case["heads"], results(data["values"], 4, "merge_heads")):
        b, h, length, d = heads.shape
        check_close(received, torch.cat(heads.unbind(dim=1), dim=-1), f"merge_heads(x {tuple(heads.shape)})", op="exact",
                    mistakes={"reshape(batch, L, d_model) without transposing the heads back first":
                              heads.reshape(b, length, h * d)},
                    hint="transpose(1, 2) to (batch, L, n_heads, d_head), then reshape(batch, L, n_heads * d_head).")
    check_close(data["roundtrip"], case["roundtrip"], "merge_heads(split_heads(x, 5))", op="exact",
                hint="merge_heads must undo split_heads.")
    return "✓ merge_heads: the grader's tests pass (four shapes, the round trip)"


def mha_shapes(data):
    data = fields(data, ("parameters", "kinds", "result", "lone"), "MultiHeadAttention")
    expect(data["kinds"] == {"qkv": "Linear", "out": "Linear"}, "MultiHeadAttention(12, 3)",
           f"expected self.qkv and self.out to be nn.Linear, received {data['kinds']}.",
           hint="self.qkv = nn.Linear(d_model, 3 * d_model); self.out = nn.Linear(d_model, d_model)")
    expected = {"qkv.weight": [36, 12], "qkv.bias": [36], "out.weight": [12, 12], "out.bias": [12]}
    expect(data["parameters"] == expected, "MultiHeadAttention(12, 3) parameters",
           f"expected {expected} (4·d² + 4·d = 624 numbers), received {data['parameters']}.",
           hint="one fused projection for Q, K and V, one output projection; no other parameters.")
    output, weights = pair(data["result"], "MultiHeadAttention.forward")
    check_shape(output, (2, 5, 12), "output", hint="merge the heads, then apply self.out: (batch, L, d_model).")
    check_shape(weights, (2, 3, 5, 5), "weights", hint="one (L, L) matrix per head: (batch, n_heads, L, L).")
    output, weights = pair(data["lone"], "MultiHeadAttention(8, 8) on one token")
    check_shape(output, (1, 1, 8), "output for one token")
    check_close(weights, torch.ones(1, 8, 1, 1), "weights for one token", op="softmax", hint="a lone token attends to itself.")
    return "✓ MultiHeadAttention: the grader's tests pass (layers, parameter count, shapes, one token)"


def mha_parity(data):
    case = inputs.mha_parity_inputs()
    runs = results(data, len(inputs.MHA_PARITY_CASES) + 1, "MultiHeadAttention")
    for (b, length, d, h), x, run in zip(inputs.MHA_PARITY_CASES, case["float64"], runs):
        run = fields(run, ("parameters", "result"), "MultiHeadAttention")
        reference = torch_mha(run["parameters"], d, h, torch.float64)
        output, weights = pair(run["result"], f"MultiHeadAttention({d}, {h})")
        ref_output, ref_weights = reference(x, x, x)
        name = f"MultiHeadAttention({d}, {h}) on x {tuple(x.shape)}"
        check_close(output, ref_output.detach(), f"{name}: output vs nn.MultiheadAttention", rtol=0, atol=ATOL,
                    mistakes=mha_mistakes(run["parameters"], h, x),
                    hint="q, k, v = self.qkv(x).chunk(3, dim=-1); split, attend, merge, then self.out.")
        check_shape(weights, (b, h, length, length), f"{name}: weights")
        check_close(weights.mean(dim=1), ref_weights.detach(), f"{name}: weights averaged over heads", rtol=0, atol=ATOL)
    run = fields(runs[-1], ("parameters", "result"), "MultiHeadAttention")
    x = case["float32"]
    output, _ = pair(run["result"], "MultiHeadAttention(16, 4) in float32")
    reference = torch_mha(run["parameters"], 16, 4, torch.float32)
    check_close(output, reference(x, x, x)[0].detach(), "MultiHeadAttention(16, 4): output in float32", op="attention")
    return "✓ MultiHeadAttention: the grader's tests pass (parity with nn.MultiheadAttention, five shapes, float32)"


def mha_masks(data):
    case = inputs.mha_masks_inputs()
    data = fields(data, ("parameters", "results", "one"), "MultiHeadAttention with masks")
    reference = torch_mha(data["parameters"], 16, 4, torch.float64)
    x, causal, keep = case["x"], case["causal"], case["keep"]
    both = causal & keep[:, None, None, :]
    references = [dict(attn_mask=~causal), dict(key_padding_mask=~keep), dict(attn_mask=~causal, key_padding_mask=~keep)]
    masks = [causal, keep[:, None, None, :], both]
    names = ["a causal mask", "a key-padding mask", "causal and padding masks together"]
    for name, mask, options, result in zip(names, masks, references, results(data["results"], 3, "MultiHeadAttention")):
        output, weights = pair(result, f"MultiHeadAttention with {name}")
        ref_output, ref_weights = reference(x, x, x, **options)
        check_close(output, ref_output.detach(), f"output with {name}", rtol=0, atol=ATOL,
                    mistakes=mha_mistakes(data["parameters"], 4, x, mask), hint="pass the mask on to the attention.")
        check_shape(weights, (3, 4, 6, 6), f"weights with {name}")
        check_close(weights.mean(dim=1), ref_weights.detach(), f"weights with {name}", rtol=0, atol=ATOL)
        expect(bool((weights[~mask.expand_as(weights)] == 0).all()), f"weights with {name}",
               "masked positions must get exactly zero weight.")
    output, _ = pair(data["one"], "MultiHeadAttention on length 1 with a mask")
    x1 = case["x1"]
    check_close(output, reference(x1, x1, x1)[0].detach(), "output for length 1 with a mask", rtol=0, atol=ATOL)
    return "✓ MultiHeadAttention: the grader's tests pass (causal, padding and both masks, length 1)"


def mha_gradients(data):
    case = inputs.mha_gradients_inputs()
    data = fields(data, ("small", "parameters", "grads", "x_grad"), "MultiHeadAttention gradients")
    expect(type(data["small"]) is dict and data["small"], "gradients", "the module has no parameters.")
    for name, grad in data["small"].items():
        expect(isinstance(grad, torch.Tensor) and bool(torch.isfinite(grad).all()) and grad.abs().sum() > 0,
               "gradients", f"no gradient reached {name}.", hint="avoid .detach(), .item() and numpy in forward.")
    reference = torch_mha(data["parameters"], 12, 3, torch.float64)
    x = case["x12"].clone().requires_grad_(True)
    reference(x, x, x, attn_mask=~torch.ones(5, 5, dtype=torch.bool).tril())[0].pow(2).sum().backward()
    expected = {"qkv.weight": reference.in_proj_weight.grad, "qkv.bias": reference.in_proj_bias.grad,
                "out.weight": reference.out_proj.weight.grad, "out.bias": reference.out_proj.bias.grad}
    for name, grad in expected.items():
        check_close(data["grads"].get(name) if type(data["grads"]) is dict else None, grad, f"gradient of {name}",
                    rtol=0, atol=ATOL, hint="use differentiable torch operations only.")
    check_close(data["x_grad"], x.grad, "gradient of the input", rtol=0, atol=ATOL)
    return "✓ MultiHeadAttention: the grader's tests pass (gradients match nn.MultiheadAttention's)"


def raised(result, name: str) -> None:
    expect(type(result) is not str, name, f"your code raised {result}")


def mha_context_shapes(data):
    data = fields(data, ("results", "no_weights", "self_no_weights", "n_parameters"), "MultiHeadAttention with context")
    (first, single) = results(data["results"], 2, "MultiHeadAttention with context")
    raised(first, "mha(x (2, 4, 12), context=context (2, 7, 12))")
    output, weights = pair(first, "mha(x (2, 4, 12), context=context (2, 7, 12))")
    check_shape(output, (2, 4, 12), "cross-attention output", hint="one output per query: (batch, L_q, d_model).")
    check_shape(weights, (2, 3, 4, 7), "cross-attention weights", hint="keys from context: (batch, n_heads, L_q, L_k).")
    expect(data["n_parameters"] == 4 * 144 + 48, "MultiHeadAttention with context", "the module's parameters changed.",
           hint="use the rows of self.qkv.weight and self.out; create no new layers.")
    raised(single, "mha with one query and one key")
    output, weights = pair(single, "mha with one query and one key")
    check_shape(output, (1, 1, 12), "cross-attention with one query and one key")
    check_close(weights, torch.ones(1, 3, 1, 1), "weights with a single key", op="softmax")
    for key, name in (("no_weights", "mha(x, context=context, need_weights=False)"),
                      ("self_no_weights", "mha(x, need_weights=False)")):
        raised(data[key], name)
        output, weights = pair(data[key], name)
        expect(weights is None, name, f"expected None for the weights, received {type(weights).__name__}.",
               hint="need_weights=False returns (output, None).")
    check_close(data["no_weights"][0], first[0], "output with need_weights=False", op="exact",
                hint="need_weights changes only what is returned.")
    return "✓ MultiHeadAttention with context: the grader's tests pass (shapes, one key, need_weights, no new parameters)"


def mha_context_parity(data):
    case = inputs.mha_context_parity_inputs()
    data = fields(data, ("parameters", "results", "padded", "same", "context_grad"), "MultiHeadAttention with context")
    reference = torch_mha(data["parameters"], 16, 4, torch.float64)
    for (b, lq, lk), (x, context), result in zip(inputs.CROSS_CASES, case["pairs"],
                                                 results(data["results"], len(inputs.CROSS_CASES), "cross-attention")):
        name = f"mha(x, context=context), batch {b}, L_q {lq}, L_k {lk}"
        raised(result, name)
        output, weights = pair(result, name)
        ref_output, ref_weights = reference(x, context, context)
        self_output = reference(x, x, x)[0].detach()
        check_close(output, ref_output.detach(), f"cross-attention output, batch {b}, L_q {lq}, L_k {lk}", rtol=0, atol=ATOL,
                    mistakes={"keys and values projected from x instead of context (that is self-attention)": self_output}
                    if output.shape == self_output.shape else None,
                    hint="queries from x with the first d_model rows of qkv.weight; keys and values from context with the "
                         "other 2·d_model rows.")
        check_shape(weights, (b, 4, lq, lk), f"cross-attention weights, batch {b}, L_q {lq}, L_k {lk}")
        check_close(weights.mean(dim=1), ref_weights.detach(), f"cross-attention weights, batch {b}", rtol=0, atol=ATOL)
    x, context = case["pairs"][0]
    raised(data["padded"], "mha(x, context=context, mask=...) with a padded context")
    output, weights = pair(data["padded"], "cross-attention with a padded context")
    ref_output, ref_weights = reference(x, context, context, key_padding_mask=~case["keep"])
    check_close(output, ref_output.detach(), "cross-attention output with a padded context", rtol=0, atol=ATOL,
                hint="pass the mask on to the attention of every head.")
    check_close(weights.mean(dim=1), ref_weights.detach(), "cross-attention weights with a padded context", rtol=0, atol=ATOL)
    same = case["same"]
    cross_same, self_same = results(data["same"], 2, "mha(x, context=x)")
    check_close(cross_same, reference(same, same, same)[0].detach(), "mha(x, context=x)", rtol=0, atol=ATOL,
                hint="with context = x it must equal self-attention.")
    context = case["grad_context"].clone().requires_grad_(True)
    reference(case["grad_x"], context, context)[0].sum().backward()
    expect(isinstance(data["context_grad"], torch.Tensor), "MultiHeadAttention with context", "no gradient reaches context.")
    check_close(data["context_grad"], context.grad, "gradient with respect to context", rtol=0, atol=ATOL)
    return "✓ MultiHeadAttention with context: the grader's tests pass (parity with nn.MultiheadAttention, padding, gradients)"
