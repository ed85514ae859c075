"""Chapter 03's judges: the solution passes; plausible mistakes fail with a message naming them."""

from __future__ import annotations

import pytest

from judge_helpers import failure, mutate, run, solution_namespace
from tfs.nn import MultiHeadAttention

CHAPTER = "03-transformer-block"
USES = {"layer_norm_parameters": "LayerNorm", "layer_norm_values": "LayerNorm", "layer_norm_gradients": "LayerNorm",
        "feed_forward": "FeedForward", "transformer_block_layers": "TransformerBlock", "post_ln_block": "TransformerBlock",
        "pre_ln_block": "TransformerBlock",
        "encoder_structure": "Encoder", "encoder_parity": "Encoder", "dropout_eval": "Dropout", "dropout_training": "Dropout",
        "encoder_parameters_counts": "encoder_parameters", "encoder_parameters_large": "encoder_parameters",
        "rope_values": "apply_rope", "rope_properties": "apply_rope"}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(CHAPTER, MultiHeadAttention=MultiHeadAttention)


@pytest.mark.parametrize("test", list(USES))
def test_solution_passes(solution, test):
    assert run(f"ch03.{test}", **{USES[test]: solution[USES[test]]}).startswith("✓")


@pytest.mark.parametrize("exercise, old, new, test, words", [
    ("layer_norm", "self.weight = nn.Parameter(torch.ones(d_model))", "self.weight = torch.ones(d_model)",
     "layer_norm_parameters", "nn.Parameter"),
    ("layer_norm", "self.eps = eps", "self.eps = 1e-5", "layer_norm_parameters", "eps argument is ignored"),
    ("layer_norm", "var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)", "var = x.var(dim=-1, keepdim=True)",
     "layer_norm_values", "unbiased variance"),
    ("layer_norm", "torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)", "layer_norm_values",
     "eps added outside the square root"),
    ("layer_norm", " * self.weight + self.bias", "", "layer_norm_values", "weight and bias not applied"),
    ("feed_forward", "F.gelu(self.linear1(x))", "F.relu(self.linear1(x))", "feed_forward", "ReLU instead of GELU"),
    ("feed_forward", "F.gelu(self.linear1(x))", "F.gelu(self.linear1(x), approximate='tanh')", "feed_forward",
     "tanh approximation"),
    ("transformer_block", "x = self.norm1(x + self.attn(x, mask=mask)[0])", "x = x + self.norm1(self.attn(x, mask=mask)[0])",
     "post_ln_block", "values differ"),
    ("transformer_block", "self.attn(x, mask=mask)", "self.attn(x)", "post_ln_block", "with a key-padding mask"),
    ("transformer_block", "x = x + self.attn(self.norm1(x), mask=mask)[0]",
     "x = self.norm1(x) + self.attn(self.norm1(x), mask=mask)[0]", "pre_ln_block", "the residual adds LN(x) instead of x"),
    ("transformer_block", "self.norm_first = norm_first", "self.norm_first = False", "transformer_block_layers", "norm_first"),
    ("transformer_block", "self.norm_first = norm_first", "self.norm_first = False", "pre_ln_block", "the post-LN layout"),
    ("transformer_block", "self.norm2 = LayerNorm(d_model, eps)", "self.norm2 = LayerNorm(d_model)",
     "transformer_block_layers", "pass eps on"),
    ("transformer_block", "self.norm2 = LayerNorm(d_model, eps)", "self.norm2 = self.norm1", "transformer_block_layers",
     "same module"),
    ("encoder", "nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, norm_first) for _ in range(n_layers))",
     "nn.ModuleList([TransformerBlock(d_model, n_heads, d_ff, norm_first)] * n_layers)", "encoder_structure", "share one block"),
    ("encoder", "TransformerBlock(d_model, n_heads, d_ff, norm_first) for", "TransformerBlock(d_model, n_heads, d_ff) for",
     "encoder_structure", "pass norm_first on"),
    ("encoder", "self.final_norm = LayerNorm(d_model) if norm_first else nn.Identity()", "self.final_norm = nn.Identity()",
     "encoder_structure", "final_norm"),
    ("encoder", "x = layer(x, mask=mask)", "x = layer(x)", "encoder_parity", "causal mask"),
    ("dropout", "if not self.training or self.p == 0.0:", "if self.p == 0.0:", "dropout_eval", "eval mode"),
    ("dropout", "self.p = p", "self.p = 0.5", "dropout_eval", "expected 0.3"),
    ("dropout", "return x * keep / (1.0 - self.p)", "return x * keep", "dropout_training", "unchanged: divide them by 1 - p"),
    ("dropout", "return x * keep / (1.0 - self.p)", "return x * keep * (1.0 - self.p)", "dropout_training",
     "multiplied by 1 - p instead of divided"),
    ("dropout", "keep = torch.rand_like(x) >= self.p", "keep = torch.rand_like(x) < self.p", "dropout_training",
     "p is the probability to drop, not to keep"),
    ("dropout", "keep = torch.rand_like(x) >= self.p",
     "keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype) >= self.p",
     "dropout_training", "two calls dropped the same elements"),
    ("dropout", "return torch.zeros_like(x)\n", "pass\n", "dropout_training", "Dropout(1.0)"),
    ("encoder_parameters", "attention = 4 * d_model * d_model + 4 * b * d_model",
     "attention = n_heads * (4 * d_model * d_model + 4 * b * d_model)", "encoder_parameters_large", "once per head"),
    ("encoder_parameters", "final = (1 + b) * d_model if norm_first else 0", "final = 0", "encoder_parameters_counts",
     "final LayerNorm of a pre-LN stack left out"),
    ("encoder_parameters", "norms = 2 * (1 + b) * d_model", "norms = 2 * d_model", "encoder_parameters_counts",
     "LayerNorms' biases left out"),
    ("encoder_parameters", "feed_forward = 2 * d_model * d_ff + b * (d_ff + d_model)",
     "feed_forward = 8 * d_model * d_model + b * 5 * d_model", "encoder_parameters_counts", "d_ff taken as 4·d_model"),
    ("encoder_parameters", "return n_layers * (attention + feed_forward + norms) + final",
     "return float(n_layers * (attention + feed_forward + norms) + final)", "encoder_parameters_counts", "Python int"),
    # RoPE (optional): the usual mistakes, each named by the judge
    ("apply_rope", "first, second = x[..., : d // 2], x[..., d // 2 :]\n    return x * cos + torch.cat([-second, first], dim=-1) * sin",
     "first, second = x[..., 0::2], x[..., 1::2]\n    cos, sin = cos[..., : d // 2].repeat_interleave(2, -1), "
     "sin[..., : d // 2].repeat_interleave(2, -1)\n    return x * cos + torch.stack([-second, first], -1).flatten(-2) * sin",
     "rope_values", "interleaved pairing"),
    ("apply_rope", "theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)",
     "theta = base ** (-torch.arange(d // 2, dtype=torch.float64) / d)", "rope_values", "exponent j/d instead of 2j/d"),
    ("apply_rope", "theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)          # (d/2,)\n"
     "    angles = positions.to(torch.float64)[:, None] * theta                      # (L, d/2)\n"
     "    cos = torch.cat([angles.cos(), angles.cos()], dim=-1).to(x.dtype)          # (L, d): pair j uses j and j + d/2\n"
     "    sin = torch.cat([angles.sin(), angles.sin()], dim=-1).to(x.dtype)",
     "angles = positions.to(torch.float64)[:, None] * base ** (-torch.arange(d, dtype=torch.float64) / d)\n"
     "    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)", "rope_values", "one angle per feature"),
    ("apply_rope", "if positions is None:", "if True:", "rope_values", "positions argument ignored"),
    ("apply_rope", "torch.cat([-second, first], dim=-1) * sin", "torch.cat([second, -first], dim=-1) * sin", "rope_values",
     "wrong direction"),
    ("apply_rope", "torch.cat([-second, first], dim=-1) * sin", "x * sin", "rope_properties", "norm of every vector"),
    ("apply_rope", "return x * cos + torch.cat([-second, first], dim=-1) * sin",
     "return (x * cos + torch.cat([-second, first], dim=-1) * sin).float()", "rope_values", "dtype"),
    ("apply_rope", "    if d % 2:\n        raise ValueError(f\"apply_rope: d = {d} is odd; the features are rotated in pairs\")\n", "",
     "rope_properties", "expected a ValueError"),
    ("apply_rope", "angles = positions.to(torch.float64)[:, None] * theta",
     "angles = positions.to(torch.float64)[:, None] * theta * (1 + (positions.to(torch.float64)[:, None] > 25))",
     "rope_properties", "the same offset m - n = "),
])
def test_mutant_fails_with_its_mistake_named(solution, exercise, old, new, test, words):
    mutant = mutate(solution, exercise, old, new, CHAPTER)
    message = failure(f"ch03.{test}", **{USES[test]: mutant[USES[test]]})
    assert words in message, message


