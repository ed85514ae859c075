"""Chapter 03 (the Transformer block): collectors of the hidden tests. Inputs come from the generators below."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from tfs.grader.judging import answer_on_its_own, generator
from tfs.teaching.probes_rope import outcome_on_odd_d  # what the learner's code does; no oracle


def _randn(*shape, g, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=g)


def state(module) -> dict:
    """The module's parameters and buffers, detached, by name."""
    return {name: value.detach() for name, value in module.state_dict().items()}


def _type(value) -> str:
    return type(value).__name__


# --- LayerNorm --------------------------------------------------------------------------------

def layer_norm_parameters(LayerNorm):
    ln = LayerNorm(8)
    weight, bias = getattr(ln, "weight", None), getattr(ln, "bias", None)
    eps = getattr(ln, "eps", None)
    return {"types": [_type(weight), _type(bias)], "weight": weight.detach() if isinstance(weight, torch.Tensor) else None,
            "bias": bias.detach() if isinstance(bias, torch.Tensor) else None,
            "eps": eps if type(eps) in (int, float) else repr(eps)[:50],
            "eps_01": getattr(LayerNorm(3, eps=0.1), "eps", None), "count_5": sum(p.numel() for p in LayerNorm(5).parameters())}


def layer_norm_values_inputs():
    g = generator(41)
    return {"x": _randn(4, 5, 8, g=g) * 3 + 2, "weight": _randn(8, g=g), "bias": _randn(8, g=g),
            "shapes": [_randn(*shape, g=g) * 10 - 5 for shape in [(3,), (1, 1, 3), (2, 7, 3)]],
            "float32": _randn(2, 4, 16, g=g, dtype=torch.float32), "constant": torch.full((2, 6), 3.0, dtype=torch.float64)}


def layer_norm_values(LayerNorm):
    inputs = layer_norm_values_inputs()
    ln = LayerNorm(8, eps=1e-2).double()
    with torch.no_grad():
        ln.weight.copy_(inputs["weight"])
        ln.bias.copy_(inputs["bias"])
    return {"main": ln(inputs["x"]), "shapes": [LayerNorm(3).double()(x) for x in inputs["shapes"]],
            "float32": LayerNorm(16)(inputs["float32"]), "constant": LayerNorm(6).double()(inputs["constant"])}


def layer_norm_gradients_inputs():
    return {"x": _randn(3, 6, g=generator(42)), "weights": torch.arange(6.0, dtype=torch.float64)}


def layer_norm_gradients(LayerNorm):
    inputs = layer_norm_gradients_inputs()
    ln = LayerNorm(6).double()
    x = inputs["x"].clone().requires_grad_(True)
    (ln(x) * inputs["weights"]).sum().backward()
    return {"state": state(ln), "x": x.grad, "weight": ln.weight.grad, "bias": ln.bias.grad}


# --- FeedForward ------------------------------------------------------------------------------

def feed_forward_inputs():
    g = generator(43)
    return {"xs": [_randn(2, 5, 8, g=g), _randn(1, 1, 8, g=g), _randn(3, 4, 8, g=g)]}


def feed_forward(FeedForward):
    inputs = feed_forward_inputs()
    ff = FeedForward(8, 32).double()
    kinds = [_type(getattr(ff, name, None)) for name in ("linear1", "linear2")]
    last = inputs["xs"][-1]
    return {"kinds": kinds, "state": state(ff), "outputs": [ff(x) for x in inputs["xs"]], "position": ff(last[:, 2])}


# --- blocks -----------------------------------------------------------------------------------

def _stand_ins(space: dict) -> dict:
    """Reference LayerNorm, FeedForward and TransformerBlock by the exercises' names and signatures, made of torch
    (the package's own versions are out of reach under grading), on the namespace's MultiHeadAttention."""
    attention = space.get("MultiHeadAttention")

    class LayerNorm(nn.Module):
        def __init__(self, d_model: int, eps: float = 1e-5):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(d_model))
            self.bias = nn.Parameter(torch.zeros(d_model))

        def forward(self, x):
            return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)

    class FeedForward(nn.Module):
        def __init__(self, d_model: int, d_ff: int):
            super().__init__()
            self.linear1, self.linear2 = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

        def forward(self, x):
            return self.linear2(F.gelu(self.linear1(x)))

    class TransformerBlock(nn.Module):
        def __init__(self, d_model: int, n_heads: int, d_ff: int, norm_first: bool = False, eps: float = 1e-5):
            super().__init__()
            self.norm_first = norm_first
            self.attn, self.ff = attention(d_model, n_heads), FeedForward(d_model, d_ff)
            self.norm1, self.norm2 = LayerNorm(d_model, eps), LayerNorm(d_model, eps)

        def forward(self, x, mask=None):
            if self.norm_first:
                x = x + self.attn(self.norm1(x), mask=mask)[0]
                return x + self.ff(self.norm2(x))
            x = self.norm1(x + self.attn(x, mask=mask)[0])
            return self.norm2(x + self.ff(x))

    return {"LayerNorm": LayerNorm, "FeedForward": FeedForward, "TransformerBlock": TransformerBlock}


