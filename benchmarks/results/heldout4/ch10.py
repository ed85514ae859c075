"""Held-out list 4, chapter 10 (writer W2, blind: written from the solution notebook and the release's visible tests only)."""
from mutants import Mutant

MUTANTS = [
    # ---- common ----
    Mutant("h4-quant-one-scale-per-tensor", "quantize_per_channel",
           "absmax = weight.abs().amax(dim=1)", "absmax = weight.abs().amax().expand(weight.shape[0])",
           r"per-tensor|whole (matrix|tensor)|one scale", "common"),
    Mutant("h4-quant-no-clamp", "quantize_per_channel",
           "q = torch.clamp(torch.round(weight / scale[:, None]), -127, 127).to(torch.int8)",
           "q = torch.round(weight / scale[:, None]).to(torch.int8)",
           r"clamp|saturat|wrap", "common"),
    Mutant("h4-dequant-scale-not-per-row", "dequantize",
           "return q.float() * scale.float()[:, None]", "return q.float() * scale.float()",
           r"row|scale\[:, None\]|broadcast|\(out, 1\)", "common"),
    Mutant("h4-prune-threshold-per-layer", "magnitude_masks",
           "threshold = magnitudes.kthvalue(k).values\n    return [w.detach().abs() > threshold for w in weights]",
           "return [w.detach().abs() > w.detach().abs().reshape(-1).kthvalue(max(1, round(sparsity * w.numel()))).values\n"
           "            for w in weights]",
           r"global|per layer|one threshold", "common"),
    Mutant("h4-distill-no-T-squared", "distillation_loss",
           "return alpha * t * t * soft", "return alpha * soft",
           r"T²|T\^2|T \*\* 2|factor|1/T", "common"),
    Mutant("h4-lora-no-scale", "LoRALinear",
           "return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale",
           "return self.base(x) + (x @ self.A.T @ self.B.T)",
           r"scale|alpha / r", "common"),
    # ---- rare ----
    Mutant("h4-quant-scale-keeps-weight-dtype", "quantize_per_channel",
           "weight = weight.detach().float()\n"
           "    if scale is None:\n"
           "        absmax = weight.abs().amax(dim=1)                                       # (out,)\n"
           "        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
           "    scale = torch.as_tensor(scale, dtype=torch.float32)",
           "weight = weight.detach()\n"
           "    if scale is None:\n"
           "        absmax = weight.abs().amax(dim=1)                                       # (out,)\n"
           "        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
           "    scale = torch.as_tensor(scale)",
           r"float32|dtype", "rare"),
    Mutant("h4-quant-divides-weight-in-place", "quantize_per_channel",
           "q = torch.clamp(torch.round(weight / scale[:, None]), -127, 127).to(torch.int8)",
           "q = torch.clamp(torch.round(weight.div_(scale[:, None])), -127, 127).to(torch.int8)",
           r"in place|in-place|mutat|modif|changed the weight", "rare"),
    Mutant("h4-dequant-keeps-scale-dtype", "dequantize",
           "return q.float() * scale.float()[:, None]", "return q * scale[:, None]",
           r"float32|float16|dtype", "rare"),
    Mutant("h4-prune-keeps-ties", "magnitude_masks",
           "return [w.detach().abs() > threshold for w in weights]",
           "return [w.detach().abs() >= threshold for w in weights]",
           r">=|strictly|tie|k - 1", "rare"),
    Mutant("h4-prune-zero-test-on-sparsity", "magnitude_masks",
           "if k == 0:", "if sparsity == 0:",
           r"k == 0|k = 0|0-th|round", "rare"),
    Mutant("h4-distill-teacher-gets-gradient", "distillation_loss",
           "log_p = F.log_softmax(teacher_logits.detach() / t, dim=-1)",
           "log_p = F.log_softmax(teacher_logits / t, dim=-1)",
           r"teacher|detach|fixed target", "rare"),
    Mutant("h4-lora-merge-in-place", "LoRALinear",
           "merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,\n"
           "                           dtype=self.base.weight.dtype)\n"
           "        with torch.no_grad():\n"
           "            merged.weight.copy_(self.base.weight + self.scale * (self.B @ self.A))\n"
           "            if self.base.bias is not None:\n"
           "                merged.bias.copy_(self.base.bias)\n"
           "        return merged",
           "with torch.no_grad():\n"
           "            self.base.weight += self.scale * (self.B @ self.A)\n"
           "        return self.base",
           r"in place|in-place|changed the LoRA|new nn.Linear|merge\(\) changed", "rare"),
    Mutant("h4-lora-max-rank-rejected", "LoRALinear",
           "if not 1 <= r <= min(base.in_features, base.out_features):",
           "if not 1 <= r < min(base.in_features, base.out_features):",
           r"largest allowed|r = min|allowed rank|<= min", "rare"),
]
