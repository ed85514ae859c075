"""Reference model code: attention and masks, layers, blocks.

Chapters 01-03 ask the learner to write these; later chapters import them from here, so a learner
who struggled earlier can still go on. An exercise and its reference share names and signatures:
a learner's class drops in wherever the reference is used.

- :mod:`tfs.nn.attention`  softmax, masks (causal, padding), scaled dot-product and multi-head attention, KV cache
- :mod:`tfs.nn.layers`     LayerNorm, the feed-forward network, activations, sinusoidal and rotary positions
- :mod:`tfs.nn.blocks`     the Transformer block (pre- or post-LN) and a stack of blocks
- :mod:`tfs.nn.modern`     RMSNorm, RoPE at a model's theta, SwiGLU, grouped-query attention (LLaMA, chapter 12)
"""

from tfs.nn.attention import (KVCache, MultiHeadAttention, causal_mask, check_mask, merge_heads, padding_mask,
                              scaled_dot_product_attention, softmax, split_heads)
from tfs.nn.blocks import Encoder, TransformerBlock
from tfs.nn.layers import ACTIVATIONS, FeedForward, LayerNorm, apply_rope, sinusoidal_positions
from tfs.nn.modern import GroupedQueryAttention, RMSNorm, SwiGLU, repeat_kv, rope, swiglu_hidden

__all__ = [
    "ACTIVATIONS", "Encoder", "FeedForward", "GroupedQueryAttention", "KVCache", "LayerNorm", "MultiHeadAttention",
    "RMSNorm", "SwiGLU", "TransformerBlock", "apply_rope", "causal_mask", "check_mask", "merge_heads", "padding_mask",
    "repeat_kv", "rope", "scaled_dot_product_attention", "sinusoidal_positions", "softmax", "split_heads", "swiglu_hidden",
]
