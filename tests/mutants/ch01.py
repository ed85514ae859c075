"""Chapter 01's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

SOFTMAX_SHIFT = "    z = z - z.amax(dim=dim, keepdim=True)  # now every exponent is <= 0\n"
MASK_FILL = "scores = scores.masked_fill(~mask, float(\"-inf\"))"

MUTANTS = [
    # softmax_stable
    Mutant("no-max-shift", "softmax_stable", SOFTMAX_SHIFT, "", r"overflow|subtract.*max|maximum"),
    Mutant("fixed-last-dim", "softmax_stable", "exp.sum(dim=dim, keepdim=True)", "exp.sum(dim=-1, keepdim=True)",
           r"dim=0|the `dim` argument|over dim|along dim"),
    Mutant("no-keepdim", "softmax_stable", "exp.sum(dim=dim, keepdim=True)", "exp.sum(dim=dim)", r"keepdim"),
    Mutant("temperature-multiplied", "softmax_stable", "x / temperature", "x * temperature",
           r"multiplied by the temperature|divide.*temperature|temperature.*divid"),
    Mutant("temperature-ignored", "softmax_stable", "z = x / temperature", "z = x", r"temperature ignored|ignor"),
    Mutant("shift-by-global-max", "softmax_stable", "z.amax(dim=dim, keepdim=True)", "z.max()",
           r"row maximum|each row|per row|own maximum|underflow|whole tensor", "rare"),
    Mutant("float64-result", "softmax_stable", "exp = torch.exp(z)", "exp = torch.exp(z.double())", r"dtype", "rare"),
    # causal_mask
    Mutant("upper-triangular", "causal_mask", ".tril()", ".triu()", r"upper-triangular|future"),
    Mutant("diagonal-hidden", "causal_mask", ".tril()", ".tril(diagonal=-1)", r"diagonal|itself"),
    Mutant("float-mask", "causal_mask", "dtype=torch.bool, ", "", r"bool"),
    Mutant("inverted-mask", "causal_mask", "return torch.ones", "return ~torch.ones", r"invert|True should mean"),
    Mutant("device-ignored", "causal_mask", ", device=device)", ")", r"device", "rare"),
    # scaled_dot_product_attention
    Mutant("no-scale", "scaled_dot_product_attention", " / math.sqrt(d_k)", "", r"no scaling|√d_k|sqrt"),
    Mutant("scale-by-d_k", "scaled_dot_product_attention", "math.sqrt(d_k)", "d_k", r"by d_k instead"),
    Mutant("softmax-over-queries", "scaled_dot_product_attention", "softmax_stable(scores, dim=-1)",
           "softmax_stable(scores, dim=-2)", r"over the queries|dim=-2"),
    Mutant("mask-inverted", "scaled_dot_product_attention", "masked_fill(~mask,", "masked_fill(mask,",
           r"invert|True (should )?means?|where the mask is True|blocked"),
    Mutant("mask-after-softmax", "scaled_dot_product_attention",
           "    if mask is not None:\n        " + MASK_FILL
           + "\n    weights = softmax_stable(scores, dim=-1).nan_to_num(0.0)  # fully masked rows: 0/0 -> 0\n",
           "    weights = softmax_stable(scores, dim=-1)\n    if mask is not None:\n        weights = weights * mask\n",
           r"after the softmax|no longer sum to 1|renormalis"),
    Mutant("masked-with-zero", "scaled_dot_product_attention", "float(\"-inf\")", "0.0",
           r"-inf|minus infinity|zero score|score of 0"),
    Mutant("fully-masked-nan", "scaled_dot_product_attention", ".nan_to_num(0.0)", "",
           r"fully masked|all masked|every key|nan"),
    Mutant("large-negative-not-inf", "scaled_dot_product_attention", "float(\"-inf\")", "-1e9",
           r"fully masked|all masked|every key|uniform", "rare"),
    Mutant("transpose-dims-1-2", "scaled_dot_product_attention", "k.transpose(-2, -1)", "k.transpose(1, 2)",
           r"last two|leading dim|transpose\(-2, -1\)|any number of"),
    Mutant("keys-dot-T", "scaled_dot_product_attention", "k.transpose(-2, -1)", "k.T", r"\.T\b|\.mT|last two|reverse"),
    Mutant("d_k-from-values", "scaled_dot_product_attention", "d_k = q.shape[-1]", "d_k = v.shape[-1]",
           r"d_v|values' size|q\.shape\[-1\]|query size|head size", "rare"),
    Mutant("weights-detached", "scaled_dot_product_attention", "return weights @ v, weights",
           "return weights.detach() @ v, weights", r"detach|gradient", "rare"),
]
