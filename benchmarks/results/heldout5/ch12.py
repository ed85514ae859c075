"""Held-out list 5, chapter 12 (helper W3): written blind from the solution notebook (prose, answers, visible tests)."""
from mutants import Mutant

MUTANTS = [
    # --- common ---
    Mutant("h5_rms_eps_outside_sqrt", "rmsnorm",
           "torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)",
           "1 / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + self.eps)",
           r"eps|sqrt", "common"),
    Mutant("h5_rope_interleaved_pairs", "rope",
           "first, second = x[..., :half], x[..., half:]", "first, second = x[..., 0::2], x[..., 1::2]",
           r"interleav|pair|half|neighbo", "common"),
    Mutant("h5_swiglu_silu_on_up", "swiglu",
           "F.silu(self.gate(x)) * self.up(x)", "self.gate(x) * F.silu(self.up(x))",
           r"gate|up|silu", "common"),
    Mutant("h5_repeat_kv_tiled", "repeat_kv",
           "return x[:, :, None].expand(batch, n_kv, n_rep, length, d).reshape(batch, n_kv * n_rep, length, d)",
           "return x.repeat(1, n_rep, 1, 1)",
           r"tile|repeat|interleav|order|consecutive|in a row|group", "common"),
    Mutant("h5_chat_no_default_system", "chat_prompt",
           '    if not messages or messages[0]["role"] != "system":\n'
           '        messages = [{"role": "system", "content": DEFAULT_SYSTEM}] + list(messages)\n',
           "",
           r"system|default", "common"),
    # --- rare ---
    Mutant("h5_rms_float32_inside", "rmsnorm",
           "return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight",
           "x32 = x.float()\n"
           "        return (x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight",
           r"float32|float64|dtype|precision|cast", "rare"),
    Mutant("h5_rope_float32_frequencies", "rope",
           "dtype=torch.float64, device=x.device) / d)", "dtype=torch.float32, device=x.device) / d)",
           r"float32|float64|precision|dtype|angle", "rare"),
    Mutant("h5_swiglu_hidden_exact_multiple_bumped", "swiglu_hidden",
           "return -(-width // multiple_of) * multiple_of", "return (width // multiple_of + 1) * multiple_of",
           r"multiple|round", "rare"),
    Mutant("h5_gqa_cache_after_repeat", "grouped_query_attention",
           "        if cache is not None:\n"
           "            k, v = cache.update(layer, k, v)               # the cache keeps the n_kv_heads heads only\n"
           "        n_rep = self.n_heads // self.n_kv_heads\n"
           "        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)    # (batch, n_heads, L, d_head)\n",
           "        n_rep = self.n_heads // self.n_kv_heads\n"
           "        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)    # (batch, n_heads, L, d_head)\n"
           "        if cache is not None:\n"
           "            k, v = cache.update(layer, k, v)\n",
           r"cache.{0,60}(heads|repeat|n_kv|small)|repeat.{0,40}cache", "rare"),
    Mutant("h5_gqa_padding_mask_replaces_causal", "grouped_query_attention",
           "allowed = allowed & mask", "allowed = mask",
           r"causal|combine", "rare"),
    Mutant("h5_block_layer_not_passed", "llama_block",
           "position_ids, mask, cache, layer)", "position_ids, mask, cache)",
           r"layer|cache", "rare"),
    Mutant("h5_model_head_always_tied", "llama_model",
           "        if config.tie_embeddings:\n            self.lm_head.weight = self.embed.weight",
           "        self.lm_head.weight = self.embed.weight",
           r"tie", "rare"),
    Mutant("h5_model_context_limit_off_by_one", "llama_model",
           "if start + length > self.config.block_size:", "if start + length >= self.config.block_size:",
           r"block_size|context", "rare"),
    Mutant("h5_reply_max_new_tokens_ignored", "reply",
           "generate(model, prompt_ids, max_new_tokens, eos_token_id=end)", "generate(model, prompt_ids, 64, eos_token_id=end)",
           r"max_new_tokens", "rare"),
]
