"""Chapter 06's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

SCORES = "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])"
SOFTMAX = 'weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)'
BLOCK_FORWARD = ("x = x + self.dropout(self.attn(self.norm1(x), mask=mask)[0])\n"
                 "        return x + self.dropout(self.ff(self.norm2(x)))")
CE_MEAN = "return ((log_sum_exp - picked) * keep).sum() / keep.sum()"
WARMUP = "max_lr * (step + 1) / warmup_steps"
FLOOR = "    if step >= max_steps:\n        return min_lr\n"
GROUPS = ('    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},\n'
          '            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]')
SCALE = "scale = min(1.0, max_norm / (norm.item() + 1e-6))"
SHARE = "share = n_targets / sum(targets)"
TRANSPOSE = "source = hf_state[theirs].t() if transpose else hf_state[theirs]"
SHAPE_CHECK = ("            if source.shape != own[mine].shape:\n"
               "                raise ValueError(f\"{theirs}: shape {tuple(source.shape)} does not fit {mine} "
               "{tuple(own[mine].shape)}\")\n")

MUTANTS = [
    # Exercise 1: causal self-attention
    Mutant("attn-no-sqrt-scale", "causal_self_attention", SCORES, "scores = q @ k.transpose(-2, -1)",
           r"sqrt\(d_head\)|1 ?/ ?sqrt|unscaled|not scaled|scal(e|ing) of the scores"),
    Mutant("attn-scale-by-d-model", "causal_self_attention", "math.sqrt(q.shape[-1])", "math.sqrt(x.shape[-1])",
           r"d_model"),
    Mutant("attn-diagonal-blocked", "causal_self_attention", ".tril()", ".tril(diagonal=-1)",
           r"diagonal|itself"),
    Mutant("attn-triu-future-allowed", "causal_self_attention", ".tril()", ".triu()",
           r"later key|future|above the diagonal"),
    Mutant("attn-softmax-over-queries", "causal_self_attention", SOFTMAX, SOFTMAX.replace("dim=-1", "dim=-2"),
           r"dim=-2|over the queries|query axis|over the keys|last (axis|dim)"),
    Mutant("attn-padding-replaces-causal", "causal_self_attention", "allowed = allowed & mask", "allowed = mask",
           r"causal mask (is )?(dropped|lost|replaced|ignored)|replac|only the padding"),
    Mutant("attn-mask-after-softmax", "causal_self_attention", SOFTMAX,
           "weights = torch.softmax(scores, dim=-1).masked_fill(~allowed, 0.0)",
           r"after (the )?softmax|renormali[sz]", "rare"),
    Mutant("attn-dropout-in-eval", "causal_self_attention", "F.dropout(weights, self.dropout, self.training)",
           "F.dropout(weights, self.dropout)", r"eval|self\.training|training mode", "rare"),
    # Exercise 2: the GPT block
    Mutant("block-erf-gelu", "gpt_block", 'activation="gelu_tanh"', 'activation="gelu"',
           r"tanh|approximat|erf"),
    Mutant("block-post-ln", "gpt_block", BLOCK_FORWARD,
           "x = self.norm1(x + self.dropout(self.attn(x, mask=mask)[0]))\n"
           "        return self.norm2(x + self.dropout(self.ff(x)))",
           r"post-?LN|after the (residual|sum|addition)|before each sub-?layer|inside the branch"),
    Mutant("block-norms-swapped", "gpt_block", BLOCK_FORWARD,
           BLOCK_FORWARD.replace("norm1(x)", "NORM_A").replace("norm2(x)", "norm1(x)").replace("NORM_A", "norm2(x)"),
           r"swap|norm1.*norm2|norm2.*norm1", "rare"),
    # Exercise 3: the whole model
    Mutant("gpt-untied-head", "gpt_model", "        self.lm_head.weight = self.wte.weight\n", "",
           r"not tied|tie"),
    Mutant("gpt-no-positions", "gpt_model", "self.wte(idx) + self.wpe(torch.arange(length, device=idx.device))",
           "self.wte(idx)", r"position|wpe"),
    Mutant("gpt-no-ln-f", "gpt_model", "self.lm_head(self.ln_f(x))", "self.lm_head(x)",
           r"ln_f|final (layer ?)?norm"),
    Mutant("gpt-head-copied-not-tied", "gpt_model", "self.lm_head.weight = self.wte.weight",
           "self.lm_head.weight = nn.Parameter(self.wte.weight.detach().clone())",
           r"not tied|tie|copy", "rare"),
    # Exercise 4: initialisation
    Mutant("init-sqrt-n-layer", "init_gpt_weights", "math.sqrt(2 * n_layer)", "math.sqrt(n_layer)",
           r"2 ?\* ?n_layer|sqrt\(2|2L|two (residual )?branches"),
    Mutant("init-scale-residual-ignored", "init_gpt_weights", "scaled = scale_residual and (", "scaled = (",
           r"scale_residual"),
    Mutant("init-new-parameter-unties", "init_gpt_weights",
           "nn.init.normal_(module.weight, 0.0, std / math.sqrt(2 * n_layer) if scaled else std)",
           "module.weight = nn.Parameter(torch.randn_like(module.weight) * (std / math.sqrt(2 * n_layer) "
           "if scaled else std))", r"no longer tied|in place|tie", "rare"),
    # Exercise 5: cross-entropy
    Mutant("ce-ignore-index-counted", "cross_entropy", CE_MEAN, "return (log_sum_exp - picked).mean()",
           r"ignore_index|-100"),
    Mutant("ce-no-max-subtracted", "cross_entropy", "m = logits.amax(dim=-1, keepdim=True)",
           "m = torch.zeros_like(logits[:, :1])", r"overflow|log-sum-exp|maximum|inf"),
    Mutant("ce-global-max", "cross_entropy", "m = logits.amax(dim=-1, keepdim=True)",
           "m = logits.amax().reshape(1, 1)", r"each row|row's|per row|underflow", "rare"),
    # Exercise 6: batches
    Mutant("batch-y-equals-x", "get_batch", "return windows[:, :-1], windows[:, 1:]",
           "return windows[:, :-1], windows[:, :-1]", r"shift|next token"),
    Mutant("batch-generator-ignored", "get_batch", "(batch_size,), generator=generator)", "(batch_size,))",
           r"generator"),
    # Exercise 7: learning-rate schedule
    Mutant("lr-warmup-starts-at-zero", "lr_schedule", WARMUP, "max_lr * step / warmup_steps",
           r"step \+ 1|step 0|starts at 0|zero at"),
    Mutant("lr-no-floor-after-max-steps", "lr_schedule", FLOOR, "",
           r"max_steps|floor|past the end|after the schedule"),
    Mutant("lr-progress-counts-warmup", "lr_schedule",
           "progress = (step - warmup_steps) / (max_steps - warmup_steps)", "progress = step / max_steps",
           r"warm-?up steps|progress|from the end of (the )?warm-?up", "rare"),
    # Exercise 8: which parameters to decay
    Mutant("groups-decay-by-name-weight", "param_groups", GROUPS,
           '    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]\n'
           '    return [{"params": [p for n, p in named if n.endswith("weight")], "weight_decay": weight_decay},\n'
           '            {"params": [p for n, p in named if not n.endswith("weight")], "weight_decay": 0.0}]',
           r"LayerNorm gain|gains are decayed"),
    Mutant("groups-tables-not-decayed", "param_groups", GROUPS,
           '    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]\n'
           '    decay = [p for n, p in named if p.dim() >= 2 and not n.startswith(("wte", "wpe"))]\n'
           '    return [{"params": decay, "weight_decay": weight_decay},\n'
           '            {"params": [p for n, p in named if all(p is not q for q in decay)], "weight_decay": 0.0}]',
           r"embedding tables|wte|wpe", "rare"),
    # Exercise 9: gradient clipping
    Mutant("clip-per-tensor", "clip_gradients", None,
           "def clip_gradients(parameters, max_norm: float) -> torch.Tensor:\n"
           "    grads = [p.grad for p in parameters if p.grad is not None]\n"
           "    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))\n"
           "    for g in grads:\n"
           "        g.mul_(min(1.0, max_norm / (g.norm().item() + 1e-6)))\n"
           "    return norm\n",
           r"each tensor|per[- ]tensor|one norm over all|direction|separately"),
    Mutant("clip-scales-up-small", "clip_gradients", SCALE, "scale = max_norm / (norm.item() + 1e-6)",
           r"below max_norm|exceeds|only when|scaled up|unchanged"),
    Mutant("clip-returns-norm-after", "clip_gradients", "    return norm\n",
           "    return torch.sqrt(sum((g.double() ** 2).sum() for g in grads))\n",
           r"before clipping|after clipping", "rare"),
    # Exercise 10: gradient accumulation
    Mutant("accum-divide-by-k", "accumulate_gradients", SHARE, "share = 1 / len(micro_batches)",
           r"1 ?/ ?k|divid(ed|ing) by (k|the number of micro)|share of (the )?targets|equal share"),
    Mutant("accum-no-scaling", "accumulate_gradients", SHARE, "share = 1.0",
           r"not scaled|unscaled|no scal|sum of the micro|k times"),
    Mutant("accum-share-by-rows", "accumulate_gradients", "targets = [int((y != -100).sum()) for _, y in micro_batches]",
           "targets = [len(y) for _, y in micro_batches]", r"rows|sequences|padd|-100", "rare"),
    # Exercise 11: loading GPT-2-format weights
    Mutant("load-no-transpose", "load_hf_state_dict", TRANSPOSE, "source = hf_state[theirs]",
           r"transpose|Conv1D|\(in, out\)"),
    Mutant("load-transpose-only-if-mismatch", "load_hf_state_dict", TRANSPOSE,
           "source = hf_state[theirs].t() if hf_state[theirs].shape != own[mine].shape else hf_state[theirs]",
           r"square|c_proj", "rare"),
    Mutant("load-no-shape-check", "load_hf_state_dict", SHAPE_CHECK, "", r"ValueError", "rare"),
]
