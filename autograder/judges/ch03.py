"""Chapter 03 (the Transformer block): judges. Oracles: ``nn.LayerNorm``/``F.layer_norm``, ``F.gelu``,
``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder`` loaded with the learner's weights."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tfs.grader.collectors import ch03 as inputs
from tfs.teaching.counting import encoder_parameter_mistakes  # the diagnosis only; the oracle is torch_count
from tfs.grader.judging import check_close, expect
from tfs.teaching.checks import check_shape

ATOL = 1e-6
D_MODEL, N_HEADS, D_FF = 16, 4, 32



def fields(data, keys, name: str) -> dict:
    expect(type(data) is dict and set(keys) <= set(data), name, "the grader's calls returned no result.")
    return data


def tensor(state: dict, name: str, shape, owner: str) -> torch.Tensor:
    expect(isinstance(state.get(name), torch.Tensor), owner, f"no parameter {name}: keep the layer names the exercise gives.")
    check_shape(state[name], shape, f"{owner}: {name}")
    return state[name]


def torch_layer(state: dict, prefix: str, norm_first: bool, owner: str) -> nn.TransformerEncoderLayer:
    """nn.TransformerEncoderLayer (GELU, no dropout, float64) with the learner's weights."""
    d, f = D_MODEL, D_FF
    layer = nn.TransformerEncoderLayer(d, N_HEADS, f, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=norm_first).double()
    pairs = [("attn.qkv.weight", layer.self_attn.in_proj_weight, (3 * d, d)), ("attn.qkv.bias", layer.self_attn.in_proj_bias, (3 * d,)),
             ("attn.out.weight", layer.self_attn.out_proj.weight, (d, d)), ("attn.out.bias", layer.self_attn.out_proj.bias, (d,)),
             ("ff.linear1.weight", layer.linear1.weight, (f, d)), ("ff.linear1.bias", layer.linear1.bias, (f,)),
             ("ff.linear2.weight", layer.linear2.weight, (d, f)), ("ff.linear2.bias", layer.linear2.bias, (d,)),
             ("norm1.weight", layer.norm1.weight, (d,)), ("norm1.bias", layer.norm1.bias, (d,)),
             ("norm2.weight", layer.norm2.weight, (d,)), ("norm2.bias", layer.norm2.bias, (d,))]
    with torch.no_grad():
        for name, target, shape in pairs:
            target.copy_(tensor(state, prefix + name, shape, owner))
    return layer


# --- LayerNorm --------------------------------------------------------------------------------

def layer_norm_mistakes(x, weight, bias, eps):
    mean = x.mean(-1, keepdim=True)
    return {
        "the unbiased variance (divide by d - 1): use unbiased=False or ((x - mean)**2).mean()":
            (x - mean) / torch.sqrt(x.var(-1, keepdim=True) + eps) * weight + bias,
        "eps added outside the square root": (x - mean) / (x.std(-1, unbiased=False, keepdim=True) + eps) * weight + bias,
        "weight and bias not applied": (x - mean) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps),
    }


def layer_norm_parameters(data):
    data = fields(data, ("types", "weight", "bias", "eps", "eps_01", "count_5"), "LayerNorm")
    expect(data["types"] == ["Parameter", "Parameter"], "LayerNorm(8)", "expected nn.Parameter attributes `weight` and `bias`.",
           hint="self.weight = nn.Parameter(torch.ones(d_model)); self.bias = nn.Parameter(torch.zeros(d_model))")
    check_close(data["weight"], torch.ones(8), "LayerNorm(8).weight at init", op="exact")
    check_close(data["bias"], torch.zeros(8), "LayerNorm(8).bias at init", op="exact")
    expect(data["eps"] == 1e-5, "LayerNorm(8).eps", f"expected 1e-5, received {data['eps']}.")
    expect(data["eps_01"] == 0.1, "LayerNorm(3, eps=0.1).eps", "the eps argument is ignored.")
    expect(data["count_5"] == 10, "LayerNorm(5)", f"{data['count_5']} parameters: a LayerNorm has a weight and a bias "
           "of d_model numbers each, and nothing else.")
    return "✓ LayerNorm: the grader's tests pass (parameters, initial values, eps)"


