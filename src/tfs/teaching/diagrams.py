"""Data-flow diagrams drawn by code (matplotlib), so every figure matches what the chapter builds.

:func:`draw_pipeline` draws a left-to-right flow of stages, each with the shape of what it produces
and optional side inputs; the chapter functions (``draw_training_loop``, ``draw_attention``,
``draw_multihead``, ``draw_blocks``, ``draw_tokenization``, ``draw_generation``) are pipelines of their chapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

__all__ = ["Stage", "draw_attention", "draw_bert", "draw_blocks", "draw_gpt", "draw_generation", "draw_multihead", "draw_pipeline",
           "draw_tokenization", "draw_training_loop"]

COLORS = {"data": "#eeeeee", "op": "#cfe2f3", "norm": "#fff2cc", "attn": "#f4cccc", "ff": "#d9ead3", "add": "#ffffff"}


@dataclass
class Stage:
    """One box: what happens (``label``), the shape of its result (``shape``), its kind (a key of COLORS),
    and side inputs drawn above it with an arrow into it."""

    label: str
    shape: str = ""
    kind: str = "op"
    inputs: list[str] = field(default_factory=list)


def _box(ax, x, y, w, h, text, color, fontsize=9):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="#333333", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, style="-|>", **kwargs):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color="#333333", linewidth=1,
                                 **kwargs))


def draw_pipeline(stages: list[Stage], title: str = "", ax: plt.Axes | None = None, y: float = 0.0,
                  loop_label: str | None = None, skips: tuple[tuple[int, int], ...] = (), loop_to: int = 1) -> plt.Axes:
    """Draw ``stages`` left to right at height ``y`` (several calls with different ``y`` stack rows).

    ``loop_label``: an arrow from the last stage back to stage ``loop_to`` (the second by default), labelled (a loop).
    ``skips``: ``(i, j)`` pairs drawn as arcs above the row from stage ``i`` to stage ``j`` (residuals).
    """
    width, gap = 1.9, 0.45
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(stages) * (width + gap)), 2.6))
    for index, stage in enumerate(stages):
        x = index * (width + gap)
        text = stage.label + (f"\n{stage.shape}" if stage.shape else "")
        _box(ax, x, y, width, 0.8, text, COLORS[stage.kind], fontsize=8.5)
        if index:
            _arrow(ax, (x - gap - width / 2, y), (x - width / 2, y))
        for offset, side in enumerate(stage.inputs):
            sx = x + (offset - (len(stage.inputs) - 1) / 2) * (width / max(1, len(stage.inputs)))
            ax.text(sx, y + 1.0, side, ha="center", va="center", fontsize=8, color="#333333",
                    bbox=dict(boxstyle="round,pad=0.2", facecolor=COLORS["data"], edgecolor="#999999"))
            _arrow(ax, (sx, y + 0.85), (sx, y + 0.42))
    for start, end in skips:
        _arrow(ax, (start * (width + gap), y + 0.42), (end * (width + gap), y + 0.42),
               connectionstyle="arc3,rad=-0.3", linestyle="--")
    last = (len(stages) - 1) * (width + gap)
    if loop_label:
        _arrow(ax, (last, y - 0.42), (loop_to * (width + gap), y - 0.42), connectionstyle="arc3,rad=-0.2")
        ax.text((last + loop_to * (width + gap)) / 2, y - 0.75, loop_label, ha="center", va="center", fontsize=8.5, style="italic")
    left, right, bottom, top = -width / 2 - 0.2, last + width / 2 + 0.2, y - (1.9 if loop_label else 0.8), y + 1.4
    bounds = getattr(ax, "_tfs_bounds", None)  # earlier rows on the same axes
    if bounds:
        left, right, bottom, top = min(left, bounds[0]), max(right, bounds[1]), min(bottom, bounds[2]), max(top, bounds[3])
    ax._tfs_bounds = (left, right, bottom, top)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def draw_training_loop(ax: plt.Axes | None = None) -> plt.Axes:
    """Chapter 00: fitting a line by gradient descent."""
    return draw_pipeline([
        Stage("x", "(N,)", "data"),
        Stage("model  w·x + b", "prediction (N,)", "op", inputs=["w, b"]),
        Stage("MSE loss", "scalar", "op", inputs=["y (N,)"]),
        Stage("loss.backward()", "w.grad, b.grad", "op"),
        Stage("step  w -= lr·grad", "new w, b", "op"),
    ], "Chapter 00: one step of gradient descent, repeated", ax, loop_label="repeat for every step")


def draw_attention(ax: plt.Axes | None = None) -> plt.Axes:
    """Chapter 01: scaled dot-product attention with a mask."""
    return draw_pipeline([
        Stage("Q", "(..., L_q, d_k)", "data"),
        Stage("scores  Q Kᵀ / √d_k", "(..., L_q, L_k)", "attn", inputs=["K (..., L_k, d_k)"]),
        Stage("mask: −∞ where\nnot allowed", "(..., L_q, L_k)", "op", inputs=["mask (bool, True = may attend)"]),
        Stage("softmax over keys", "weights, rows sum to 1", "op"),
        Stage("weights · V", "output (..., L_q, d_v)", "attn", inputs=["V (..., L_k, d_v)"]),
    ], "Chapter 01: scaled dot-product attention", ax)


def draw_multihead(ax: plt.Axes | None = None) -> plt.Axes:
    """Chapter 02: multi-head attention with one fused projection."""
    return draw_pipeline([
        Stage("x", "(B, L, d)", "data"),
        Stage("qkv  Linear(d, 3d)", "(B, L, 3d)", "op"),
        Stage("chunk + split_heads", "q, k, v: (B, h, L, d/h)", "op"),
        Stage("attention per head", "(B, h, L, d/h)", "attn", inputs=["mask"]),
        Stage("merge_heads", "(B, L, d)", "op"),
        Stage("out  Linear(d, d)", "(B, L, d)", "op"),
    ], "Chapter 02: multi-head self-attention", ax)


def draw_blocks(ax: plt.Axes | None = None) -> plt.Axes:
    """Chapter 03: a post-LN block (top row) and a pre-LN block (bottom row)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(15, 5.0))
    post = [Stage("x", "(B, L, d)", "data"), Stage("self-attention", "", "attn"), Stage("+ x", "residual", "add"),
            Stage("LayerNorm", "norm1", "norm"), Stage("feed-forward", "d → 4d → d", "ff"),
            Stage("+", "residual", "add"), Stage("LayerNorm", "norm2", "norm")]
    pre = [Stage("x", "(B, L, d)", "data"), Stage("LayerNorm", "norm1", "norm"), Stage("self-attention", "", "attn"),
           Stage("+ x", "residual", "add"), Stage("LayerNorm", "norm2", "norm"), Stage("feed-forward", "d → 4d → d", "ff"),
           Stage("+", "residual", "add")]
    draw_pipeline(post, ax=ax, y=3.2, skips=((0, 2), (3, 5)))
    ax.text(-1.0, 5.0, "post-LN (2017, BERT):  x ← LN(x + f(x)); the LayerNorms sit on the residual path",
            fontsize=10, weight="bold")
    draw_pipeline(pre, ax=ax, y=0.0, skips=((0, 3), (3, 6)))
    ax.text(-1.0, 1.8, "pre-LN (GPT-2):  x ← x + f(LN(x)); the residual path has no LayerNorm until the stack's final one",
            fontsize=10, weight="bold")
    ax.set_ylim(-0.8, 5.3)
    ax.set_title("Chapter 03: where the LayerNorm goes (dashed: residual connections)")
    return ax


