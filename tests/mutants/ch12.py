"""Chapter 12's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

MUTANTS = [
    # RMSNorm
    Mutant("rms-centred", "rmsnorm", "x.pow(2).mean(dim=-1", "(x - x.mean(-1, keepdim=True)).pow(2).mean(dim=-1",
           r"mean subtracted|centr|cent(er|re)|standard deviation|LayerNorm"),
    Mutant("rms-wrong-dim", "rmsnorm", "mean(dim=-1, keepdim=True)", "mean(dim=1, keepdim=True)",
           r"over dim=|instead of the last|features\) dimension"),
    Mutant("rms-eps-outside", "rmsnorm", "torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)",
           "1 / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + self.eps)", r"eps.*(inside|root)|inside the (square )?root",
           "rare"),
    # RoPE
    Mutant("rope-interleaved", "rope", "first, second = x[..., :half], x[..., half:]",
           "first, second = x[..., 0::2], x[..., 1::2]", r"interleav|neighbour|halves"),
    Mutant("rope-sign", "rope", "first * cos - second * sin, second * cos + first * sin",
           "first * cos + second * sin, second * cos - first * sin", r"sign|direction|clockwise|backwards|negative"),
    Mutant("rope-frequencies", "rope", "theta ** (-2 * torch.arange", "theta ** (-1 * torch.arange",
           r"frequenc|exponent|2j"),
    Mutant("rope-ignores-position-ids", "rope", "angles = position_ids[:, None, :, None].to(torch.float64)",
           "angles = torch.arange(x.shape[-2], dtype=torch.float64, device=x.device)[None, None, :, None]",
           r"position_ids ignored|its own positions"),
    Mutant("rope-no-odd-check", "rope",
           '    if d % 2:\n        raise ValueError(f"rope: the head size {d} is odd, so its features cannot be paired")\n',
           "", r"odd|ValueError", "rare"),
    Mutant("rope-float64-out", "rope", "cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)",
           "cos, sin = angles.cos(), angles.sin()", r"dtype", "rare"),
    # SwiGLU's width and layer
    Mutant("hidden-round-down", "swiglu_hidden", "-(-width // multiple_of) * multiple_of",
           "(width // multiple_of) * multiple_of", r"round(ed|s)? up|round(ed|s)? down|down"),
    Mutant("hidden-no-two-thirds", "swiglu_hidden", "budget // (3 * d_model)", "budget // (2 * d_model)",
           r"three|3 matri|2/3|8d/3|8 ?\* ?d_model ?/ ?3|parameter"),
    Mutant("hidden-nearest", "swiglu_hidden", "-(-width // multiple_of) * multiple_of",
           "round(width / multiple_of) * multiple_of", r"round(ed|s)? up|nearest", "rare"),
    Mutant("swiglu-gelu", "swiglu", "F.silu(", "F.gelu(", r"silu|swish|sigmoid"),
    Mutant("swiglu-gate-swapped", "swiglu", "F.silu(self.gate(x)) * self.up(x)", "self.gate(x) * F.silu(self.up(x))",
           r"SiLU on the up branch|instead of the gate"),
    Mutant("swiglu-silu-of-product", "swiglu", "self.down(F.silu(self.gate(x)) * self.up(x))",
           "self.down(F.silu(self.gate(x) * self.up(x)))", r"product", "rare"),
    # repeat_kv and grouped-query attention
    Mutant("repeat-tiled", "repeat_kv", None,
           "def repeat_kv(x, n_rep):\n    return x.repeat(1, n_rep, 1, 1)\n", r"i // n_rep|interleav|tile|order|group"),
    Mutant("repeat-mixes-positions", "repeat_kv", "x[:, :, None].expand(batch, n_kv, n_rep, length, d)",
           "x[:, :, :, None].expand(batch, n_kv, length, n_rep, d)", r"position|order|length", "rare"),
    Mutant("gqa-rope-on-values", "grouped_query_attention", "v = heads(self.v, self.n_kv_heads)",
           "v = rope(heads(self.v, self.n_kv_heads), position_ids, self.theta)", r"to the values|values too"),
    Mutant("gqa-mask-replaces-causal", "grouped_query_attention", "allowed = allowed & mask", "allowed = mask",
           r"causal mask|see the future|combine"),
    Mutant("gqa-square-causal-mask", "grouped_query_attention", ".tril(diagonal=n_keys - length)", ".tril()",
           r"offset|diagonal|earlier keys|last T of L"),
    Mutant("gqa-n-rep-wrong", "grouped_query_attention", "n_rep = self.n_heads // self.n_kv_heads",
           "n_rep = self.n_kv_heads", r"n_heads ?// ?n_kv|group|repeat|share", "rare"),
    # the block and the model
    Mutant("block-post-norm", "llama_block", "x = x + self.attn(self.norm1(x), position_ids, mask, cache, layer)",
           "x = self.norm1(x + self.attn(x, position_ids, mask, cache, layer))", r"pre-norm|post-norm"),
    Mutant("block-no-ff-residual", "llama_block", "return x + self.ff(self.norm2(x))", "return self.ff(self.norm2(x))",
           r"residual|skip"),
    Mutant("block-drops-mask", "llama_block", "self.attn(self.norm1(x), position_ids, mask, cache, layer)",
           "self.attn(self.norm1(x), position_ids, None, cache, layer)", r"padding mask|padding keys", "rare"),
    Mutant("model-untied", "llama_model", "self.lm_head.weight = self.embed.weight",
           "self.lm_head.weight.data.copy_(self.embed.weight.data)", r"tie|tied|same parameter|very parameter"),
    # replaces "model-column-positions" (arange(start, start + length) as the positions of a left-padded batch), which
    # is equivalent for RoPE: a row's positions shifted alike leave every score unchanged (the chapter's section 3)
    Mutant("model-positions-first-columns", "llama_model",
           "position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -length:]",
           "position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, :length]",
           r"restarted at 0|len\(cache\)|after the cached"),
    Mutant("model-cache-start-ignored", "llama_model", "start = len(cache) if cache is not None else 0", "start = 0",
           r"len\(cache\)|after the cached|last T of L|offset"),
    Mutant("model-no-final-norm", "llama_model", "logits = self.lm_head(self.norm(x))", "logits = self.lm_head(x)",
           r"final (RMS)?norm"),
    # replaces "model-no-ignore-index" (ignore_index=-100 left out), equivalent: it is F.cross_entropy's default
    Mutant("model-loss-shifted", "llama_model", "F.cross_entropy(logits.flatten(0, 1), targets.flatten(),",
           "F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten(),", r"shifted", "rare"),
    # the chat template and a reply
    Mutant("chat-no-default-system", "chat_prompt",
           '    if not messages or messages[0]["role"] != "system":\n'
           '        messages = [{"role": "system", "content": DEFAULT_SYSTEM}] + list(messages)\n', "",
           r"system"),
    Mutant("chat-no-newline-after-end", "chat_prompt", "{m['content']}<|im_end|>\\n\"", "{m['content']}<|im_end|>\"",
           r"newline|\\n"),
    Mutant("chat-always-generation-prompt", "chat_prompt", '("<|im_start|>assistant\\n" if add_generation_prompt else "")',
           '"<|im_start|>assistant\\n"', r"add_generation_prompt|generation prompt"),
    Mutant("chat-no-role-check", "chat_prompt",
           "        if message[\"role\"] not in (\"system\", \"user\", \"assistant\"):\n"
           "            raise ValueError(f\"unknown role {message['role']!r}: a role is system, user or assistant\")\n",
           "        pass\n", r"role|ValueError", "rare"),
    Mutant("reply-not-cut-at-end", "reply", "    if end in new:\n        new = new[:new.index(end)]\n", "",
           r"end-of-turn|end of (the )?turn|stop at"),
    Mutant("reply-includes-prompt", "reply", "[0, prompt_ids.shape[1]:]", "[0]", r"prompt"),
    Mutant("reply-ignores-max-new-tokens", "reply", "generate(model, prompt_ids, max_new_tokens,",
           "generate(model, prompt_ids, 64,", r"max_new_tokens", "rare"),
    # added after the first measurement (the held-out numbers are of the list above, before the two replacements)
    Mutant("hidden-float", "swiglu_hidden", "budget // (3 * d_model)", "budget / (3 * d_model)", r"\bint\b|float"),
    Mutant("gqa-mask-ignored", "grouped_query_attention", "allowed = allowed & mask", "allowed = allowed",
           r"padding mask|padding keys", "rare"),
]

# A third held-out list (helper h8, 2026-12-07), graded before any fix (/work/notes/heldout3/ch12-before.txt: of 27,
# common 100 % caught, 88 % named by a visible test; rare 90 % caught, 50 % named). The 14 exact duplicates of the
# list above are left out; these 13 are new.
HELD_OUT_3 = [
    Mutant("h3-rms-float32-statistics", "rmsnorm",
           "return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight",
           "x32 = x.float()\n        return (x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight",
           r"float32", "rare"),
    Mutant("h3-rope-position-batch-axis", "rope",
           "position_ids[:, None, :, None]",
           "position_ids[None, :, :, None]",
           r"batch of one|broadcast over the heads", "rare"),
    Mutant("h3-rope-angles-float32", "rope",
           "torch.float64", "torch.float32",
           r"float32", "rare"),
    Mutant("h3-width-multiple-hard-coded", "swiglu_hidden",
           "return -(-width // multiple_of) * multiple_of",
           "return -(-width // 256) * 256",
           r"multiple_of ignored", "rare"),
    Mutant("h3-gqa-cache-after-repeat", "grouped_query_attention",
           "        if cache is not None:\n            k, v = cache.update(layer, k, v)               # the cache keeps the n_kv_heads heads only\n        n_rep = self.n_heads // self.n_kv_heads\n        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)    # (batch, n_heads, L, d_head)\n",
           "        n_rep = self.n_heads // self.n_kv_heads\n        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)    # (batch, n_heads, L, d_head)\n        if cache is not None:\n            k, v = cache.update(layer, k, v)\n",
           r"before repeating", "common"),
    Mutant("h3-gqa-scale-d-model", "grouped_query_attention",
           "F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)",
           "F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=1 / math.sqrt(x.shape[-1]))",
           r"sqrt\(d_model\)", "common"),
    Mutant("h3-gqa-error-condition", "grouped_query_attention",
           "if n_heads % n_kv_heads:", "if n_kv_heads > n_heads:",
           r"ValueError", "rare"),
    Mutant("h3-block-residual-from-normed", "llama_block",
           "x = x + self.attn(self.norm1(x), position_ids, mask, cache, layer)",
           "x = self.norm1(x)\n        x = x + self.attn(x, position_ids, mask, cache, layer)",
           r"residual taken from the normali[sz]ed", "common"),
    Mutant("h3-block-layer-not-passed", "llama_block",
           "self.attn(self.norm1(x), position_ids, mask, cache, layer)",
           "self.attn(self.norm1(x), position_ids, mask, cache)",
           r"\blayer\b", "rare"),
    Mutant("h3-model-always-tied", "llama_model",
           "        if config.tie_embeddings:\n            self.lm_head.weight = self.embed.weight\n",
           "        self.lm_head.weight = self.embed.weight\n",
           r"\btie", "common"),
    Mutant("h3-model-mask-query-axis", "llama_model",
           "attention_mask.bool()[:, None, None, :]",
           "attention_mask.bool()[:, None, :, None]",
           r"padding", "common"),
    Mutant("h3-model-block-size-ignores-cache", "llama_model",
           "if start + length > self.config.block_size:",
           "if length > self.config.block_size:",
           r"cached.*ValueError|len\(cache\) \+ T", "rare"),
    Mutant("h3-chat-content-stripped", "chat_prompt",
           "{m['content']}<|im_end|>", "{m['content'].strip()}<|im_end|>",
           r"strip|whitespace", "rare"),
]
MUTANTS += HELD_OUT_3


# A systematic sweep (issue 31, section 6; helper sweep-C): every argument, config field, boundary and degenerate input
# the statements allow, each gap written as the learner's mistake. Graded before the fix in
# /work/notes/s9/ch12-sweep-before.txt, after in ch12-sweep-after.txt.
SWEEP = [
    Mutant("sw-rope-in-place", "rope",
           "    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1)\n",
           "    x.copy_(torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1))  # no new memory\n"
           "    return x\n",
           r"in place|changed the x", "rare"),
    Mutant("sw-gqa-is-causal-without-mask", "grouped_query_attention",
           "attended = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)",
           "attended = (F.scaled_dot_product_attention(q, k, v, is_causal=True) if mask is None else\n"
           "                    F.scaled_dot_product_attention(q, k, v, attn_mask=allowed))",
           r"is_causal|without an attention_mask", "common"),
    Mutant("sw-model-position-ids-ignored", "llama_model", "        if position_ids is None:\n",
           "        if True:  # position_ids computed here\n", r"position_ids (given|passed|argument)", "rare"),
    Mutant("sw-model-block-size-off-by-one", "llama_model", "if start + length > self.config.block_size:",
           "if start + length >= self.config.block_size:", r"exactly block_size|block_size tokens", "rare"),
    Mutant("sw-model-final-norm-default-eps", "llama_model", "self.norm = RMSNorm(config.n_embd, config.eps)",
           "self.norm = RMSNorm(config.n_embd)", r"eps", "rare"),
    Mutant("sw-block-norms-default-eps", "llama_block",
           "self.norm1 = RMSNorm(config.n_embd, config.eps)\n        self.attn = GroupedQueryAttention(config.n_embd, "
           "config.n_head, config.n_kv_head, config.rope_theta)\n        self.norm2 = RMSNorm(config.n_embd, config.eps)",
           "self.norm1 = RMSNorm(config.n_embd)\n        self.attn = GroupedQueryAttention(config.n_embd, "
           "config.n_head, config.n_kv_head, config.rope_theta)\n        self.norm2 = RMSNorm(config.n_embd)",
           r"eps", "rare"),
    Mutant("sw-chat-messages-mutated", "chat_prompt",
           "        messages = [{\"role\": \"system\", \"content\": DEFAULT_SYSTEM}] + list(messages)\n",
           "        messages.insert(0, {\"role\": \"system\", \"content\": DEFAULT_SYSTEM})\n",
           r"changed|in place|insert", "common"),
]
MUTANTS = MUTANTS + SWEEP


# Held-out list 4 (issue 31, section 6; 2026-12-07): 14 mistakes (6 common, 8 rare) written blind from the solution
# notebook alone by W3, graded once through nbgrader after the chapter's sweep (mutant_campaign.py 12-modern-llm
# --mutants, 15 submissions in 775 s): common caught 6/6, named by a visible test 6/6; rare caught 7/8, named 7/8;
# elsewhere 0; the solution lost nothing. 10 repeat a mistake above in effect
# (benchmarks/results/heldout4/ch12-summary.md). Fixed after grading (ch12-misses.md, ch12-after.txt):
# h4_rope_angles_in_x_dtype (rope's frequencies in x's dtype) is caught and named by a bfloat16 visible case and
# bfloat16/float16 hidden cases at positions in the thousands. MUTANTS
# takes the 6 whose mutated answer differs from every mutant above; EXACT_DUPLICATES_4 maps the others to the mutant
# whose mutated answer is the same program (same AST, formatting and comments aside).
HELD_OUT_4 = [
    # ---- common ----
    Mutant("h4_rms_eps_outside_root", "rmsnorm",
           "return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight",
           "return x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + self.eps) * self.weight",
           r"eps|inside|root", "common"),
    Mutant("h4_rope_interleaved_pairs", "rope",
           "first, second = x[..., :half], x[..., half:]",
           "first, second = x[..., 0::2], x[..., 1::2]",
           r"interleav|pair|half|neighbou?r", "common"),
    Mutant("h4_swiglu_hidden_rounded_down", "swiglu_hidden",
           "return -(-width // multiple_of) * multiple_of",
           "return width // multiple_of * multiple_of",
           r"round|up|multiple", "common"),
    Mutant("h4_repeat_kv_tiled", "repeat_kv",
           "return x[:, :, None].expand(batch, n_kv, n_rep, length, d).reshape(batch, n_kv * n_rep, length, d)",
           "return x.repeat(1, n_rep, 1, 1)",
           r"tile|tiled|in a row|interleave|repeat_interleave|order|i // n_rep", "common"),
    Mutant("h4_gqa_causal_without_cache_offset", "grouped_query_attention",
           ".tril(diagonal=n_keys - length)", ".tril()",
           r"cache|offset|causal|last|sees every cached", "common"),
    Mutant("h4_chat_no_default_system", "chat_prompt",
           '    if not messages or messages[0]["role"] != "system":\n'
           '        messages = [{"role": "system", "content": DEFAULT_SYSTEM}] + list(messages)\n', "",
           r"system|default", "common"),
    # ---- rare ----
    Mutant("h4_rms_float32_inside", "rmsnorm",
           "return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight",
           "xf = x.float()\n        return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)) * self.weight",
           r"dtype|float32|float64|precision|cast", "rare"),
    Mutant("h4_rope_angles_in_x_dtype", "rope",
           "frequencies = theta ** (-2 * torch.arange(half, dtype=torch.float64, device=x.device) / d)",
           "frequencies = theta ** (-2 * torch.arange(half, dtype=x.dtype, device=x.device) / d)",
           r"float64|angle|precision|dtype", "rare"),
    Mutant("h4_swiglu_hidden_exact_multiple_bumped", "swiglu_hidden",
           "return -(-width // multiple_of) * multiple_of",
           "return (width // multiple_of + 1) * multiple_of",
           r"round|multiple|exact", "rare"),
    Mutant("h4_swiglu_down_has_bias", "swiglu",
           "self.down = nn.Linear(d_ff, d_model, bias=False)",
           "self.down = nn.Linear(d_ff, d_model)",
           r"bias", "rare"),
    Mutant("h4_gqa_cache_stores_repeated_heads", "grouped_query_attention",
           "        if cache is not None:\n            k, v = cache.update(layer, k, v)               # the cache keeps the n_kv_heads heads only\n"
           "        n_rep = self.n_heads // self.n_kv_heads\n        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)    # (batch, n_heads, L, d_head)\n",
           "        n_rep = self.n_heads // self.n_kv_heads\n        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)\n"
           "        if cache is not None:\n            k, v = cache.update(layer, k, v)\n",
           r"cache|heads|repeat", "rare"),
    Mutant("h4_block_layer_not_passed", "llama_block",
           "self.attn(self.norm1(x), position_ids, mask, cache, layer)",
           "self.attn(self.norm1(x), position_ids, mask, cache)",
           r"layer|cache", "rare"),
    Mutant("h4_model_block_size_boundary", "llama_model",
           "if start + length > self.config.block_size:",
           "if start + length >= self.config.block_size:",
           r"block_size|context|long", "rare"),
    Mutant("h4_reply_keeps_end_of_turn", "reply",
           "    if end in new:\n        new = new[:new.index(end)]\n", "",
           r"im_end|end of (the )?turn|eos|stop", "rare"),
]

EXACT_DUPLICATES_4 = {
    "h4_rope_interleaved_pairs": "rope-interleaved",
    "h4_swiglu_hidden_rounded_down": "hidden-round-down",
    "h4_gqa_causal_without_cache_offset": "gqa-square-causal-mask",
    "h4_chat_no_default_system": "chat-no-default-system",
    "h4_gqa_cache_stores_repeated_heads": "h3-gqa-cache-after-repeat",
    "h4_block_layer_not_passed": "h3-block-layer-not-passed",
    "h4_model_block_size_boundary": "sw-model-block-size-off-by-one",
    "h4_reply_keeps_end_of_turn": "reply-not-cut-at-end",
}
MUTANTS = MUTANTS + [mutant for mutant in HELD_OUT_4 if mutant.name not in EXACT_DUPLICATES_4]
