"""Chapter 10's data-flow diagram: one float32 model, four ways to make it smaller or faster, one table."""

from __future__ import annotations

import matplotlib.pyplot as plt

from tfs.teaching.diagrams import Stage, draw_pipeline

__all__ = ["draw_compression"]


def draw_compression(ax: plt.Axes | None = None):
    """Four rows: int8 quantization, magnitude pruning, distillation and LoRA, each from the float32 model
    to what it produces; every row ends in the chapter's measurement (size, latency, quality)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 6.2))
    rows = [
        [Stage("fp32 weight W", "(out, in) float32", "data"), Stage("scale per group", "(Ex. 1)", "op"),
         Stage("round, clamp", "q in [-127, 127]\nint8", "op"), Stage("dequantize", "q * scale\n(or int8 matmul)", "op"),
         Stage("measure size", "int8 matrices: / 4;\nlatency, perplexity", "data")],
        [Stage("all weights", "|w| of every layer", "data"), Stage("global threshold", "k-th smallest |w|", "op"),
         Stage("mask", "keep |w| > threshold\n(bool)", "op"), Stage("W * mask", "still dense:\nsame matmul", "op"),
         Stage("measure", "quality vs sparsity,\nlatency", "data")],
        [Stage("teacher", "big classifier\nlogits / T", "data"), Stage("student", "small model\nlogits / T", "op"),
         Stage("loss", "c(T) KL(p_T || q_T)\n+ CE(labels)", "op"), Stage("train student", "AdamW", "op"),
         Stage("measure", "accuracy, size", "data")],
        [Stage("frozen W", "(out, in)", "data"), Stage("A (r, in), B (out, r)", "one starts at zero\n(Ex. 5)", "op"),
         Stage("W x + (a/r) B A x", "train A, B only", "op"), Stage("merge", "W + (a/r) B A", "op"),
         Stage("measure", "trainable params,\nperplexity", "data")],
    ]
    labels = ["int8", "prune", "distil", "LoRA"]
    for index, (label, stages) in enumerate(zip(labels, rows)):
        draw_pipeline(stages, "", ax, y=-1.5 * index)
        ax.text(-1.2, -1.5 * index, label, ha="right", va="center", fontsize=11, fontweight="bold")
    ax.set_title("Chapter 10: four ways to a smaller or faster model, each measured in one table")
    left, right, bottom, top = ax._tfs_bounds
    ax.set_xlim(left - 1.3, right)
    return ax
