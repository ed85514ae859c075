"""Chapter 02 (multi-head attention): collectors of the hidden tests. Inputs come from the generators below."""

from __future__ import annotations


import torch

from tfs.grader.judging import answer_on_its_own, generator

PARAMETERS = ("qkv.weight", "qkv.bias", "out.weight", "out.bias")


def _randn(*shape, g, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype, generator=g)


def parameters(module) -> dict:
    """The four projections' tensors of the learner's module, by the names the exercise gives them."""
    result = {}
    for name in PARAMETERS:
        value = module
        for part in name.split("."):
            value = getattr(value, part, None)
        result[name] = value.detach() if isinstance(value, torch.Tensor) else None
    return result


# --- split_heads / merge_heads ----------------------------------------------------------------

def split_heads_shapes_inputs():
    g = generator(31)
    return [(_randn(2, 5, 12, g=g), 3), (_randn(2, 5, 12, g=g), 1), (_randn(1, 1, 8, g=g), 4), (_randn(7, 3, 6, g=g), 6)]


def split_heads_shapes(split_heads):
    return [split_heads(x, h) for x, h in split_heads_shapes_inputs()]


def split_heads_values_inputs():
    g = generator(32)
    x64 = _randn(3, 7, 16, g=g, dtype=torch.float64)
    return {"cases": [(_randn(2, 5, 12, g=g), 3)] + [(x64, h) for h in (1, 2, 4, 8, 16)],
            "grad_x": _randn(1, 1, 6, g=g), "grad_weights": _randn(1, 2, 1, 3, g=g)}


def split_heads_values(split_heads):
    inputs = split_heads_values_inputs()
    values = [split_heads(x, h) for x, h in inputs["cases"]]
    x = inputs["grad_x"].clone().requires_grad_(True)
    (split_heads(x, 2) * inputs["grad_weights"]).sum().backward()
    return {"values": values, "grad": x.grad}


def merge_heads_inputs():
    g = generator(33)
    heads = [_randn(2, 3, 5, 4, g=g)] + [_randn(*shape, g=g, dtype=torch.float64) for shape in
                                         [(1, 1, 1, 3), (5, 8, 2, 1), (2, 2, 9, 7)]]
    return {"heads": heads, "roundtrip": _randn(4, 6, 10, g=g)}


def merge_heads(merge_heads):
    inputs = merge_heads_inputs()
    x = inputs["roundtrip"]
    split = torch.stack(x.split(2, dim=-1), dim=1)  # 5 heads of 2 features, cut independently of the learner
    return {"values": [merge_heads(h) for h in inputs["heads"]], "roundtrip": merge_heads(split)}


# --- MultiHeadAttention -----------------------------------------------------------------------

