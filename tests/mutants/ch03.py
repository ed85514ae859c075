"""Chapter 03's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

ROTATE = "torch.cat([-second, first], dim=-1)"
LN_RETURN = "return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias"
FF = "return self.linear2(F.gelu(self.linear1(x)))"
KEEP = "keep = torch.rand_like(x) >= self.p"
POST = "        x = self.norm1(x + self.attn(x, mask=mask)[0])\n        return self.norm2(x + self.ff(x))\n"
PRE = ("            x = x + self.attn(self.norm1(x), mask=mask)[0]\n"
       "            return x + self.ff(self.norm2(x))\n")
ENC_LAYERS = "nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff, norm_first) for _ in range(n_layers))"
FINAL = "self.final_norm = LayerNorm(d_model) if norm_first else nn.Identity()"

MUTANTS = [
    # apply_rope
    Mutant("rope-interleaved-pairs", "apply_rope",
           "    first, second = x[..., : d // 2], x[..., d // 2 :]\n    return x * cos + " + ROTATE + " * sin\n",
           "    angles_x = angles.to(x.dtype)\n    first, second = x[..., 0::2], x[..., 1::2]\n"
           "    rotated = torch.stack([first * angles_x.cos() - second * angles_x.sin(),\n"
           "                           first * angles_x.sin() + second * angles_x.cos()], dim=-1)\n"
           "    return rotated.flatten(-2)\n", r"interleav|\(2j, 2j ?\+ ?1\)|adjacent|j \+ d/2"),
    Mutant("rope-wrong-sign", "apply_rope", ROTATE, "torch.cat([second, -first], dim=-1)",
           r"sign|clockwise|opposite|backwards|negative angle|wrong direction"),
    Mutant("rope-frequency-missing-2", "apply_rope", "base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)",
           "base ** (-torch.arange(0, d // 2, dtype=torch.float64) / d)", r"2j|-2j ?/ ?d|frequenc|theta"),
    Mutant("rope-positions-ignored", "apply_rope", "    if positions is None:\n        positions",
           "    if True:\n        positions", r"positions"),
    Mutant("rope-base-ignored", "apply_rope", "theta = base **", "theta = 10000.0 **", r"\bbase\b", "rare"),
    Mutant("rope-odd-d-accepted", "apply_rope", "    if d % 2:\n        raise ValueError(f\"apply_rope: d = {d} is odd; "
           "the features are rotated in pairs\")\n", "", r"ValueError|odd", "rare"),
    Mutant("rope-dtype-float64", "apply_rope", "], dim=-1).to(x.dtype)          # (L, d): pair",
           "], dim=-1)          # (L, d): pair", r"dtype|float32|float64", "rare"),
    # LayerNorm
    Mutant("ln-unbiased-variance", "layer_norm", "((x - mean) ** 2).mean(dim=-1, keepdim=True)",
           "x.var(dim=-1, keepdim=True)", r"biased|unbiased|correction|divide by d\b|n - 1|d - 1"),
    Mutant("ln-eps-outside-sqrt", "layer_norm", "torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)",
           r"(inside|outside|under) the square root|sqrt\(var(iance)? \+ eps\)"),
    Mutant("ln-wrong-dim", "layer_norm", "mean = x.mean(dim=-1, keepdim=True)", "mean = x.mean(dim=0, keepdim=True)",
           r"last dim|dim=-1|each (token|vector)|features"),
    Mutant("ln-eps-hardcoded", "layer_norm", "(var + self.eps)", "(var + 1e-5)", r"\beps\b"),
    Mutant("ln-not-parameters", "layer_norm", "self.weight = nn.Parameter(torch.ones(d_model))",
           "self.weight = torch.ones(d_model)", r"Parameter"),
    Mutant("ln-bias-forgotten", "layer_norm", " * self.weight + self.bias", " * self.weight",
           r"bias|beta|shift", "rare"),
    # FeedForward
    Mutant("ff-relu", "feed_forward", "F.gelu(", "F.relu(", r"relu|gelu|activation"),
    Mutant("ff-tanh-gelu", "feed_forward", "F.gelu(self.linear1(x))", "F.gelu(self.linear1(x), approximate=\"tanh\")",
           r"tanh|exact"),
    Mutant("ff-no-activation", "feed_forward", FF, "return self.linear2(self.linear1(x))",
           r"activation|gelu|linear"),
    Mutant("ff-activation-after-linear2", "feed_forward", FF, "return F.gelu(self.linear2(self.linear1(x)))",
           r"after linear2|order|last layer|output of linear2", "rare"),
    # Dropout
    Mutant("dropout-p-is-keep", "dropout", KEEP, "keep = torch.rand_like(x) < self.p",
           r"keep|probability to drop|drop probability"),
    Mutant("dropout-no-rescale", "dropout", "return x * keep / (1.0 - self.p)", "return x * keep",
           r"1 - p|rescal|divid|scale"),
    Mutant("dropout-always-on", "dropout", "if not self.training or self.p == 0.0:", "if self.p == 0.0:",
           r"eval|training"),
    Mutant("dropout-divide-by-p", "dropout", "/ (1.0 - self.p)", "/ self.p", r"1 - p"),
    Mutant("dropout-p1-nan", "dropout", "        if self.p == 1.0:\n            return torch.zeros_like(x)\n", "",
           r"p = 1|divide by zero|nan|zeros", "rare"),
    Mutant("dropout-same-mask", "dropout", KEEP,
           "keep = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) >= self.p",
           r"fresh|same mask|every call|each call|new mask", "rare"),
    # TransformerBlock
    Mutant("post-ln-norm-inside-residual", "transformer_block", POST,
           "        x = x + self.norm1(self.attn(x, mask=mask)[0])\n        return x + self.norm2(self.ff(x))\n",
           r"residual|(norm|LN)\(x \+|after the (residual|sum)|x \+ sublayer"),
    Mutant("pre-ln-residual-from-normed", "transformer_block", PRE,
           "            x = self.norm1(x)\n            x = x + self.attn(x, mask=mask)[0]\n"
           "            x = self.norm2(x)\n            return x + self.ff(x)\n",
           r"residual|un-?normali[sz]ed|the input x|skip"),
    Mutant("block-eps-not-passed", "transformer_block", "self.norm1 = LayerNorm(d_model, eps)\n"
           "        self.norm2 = LayerNorm(d_model, eps)", "self.norm1 = LayerNorm(d_model)\n"
           "        self.norm2 = LayerNorm(d_model)", r"\beps\b"),
    Mutant("block-mask-dropped", "transformer_block", "self.attn(x, mask=mask)[0]", "self.attn(x)[0]", r"mask"),
    Mutant("block-layouts-swapped", "transformer_block", "if self.norm_first:", "if not self.norm_first:",
           r"norm_first|pre-LN|post-LN|layout"),
    Mutant("block-one-norm-twice", "transformer_block", "return self.norm2(x + self.ff(x))",
           "return self.norm1(x + self.ff(x))", r"norm2|same LayerNorm|one LayerNorm|own LayerNorm", "rare"),
    # Encoder
    Mutant("encoder-shared-block", "encoder", ENC_LAYERS,
           "nn.ModuleList([TransformerBlock(d_model, n_heads, d_ff, norm_first)] * n_layers)", r"share|same object"),
    Mutant("encoder-final-norm-always", "encoder", FINAL, "self.final_norm = LayerNorm(d_model)",
           r"final_norm|final LayerNorm|Identity"),
    Mutant("encoder-no-final-norm", "encoder", FINAL, "self.final_norm = nn.Identity()",
           r"final_norm|final LayerNorm"),
    Mutant("encoder-norm-first-not-passed", "encoder", "TransformerBlock(d_model, n_heads, d_ff, norm_first)",
           "TransformerBlock(d_model, n_heads, d_ff)", r"norm_first|pass .* on|layout"),
    Mutant("encoder-mask-dropped", "encoder", "x = layer(x, mask=mask)", "x = layer(x)", r"mask"),
    Mutant("encoder-python-list", "encoder", ENC_LAYERS,
           "[TransformerBlock(d_model, n_heads, d_ff, norm_first) for _ in range(n_layers)]",
           r"ModuleList|regist|plain list", "rare"),
    # encoder_parameters
    Mutant("count-out-bias-forgotten", "encoder_parameters", "4 * b * d_model       #", "3 * b * d_model       #",
           r"out(put)? projection's bias|out\.bias|bias of (the )?out"),
    Mutant("count-final-norm-forgotten", "encoder_parameters", "final = (1 + b) * d_model if norm_first else 0",
           "final = 0", r"final"),
    Mutant("count-times-heads", "encoder_parameters", "attention = 4 * d_model * d_model",
           "attention = 4 * d_model * d_model * n_heads", r"heads"),
    Mutant("count-norm-bias-always", "encoder_parameters", "norms = 2 * (1 + b) * d_model",
           "norms = 4 * d_model", r"bias=False|biases counted"),
    Mutant("count-one-norm-per-block", "encoder_parameters", "norms = 2 * (1 + b) * d_model",
           "norms = (1 + b) * d_model", r"one LayerNorm per block|two LayerNorms|norm1 and norm2", "rare"),
    Mutant("count-float", "encoder_parameters", "    return n_layers * (attention + feed_forward + norms) + final",
           "    return float(n_layers * (attention + feed_forward + norms) + final)", r"\bint\b|float", "rare"),
]
