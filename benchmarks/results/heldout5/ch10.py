"""Held-out list 5, chapter 10, written blind by W2 (session 11) from the solution notebook alone."""
from mutants import Mutant

MUTANTS = [
    # ---- common ----
    Mutant("h5_quant_per_column", "quantize_per_channel",
           "        absmax = weight.abs().amax(dim=1)                                       # (out,)\n"
           "        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
           "    scale = torch.as_tensor(scale, dtype=torch.float32)\n"
           "    q = torch.clamp(torch.round(weight / scale[:, None]), -127, 127).to(torch.int8)",
           "        absmax = weight.abs().amax(dim=0)                                       # (in,)\n"
           "        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
           "    scale = torch.as_tensor(scale, dtype=torch.float32)\n"
           "    q = torch.clamp(torch.round(weight / scale[None, :]), -127, 127).to(torch.int8)",
           r"column", "common"),
    Mutant("h5_quant_truncate_not_round", "quantize_per_channel",
           "q = torch.clamp(torch.round(weight / scale[:, None]), -127, 127).to(torch.int8)",
           "q = torch.clamp(weight / scale[:, None], -127, 127).to(torch.int8)",
           r"round|trunc", "common"),
    Mutant("h5_prune_per_layer_threshold", "magnitude_masks",
           "    threshold = magnitudes.kthvalue(k).values\n"
           "    return [w.detach().abs() > threshold for w in weights]",
           "    return [w.detach().abs() > w.detach().abs().reshape(-1).kthvalue(max(1, round(sparsity * w.numel()))).values\n"
           "            for w in weights]",
           r"per layer|global", "common"),
    Mutant("h5_distill_no_T2", "distillation_loss",
           "return alpha * t * t * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)",
           "return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)",
           r"factor|T²|T\^2|T\*\*2|temperature", "common"),
    Mutant("h5_lora_scale_r_over_alpha", "LoRALinear",
           "self.r, self.alpha, self.scale = r, alpha, alpha / r",
           "self.r, self.alpha, self.scale = r, alpha, r / alpha",
           r"r / alpha|alpha / r", "common"),
    # ---- rare ----
    Mutant("h5_quant_no_clamp", "quantize_per_channel",
           "q = torch.clamp(torch.round(weight / scale[:, None]), -127, 127).to(torch.int8)",
           "q = torch.round(weight / scale[:, None]).to(torch.int8)",
           r"clamp|saturat|wrap", "rare"),
    Mutant("h5_quant_inf_not_rejected", "quantize_per_channel",
           "if not torch.isfinite(weight).all():",
           "if torch.isnan(weight).any():",
           r"inf", "rare"),
    Mutant("h5_quant_given_scale_dtype_kept", "quantize_per_channel",
           "scale = torch.as_tensor(scale, dtype=torch.float32)",
           "scale = torch.as_tensor(scale)",
           r"float32|dtype", "rare"),
    Mutant("h5_dequant_in_scale_dtype", "dequantize",
           "return q.float() * scale.float()[:, None]",
           "return q.to(scale.dtype) * scale[:, None]",
           r"float32|dtype|float16", "rare"),
    Mutant("h5_prune_exactly_k_ties_split", "magnitude_masks",
           "    threshold = magnitudes.kthvalue(k).values\n"
           "    return [w.detach().abs() > threshold for w in weights]",
           "    keep = torch.ones_like(magnitudes, dtype=torch.bool)\n"
           "    keep[magnitudes.argsort()[:k]] = False\n"
           "    return list(keep.split([w.numel() for w in weights]))\n",
           r"tie|equal|strictly", "rare"),
    Mutant("h5_prune_sparsity_one_allowed", "magnitude_masks",
           "if not 0.0 <= sparsity < 1.0:",
           "if not 0.0 <= sparsity <= 1.0:",
           r"\[0, 1\)|1\.0|sparsity", "rare"),
    Mutant("h5_distill_teacher_not_detached", "distillation_loss",
           "log_p = F.log_softmax(teacher_logits.detach() / t, dim=-1)",
           "log_p = F.log_softmax(teacher_logits / t, dim=-1)",
           r"teacher|detach|fixed target", "rare"),
    Mutant("h5_lora_merge_in_place", "LoRALinear",
           "        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,\n"
           "                           dtype=self.base.weight.dtype)\n"
           "        with torch.no_grad():\n"
           "            merged.weight.copy_(self.base.weight + self.scale * (self.B @ self.A))\n"
           "            if self.base.bias is not None:\n"
           "                merged.bias.copy_(self.base.bias)\n"
           "        return merged",
           "        with torch.no_grad():\n"
           "            self.base.weight += self.scale * (self.B @ self.A)\n"
           "        return self.base",
           r"in place|new nn\.Linear|changed the LoRA layer", "rare"),
    Mutant("h5_lora_rank_bound_out_only", "LoRALinear",
           "if not 1 <= r <= min(base.in_features, base.out_features):",
           "if not 1 <= r <= base.out_features:",
           r"min\(|in_features|rank", "rare"),
]
