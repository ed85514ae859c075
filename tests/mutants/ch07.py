"""Chapter 07's plausible mistakes (see tests/mutants/__init__.py)."""

from dataclasses import dataclass

from mutants import Mutant


@dataclass(frozen=True)
class Edits(Mutant):
    """A mistake that touches several places of one answer: ``old`` -> ``new``, then each pair of ``more``."""

    more: tuple[tuple[str, str], ...] = ()

    def apply(self, code: str) -> str:
        code = super().apply(code)
        for old, new in self.more:
            if old not in code:
                raise ValueError(f"mutant {self.name}: {old!r} is not in the answer {self.answer}")
            code = code.replace(old, new)
        return code


NEGATIVE_INF = 'float("-inf")'

MUTANTS = [
    # top_k_filter
    Mutant("topk-fill-zero", "top_k_filter", f"logits < kth, {NEGATIVE_INF}", "logits < kth, 0.0",
           r"set to 0|0 instead of -inf"),
    Mutant("topk-k-minus-one", "top_k_filter", "logits < kth", "logits <= kth",
           r"k - 1|fewer than k|k-th (largest )?(logit )?(was )?dropped|only k - 1"),
    Mutant("topk-ties-dropped", "top_k_filter",
           "    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]  # (batch, 1)\n"
           f"    return logits.masked_fill(logits < kth, {NEGATIVE_INF})",
           "    keep = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).indices\n"
           "    kept = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, keep, True)\n"
           f"    return logits.masked_fill(~kept, {NEGATIVE_INF})",
           r"\btie", "rare"),
    # top_p_filter
    Mutant("topp-drops-crossing-token", "top_p_filter",
           "    sorted_logits, order = torch.sort(logits, dim=-1)                 # ascending\n"
           "    tail = sorted_logits.softmax(dim=-1).cumsum(dim=-1)              # mass of this token and all less likely\n"
           "    drop_sorted = tail <= 1 - top_p\n"
           "    drop_sorted[..., -1] = False                                     # the most likely token stays\n",
           "    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)\n"
           "    drop_sorted = sorted_logits.softmax(dim=-1).cumsum(dim=-1) > top_p\n",
           r"without the token that crosses|holds less than p|crosses"),
    Mutant("topp-not-unsorted", "top_p_filter", "drop = drop_sorted.scatter(-1, order, drop_sorted)", "drop = drop_sorted",
           r"sorted order|vocabulary order|back to|unsort|order of the vocabulary"),
    Mutant("topp-no-value-error", "top_p_filter", "    if not 0 < top_p <= 1:\n", "    if top_p > 1:\n",
           r"ValueError for top_p", "rare"),
    # apply_repetition_penalty
    Mutant("penalty-divides-negative", "apply_repetition_penalty", "torch.where(seen < 0, seen * penalty, seen / penalty)",
           "seen / penalty", r"negative logits? divided|raises them|negative logit"),
    Mutant("penalty-in-place", "apply_repetition_penalty", "return logits.scatter(1,", "return logits.scatter_(1,",
           r"new tensor|in.place|out-of-place|changed"),
    Mutant("penalty-batch-tokens", "apply_repetition_penalty",
           "    seen = logits.gather(1, input_ids)                                # (batch, T): duplicates read the same value\n"
           "    seen = torch.where(seen < 0, seen * penalty, seen / penalty)\n"
           "    return logits.scatter(1, input_ids, seen)                        # a new tensor; duplicates write the same value\n",
           "    tokens = input_ids.unique()\n"
           "    out = logits.clone()\n"
           "    out[:, tokens] = torch.where(logits[:, tokens] < 0, logits[:, tokens] * penalty, logits[:, tokens] / penalty)\n"
           "    return out\n",
           r"other rows?|another row|its own row|each row's", "rare"),
    Mutant("penalty-per-occurrence", "apply_repetition_penalty",
           "    seen = logits.gather(1, input_ids)                                # (batch, T): duplicates read the same value\n"
           "    seen = torch.where(seen < 0, seen * penalty, seen / penalty)\n"
           "    return logits.scatter(1, input_ids, seen)                        # a new tensor; duplicates write the same value\n",
           "    out = logits.clone()\n"
           "    for row, tokens in enumerate(input_ids.tolist()):\n"
           "        for token in tokens:\n"
           "            z = out[row, token]\n"
           "            out[row, token] = z * penalty if z < 0 else z / penalty\n"
           "    return out\n",
           r"per occurrence|each occurrence|once per|how often"),
    # generate
    Mutant("gen-column-positions", "generate", "positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1]:]",
           "positions = torch.arange(mask.shape[1] - new.shape[1], mask.shape[1]).expand(new.shape[0], -1)",
           r"column indices|not its column"),
    Mutant("gen-no-positions", "generate", "cache=cache, position_ids=positions)", "cache=cache)",
           r"without position_ids|position_ids not passed"),
    Mutant("gen-no-mask", "generate", "model(new, attention_mask=mask, cache=cache,", "model(new, cache=cache,",
           r"without attention_mask|pad tokens are attended|padding (is|was) (not )?(hidden|attended)"),
    Mutant("gen-eos-rows-not-held", "generate",
           "            token = torch.where(finished, torch.full_like(token, eos_token_id), token)\n", "",
           r"finished rows?|after (its|the) (first )?EOS|continued with|only EOS"),
    Mutant("gen-stops-at-first-eos", "generate", "finished.all()", "finished.any()",
           r"every row|all rows|any row|stopp?ed (too )?early|other rows?"),
    Mutant("gen-penalty-on-new-tokens", "generate", "apply_repetition_penalty(logits, ids, repetition_penalty)",
           "apply_repetition_penalty(logits, ids[:, input_ids.shape[1]:], repetition_penalty)",
           r"generated tokens only|prompt's tokens|every token so far|all the ids", "rare"),
    Mutant("gen-filters-before-temperature", "generate",
           "            z = logits / temperature\n"
           "            z = top_k_filter(z, top_k) if top_k is not None else z\n"
           "            z = top_p_filter(z, top_p) if top_p is not None else z\n",
           "            z = top_k_filter(logits, top_k) if top_k is not None else logits\n"
           "            z = top_p_filter(z, top_p) if top_p is not None else z\n"
           "            z = z / temperature\n",
           r"temperature (first|before)|before (the )?(top|filter)|order", "rare"),
    Mutant("gen-unseeded-sample", "generate", "torch.multinomial(z.softmax(-1), 1, generator=generator)",
           "torch.multinomial(z.softmax(-1), 1)", r"generator|seed"),
    # beam_search
    Mutant("beam-finishes-every-eos", "beam_search", "if rank < num_beams:", "if rank < 2 * num_beams:",
           r"among the (best )?num_beams|ranks? (below|outside|beyond)|outside the (best )?num_beams"),
    Mutant("beam-no-first-beam-only", "beam_search", "scores = torch.full((num_beams,), -1e9)", "scores = torch.zeros(num_beams)",
           r"cop(y|ies)|duplicate|identical|-10\^9|1e9|only the first"),
    Mutant("beam-length-with-prompt", "beam_search", "/ (step + 1) ** length_penalty", "/ seq.shape[0] ** length_penalty",
           r"prompt included|new tokens only"),
    Mutant("beam-logits-not-logprobs", "beam_search", "[:, -1].float().log_softmax(-1)", "[:, -1].float()",
           r"log.?softmax|log-probabilit(y|ies) of|raw logits|logits instead"),
    Mutant("beam-stops-at-first-finished", "beam_search", "len(finished) == num_beams:", "len(finished) >= 1:",
           r"num_beams (hypotheses )?(are )?finished|first finished|stops? (too )?early|early_stopping", "rare"),
    # KVCache
    Edits("kv-heads-axis", "kv_cache", "torch.cat([self.keys[layer], k], dim=-2)", "torch.cat([self.keys[layer], k], dim=1)",
          r"heads axis|axis|along", more=(("torch.cat([self.values[layer], v], dim=-2)", "torch.cat([self.values[layer], v], dim=1)"),)),
    Edits("kv-last-axis", "kv_cache", "torch.cat([self.keys[layer], k], dim=-2)", "torch.cat([self.keys[layer], k], dim=-1)",
          r"last axis|axis|along", more=(("torch.cat([self.values[layer], v], dim=-2)", "torch.cat([self.values[layer], v], dim=-1)"),)),
    Mutant("kv-len-layers", "kv_cache", "return self.keys[0].shape[-2] if self.keys else 0", "return len(self.keys)",
           r"len\(cache\)|number of (cached )?positions|counts? (the )?layers"),
    Edits("kv-overwrites", "kv_cache", "self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)", "self.keys[layer] = k",
          r"append|only the new|cached positions first|overwr|replac",
          more=(("self.values[layer] = torch.cat([self.values[layer], v], dim=-2)", "self.values[layer] = v"),)),
    Mutant("kv-shared-class-lists", "kv_cache", "        self.keys, self.values = [], []\n",
           "        pass\n\n    keys, values = [], []\n",
           r"shared|fresh|instances|empty|len\(KVCache\(\)\)", "rare"),
    # MultiHeadAttention
    Mutant("mha-no-scale", "multi_head_attention", "scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5",
           "scores = q @ k.transpose(-2, -1)", r"sqrt|scal"),
    Mutant("mha-square-causal-mask", "multi_head_attention", ".tril(diagonal=n_k - n_q)", ".tril()",
           r"L_k - L_q|n_k - n_q|offset|rectangular|square|last L_q"),
    Mutant("mha-mask-not-combined", "multi_head_attention", "mask = allowed if mask is None else mask & allowed",
           "mask = allowed", r"padding|combin|ignored", "rare"),
    Mutant("mha-dropout-in-eval", "multi_head_attention", "if self.training and self.dropout:", "if self.dropout:",
           r"eval|training", "rare"),
    # online_attention
    Mutant("oa-no-rescale", "online_attention",
           "        denominator = denominator * rescale + weights.sum(-1, keepdim=True)\n"
           "        numerator = numerator * rescale + weights @ block_values\n",
           "        denominator = denominator + weights.sum(-1, keepdim=True)\n"
           "        numerator = numerator + weights @ block_values\n",
           r"rescal|e\^\(m - m'\)|old maximum"),
    Mutant("oa-max-not-carried", "online_attention", "        running_max = new_max\n", "",
           r"not (kept|updated|carried)|never updated"),
    Mutant("oa-block-max-only", "online_attention", "new_max = torch.maximum(running_max, scores.amax(-1, keepdim=True))",
           "new_max = scores.amax(-1, keepdim=True)", r"block's own max|instead of the running max", "rare"),
]