@pytest.mark.parametrize("answer, old, new", [
    ("layer_norm", "((x - mean) ** 2).mean(dim=-1, keepdim=True)", "x.var(dim=-1, keepdim=True)"),
    ("layer_norm", "self.weight = nn.Parameter(torch.ones(d_model))", "self.weight = torch.ones(d_model)"),
    ("feed_forward", "F.gelu(", "F.relu("),
    ("transformer_block", "if self.norm_first:", "if not self.norm_first:"),
])
@pytest.mark.parametrize("test", ["transformer_block_layers", "post_ln_block", "pre_ln_block", "encoder_structure",
                                  "encoder_parity"])
def test_an_earlier_mistake_costs_no_later_points(solution, answer, old, new, test):
    """Issue 31 (b): the block's judges run it on reference LayerNorm and FeedForward, the encoder's on a reference
    block; the block's own mistakes still cost the block's points."""
    if answer == "transformer_block" and USES[test] == "TransformerBlock":
        return
    mutant = mutate(solution, answer, old, new, CHAPTER)
    assert run(f"ch03.{test}", **{USES[test]: mutant[USES[test]]}).startswith("✓")


def test_one_layer_norm_used_twice_fails(solution):
    """The block's judges give norm1 and norm2 different weights: a block that uses norm1 twice is caught."""
    mutant = mutate(solution, "transformer_block", "return self.norm2(x + self.ff(x))", "return self.norm1(x + self.ff(x))",
                    CHAPTER)
    assert "values differ" in failure("ch03.post_ln_block", TransformerBlock=mutant["TransformerBlock"])