def layer_norm_values(data):
    case = inputs.layer_norm_values_inputs()
    data = fields(data, ("main", "shapes", "float32", "constant"), "LayerNorm")
    x, weight, bias = case["x"], case["weight"], case["bias"]
    check_close(data["main"], F.layer_norm(x, (8,), weight, bias, eps=1e-2), "LayerNorm(8, eps=1e-2)(x) vs nn.LayerNorm",
                rtol=0, atol=ATOL, mistakes=layer_norm_mistakes(x, weight, bias, 1e-2),
                hint="mean and biased variance over dim=-1 (keepdim=True), eps inside the sqrt, then * weight + bias.")
    expect(type(data["shapes"]) is list and len(data["shapes"]) == 3, "LayerNorm", "no result.")
    for x, received in zip(case["shapes"], data["shapes"]):
        check_close(received, F.layer_norm(x, (3,)), f"LayerNorm on shape {tuple(x.shape)}", rtol=0, atol=ATOL)
    check_close(data["float32"], F.layer_norm(case["float32"], (16,)), "LayerNorm in float32", op="matmul")
    check_close(data["constant"], torch.zeros(2, 6, dtype=torch.float64), "LayerNorm of a constant vector", rtol=0, atol=ATOL,
                hint="the variance is 0: eps keeps the division finite.")
    return "✓ LayerNorm: the grader's tests pass (nn.LayerNorm parity, 1-D to 3-D, float32, constant vectors)"


def layer_norm_gradients(data):
    case = inputs.layer_norm_gradients_inputs()
    data = fields(data, ("state", "x", "weight", "bias"), "LayerNorm gradients")
    reference = nn.LayerNorm(6).double()
    with torch.no_grad():
        reference.weight.copy_(tensor(data["state"], "weight", (6,), "LayerNorm(6)"))
        reference.bias.copy_(tensor(data["state"], "bias", (6,), "LayerNorm(6)"))
    x = case["x"].clone().requires_grad_(True)
    (reference(x) * case["weights"]).sum().backward()
    check_close(data["x"], x.grad, "gradient of LayerNorm w.r.t. its input", rtol=0, atol=ATOL,
                hint="use differentiable torch operations only.")
    check_close(data["weight"], reference.weight.grad, "gradient w.r.t. weight", rtol=0, atol=ATOL)
    check_close(data["bias"], reference.bias.grad, "gradient w.r.t. bias", rtol=0, atol=ATOL)
    return "✓ LayerNorm: the grader's tests pass (gradients w.r.t. input, weight and bias)"


# --- FeedForward ------------------------------------------------------------------------------

def feed_forward(data):
    case = inputs.feed_forward_inputs()
    data = fields(data, ("kinds", "state", "outputs", "position"), "FeedForward")
    expect(data["kinds"] == ["Linear", "Linear"], "FeedForward(8, 32)", "expected linear1 = nn.Linear(8, 32) and "
           "linear2 = nn.Linear(32, 8).")
    state = data["state"]
    w1, b1 = tensor(state, "linear1.weight", (32, 8), "FeedForward"), tensor(state, "linear1.bias", (32,), "FeedForward")
    w2, b2 = tensor(state, "linear2.weight", (8, 32), "FeedForward"), tensor(state, "linear2.bias", (8,), "FeedForward")
    expect(type(data["outputs"]) is list and len(data["outputs"]) == 3, "FeedForward", "no result.")
    for x, received in zip(case["xs"], data["outputs"]):
        hidden = F.linear(x, w1, b1)
        check_close(received, F.linear(F.gelu(hidden), w2, b2), f"FeedForward(8, 32)(x {tuple(x.shape)})", rtol=0, atol=ATOL,
                    mistakes={"ReLU instead of GELU": F.linear(F.relu(hidden), w2, b2),
                              "the tanh approximation of GELU (use the exact one, F.gelu(z))":
                              F.linear(F.gelu(hidden, approximate="tanh"), w2, b2),
                              "no activation between the layers": F.linear(hidden, w2, b2)},
                    hint="linear1, then F.gelu (exact), then linear2.")
    last = case["xs"][-1][:, 2]
    check_close(data["position"], F.linear(F.gelu(F.linear(last, w1, b1)), w2, b2), "FeedForward position by position",
                rtol=0, atol=ATOL, hint="each position must be processed on its own.")
    return "✓ FeedForward: the grader's tests pass (GELU between two layers, one token, position by position)"