# Written by a second reader who had not seen the list above (from the notebook's prose and answer cells only), and
# graded once before any fix (mutant_campaign --mutants, 2026-12-07): common 14 mutants, caught 100 %, named by a
# visible test 79 %, named in the feedback 86 %, points lost elsewhere 0; rare 7 mutants, caught 100 %, named 100 %,
# in the feedback 100 %, elsewhere 0. 18 of the 21 are the same mistake as one above; the three new ones
# (h-topp-cumsum-of-logits, h-gen-feeds-whole-text-to-cache: common, caught, unnamed; h-online-no-running-max: rare,
# caught and named) led to the judges' shift check of top_p and cache-use check of generate, and to the same two
# checks in the visible tests. After the fixes (--only, the 4 mutants of those answers): caught and named 4 of 4.

TOPK_SOLUTION_BODY = """    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]  # (batch, 1)
    return logits.masked_fill(logits < kth, float("-inf"))"""
TOPK_BY_INDICES = """    values, indices = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1)   # (batch, k)
    return torch.full_like(logits, float("-inf")).scatter(-1, indices, values)"""

TOPP_SOLUTION_BODY = """    sorted_logits, order = torch.sort(logits, dim=-1)                 # ascending
    tail = sorted_logits.softmax(dim=-1).cumsum(dim=-1)              # mass of this token and all less likely
    drop_sorted = tail <= 1 - top_p
    drop_sorted[..., -1] = False                                     # the most likely token stays
"""
TOPP_DESCENDING_STRICT = """    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)       # mass of this token and all more likely
    drop_sorted = cumulative > top_p                                # past p: dropped
"""

