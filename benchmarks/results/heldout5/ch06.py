"""Held-out list 5, chapter 06 (GPT): written blind by helper W1 from the solution notebook only."""

from mutants import Mutant

MUTANTS = [
    # ---- common -------------------------------------------------------------------------------------------------
    Mutant("h5_06_scale_by_model_width", "causal_self_attention",
           "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])",
           "scores = q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1])",
           r"sqrt|scale|d_head|d_model|width", "common"),
    Mutant("h5_06_block_exact_gelu", "gpt_block",
           "activation=\"gelu_tanh\"",
           "activation=\"gelu\"",
           r"gelu|tanh|approximat", "common"),
    Mutant("h5_06_warmup_from_zero", "lr_schedule",
           "return max_lr * (step + 1) / warmup_steps",
           "return max_lr * step / warmup_steps",
           r"warm|step \+ 1|off by one|first step|zero", "common"),
    Mutant("h5_06_clip_each_tensor", "clip_gradients",
           "    scale = min(1.0, max_norm / (norm.item() + 1e-6))\n"
           "    for g in grads:\n"
           "        g.mul_(scale)\n",
           "    for g in grads:\n"
           "        g.mul_(min(1.0, max_norm / (g.norm().item() + 1e-6)))\n",
           r"each tensor|per.tensor|total|global|one norm|all of them|direction", "common"),
    Mutant("h5_06_accumulate_divide_by_k", "accumulate_gradients",
           "share = n_targets / sum(targets)",
           "share = 1 / len(micro_batches)",
           r"share|targets|divid|scale|micro.batch|k\b", "common"),
    # ---- rare ---------------------------------------------------------------------------------------------------
    Mutant("h5_06_padding_mask_replaces_causal", "causal_self_attention",
           "allowed = allowed & mask",
           "allowed = mask",
           r"causal|both|future|later key|j <= i", "rare"),
    Mutant("h5_06_block_mask_not_passed", "gpt_block",
           "self.attn(self.norm1(x), mask=mask)",
           "self.attn(self.norm1(x))",
           r"mask|padding", "rare"),
    Mutant("h5_06_blocks_without_dropout", "gpt_model",
           "GPTBlock(d, config.n_head, config.dropout)",
           "GPTBlock(d, config.n_head)",
           r"dropout", "rare"),
    Mutant("h5_06_init_layernorm_untouched", "init_gpt_weights",
           "            elif hasattr(module, \"weight\") and \"norm\" in type(module).__name__.lower():\n"
           "                nn.init.ones_(module.weight)\n"
           "                if module.bias is not None:\n"
           "                    nn.init.zeros_(module.bias)\n",
           "",
           r"LayerNorm|norm|ones|gain|1 and 0", "rare"),
    Mutant("h5_06_ce_ignores_negative_only", "cross_entropy",
           "keep = targets != ignore_index",
           "keep = targets >= 0",
           r"ignore_index", "rare"),
    Mutant("h5_06_batch_keeps_data_dtype", "get_batch",
           "for s in starts.tolist()]).long()",
           "for s in starts.tolist()])",
           r"dtype|long|int64", "rare"),
    Mutant("h5_06_param_groups_tables_not_decayed", "param_groups",
           "    return [{\"params\": [p for p in params if p.dim() >= 2], \"weight_decay\": weight_decay},\n"
           "            {\"params\": [p for p in params if p.dim() < 2], \"weight_decay\": 0.0}]",
           "    tables = {id(model.wte.weight), id(model.wpe.weight)}                 # minGPT: no decay on embeddings\n"
           "    return [{\"params\": [p for p in params if p.dim() >= 2 and id(p) not in tables], \"weight_decay\": weight_decay},\n"
           "            {\"params\": [p for p in params if p.dim() < 2 or id(p) in tables], \"weight_decay\": 0.0}]",
           r"embedding|table|wte|wpe", "rare"),
    Mutant("h5_06_clip_generator_read_twice", "clip_gradients",
           "    for g in grads:\n"
           "        g.mul_(scale)\n",
           "    for p in parameters:\n"
           "        if p.grad is not None:\n"
           "            p.grad.mul_(scale)\n",
           r"generator|iterat|once|list", "rare"),
    Mutant("h5_06_load_compares_numel", "load_hf_state_dict",
           "if source.shape != own[mine].shape:",
           "if source.numel() != own[mine].numel():",
           r"ValueError|shape", "rare"),
]