# --- blocks -----------------------------------------------------------------------------------

def block_mistakes(layer: nn.TransformerEncoderLayer, x: torch.Tensor, norm_first: bool) -> dict:
    attn = lambda t: layer.self_attn(t, t, t)[0]  # noqa: E731
    n1, n2 = layer.norm1, layer.norm2
    ff = lambda t: layer.linear2(F.gelu(layer.linear1(t)))  # noqa: E731
    with torch.no_grad():
        if norm_first:
            h = n1(x) + attn(n1(x))
            wrong_residual = h + ff(n2(h))
            h = n1(x + attn(x))
            return {"the residual adds LN(x) instead of x: x + f(LN(x)) is right": wrong_residual,
                    "the post-LN layout (LN after the residual)": n2(h + ff(h))}
        h = x + n1(attn(x))
        inside = h + n2(ff(h))
        h = x + attn(n1(x))
        return {"x + LN(f(x)) instead of LN(x + f(x))": inside, "the pre-LN layout x + f(LN(x))": h + ff(n2(h))}


def _judge_block(data, name: str, seed: int, norm_first: bool) -> None:
    case = inputs.block_inputs(seed)
    keys = ("state", "plain", "padded", "causal", "permuted", "one") + (("grad",) if norm_first else ())
    data = fields(data, keys, name)
    layer = torch_layer(data["state"], "", norm_first, f"{name}(16, 4, 32)")
    x, keep = case["x"], case["keep"]
    layout = "x = x + attn(norm1(x))[0]; x = x + ff(norm2(x))." if norm_first else \
        "x = norm1(x + attn(x)[0]); x = norm2(x + ff(x))."
    with torch.no_grad():
        check_close(data["plain"], layer(x), f"{name} vs nn.TransformerEncoderLayer(norm_first={norm_first})", rtol=0,
                    atol=ATOL, mistakes=block_mistakes(layer, x, norm_first), hint=layout)
        padded = layer(x, src_key_padding_mask=~keep)
        check_shape(data["padded"], tuple(x.shape), f"{name} with a key-padding mask")
        check_close(data["padded"][keep], padded[keep], f"{name} with a key-padding mask", rtol=0, atol=ATOL,
                    hint="pass mask on to self.attn.")
        check_close(data["causal"], layer(x, src_mask=~case["causal"]), f"{name} with a causal mask", rtol=0, atol=ATOL,
                    hint="pass mask on to self.attn.")
        check_close(data["permuted"], layer(x)[:, case["perm"]], f"{name}(Px) vs P·{name}(x)", rtol=0, atol=ATOL,
                    hint="without positions a block is permutation-equivariant.")
        check_close(data["one"], layer(case["x1"]), f"{name} on length 1", rtol=0, atol=ATOL)
    if norm_first:
        x = case["grad_x"].clone().requires_grad_(True)
        layer(x).pow(2).sum().backward()
        check_close(data["grad"], x.grad, f"{name} input gradient (length 1)", rtol=0, atol=ATOL)


def transformer_block_layers(data):
    data = fields(data, ("kinds", "norm_first", "default", "eps", "shapes", "distinct_norms"), "TransformerBlock")
    expected = {"attn": "MultiHeadAttention", "ff": "FeedForward", "norm1": "LayerNorm", "norm2": "LayerNorm"}
    expect(data["kinds"] == expected, "TransformerBlock(16, 4, 32) layers", f"expected {expected}, received {data['kinds']}.",
           hint="self.attn = MultiHeadAttention(d_model, n_heads); self.ff = FeedForward(d_model, d_ff); norm1, norm2.")
    expect(data["norm_first"] == "True", "TransformerBlock(..., norm_first=True).norm_first",
           f"expected True, received {data['norm_first']}.", hint="store the flag: self.norm_first = norm_first.")
    expect(data["default"] == "False", "TransformerBlock(8, 2, 16).norm_first",
           f"the default layout is post-LN (False), received {data['default']}.")
    expect(data["eps"] == ["1e-06", "1e-06"], "TransformerBlock(..., eps=1e-6)",
           f"expected eps = 1e-6 in norm1 and norm2, received {data['eps']}.", hint="pass eps on to both LayerNorms.")
    expect(data["distinct_norms"] is True, "TransformerBlock", "norm1 and norm2 are the same module.",
           hint="each sublayer has its own LayerNorm.")
    d, f = 8, 16  # the parameters of TransformerBlock(8, 2, 16), as nn.TransformerEncoderLayer names them
    sizes = {"qkv": [3 * d, d], "out": [d, d], "linear1": [f, d], "linear2": [d, f]}
    expected_count = sum(a * b + a for a, b in sizes.values()) + 4 * d
    count = sum(math.prod(shape) for shape in data["shapes"].values())
    expect(count == expected_count, "TransformerBlock(8, 2, 16)",
           f"{count} parameters, not those of attention, feed-forward and two LayerNorms.",
           hint="no layers besides attn, ff, norm1 and norm2.")
    return "✓ TransformerBlock: the grader's tests pass (layers, norm_first, eps, parameter count)"