# while the learner's class runs, the earlier exercises' names in its methods' namespace are the stand-ins: a mistake in
# LayerNorm or FeedForward costs the block no points, one in the block none of the encoder's
_on_its_own = answer_on_its_own(_stand_ins)


def block_inputs(seed: int):
    g = generator(seed)
    return {"x": _randn(2, 6, 16, g=g), "x1": _randn(3, 1, 16, g=g), "perm": torch.randperm(6, generator=g),
            "keep": torch.tensor([[True] * 6, [True] * 3 + [False] * 3]), "causal": torch.ones(6, 6, dtype=torch.bool).tril(),
            "grad_x": _randn(5, 1, 16, g=g)}


def _distinct_norms(block, g: torch.Generator) -> None:
    """Each LayerNorm of the block its own scale and shift (at init both are 1 and 0: norm1 used twice would pass)."""
    with torch.no_grad():
        for name in ("norm1", "norm2"):
            for attribute, center in (("weight", 1.0), ("bias", 0.0)):
                parameter = getattr(getattr(block, name, None), attribute, None)
                if isinstance(parameter, torch.Tensor) and parameter.dim() == 1:
                    parameter.copy_(center + 0.3 * torch.randn(parameter.shape, generator=g, dtype=parameter.dtype))


def _block(TransformerBlock, seed: int, norm_first: bool, with_gradient: bool):
    inputs = block_inputs(seed)
    block = TransformerBlock(16, 4, 32, norm_first=norm_first).double()
    _distinct_norms(block, generator(seed + 100))
    x = inputs["x"]
    result = {"state": state(block), "plain": block(x), "padded": block(x, mask=inputs["keep"][:, None, None, :]),
              "causal": block(x, mask=inputs["causal"]), "permuted": block(x[:, inputs["perm"]]), "one": block(inputs["x1"])}
    if with_gradient:
        x = inputs["grad_x"].clone().requires_grad_(True)
        block(x).pow(2).sum().backward()
        result["grad"] = x.grad
    return result


@_on_its_own
def transformer_block_layers(TransformerBlock):
    block = TransformerBlock(16, 4, 32, norm_first=True, eps=1e-6)
    default = TransformerBlock(8, 2, 16)
    norms = [getattr(block, name, None) for name in ("norm1", "norm2")]
    return {"kinds": {name: _type(getattr(block, name, None)) for name in ("attn", "ff", "norm1", "norm2")},
            "norm_first": repr(getattr(block, "norm_first", None)), "default": repr(getattr(default, "norm_first", None)),
            "eps": [repr(getattr(norm, "eps", None)) for norm in norms],
            "shapes": {name: list(p.shape) for name, p in default.named_parameters()},
            "distinct_norms": getattr(block, "norm1", None) is not getattr(block, "norm2", None)}


@_on_its_own
def post_ln_block(TransformerBlock):
    return _block(TransformerBlock, 44, norm_first=False, with_gradient=False)


@_on_its_own
def pre_ln_block(TransformerBlock):
    return _block(TransformerBlock, 45, norm_first=True, with_gradient=True)


# --- Encoder ----------------------------------------------------------------------------------

@_on_its_own
def encoder_structure(Encoder):
    pre, post = Encoder(3, 16, 4, 32, norm_first=True), Encoder(2, 16, 4, 32)
    layers = lambda e: list(getattr(e, "layers", []) or [])  # noqa: E731
    return {"pre_layers": _type(getattr(pre, "layers", None)), "pre_types": [_type(l) for l in layers(pre)],
            "pre_final": _type(getattr(pre, "final_norm", None)), "post_types": [_type(l) for l in layers(post)],
            "pre_norm_first": [getattr(l, "norm_first", None) is True for l in layers(pre)],
            "post_norm_first": [getattr(l, "norm_first", None) is False for l in layers(post)],
            "post_final": _type(getattr(post, "final_norm", None)),
            "shared": len(layers(post)) == 2 and layers(post)[0].attn is layers(post)[1].attn,
            "one_layer": len(layers(Encoder(1, 8, 2, 16))),
            "count": sum(p.numel() for p in Encoder(2, 8, 2, 16, norm_first=True).parameters())}


def encoder_parity_inputs():
    g = generator(46)
    return {"x": _randn(2, 5, 16, g=g), "others": [_randn(1, 1, 16, g=g), _randn(4, 9, 16, g=g)],
            "causal": torch.ones(5, 5, dtype=torch.bool).tril()}


@_on_its_own
def encoder_parity(Encoder):
    inputs = encoder_parity_inputs()
    results = []
    for norm_first in (False, True):
        encoder = Encoder(3, 16, 4, 32, norm_first=norm_first).double()
        results.append({"state": state(encoder), "causal": encoder(inputs["x"], mask=inputs["causal"]),
                        "others": [encoder(x) for x in inputs["others"]]})
    return results


# --- Dropout ----------------------------------------------------------------------------------

DROPOUT_PS = (0.1, 0.3, 0.5, 0.9)


