"""Chapter 02's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

SPLIT = "x.reshape(batch, length, n_heads, d_model // n_heads).transpose(1, 2)"
MERGE = "x.transpose(1, 2).reshape(batch, length, n_heads * d_head)"
MHA = "multi_head_attention"

MUTANTS = [
    # split_heads
    Mutant("split-no-transpose", "split_heads", SPLIT, "x.reshape(batch, n_heads, length, d_model // n_heads)",
           r"without the transpose|misconception"),
    Mutant("split-interleaved", "split_heads", SPLIT,
           "x.reshape(batch, length, d_model // n_heads, n_heads).permute(0, 3, 1, 2)", r"interleaved"),
    Mutant("split-transpose-first", "split_heads", SPLIT,
           "x.transpose(1, 2).reshape(batch, n_heads, length, d_model // n_heads)",
           r"tokens? and features|features and tokens|transpose(d)? (before|first)", "rare"),
    Mutant("split-last-two-swapped", "split_heads", SPLIT,
           "x.reshape(batch, length, n_heads, d_model // n_heads).transpose(1, 3)",
           r"another order|axes|\(batch, n_heads, L, d_head\)|transpose\(1, 2\)"),
    # merge_heads
    Mutant("merge-no-transpose", "merge_heads", MERGE, "x.reshape(batch, length, n_heads * d_head)",
           r"without transposing"),
    Mutant("merge-view", "merge_heads", MERGE, "x.transpose(1, 2).view(batch, length, n_heads * d_head)",
           r"view|contiguous"),
    Mutant("merge-interleaved", "merge_heads", MERGE, "x.permute(0, 2, 3, 1).reshape(batch, length, n_heads * d_head)",
           r"interleav|head 0's features first|head by head|one head after"),
    Mutant("merge-flatten-sequence", "merge_heads", MERGE, "x.transpose(1, 2).flatten(1)",
           r"flatten|\(batch, L, n_heads \* d_head\)", "rare"),
    # MultiHeadAttention
    Mutant("qkv-chunk-wrong-dim", MHA, "self.qkv(x).chunk(3, dim=-1)", "self.qkv(x).chunk(3, dim=1)",
           r"dim=-1|feature|last dim"),
    Mutant("qkv-order", MHA, "q, k, v = self.qkv(x).chunk(3, dim=-1)", "k, q, v = self.qkv(x).chunk(3, dim=-1)",
           r"order|\[Q \| K \| V\]|first d_model|Q first"),
    Mutant("no-output-projection", MHA, "return self.out(merge_heads(heads))", "return merge_heads(heads)",
           r"self\.out\b|W\^O|output projection|out_proj"),
    Mutant("scaled-twice", MHA, "scaled_dot_product_attention(q, k, v, mask)",
           "scaled_dot_product_attention(q / math.sqrt(q.shape[-1]), k, v, mask)", r"scal|twice|sqrt|√"),
    Mutant("mask-dropped", MHA, "scaled_dot_product_attention(q, k, v, mask)", "scaled_dot_product_attention(q, k, v)",
           r"mask"),
    Mutant("weights-averaged", MHA, "(weights if need_weights else None)", "(weights.mean(1) if need_weights else None)",
           r"averag|mean|every head|per head|\(batch, n_heads"),
    Mutant("need-weights-ignored", MHA, "(weights if need_weights else None)", "weights",
           r"need_weights|None"),
    Mutant("cross-keys-from-x", MHA, "F.linear(context, w_kv, b_kv)", "F.linear(x, w_kv, b_kv)",
           r"context|keys and values from"),
    Mutant("cross-queries-from-context", MHA, "q = F.linear(x, w_q, b_q)", "q = F.linear(context, w_q, b_q)",
           r"queries from x|queries come from|one output per query|L_q"),
    Mutant("cross-query-bias-dropped", MHA, "F.linear(x, w_q, b_q)", "F.linear(x, w_q)", r"bias", "rare"),
    Mutant("cross-kv-rows-wrong", MHA, "k, v = F.linear(context, w_kv, b_kv).chunk(2, dim=-1)",
           "v, k = F.linear(context, w_kv, b_kv).chunk(2, dim=-1)", r"order|swapped|\[Q \| K \| V\]|K then V", "rare"),
    Mutant("no-bias", MHA, "self.qkv = nn.Linear(d_model, 3 * d_model)",
           "self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)", r"bias", "rare"),
    Mutant("separate-projections", MHA, "self.qkv = nn.Linear(d_model, 3 * d_model)\n",
           "self.qkv = nn.Linear(d_model, 3 * d_model)\n        self.q_proj = nn.Linear(d_model, d_model)\n",
           r"fused|no other parameters|only", "rare"),
]