def post_ln_block(data):
    _judge_block(data, "TransformerBlock(norm_first=False)", 44, norm_first=False)
    return "✓ TransformerBlock, post-LN: the grader's tests pass (nn.TransformerEncoderLayer parity, masks, permutations, length 1)"


def pre_ln_block(data):
    _judge_block(data, "TransformerBlock(norm_first=True)", 45, norm_first=True)
    return "✓ TransformerBlock, pre-LN: the grader's tests pass (nn.TransformerEncoderLayer parity, masks, length 1, gradients)"


# --- Encoder ----------------------------------------------------------------------------------

def encoder_structure(data):
    data = fields(data, ("pre_layers", "pre_types", "pre_final", "post_types", "post_final", "pre_norm_first",
                         "post_norm_first", "shared", "one_layer", "count"),
                  "Encoder")
    expect(data["pre_layers"] == "ModuleList" and data["pre_types"] == ["TransformerBlock"] * 3,
           "Encoder(3, ..., norm_first=True).layers", "expected an nn.ModuleList of 3 TransformerBlock.",
           hint="nn.ModuleList(TransformerBlock(...) for _ in range(n_layers))")
    expect(data["pre_norm_first"] == [True] * 3 and data["post_norm_first"] == [True] * 2,
           "Encoder(norm_first=...)", "the blocks' layout does not follow norm_first.", hint="pass norm_first on to every block.")
    expect(data["pre_final"] == "LayerNorm", "Encoder(norm_first=True).final_norm", "expected your LayerNorm(d_model).")
    expect(data["post_types"] == ["TransformerBlock"] * 2 and data["post_final"] == "Identity", "Encoder(norm_first=False)",
           "expected post-LN TransformerBlock layers and final_norm = nn.Identity().")
    expect(data["shared"] is False, "Encoder", "the layers share one block.",
           hint="create a new block for every layer; [block] * n repeats the same object.")
    expect(data["one_layer"] == 1, "Encoder(1, ...)", "expected 1 layer.")
    block = 4 * 64 + 4 * 8 + 2 * 8 * 16 + 16 + 8 + 4 * 8  # attention, feed-forward, two LayerNorms (d = 8, d_ff = 16)
    expect(data["count"] == 2 * block + 16, "Encoder(2, 8, 2, 16, norm_first=True)",
           f"{data['count']} parameters, not those of two blocks and the final LayerNorm.")
    return "✓ Encoder: the grader's tests pass (the right blocks, each its own, the right final norm, parameter count)"


def encoder_parity(data):
    case = inputs.encoder_parity_inputs()
    expect(type(data) is list and len(data) == 2, "Encoder", "no result.")
    for norm_first, run in zip((False, True), data):
        run = fields(run, ("state", "causal", "others"), "Encoder")
        name = f"Encoder(3, 16, 4, 32, norm_first={norm_first})"
        layers = [torch_layer(run["state"], f"layers.{i}.", norm_first, name) for i in range(3)]
        final = nn.LayerNorm(D_MODEL).double()
        if norm_first:
            with torch.no_grad():
                final.weight.copy_(tensor(run["state"], "final_norm.weight", (D_MODEL,), name))
                final.bias.copy_(tensor(run["state"], "final_norm.bias", (D_MODEL,), name))

        def reference(x, mask=None):
            for layer in layers:
                x = layer(x, src_mask=mask)
            return final(x) if norm_first else x

        with torch.no_grad():
            check_close(run["causal"], reference(case["x"], ~case["causal"]), f"{name} vs nn.TransformerEncoder, causal mask",
                        rtol=0, atol=ATOL, hint="run every block in order with the mask, then final_norm.")
            expect(type(run["others"]) is list and len(run["others"]) == 2, name, "no result.")
            for x, received in zip(case["others"], run["others"]):
                check_close(received, reference(x), f"{name} on batch {x.shape[0]}, length {x.shape[1]}", rtol=0, atol=ATOL)
    return "✓ Encoder: the grader's tests pass (post-LN and pre-LN stacks match nn.TransformerEncoder layers)"