PENALTY_SOLUTION_BODY = """    seen = logits.gather(1, input_ids)                                # (batch, T): duplicates read the same value
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return logits.scatter(1, input_ids, seen)                        # a new tensor; duplicates write the same value"""
PENALTY_PER_OCCURRENCE = """    penalised = logits.clone()
    for row, tokens in enumerate(input_ids.tolist()):
        for token in tokens:
            z = penalised[row, token]
            penalised[row, token] = z * penalty if z < 0 else z / penalty
    return penalised"""

HELD_OUT = [
    # top_k_filter
    Mutant("h-topk-strict-drops-kth", "top_k_filter", "logits < kth", "logits <= kth",
           r"k - 1|k-1|>=|k-th (largest )?(logit )?(was )?dropped|drops? the k-th"),
    Mutant("h-topk-indices-scatter", "top_k_filter", TOPK_SOLUTION_BODY, TOPK_BY_INDICES, r"\btie|\btied", "rare"),
    # top_p_filter
    Mutant("h-topp-crossing-token-dropped", "top_p_filter", TOPP_SOLUTION_BODY, TOPP_DESCENDING_STRICT,
           r"cross|reach|at least p|less than p|below p|holds less|empty|nothing (left|kept)|most likely token"),
    Mutant("h-topp-cumsum-of-logits", "top_p_filter", "sorted_logits.softmax(dim=-1).cumsum(dim=-1)",
           "sorted_logits.cumsum(dim=-1)", r"softmax|logits instead of probab|raw logits|not (the )?probabilities"),
    # apply_repetition_penalty
    Mutant("h-rep-divide-whatever-sign", "apply_repetition_penalty",
           "torch.where(seen < 0, seen * penalty, seen / penalty)", "seen / penalty", r"sign|negative"),
    Mutant("h-rep-in-place", "apply_repetition_penalty", "logits.scatter(1, input_ids, seen)",
           "logits.scatter_(1, input_ids, seen)",
           r"in[- ]place|new tensor|modif|changed the (caller|input|logits)|raw logits"),
    Mutant("h-rep-per-occurrence", "apply_repetition_penalty", PENALTY_SOLUTION_BODY, PENALTY_PER_OCCURRENCE,
           r"\bonce\b|however often|duplicat|twice|more than once|occurs? (twice|several)", "rare"),
    # generate
    Mutant("h-gen-positions-by-column", "generate",
           "positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1]:]",
           "positions = torch.arange(mask.shape[1]).expand_as(mask)[:, -new.shape[1]:]",
           r"position|cumsum"),
    Mutant("h-gen-feeds-whole-text-to-cache", "generate", "new = token[:, None]", "new = ids",
           r"only the new token|whole (sequence|text)|twice|duplicat|already cached|cached (ones|positions) again"),
    Mutant("h-gen-finished-rows-not-continued-with-eos", "generate",
           "            token = torch.where(finished, torch.full_like(token, eos_token_id), token)\n", "",
           r"finished|after (its |their )?(first )?EOS|continued|keeps? generating|eos_token_id only"),
    Mutant("h-gen-penalty-on-generated-only", "generate",
           "apply_repetition_penalty(logits, ids, repetition_penalty)",
           "apply_repetition_penalty(logits, ids[:, input_ids.shape[1]:], repetition_penalty)",
           r"prompt (tokens|too|as well|and (the )?generated)|generated (tokens )?only|only the generated|every token so far"),
    Mutant("h-gen-stops-when-any-row-finished", "generate", "finished.all()", "finished.any()",
           r"every row|all rows|each row|other rows?|any row|one row|stopp?(ed|s) (too )?early|too early", "rare"),
    # beam_search
    Mutant("h-beam-n-counts-prompt", "beam_search", "/ (step + 1) ** length_penalty",
           "/ seq.shape[0] ** length_penalty",
           r"includ\w* the prompt|prompt('s)? (tokens|length)|new tokens only|only the new tokens|n (is|=|counts) (the )?(number of )?new"),
    Mutant("h-beam-all-beams-expand", "beam_search", "torch.full((num_beams,), -1e9)", "torch.zeros(num_beams)",
           r"-1e9|-10\^9|10\*\*9|cop(y|ies)|identical|duplicate|only the first"),
    Mutant("h-beam-eos-finished-at-any-rank", "beam_search",
           "                if rank < num_beams:                           # only among the num_beams best candidates\n"
           "                    finished.append((top[rank].item() / (step + 1) ** length_penalty, seq))",
           "                finished.append((top[rank].item() / (step + 1) ** length_penalty, seq))",
           r"\brank|among the (best )?num_beams|best num_beams", "rare"),
    # KVCache
    Mutant("h-cache-grows-heads-axis", "kv_cache", "dim=-2)", "dim=1)", r"axis|\bdim\b|heads"),
    Mutant("h-cache-overwrites", "kv_cache",
           "torch.cat([self.keys[layer], k], dim=-2)\n            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)",
           "k\n            self.values[layer] = v",
           r"append|replac|overwr|only the new|previous|past (keys|positions)|earlier", "rare"),
    # MultiHeadAttention
    Mutant("h-mha-square-causal-mask", "multi_head_attention", ".tril(diagonal=n_k - n_q)", ".tril()",
           r"offset|diagonal|rectangular|square|n_k - n_q|L_k - L_q|cached positions|last L_q"),
    Mutant("h-mha-dropout-in-eval", "multi_head_attention", "if self.training and self.dropout:", "if self.dropout:",
           r"\beval|training|self\.training", "rare"),
    # online_attention
    Mutant("h-online-sums-not-rescaled", "online_attention",
           "denominator = denominator * rescale + weights.sum(-1, keepdim=True)\n"
           "        numerator = numerator * rescale + weights @ block_values",
           "denominator = denominator + weights.sum(-1, keepdim=True)\n"
           "        numerator = numerator + weights @ block_values",
           r"rescal|e\^\(m - m'\)|old maximum|factor"),
    Mutant("h-online-no-running-max", "online_attention",
           "new_max = torch.maximum(running_max, scores.amax(-1, keepdim=True))",
           "new_max = torch.zeros_like(running_max)",
           r"overflow|unstab|stabl|subtract|largest score", "rare"),
]