def draw_tokenization(ax: plt.Axes | None = None) -> plt.Axes:
    """Chapter 04: from text to a padded batch."""
    return draw_pipeline([
        Stage("text", "str", "data"),
        Stage("normalise", "BERT: lower-case,\nstrip accents", "op"),
        Stage("pre-tokenise", "regex chunks", "op"),
        Stage("subwords", "BPE merges or\nWordPiece longest match", "op", inputs=["vocabulary / merges"]),
        Stage("ids", "list[int]", "data"),
        Stage("pad + mask", "input_ids, attention_mask\n(B, L)", "op"),
    ], "Chapter 04: tokenization", ax)


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
    ax.text(9.42, 3.95, "padding\nmask", ha="left", va="center", fontsize=7, color="0.35")   # beside the box, not on it
    for x in xs:
        _arrow(ax, (x, 4.72), (x, 5.25))
    for x, token in zip(xs, tokens):
        _box(ax, x, 5.55, 0.9, 0.45, "h", "#ffffff")
    _arrow(ax, (xs[0], 5.8), (1.6, 6.9))
    _box(ax, 1.6, 7.3, 2.6, 0.7, "pooler: tanh(W h[CLS] + b)", "#f6e0ef")
    _arrow(ax, (1.6, 7.66), (1.6, 8.4))
    _box(ax, 1.6, 8.8, 2.6, 0.8, "NSP head: Linear(d, 2)\nIsNext / NotNext", "#f6e0ef")
    masked = tokens.index("[MASK]") if "[MASK]" in tokens else 1
    _arrow(ax, (xs[masked], 5.8), (6.2, 6.9))
    _box(ax, 6.2, 7.3, 5.0, 0.7, "MLM head: dense → GELU → LayerNorm", "#fff3bf")
    _arrow(ax, (6.2, 7.66), (6.2, 8.4))
    _box(ax, 6.2, 8.8, 5.0, 0.8, "decoder = token embeddings (tied) + bias\n→ logits over the vocabulary", "#fff3bf")
    ax.text(6.2, 9.75, "loss: cross-entropy on the chosen 15 % (labels −100 elsewhere)", ha="center", fontsize=8)
    ax.text(1.6, 9.75, "loss: cross-entropy on the pair label", ha="center", fontsize=8)
    ax.set_title("BERT: one bidirectional encoder, two pretraining heads", fontsize=11)
    return ax.figure