# --- Dropout ----------------------------------------------------------------------------------

def _tensor_result(value, name: str) -> torch.Tensor:
    expect(not isinstance(value, str), name, f"your code raised {value}")
    expect(isinstance(value, torch.Tensor), name, f"expected a tensor, received {type(value).__name__}.")
    return value


def dropout_eval(data):
    case = inputs.dropout_eval_inputs()
    data = fields(data, ("p", "default", "eval", "eval32", "p0", "parameters"), "Dropout")
    expect(data["p"] == "0.3", "Dropout(0.3).p", f"expected 0.3, received {data['p']}.", hint="store p: self.p = p.")
    expect(data["default"] == "0.5", "Dropout().p", f"expected the default p = 0.5 (as nn.Dropout), received {data['default']}.")
    expect(data["parameters"] == 0, "Dropout(0.3)", "dropout has no parameters.")
    oracle = nn.Dropout(0.3).eval()  # nn.Dropout in eval mode: the identity
    for key, x, name in (("eval", case["x"], "Dropout(0.3) in eval mode"), ("eval32", case["x32"], "Dropout(0.3), eval, float32")):
        check_close(_tensor_result(data[key], name), oracle(x), name, op="exact",
                    hint="in eval mode (self.training is False) dropout returns x unchanged.")
    check_close(_tensor_result(data["p0"], "Dropout(0.0) in training"), case["x"], "Dropout(0.0) in training", op="exact",
                hint="with p = 0 nothing is dropped and nothing is rescaled.")
    return "✓ Dropout: the grader's tests pass (p stored, eval mode and p = 0 are the identity)"


def dropout_training(data):
    case = inputs.dropout_training_inputs()
    data = fields(data, ("large", "values", "grad", "again", "p1"), "Dropout")
    n = case["n"]
    for p in inputs.DROPOUT_PS:
        name = f"Dropout({p}) in training, on {n:,d} elements"
        out = _tensor_result(data["large"].get(str(p)), name)
        check_shape(out, (n,), name)
        expect(bool(torch.isfinite(out).all()), name, "the output has inf or nan.")
        kept = out != 0
        dropped = 1 - kept.double().mean().item()
        sigma = math.sqrt(p * (1 - p) / n)
        # the oracle's statistics: F.dropout drops each element with probability p, keeps the others as x / (1 - p)
        expect(abs(dropped - p) < 6 * sigma, name, f"{dropped:.4f} of the elements are zero, expected {p} ± {6 * sigma:.4f}"
               + (" (that is 1 - p: p is the probability to drop, not to keep)." if abs(dropped - (1 - p)) < 6 * sigma else "."),
               hint="keep an element when torch.rand_like(x) >= p.")
        ratio = out[kept] / 2.0
        message = ("the kept elements are unchanged: divide them by 1 - p (inverted dropout)." if torch.allclose(ratio, torch.ones_like(ratio))
                   else "the kept elements are multiplied by 1 - p instead of divided." if torch.allclose(ratio, torch.full_like(ratio, 1 - p))
                   else "the kept elements are not x / (1 - p).")
        expect(torch.allclose(ratio, torch.full_like(ratio, 1 / (1 - p)), rtol=1e-6, atol=0), name, message)
        mean_sigma = 2 * math.sqrt(p / (1 - p) / n)
        expect(abs(out.double().mean().item() - 2) < 6 * mean_sigma, name, "the mean is not preserved.")
    x = case["x"]
    values = _tensor_result(data["values"], "Dropout(0.25) on x (3, 4, 50)")
    check_shape(values, tuple(x.shape), "Dropout(0.25) on x (3, 4, 50)")
    kept = values != 0
    check_close(values[kept], x[kept] / 0.75, "kept elements of Dropout(0.25)(x)", rtol=1e-9, atol=0,
                hint="kept elements are x / (1 - p), each at its own position.")
    expect(isinstance(data["grad"], torch.Tensor), "Dropout(0.25)", "no gradient flows back to x.",
           hint="use torch operations only (a mask multiplication).")
    check_close(data["grad"], kept.double() / 0.75, "gradient of Dropout(0.25)(x).sum() with respect to x", rtol=1e-9, atol=0,
                hint="the gradient is the mask divided by 1 - p.")
    first, second = (_tensor_result(v, "Dropout(0.25), two calls") for v in data["again"])
    expect(not torch.equal(first, second), "Dropout(0.25)", "two calls dropped the same elements.",
           hint="draw a new mask on every call; no fixed seed inside forward.")
    ones = _tensor_result(data["p1"], "Dropout(1.0) in training")
    check_close(ones, torch.zeros(100, dtype=torch.float64), "Dropout(1.0) in training", op="exact",
                hint="p = 1 drops everything: return zeros (x / (1 - p) would divide by zero).")
    return "✓ Dropout: the grader's tests pass (fraction dropped, kept x / (1 - p), mean, gradient, fresh masks, p = 1)"