def dropout_eval_inputs():
    g = generator(47)
    return {"x": _randn(4, 50, g=g), "x32": _randn(3, 7, g=g, dtype=torch.float32)}


def _attempt(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except Exception as error:  # the learner's error, reported by the judge
        return f"{type(error).__name__}: {error}"[:300]


def dropout_eval(Dropout):
    inputs = dropout_eval_inputs()
    x = inputs["x"]
    evaluating = Dropout(0.3)
    evaluating.eval()
    return {"p": repr(getattr(Dropout(0.3), "p", None)), "default": repr(getattr(Dropout(), "p", None)),
            "eval": _attempt(evaluating, x), "eval32": _attempt(evaluating, inputs["x32"]),
            "p0": _attempt(Dropout(0.0), x), "parameters": sum(p.numel() for p in Dropout(0.3).parameters())}


def dropout_training_inputs():
    g = generator(48)
    return {"n": 100_000, "x": _randn(3, 4, 50, g=g), "seed": 48}


def dropout_training(Dropout):
    inputs = dropout_training_inputs()
    torch.manual_seed(inputs["seed"])  # the learner's draws; the judge checks what holds for any draw
    ones = torch.full((inputs["n"],), 2.0, dtype=torch.float64)
    large = {str(p): _attempt(Dropout(p), ones) for p in DROPOUT_PS}
    module = Dropout(0.25)
    x = inputs["x"].clone().requires_grad_(True)
    out = _attempt(module, x)
    grad = None
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.sum().backward()
        grad = x.grad
    return {"large": large, "values": out.detach() if isinstance(out, torch.Tensor) else out, "grad": grad,
            "again": [_attempt(module, ones[:1000]), _attempt(module, ones[:1000])], "p1": _attempt(Dropout(1.0), ones[:100])}


# --- parameter counting -----------------------------------------------------------------------

PARAMETER_CONFIGS = [(1, 16, 4, 64, False, True), (3, 32, 8, 48, True, True), (2, 24, 3, 96, False, False),
                     (4, 8, 1, 8, True, False), (6, 64, 16, 256, True, True), (12, 768, 12, 3072, False, True)]
# BERT-base's and BERT-large's encoders (85 M and 302 M parameters), and BERT-base with other head counts
LARGE_CONFIGS = [(12, 768, 12, 3072, False, True), (24, 1024, 16, 4096, False, True), (12, 768, 1, 3072, False, True),
                 (12, 768, 64, 3072, True, False)]
FIELDS = ("n_layers", "d_model", "n_heads", "d_ff", "norm_first", "bias")


def _count(encoder_parameters, config):
    result = _attempt(encoder_parameters, **dict(zip(FIELDS, config)))
    return result if type(result) in (int, str) else f"not an int: {type(result).__name__}"


def encoder_parameters_counts(encoder_parameters):
    return [_count(encoder_parameters, config) for config in PARAMETER_CONFIGS]


def encoder_parameters_large(encoder_parameters):
    return [_count(encoder_parameters, config) for config in LARGE_CONFIGS]


# --- RoPE (optional) --------------------------------------------------------------------------

def rope_values_inputs():
    g = generator(49)
    return {"x": _randn(2, 3, 7, 8, g=g), "positions": torch.tensor([4, 9, 0, 31, 2, 17, 5]), "base_x": _randn(5, 6, g=g),
            "x32": _randn(2, 12, 16, g=g, dtype=torch.float32), "pair": _randn(1, 4, 2, g=g), "one": _randn(3, 1, 4, g=g)}


def rope_values(apply_rope):
    inputs = rope_values_inputs()
    x = inputs["x"]
    return {"default": _attempt(apply_rope, x), "positions": _attempt(apply_rope, x, inputs["positions"]),
            "base": _attempt(apply_rope, inputs["base_x"], base=100.0), "x32": _attempt(apply_rope, inputs["x32"]),
            "pair": _attempt(apply_rope, inputs["pair"]), "one": _attempt(apply_rope, inputs["one"])}


def rope_properties_inputs():
    g = generator(50)
    return {"x": _randn(4, 20, 64, g=g), "q": _randn(32, g=g), "k": _randn(32, g=g), "length": 40, "odd": _randn(2, 5, 7, g=g)}


def rope_properties(apply_rope):
    inputs = rope_properties_inputs()
    length = inputs["length"]
    q = inputs["q"].expand(length, -1)                 # the same query vector at every position
    k = inputs["k"].expand(length, -1)
    rotated_q, rotated_k = _attempt(apply_rope, q), _attempt(apply_rope, k)
    scores = (rotated_q @ rotated_k.T if isinstance(rotated_q, torch.Tensor) and isinstance(rotated_k, torch.Tensor)
              and rotated_q.shape == rotated_k.shape == q.shape else "no (L, d) result")
    try:
        odd = outcome_on_odd_d(apply_rope, inputs["odd"])
    except NotImplementedError:
        odd = "raised NotImplementedError"
    return {"norms": _attempt(apply_rope, inputs["x"]), "scores": scores, "odd": odd}