MUTANTS = MUTANTS + HELD_OUT


# Held-out list 3, written by a third reader from the notebook alone (before reading this file, the judges, collectors,
# probes or hidden tests) and graded once before any fix (/work/notes/heldout3/ch07-before.txt, 2026-12-07, 25
# submissions in 723 s): common 13 caught 100 %, named by a visible test 85 %; rare 11 caught 55 %, named 27 %; nothing
# lost elsewhere. The 10 that repeat a mistake above are left out; these 14 are new. Missed before the fixes: a running
# total that meets p exactly, eos_token_id=0, a prompt that fills block_size exactly, need_weights=False, bias=False.
# Their name patterns were tightened after the measurement so that a call's description cannot pass for a diagnosis.
HELD_OUT_3 = [
    Mutant('h3-topk-no-clamp-to-vocab', 'top_k_filter',
           'torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1)',
           'torch.topk(logits, top_k, dim=-1)',
           'min\\(top_k|topk needs k|larger than the vocabulary \\(\\d+ tokens\\) keeps', 'common'),
    Mutant('h3-topk-finite-fill', 'top_k_filter',
           'return logits.masked_fill(logits < kth, float("-inf"))',
           'return logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)',
           '-inf|infinit|finfo|very (large )?negative|not -?inf', 'rare'),
    Mutant('h3-topp-one-refused', 'top_p_filter',
           'if not 0 < top_p <= 1:',
           'if not 0 < top_p < 1:',
           'top_p = 1 is allowed', 'common'),
    Mutant('h3-topp-strict-boundary', 'top_p_filter',
           'drop_sorted = tail <= 1 - top_p',
           'drop_sorted = tail < 1 - top_p',
           'one token too many|holds? exactly p|strict inequality', 'rare'),
    Mutant('h3-topp-cumsum-over-batch', 'top_p_filter',
           'tail = sorted_logits.softmax(dim=-1).cumsum(dim=-1)',
           'tail = sorted_logits.softmax(dim=-1).cumsum(dim=0)',
           'across the rows|along the vocabulary', 'rare'),
    Mutant('h3-penalty-zero-accepted', 'apply_repetition_penalty',
           'if not penalty > 0:',
           'if penalty < 0:',
           'penalty <= 0|penalty of 0|penalty=0(\\.0)?\\b.*(error|raise|refus)|ValueError.*(0\\.0|zero)', 'rare'),
    Mutant('h3-gen-eos-zero-falsy', 'generate',
           '        if eos_token_id is not None:\n            token = torch.where',
           '        if eos_token_id:\n            token = torch.where',
           '0 is a valid token id|eos_token_id is not None', 'rare'),
    Mutant('h3-gen-context-off-by-one', 'generate',
           'if input_ids.shape[-1] + max_new_tokens > model.config.block_size:',
           'if input_ids.shape[-1] + max_new_tokens >= model.config.block_size:',
           'fits exactly|not >=|>, not >=', 'rare'),
    Mutant('h3-beam-no-early-stop', 'beam_search',
           'if last or len(finished) == num_beams:',
           'if last:',
           'went on after num_beams|kept searching', 'rare'),
    Mutant('h3-cache-values-get-keys', 'kv_cache',
           'self.values[layer] = torch.cat([self.values[layer], v], dim=-2)',
           'self.values[layer] = torch.cat([self.values[layer], k], dim=-2)',
           'values hold keys', 'rare'),
    Mutant('h3-mha-scale-d-model', 'multi_head_attention',
           'scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5',
           'scores = q @ k.transpose(-2, -1) / self.d_model ** 0.5',
           'sqrt\\(d_model\\)|whole width', 'common'),
    Mutant('h3-mha-need-weights-ignored', 'multi_head_attention',
           '(weights if need_weights else None)',
           'weights',
           'need_weights=False', 'rare'),
    Mutant('h3-mha-bias-ignored', 'multi_head_attention',
           'self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)',
           'self.qkv = nn.Linear(d_model, 3 * d_model)',
           'bias=bias|bias parameters', 'rare'),
    Mutant('h3-online-numerator-not-rescaled', 'online_attention',
           'numerator = numerator * rescale + weights @ block_values',
           'numerator = numerator + weights @ block_values',
           'numerator|\\ba\\b.{0,20}(rescal|not)|both (running )?sums', 'common'),
]