# --- parameter counting -----------------------------------------------------------------------

def torch_count(n_layers, d_model, n_heads, d_ff, norm_first, bias) -> int:
    """sum(p.numel()) of nn.TransformerEncoderLayer stacks (+ a final nn.LayerNorm when pre-LN), on the meta device."""
    layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, bias=bias, batch_first=True, device="meta")
    final = sum(p.numel() for p in nn.LayerNorm(d_model, bias=bias, device="meta").parameters()) if norm_first else 0
    return n_layers * sum(p.numel() for p in layer.parameters()) + final


def _judge_counts(received, configs, what: str) -> None:
    expect(type(received) is list and len(received) == len(configs), "encoder_parameters", "no result.")
    for config, count in zip(configs, received):
        label = "encoder_parameters(" + ", ".join(f"{k}={v}" for k, v in zip(inputs.FIELDS, config)) + ")"
        expect(not (type(count) is str and count.startswith("not an int")), label, f"expected a Python int, received {count}.")
        expect(type(count) is int, label, f"your code raised {count}")
        expected = torch_count(*config)
        diagnosis = [name for name, value in encoder_parameter_mistakes(**dict(zip(inputs.FIELDS, config))).items()
                     if value == count]
        expect(count == expected, label, f"{count:,d} parameters, {'more' if count > expected else 'fewer'} than "
               f"{what}." + (f" This looks like {', or '.join(diagnosis)}." if diagnosis else ""))


def encoder_parameters_counts(data):
    _judge_counts(data, inputs.PARAMETER_CONFIGS, "nn.TransformerEncoderLayer's count")
    return "✓ encoder_parameters: the grader's tests pass (six configurations, pre- and post-LN, with and without bias)"


def encoder_parameters_large(data):
    _judge_counts(data, inputs.LARGE_CONFIGS, "nn.TransformerEncoderLayer's count, at BERT-base and BERT-large sizes")
    return "✓ encoder_parameters: the grader's tests pass (BERT-base and BERT-large sizes, any number of heads)"


# --- RoPE (optional) --------------------------------------------------------------------------
# Oracle: transformers' LLaMA rotary embedding (rotate_half pairing): apply_rotary_pos_emb with cos/sin made as
# LlamaRotaryEmbedding makes them (in float64 for float64 inputs; LlamaRotaryEmbedding itself for float32), and
# analytic properties (norms kept, scores depending on m - n only).

ROPE_HINT = ("pair feature j with feature j + d/2; pair j turns by the angle position * base^(-2j/d); "
             "out = x * cos + rotate_half(x) * sin.")


def _llama_rope(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0) -> torch.Tensor:
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    length, d = x.shape[-2:]
    positions = torch.arange(length) if positions is None else positions
    config = LlamaConfig(hidden_size=d, num_attention_heads=1, head_dim=d,
                         rope_parameters={"rope_type": "default", "rope_theta": base})
    rotary = LlamaRotaryEmbedding(config)
    if x.dtype == torch.float32:
        cos, sin = rotary(x, positions[None])                              # (1, L, d), float32 as in LLaMA
        cos, sin = cos[0], sin[0]
    else:  # the same construction (inv_freq = 1 / base^(arange(0, d, 2) / d), cat(freqs, freqs)) in float64
        inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        check_close(rotary.inv_freq.double(), inv_freq, "the grader's own frequencies", rtol=1e-6, atol=0)
        freqs = positions.double()[:, None] * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    return apply_rotary_pos_emb(x, x, cos, sin, unsqueeze_dim=0)[0].reshape(x.shape)