def _gpt_parts(model) -> dict:
    """What :func:`draw_gpt` writes in its boxes, read off ``model``.

    ``None``: symbols (``V``, ``d``, ...). A config (:class:`tfs.models.gpt.GPTConfig` or anything with its fields):
    its sizes. An ``nn.Module`` laid out as this course's GPT (``wte``, ``wpe``, ``blocks``, ``ln_f``, ``lm_head``):
    the sizes of its tables and layers and the names of its first block's parts, as its ``state_dict`` spells them."""
    parts = {"vocab": "V", "d": "d", "block": "T_max", "n_layer": "N", "heads": "h", "d_ff": "4d", "tied": True,
             "norm1": "norm1", "attn": "attn", "norm2": "norm2", "ff": "ff"}
    if model is None:
        return parts
    if not isinstance(model, nn.Module):
        d = model.n_embd
        return {**parts, "vocab": model.vocab_size, "d": d, "block": model.block_size, "n_layer": model.n_layer,
                "heads": model.n_head, "d_ff": 4 * d}
    vocab, d = model.wte.weight.shape
    block = model.blocks[0]
    children = list(block.named_children())
    norms = [name for name, m in children if "norm" in type(m).__name__.lower()]
    norms += ["norm1", "norm2"][len(norms):]
    attn = next((name for name, m in children if hasattr(m, "n_heads")), None)  # a part it lacks keeps its symbol
    ff = next((name for name, m in children if hasattr(m, "linear1")), None)
    return {**parts, "vocab": vocab, "d": d, "block": model.wpe.weight.shape[0], "n_layer": len(model.blocks),
            "heads": getattr(block, attn).n_heads if attn else "h",
            "d_ff": getattr(block, ff).linear1.out_features if ff else "4d",
            "tied": model.lm_head.weight is model.wte.weight, "norm1": norms[0], "attn": attn or "attn",
            "norm2": norms[1], "ff": ff or "ff"}