MUTANTS = MUTANTS + HELD_OUT_3


# Sweep (issue 31, section 6): options the hidden and visible inputs used to set one at a time or at one value only
# (top_k and top_p never together, causal always True, dropout only ever in eval mode).
# Graded before the fix: /work/notes/s9/ch07-sweep-before.txt.
SWEEP = [
    Mutant("sweep-gen-top-p-dropped-with-top-k", "generate",
           "z = top_p_filter(z, top_p) if top_p is not None else z",
           "z = top_p_filter(z, top_p) if top_p is not None and top_k is None else z",
           r"top.p.*top.k|top.k.*top.p|both", "rare"),
    Mutant("sweep-mha-always-causal", "multi_head_attention",
           "        if self.causal:  # query i",
           "        if True:  # query i",
           r"causal=False|causal", "rare"),
    Mutant("sweep-mha-dropout-never", "multi_head_attention",
           "        if self.training and self.dropout:\n            weights = F.dropout(weights, self.dropout)\n",
           "",
           r"dropout", "rare"),
]

MUTANTS = MUTANTS + SWEEP


# Held-out list 4 (issue 31, section 6; 2026-12-07): 14 mistakes (6 common, 8 rare) written blind from the solution
# notebook alone by W1, graded once through nbgrader after the chapter's sweep (mutant_campaign.py 07-generation
# --mutants, 15 submissions in 323 s): common caught 6/6, named by a visible test 6/6; rare caught 8/8, named 8/8;
# elsewhere 0; the solution lost nothing. 14 repeat a mistake above in effect
# (benchmarks/results/heldout4/ch07-summary.md). Nothing to fix. MUTANTS takes the 2 whose mutated answer differs from
# every mutant above; EXACT_DUPLICATES_4 maps the others to the mutant whose mutated answer is the same program (same
# AST, formatting and comments aside).
H4_KV_CACHE_CLASS_LISTS = '''class KVCache:
    \'\'\'Keys and values of past positions, one entry per layer: keys[layer], values[layer] of shape
    (batch, heads, T, d_head). update(layer, k, v) appends this call's positions and returns all of them.\'\'\'

    keys, values = [], []                                      # one list per layer

    def __init__(self):
        pass

    def __len__(self) -> int:
        \'\'\'The number of cached positions.\'\'\'
        return self.keys[0].shape[-2] if self.keys else 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        \'\'\'Append k, v (batch, heads, T_new, d_head) to entry `layer`; return its keys and values (batch, heads, T, d_head).\'\'\'
        if layer == len(self.keys):                            # the first call for this layer
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)
        return self.keys[layer], self.values[layer]
'''
HELD_OUT_4 = [
    # ---- common ----
    Mutant("h4-topk-drops-kth", "top_k_filter",
           'logits.masked_fill(logits < kth, float("-inf"))',
           'logits.masked_fill(logits <= kth, float("-inf"))',
           r"k - 1|k-th|>=|off by one", "common"),
    Mutant("h4-penalty-divide-always", "apply_repetition_penalty",
           "seen = torch.where(seen < 0, seen * penalty, seen / penalty)",
           "seen = seen / penalty",
           r"negative|sign|raises", "common"),
    Mutant("h4-generate-column-positions", "generate",
           "positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1]:]",
           "positions = torch.arange(mask.shape[1] - new.shape[1], mask.shape[1]).expand(ids.shape[0], -1)",
           r"column|padding (counted|included)|counts? the padding", "common"),
    Mutant("h4-beam-identical-beams", "beam_search",
           "scores = torch.full((num_beams,), -1e9)",
           "scores = torch.zeros(num_beams)",
           r"cop(y|ies)|identical|first (beam|one)|-1e9|duplicate", "common"),
    Mutant("h4-kv-cat-heads-axis", "kv_cache",
           "self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)\n"
           "            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)",
           "self.keys[layer] = torch.cat([self.keys[layer], k], dim=1)\n"
           "            self.values[layer] = torch.cat([self.values[layer], v], dim=1)",
           r"heads axis|along the heads|axis", "common"),
    Mutant("h4-mha-square-causal", "multi_head_attention",
           "tril(diagonal=n_k - n_q)",
           "tril()",
           r"square|offset", "common"),
    # ---- rare ----
    Mutant("h4-topp-strict-boundary", "top_p_filter",
           "drop_sorted = tail <= 1 - top_p",
           "drop_sorted = tail < 1 - top_p",
           r"exactly p|strict|at least p|one token too many", "rare"),
    Mutant("h4-penalty-in-place", "apply_repetition_penalty",
           "return logits.scatter(1, input_ids, seen)",
           "return logits.scatter_(1, input_ids, seen)",
           r"new tensor|in place|out-of-place|changed", "rare"),
    Mutant("h4-generate-eos-zero-falsy", "generate",
           "if eos_token_id is not None:\n            token",
           "if eos_token_id:\n            token",
           r"is not None|eos_token_id=0|valid token id", "rare"),
    Mutant("h4-generate-temperature-after-filters", "generate",
           "z = logits / temperature\n"
           "            z = top_k_filter(z, top_k) if top_k is not None else z\n"
           "            z = top_p_filter(z, top_p) if top_p is not None else z",
           "z = top_k_filter(logits, top_k) if top_k is not None else logits\n"
           "            z = top_p_filter(z, top_p) if top_p is not None else z\n"
           "            z = z / temperature",
           r"temperature before|before filtering|order", "rare"),
    Mutant("h4-beam-length-counts-prompt", "beam_search",
           "top[rank].item() / (step + 1) ** length_penalty",
           "top[rank].item() / seq.shape[0] ** length_penalty",
           r"prompt('s)? (tokens|length)|whole (sequence|length)|including the prompt|counts? the prompt", "rare"),
    Mutant("h4-kv-class-level-lists", "kv_cache", None, H4_KV_CACHE_CLASS_LISTS,
           r"class body|shared|__init__|already holds", "rare"),
    Mutant("h4-mha-bias-ignored-qkv", "multi_head_attention",
           "self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)",
           "self.qkv = nn.Linear(d_model, 3 * d_model)",
           r"bias", "rare"),
    Mutant("h4-online-block-max-not-running", "online_attention",
           "new_max = torch.maximum(running_max, scores.amax(-1, keepdim=True))",
           "new_max = scores.amax(-1, keepdim=True)",
           r"running max|largest (score )?so far|block'?s own max|max(imum)? of (this|the) block|overflow|\binf\b|\bnan\b", "rare"),
]