def rope_values(data):
    from tfs.teaching.probes_rope import rope_mistakes  # the diagnosis only; the oracle is _llama_rope

    case = inputs.rope_values_inputs()
    data = fields(data, ("default", "positions", "base", "x32", "pair", "one"), "apply_rope")
    x, positions = case["x"], case["positions"]
    for key, args, kwargs, name in (
            ("default", (x,), {}, "apply_rope(x) on x (2, 3, 7, 8) vs LLaMA's rotary embedding"),
            ("positions", (x, positions), {}, f"apply_rope(x, positions={positions.tolist()})"),
            ("base", (case["base_x"],), {"base": 100.0}, "apply_rope(x, base=100.0) on x (5, 6)"),
            ("pair", (case["pair"],), {}, "apply_rope on d = 2 (one pair)"),
            ("one", (case["one"],), {}, "apply_rope on L = 1 (position 0: no rotation)")):
        received = _tensor_result(data[key], name)
        check_close(received, _llama_rope(*args, **kwargs), name, rtol=0, atol=ATOL,
                    mistakes=rope_mistakes(*args, **kwargs), hint=ROPE_HINT)
    received = _tensor_result(data["x32"], "apply_rope on float32 x (2, 12, 16)")
    check_close(received, _llama_rope(case["x32"]), "apply_rope on float32 x (2, 12, 16)", rtol=1e-5, atol=1e-5,
                hint="keep the input's dtype.")
    return "✓ apply_rope: the grader's tests pass (LLaMA's rotary embedding: positions, base, float32, d = 2, L = 1)"


def rope_properties(data):
    case = inputs.rope_properties_inputs()
    data = fields(data, ("norms", "scores", "odd"), "apply_rope")
    x = case["x"]
    out = _tensor_result(data["norms"], "apply_rope on x (4, 20, 64)")
    check_shape(out, tuple(x.shape), "apply_rope on x (4, 20, 64)")
    check_close(out.norm(dim=-1), x.norm(dim=-1), "the norm of every vector after apply_rope", rtol=0, atol=ATOL,
                hint="a rotation keeps lengths: the sin term multiplies rotate_half(x), cos and sin use the same angle.")
    check_close(out, _llama_rope(x), "apply_rope on x (4, 20, 64) vs LLaMA's rotary embedding", rtol=0, atol=ATOL,
                hint=ROPE_HINT)
    scores = _tensor_result(data["scores"], "scores q_m · k_n of rotated copies of one q and one k")
    length = case["length"]
    check_shape(scores, (length, length), "scores q_m · k_n (L = 40)")
    for offset in range(-length + 2, length - 1):  # scores[m, n] with n - m = offset lie on one diagonal
        diagonal = scores.diagonal(offset)
        m = int(diagonal.argmax()) + max(0, -offset)
        m2 = int(diagonal.argmin()) + max(0, -offset)
        expect(float(diagonal.max() - diagonal.min()) < ATOL, "scores q_m · k_n",
               f"q_{m} · k_{m + offset} = {scores[m, m + offset]:.6f} but q_{m2} · k_{m2 + offset} = "
               f"{scores[m2, m2 + offset]:.6f}: the same offset m - n = {-offset} must give the same score.", hint=ROPE_HINT)
    q, k = case["q"].expand(length, -1), case["k"].expand(length, -1)
    check_close(scores, _llama_rope(q) @ _llama_rope(k).T, "scores q_m · k_n vs LLaMA's rotary embedding",
                rtol=0, atol=ATOL, hint=ROPE_HINT)
    expect(data["odd"] == "raised ValueError", "apply_rope on x (2, 5, 7): an odd d", "expected a ValueError; your function "
           f"{data['odd']}. An odd number of features cannot be split into pairs.",
           hint="check x.shape[-1] % 2 before rotating.")
    return "✓ apply_rope: the grader's tests pass (norms kept, scores depend on m - n only, odd d refused)"