def draw_gpt(model=None, ax: plt.Axes | None = None) -> plt.Axes:
    """GPT-2's data flow, bottom to top: ids -> embeddings -> ``n_layer`` pre-LN blocks -> ``ln_f`` -> tied head.

    ``model``: a GPT (``nn.Module``, this course's layout): its sizes and the names of its parts are read off it;
    or a config (:class:`tfs.models.gpt.GPTConfig` or anything with its fields): its sizes, the course's names;
    or ``None``: symbols and the course's names."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 8.2))
    p = _gpt_parts(model)
    d, vocab = p["d"], p["vocab"]
    cx = 0.0
    # bottom: inputs and embeddings
    _box(ax, cx, 0.0, 3.2, 0.45, "token ids  (B, T)", "#eeeeee")
    _box(ax, cx - 1.0, 1.0, 2.0, 0.55, f"wte  token embedding\n({vocab}, {d})", "#cfe2f3")
    _box(ax, cx + 1.25, 1.0, 2.0, 0.55, f"wpe  positions 0..T-1\n({p['block']}, {d}), learned", "#cfe2f3")
    _arrow(ax, (cx - 0.4, 0.23), (cx - 1.0, 0.72))
    _arrow(ax, (cx + 0.4, 0.23), (cx + 1.2, 0.72))
    _box(ax, cx, 1.85, 1.6, 0.4, "+  then dropout", "#ffffff")
    _arrow(ax, (cx - 1.0, 1.28), (cx - 0.3, 1.65))
    _arrow(ax, (cx + 1.2, 1.28), (cx + 0.3, 1.65))
    # one block, repeated
    ax.add_patch(FancyBboxPatch((cx - 2.6, 2.35), 5.2, 4.1, boxstyle="round,pad=0.05", facecolor="#f8f8f8",
                                edgecolor="#777777", linestyle="--"))
    ax.text(cx + 2.75, 4.4, f"x {p['n_layer']}\nblocks", fontsize=10, va="center")
    _arrow(ax, (cx, 2.05), (cx, 2.6))
    _box(ax, cx - 1.2, 3.05, 1.75, 0.4, f"{p['norm1']}  LayerNorm", "#fff2cc")
    _box(ax, cx - 1.2, 3.75, 2.2, 0.55, f"{p['attn']}  causal self-attention\n{p['heads']} heads, mask j <= i",
         "#f4cccc", 8.5)
    _box(ax, cx, 4.35, 0.5, 0.35, "+", "#ffffff", 11)
    _arrow(ax, (cx, 2.6), (cx, 4.17))  # residual stream
    _arrow(ax, (cx, 2.75), (cx - 1.2, 2.85))
    _arrow(ax, (cx - 1.2, 3.25), (cx - 1.2, 3.47))
    _arrow(ax, (cx - 1.2, 4.03), (cx - 0.25, 4.35))
    _box(ax, cx - 1.2, 4.95, 1.75, 0.4, f"{p['norm2']}  LayerNorm", "#fff2cc")
    _box(ax, cx - 1.2, 5.65, 2.2, 0.55, f"{p['ff']}  MLP  {d} -> {p['d_ff']} -> {d}\nGELU (tanh)", "#d9ead3", 8.5)
    _box(ax, cx, 6.2, 0.5, 0.35, "+", "#ffffff", 11)
    _arrow(ax, (cx, 4.53), (cx, 6.02))
    _arrow(ax, (cx, 4.65), (cx - 1.2, 4.75))
    _arrow(ax, (cx - 1.2, 5.15), (cx - 1.2, 5.37))
    _arrow(ax, (cx - 1.2, 5.93), (cx - 0.25, 6.2))
    ax.text(cx + 0.15, 3.3, "residual\nstream", fontsize=8, color="#555555")
    # top: final norm and head
    _box(ax, cx, 7.0, 1.8, 0.4, "ln_f  LayerNorm", "#fff2cc")
    _arrow(ax, (cx, 6.38), (cx, 6.8))
    head = "weight = wte.weight (tied)" if p["tied"] else "its own weight (not tied)"
    _box(ax, cx, 7.75, 2.6, 0.56, f"lm_head  ({d} -> {vocab})\n{head}", "#cfe2f3")
    _arrow(ax, (cx, 7.2), (cx, 7.45))
    if p["tied"]:
        _arrow(ax, (cx - 2.1, 1.0), (cx - 1.3, 7.75), style="-", linestyle=":", connectionstyle="arc3,rad=-0.25")
    _box(ax, cx, 8.55, 4.1, 0.45, f"logits (B, T, {vocab}): position t predicts token t+1", "#eeeeee")
    _arrow(ax, (cx, 8.05), (cx, 8.32))
    ax.set_xlim(-3.3, 3.6)
    ax.set_ylim(-0.4, 8.95)
    ax.axis("off")
    ax.set_title("GPT-2: data flow" + (f" ({p['n_layer']} layers, d = {d})" if model is not None else ""))
    return ax


def draw_generation(ax: plt.Axes | None = None) -> plt.Axes:
    """Chapter 07: one decoding step, repeated; the KV cache feeds the model only the newest token."""
    return draw_pipeline([
        Stage("prompt ids", "(B, T), left-padded", "data"),
        Stage("GPT forward", "logits (B, V)\nof the last position", "attn", inputs=["KV cache: past k, v per layer"]),
        Stage("repetition penalty", "(B, V)", "op", inputs=["tokens so far"]),
        Stage("÷ temperature,\ntop-k, top-p", "(B, V), −∞ = cut", "op"),
        Stage("arg-max (T = 0)\nor seeded sample", "next id (B, 1)", "op"),
        Stage("append; stop at\nEOS or length", "(B, T + 1)", "data"),
    ], "Chapter 07: one decoding step", ax, loop_label="repeat, feeding only the new token when cached")
