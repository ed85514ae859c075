"""Chapter 12's data-flow diagram: a LLaMA-style decoder, bottom to top, its differences from GPT-2 in red."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from tfs.teaching.diagrams import COLORS, _arrow, _box

__all__ = ["draw_llama", "llama_alt_text"]

NEW = "#c0392b"  # what differs from GPT-2


def _note(ax, x, y, text):
    ax.text(x, y, text, fontsize=8, color=NEW, va="center", ha="left")


def draw_llama(config, ax: plt.Axes | None = None) -> plt.Axes:
    """The data flow of a LLaMA-style model with ``config``'s sizes (a :class:`tfs.models.llama.LLaMAConfig`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 8.4))
    c, cx = config, 0.0
    d, d_head = c.n_embd, c.n_embd // c.n_head
    _box(ax, cx, 0.0, 3.2, 0.45, "token ids  (B, T)  and  position ids (B, T)", COLORS["data"])
    _box(ax, cx, 0.95, 2.6, 0.5, f"embed  ({c.vocab_size}, {d})", COLORS["op"])
    _note(ax, cx + 1.5, 0.95, "no position table: positions\nenter every attention (RoPE)")
    _arrow(ax, (cx, 0.23), (cx, 0.7))
    ax.add_patch(FancyBboxPatch((cx - 2.7, 1.6), 5.4, 4.9, boxstyle="round,pad=0.05", facecolor="#f8f8f8",
                                edgecolor="#777777", linestyle="--"))
    ax.text(cx - 3.35, 4.0, f"x {c.n_layer}\nblocks", fontsize=10, va="center")
    _arrow(ax, (cx, 1.2), (cx, 1.85))
    _box(ax, cx - 1.2, 2.25, 1.7, 0.4, "norm1  RMSNorm", COLORS["norm"])
    _note(ax, cx + 0.35, 2.2, "no mean, no bias")
    _box(ax, cx - 1.2, 3.15, 2.3, 0.95,
         f"grouped-query attention\nq: {c.n_head} heads of {d_head}\nk, v: {c.n_kv_head} heads (cached)\n"
         f"RoPE on q, k (theta={c.rope_theta:g})", COLORS["attn"], 7.5)
    _note(ax, cx + 0.1, 3.25, f"each k/v head serves\n{c.n_head // c.n_kv_head} query heads")
    _box(ax, cx, 3.95, 0.5, 0.35, "+", COLORS["add"], 11)
    _arrow(ax, (cx, 1.85), (cx, 3.77))  # residual stream
    _arrow(ax, (cx, 1.95), (cx - 1.2, 2.05))
    _arrow(ax, (cx - 1.2, 2.45), (cx - 1.2, 2.67))
    _arrow(ax, (cx - 1.2, 3.63), (cx - 0.25, 3.95))
    _box(ax, cx - 1.2, 4.55, 1.7, 0.4, "norm2  RMSNorm", COLORS["norm"])
    _box(ax, cx - 1.2, 5.35, 2.3, 0.7, f"SwiGLU  {d} -> {c.d_ff} -> {d}\ndown(silu(gate x) * up x)", COLORS["ff"], 8)
    _note(ax, cx + 0.1, 5.2, "three matrices, a gate;\nno biases anywhere")
    _box(ax, cx, 6.2, 0.5, 0.35, "+", COLORS["add"], 11)
    _arrow(ax, (cx, 4.13), (cx, 6.02))
    _arrow(ax, (cx, 4.25), (cx - 1.2, 4.35))
    _arrow(ax, (cx - 1.2, 4.75), (cx - 1.2, 5.0))
    _arrow(ax, (cx - 1.2, 5.7), (cx - 0.25, 6.2))
    _box(ax, cx, 7.0, 1.9, 0.4, "norm  RMSNorm", COLORS["norm"])
    _arrow(ax, (cx, 6.38), (cx, 6.8))
    head = "lm_head = embed (tied)" if c.tie_embeddings else "lm_head (its own matrix)"
    _box(ax, cx, 7.77, 2.6, 0.52, f"{head}\nlogits (B, T, {c.vocab_size})", COLORS["op"])
    _arrow(ax, (cx, 7.2), (cx, 7.49))
    ax.set_xlim(-3.6, 3.3)
    ax.set_ylim(-0.4, 8.2)
    ax.axis("off")
    ax.set_title("A LLaMA-style decoder (red: what differs from GPT-2)", fontsize=11)
    return ax


def llama_alt_text(config) -> str:
    """A text description of :func:`draw_llama`'s figure, for readers who cannot see it."""
    c = config
    head = "tied to the embedding" if c.tie_embeddings else "a separate matrix"
    return (f"Token ids go into an embedding table of {c.vocab_size} rows of width {c.n_embd}; there is no position "
            f"table. {c.n_layer} identical blocks follow, each with two residual branches: RMSNorm then grouped-query "
            f"attention ({c.n_head} query heads and {c.n_kv_head} key/value heads of size {c.n_embd // c.n_head}, "
            f"queries and keys rotated by RoPE with theta {c.rope_theta:g}, the key/value heads cached), added back to "
            f"the stream; then RMSNorm and a SwiGLU feed-forward network ({c.n_embd} to {c.d_ff} and back), added "
            "back. "
            f"A final RMSNorm and the output head ({head}) give one logit per vocabulary entry.")
