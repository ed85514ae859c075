"""Chapter 11's data-flow diagram: the encoder-decoder, with cross-attention's queries, keys and values marked."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

__all__ = ["draw_encoder_decoder"]

COLOURS = {"data": "#e8eef7", "op": "#fdf1dc", "attn": "#e3f3e1", "cross": "#f9dede"}


def _box(ax, x, y, w, h, text, kind):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=COLOURS[kind],
                                ec="#444444", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, start, end, text=None, colour="#444444"):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color=colour, lw=1.3))
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.05, (start[1] + end[1]) / 2, text, fontsize=8, color=colour, va="center")


def draw_encoder_decoder(n_encoder_layers: int = 2, n_decoder_layers: int = 2, d_model: int = 64,
                         ax: plt.Axes | None = None):
    """The encoder (left) reads the whole source once; the decoder (right) reads the target so far (shifted
    right: BOS first) and, in every block, attends to the encoder's output ("memory"): queries from the
    decoder, keys and values from the memory."""
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 6.2))
    ex, dx, w = 1.0, 3.4, 1.9
    _box(ax, ex, 0.3, w, 0.45, "source ids (B, S)\n\"3rd of March 2021\" + EOS", "data")
    _box(ax, ex, 1.1, w, 0.5, f"embedding x sqrt({d_model})\n+ sinusoidal positions", "op")
    _box(ax, ex, 2.1, w, 0.7, "self-attention (all S)\nsource padding masked", "attn")
    _box(ax, ex, 2.9, w, 0.45, "feed-forward", "op")
    _box(ax, ex, 3.65, w, 0.45, "LayerNorm -> memory (B, S, d)", "data")
    ax.text(ex - w / 2 - 0.12, 2.5, f"x {n_encoder_layers}", fontsize=11, ha="right")
    _box(ax, dx, 0.3, w, 0.45, "target shifted right (B, T)\nBOS 2 0 2 1 - 0 3 - 0", "data")
    _box(ax, dx, 1.1, w, 0.5, f"embedding x sqrt({d_model})\n+ sinusoidal positions", "op")
    _box(ax, dx, 1.95, w, 0.55, "masked self-attention\n(causal: t sees <= t)", "attn")
    _box(ax, dx, 2.85, w, 0.72, "cross-attention\nQ: decoder   K, V: memory\nmemory_mask: source padding", "cross")
    _box(ax, dx, 3.65, w, 0.45, "feed-forward", "op")
    _box(ax, dx, 4.4, w, 0.45, "LayerNorm -> head (B, T, V)", "data")
    _box(ax, dx, 5.2, w, 0.5, "loss vs target (not shifted)\nor arg-max -> next token", "data")
    ax.text(dx + w / 2 + 0.12, 2.8, f"x {n_decoder_layers}", fontsize=11, ha="left")
    heights = {ex: (0.45, 0.5, 0.7, 0.45, 0.45), dx: (0.45, 0.5, 0.55, 0.72, 0.45, 0.45, 0.5)}
    for x, ys in ((ex, (0.3, 1.1, 2.1, 2.9, 3.65)), (dx, (0.3, 1.1, 1.95, 2.85, 3.65, 4.4, 5.2))):
        for (a, ha), (b, hb) in zip(zip(ys, heights[x]), list(zip(ys, heights[x]))[1:]):
            _arrow(ax, (x, a + ha / 2 + 0.02), (x, b - hb / 2 - 0.02))   # from box edge to box edge
    _arrow(ax, (ex + w / 2, 3.65), (dx - w / 2, 2.95), "K, V (memory)", colour="#b22222")
    ax.set_xlim(-0.2, 4.7)
    ax.set_ylim(-0.1, 5.6)
    ax.axis("off")
    ax.set_title("Chapter 11: the encoder-decoder Transformer (Vaswani et al. 2017), post-LN", fontsize=11)
    return ax.figure