def _reference_split(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    return torch.stack(x.split(x.shape[-1] // n_heads, dim=-1), dim=1)  # (batch, h, L, d_head)


def _reference_merge(x: torch.Tensor) -> torch.Tensor:
    return torch.cat(x.unbind(dim=1), dim=-1)                           # (batch, L, h * d_head)


# while the learner's layer runs, its split_heads and merge_heads are references: a mistake in Exercises 1-2 costs
# their points only, not the layer's
_heads_aside = answer_on_its_own(split_heads=_reference_split, merge_heads=_reference_merge)


def mha_shapes_inputs():
    g = generator(34)
    return {"x": _randn(2, 5, 12, g=g), "one": _randn(1, 1, 8, g=g)}


@_heads_aside
def mha_shapes(MultiHeadAttention):
    inputs = mha_shapes_inputs()
    module = MultiHeadAttention(d_model=12, n_heads=3)
    names = {name: list(p.shape) for name, p in module.named_parameters()}
    kinds = {name: type(getattr(module, name, None)).__name__ for name in ("qkv", "out")}
    result = module(inputs["x"])
    lone = MultiHeadAttention(8, 8)(inputs["one"])
    return {"parameters": names, "kinds": kinds, "result": list(result) if isinstance(result, tuple) else result,
            "lone": list(lone) if isinstance(lone, tuple) else lone}


MHA_PARITY_CASES = [(3, 6, 16, 4), (1, 1, 8, 2), (5, 3, 6, 3), (2, 9, 32, 8), (4, 2, 4, 1)]


def mha_parity_inputs():
    g = generator(35)
    return {"float64": [_randn(b, length, d, g=g, dtype=torch.float64) for b, length, d, _ in MHA_PARITY_CASES],
            "float32": _randn(2, 5, 16, g=g)}


def _run(module, x, mask=None):
    result = module(x) if mask is None else module(x, mask=mask)
    return list(result) if isinstance(result, tuple) else result


@_heads_aside
def mha_parity(MultiHeadAttention):
    inputs = mha_parity_inputs()
    results = []
    for (_, _, d, h), x in zip(MHA_PARITY_CASES, inputs["float64"]):
        module = MultiHeadAttention(d, h).double()
        results.append({"parameters": parameters(module), "result": _run(module, x)})
    module = MultiHeadAttention(16, 4)
    results.append({"parameters": parameters(module), "result": _run(module, inputs["float32"])})
    return results


def mha_masks_inputs():
    g = generator(36)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    keep = torch.arange(6)[None, :] < torch.tensor([6, 4, 1])[:, None]
    return {"x": _randn(3, 6, 16, g=g, dtype=torch.float64), "x1": _randn(2, 1, 16, g=g, dtype=torch.float64),
            "causal": causal, "keep": keep}


@_heads_aside
def mha_masks(MultiHeadAttention):
    inputs = mha_masks_inputs()
    module = MultiHeadAttention(16, 4).double()
    x, causal, keep = inputs["x"], inputs["causal"], inputs["keep"]
    masks = [causal, keep[:, None, None, :], causal & keep[:, None, None, :]]
    return {"parameters": parameters(module), "results": [_run(module, x, mask) for mask in masks],
            "one": _run(module, inputs["x1"], torch.ones(1, 1, dtype=torch.bool))}


def mha_gradients_inputs():
    g = generator(37)
    return {"x8": _randn(2, 4, 8, g=g), "x12": _randn(2, 5, 12, g=g, dtype=torch.float64)}


@_heads_aside
def mha_gradients(MultiHeadAttention):
    inputs = mha_gradients_inputs()
    small = MultiHeadAttention(8, 2)
    small(inputs["x8"], mask=torch.ones(4, 4, dtype=torch.bool).tril())[0].pow(2).sum().backward()
    small_grads = {name: p.grad for name, p in small.named_parameters()}
    module = MultiHeadAttention(12, 3).double()
    x = inputs["x12"].clone().requires_grad_(True)
    module(x, mask=torch.ones(5, 5, dtype=torch.bool).tril())[0].pow(2).sum().backward()
    grads = {name: getattr(p, "grad", None) for name, p in zip(PARAMETERS, (module.qkv.weight, module.qkv.bias,
                                                                           module.out.weight, module.out.bias))}
    return {"small": small_grads, "parameters": parameters(module), "grads": grads, "x_grad": x.grad}


# --- MultiHeadAttention with a context (cross-attention) -----------------------------------

def _call(module, *args, **kwargs):
    """The learner's call, or the error it raised as a string (a later call's error must not hide earlier results)."""
    try:
        result = module(*args, **kwargs)
    except Exception as error:
        return f"{type(error).__name__}: {error}"[:300]
    return list(result) if isinstance(result, tuple) else result


def mha_context_shapes_inputs():
    g = generator(38)
    return [(_randn(2, 4, 12, g=g), _randn(2, 7, 12, g=g)), (_randn(1, 1, 12, g=g), _randn(1, 1, 12, g=g))]


@_heads_aside
def mha_context_shapes(MultiHeadAttention):
    module = MultiHeadAttention(12, 3)
    pairs = mha_context_shapes_inputs()
    results = [_call(module, x, context=context) for x, context in pairs]
    x, context = pairs[0]
    return {"results": results, "no_weights": _call(module, x, context=context, need_weights=False),
            "self_no_weights": _call(module, x, need_weights=False),
            "n_parameters": sum(p.numel() for p in module.parameters())}


CROSS_CASES = [(3, 5, 8), (1, 1, 1), (4, 1, 9), (2, 6, 1), (5, 3, 3)]


def mha_context_parity_inputs():
    g = generator(39)
    pairs = [(_randn(b, lq, 16, g=g, dtype=torch.float64), _randn(b, lk, 16, g=g, dtype=torch.float64))
             for b, lq, lk in CROSS_CASES]
    keep = torch.arange(8)[None, :] < torch.tensor([8, 5, 2])[:, None]
    return {"pairs": pairs, "keep": keep, "same": _randn(2, 4, 16, g=g, dtype=torch.float64),
            "grad_x": _randn(2, 3, 16, g=g, dtype=torch.float64), "grad_context": _randn(2, 4, 16, g=g, dtype=torch.float64)}


@_heads_aside
def mha_context_parity(MultiHeadAttention):
    inputs = mha_context_parity_inputs()
    module = MultiHeadAttention(16, 4).double()
    results = [_call(module, x, context=context) for x, context in inputs["pairs"]]
    x, context = inputs["pairs"][0]
    padded = _call(module, x, context=context, mask=inputs["keep"][:, None, None, :])
    same = inputs["same"]
    context = inputs["grad_context"].clone().requires_grad_(True)
    module(inputs["grad_x"], context=context)[0].sum().backward()
    return {"parameters": parameters(module), "results": results, "padded": padded,
            "same": [module(same, context=same)[0], module(same)[0]], "context_grad": context.grad}