EXACT_DUPLICATES_4 = {
    "h4-topk-drops-kth": "topk-k-minus-one",
    "h4-penalty-divide-always": "penalty-divides-negative",
    "h4-beam-identical-beams": "beam-no-first-beam-only",
    "h4-kv-cat-heads-axis": "kv-heads-axis",
    "h4-mha-square-causal": "mha-square-causal-mask",
    "h4-topp-strict-boundary": "h3-topp-strict-boundary",
    "h4-penalty-in-place": "penalty-in-place",
    "h4-generate-eos-zero-falsy": "h3-gen-eos-zero-falsy",
    "h4-generate-temperature-after-filters": "gen-filters-before-temperature",
    "h4-beam-length-counts-prompt": "beam-length-with-prompt",
    "h4-mha-bias-ignored-qkv": "h3-mha-bias-ignored",
    "h4-online-block-max-not-running": "oa-block-max-only",
}
MUTANTS = MUTANTS + [mutant for mutant in HELD_OUT_4 if mutant.name not in EXACT_DUPLICATES_4]

# Held-out list 5 (written blind by a new reader from the solution notebook, graded once before any fix:
# benchmarks/results/heldout5/). Only its mistakes that no earlier list holds join the list.
HELD_OUT_5 = [
    Mutant("h5_07_top_p_most_likely_not_forced", "top_p_filter",
           "    drop_sorted[..., -1] = False                                     # the most likely token stays\n",
           "",
           r"most likely|arg-?max|empty|at least one|nothing to draw", "rare"),
    Mutant("h5_07_attention_cache_layer_zero", "multi_head_attention",
           "k, v = cache.update(layer, k, v)",
           "k, v = cache.update(0, k, v)",
           r"layer", "rare"),
    Mutant("h5_07_online_one_max_per_block", "online_attention",
           "scores.amax(-1, keepdim=True)",
           "scores.amax()",
           r"each query|per query|row|maximum|underflow|overflow|nan", "rare"),
]
MUTANTS = MUTANTS + HELD_OUT_5
