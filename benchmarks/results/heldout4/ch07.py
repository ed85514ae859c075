"""Fourth held-out list, chapter 07 (writer W1, written blind from solutions/07-generation/generation.ipynb alone)."""

from mutants import Mutant

KV_CACHE_CLASS_LISTS = '''class KVCache:
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

MUTANTS = [
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
    Mutant("h4-kv-class-level-lists", "kv_cache", None, KV_CACHE_CLASS_LISTS,
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
