"""Data-flow diagrams drawn by code (matplotlib), so a figure always matches the package's models."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["draw_gpt"]


def _box(ax, x, y, w, h, text, color, fontsize=9):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="#333333", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, style="-|>", **kwargs):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color="#333333", linewidth=1,
                                 **kwargs))


def draw_gpt(config=None, ax: plt.Axes | None = None) -> plt.Axes:
    """GPT-2's data flow, bottom to top: ids -> embeddings -> ``n_layer`` pre-LN blocks -> ``ln_f`` -> tied head.

    ``config`` (a :class:`tfs.models.gpt.GPTConfig` or anything with its fields) fills in the sizes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 8.2))
    n_layer = getattr(config, "n_layer", "N")
    d = getattr(config, "n_embd", "d")
    vocab = getattr(config, "vocab_size", "V")
    block = getattr(config, "block_size", "T_max")
    heads = getattr(config, "n_head", "h")
    cx = 0.0
    # bottom: inputs and embeddings
    _box(ax, cx, 0.0, 3.2, 0.45, "token ids  (B, T)", "#eeeeee")
    _box(ax, cx - 1.0, 1.0, 2.0, 0.55, f"wte  token embedding\n({vocab}, {d})", "#cfe2f3")
    _box(ax, cx + 1.25, 1.0, 2.0, 0.55, f"wpe  positions 0..T-1\n({block}, {d}), learned", "#cfe2f3")
    _arrow(ax, (cx - 0.4, 0.23), (cx - 1.0, 0.72))
    _arrow(ax, (cx + 0.4, 0.23), (cx + 1.2, 0.72))
    _box(ax, cx, 1.85, 1.6, 0.4, "+  then dropout", "#ffffff")
    _arrow(ax, (cx - 1.0, 1.28), (cx - 0.3, 1.65))
    _arrow(ax, (cx + 1.2, 1.28), (cx + 0.3, 1.65))
    # one block, repeated
    ax.add_patch(FancyBboxPatch((cx - 2.6, 2.35), 5.2, 4.1, boxstyle="round,pad=0.05", facecolor="#f8f8f8",
                                edgecolor="#777777", linestyle="--"))
    ax.text(cx + 2.75, 4.4, f"x {n_layer}\nblocks", fontsize=10, va="center")
    _arrow(ax, (cx, 2.05), (cx, 2.6))
    _box(ax, cx - 1.2, 3.05, 1.6, 0.4, "ln_1  LayerNorm", "#fff2cc")
    _box(ax, cx - 1.2, 3.75, 2.2, 0.55, f"causal self-attention\n{heads} heads, mask j <= i", "#f4cccc")
    _box(ax, cx, 4.35, 0.5, 0.35, "+", "#ffffff", 11)
    _arrow(ax, (cx, 2.6), (cx, 4.17))  # residual stream
    _arrow(ax, (cx, 2.75), (cx - 1.2, 2.85))
    _arrow(ax, (cx - 1.2, 3.25), (cx - 1.2, 3.47))
    _arrow(ax, (cx - 1.2, 4.03), (cx - 0.25, 4.35))
    _box(ax, cx - 1.2, 4.95, 1.6, 0.4, "ln_2  LayerNorm", "#fff2cc")
    _box(ax, cx - 1.2, 5.65, 2.2, 0.55, f"MLP  {d} -> {4 * d if isinstance(d, int) else '4d'} -> {d}\nGELU (tanh)",
         "#d9ead3")
    _box(ax, cx, 6.2, 0.5, 0.35, "+", "#ffffff", 11)
    _arrow(ax, (cx, 4.53), (cx, 6.02))
    _arrow(ax, (cx, 4.65), (cx - 1.2, 4.75))
    _arrow(ax, (cx - 1.2, 5.15), (cx - 1.2, 5.37))
    _arrow(ax, (cx - 1.2, 5.93), (cx - 0.25, 6.2))
    ax.text(cx + 0.15, 3.3, "residual\nstream", fontsize=8, color="#555555")
    # top: final norm and head
    _box(ax, cx, 7.0, 1.8, 0.4, "ln_f  LayerNorm", "#fff2cc")
    _arrow(ax, (cx, 6.38), (cx, 6.8))
    _box(ax, cx, 7.75, 2.6, 0.5, f"lm_head  (d -> {vocab})\nweight = wte.weight (tied)", "#cfe2f3")
    _arrow(ax, (cx, 7.2), (cx, 7.5))
    _arrow(ax, (cx - 2.1, 1.0), (cx - 1.3, 7.75), style="-", linestyle=":", connectionstyle="arc3,rad=-0.25")
    _box(ax, cx, 8.55, 3.6, 0.45, "logits (B, T, V): position t predicts token t+1", "#eeeeee")
    _arrow(ax, (cx, 8.0), (cx, 8.32))
    ax.set_xlim(-3.3, 3.6)
    ax.set_ylim(-0.4, 8.95)
    ax.axis("off")
    ax.set_title("GPT-2: data flow" + (f" ({n_layer} layers, d = {d})" if config is not None else ""))
    return ax
