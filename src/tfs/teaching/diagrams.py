"""Data-flow diagrams drawn by code (matplotlib), so they stay true to the package's models."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["draw_bert"]


def _box(ax, x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=color, ec="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, start, end):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color="0.3", lw=1))


def draw_bert(n_layers: int = 6, d_model: int = 384, tokens=("[CLS]", "the", "cat", "[MASK]", "[SEP]", "it", "sat", "[SEP]"),
              ax: plt.Axes | None = None) -> Figure:
    """BERT's data flow, bottom to top: ids and segments -> embeddings -> post-LN blocks -> pooler / MLM / NSP heads."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 6.2))
    ax.set_xlim(0, 10.3)
    ax.set_ylim(0, 10.4)
    ax.axis("off")
    n = len(tokens)
    xs = [1.2 + i * (7.6 / max(1, n - 1)) for i in range(n)]
    second = tokens.index("[SEP]") + 1 if "[SEP]" in tokens else n
    for i, (x, token) in enumerate(zip(xs, tokens)):
        _box(ax, x, 0.5, 0.9, 0.5, token, "#fde2c8" if token.startswith("[") else "#ffffff")
        ax.text(x, 1.05, f"seg {0 if i < second else 1}", ha="center", fontsize=7, color="0.35")
        _arrow(ax, (x, 1.2), (x, 1.75))
    _box(ax, 5, 2.2, 8.6, 0.8, "embeddings: token[id] + position[i] + segment[seg]  →  LayerNorm (eps 1e-12)  →  dropout",
         "#dbe9f6")
    _arrow(ax, (5, 2.62), (5, 3.15))
    _box(ax, 5, 3.95, 8.6, 1.5, "", "#e8f3e0")
    ax.text(5, 4.35, f"post-LN block × {n_layers}  (d_model = {d_model})", ha="center", fontsize=9, weight="bold")
    ax.text(5, 3.85, "x = LayerNorm(x + MultiHeadAttention(x, mask))     every token attends to every real token",
            ha="center", fontsize=8)
    ax.text(5, 3.45, "x = LayerNorm(x + FeedForward(x))     (Linear → exact GELU → Linear)", ha="center", fontsize=8)
    ax.text(9.55, 3.95, "padding\nmask\n(B,1,1,L)", ha="center", va="center", fontsize=7, color="0.35")
    for x in xs:
        _arrow(ax, (x, 4.72), (x, 5.25))
    for x, token in zip(xs, tokens):
        _box(ax, x, 5.55, 0.9, 0.45, "h", "#ffffff")
    _arrow(ax, (xs[0], 5.8), (1.6, 6.9))
    _box(ax, 1.6, 7.3, 2.6, 0.7, "pooler: tanh(W h[CLS] + b)", "#f6e0ef")
    _arrow(ax, (1.6, 7.66), (1.6, 8.4))
    _box(ax, 1.6, 8.8, 2.6, 0.7, "NSP head: Linear(d, 2)\nIsNext / NotNext", "#f6e0ef")
    masked = tokens.index("[MASK]") if "[MASK]" in tokens else 1
    _arrow(ax, (xs[masked], 5.8), (6.2, 6.9))
    _box(ax, 6.2, 7.3, 5.0, 0.7, "MLM head: dense → GELU → LayerNorm", "#fff3bf")
    _arrow(ax, (6.2, 7.66), (6.2, 8.4))
    _box(ax, 6.2, 8.8, 5.0, 0.7, "decoder = token embeddings (tied) + bias\n→ logits over the vocabulary", "#fff3bf")
    ax.text(6.2, 9.75, "loss: cross-entropy on the chosen 15 % (labels −100 elsewhere)", ha="center", fontsize=8)
    ax.text(1.6, 9.75, "loss: cross-entropy on the pair label", ha="center", fontsize=8)
    ax.set_title("BERT: one bidirectional encoder, two pretraining heads", fontsize=11)
    return ax.figure
