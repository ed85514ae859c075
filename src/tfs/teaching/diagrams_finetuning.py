"""Chapter 08's data-flow diagram: text -> tokens -> dynamic padding -> BERT -> pooling -> head -> loss."""

from __future__ import annotations

import matplotlib.pyplot as plt

from tfs.teaching.diagrams import Stage, draw_pipeline

__all__ = ["draw_finetuning"]


def draw_finetuning(n_layers: int = 6, d_model: int = 384, n_classes: int = 2, frozen: int = 0,
                    ax: plt.Axes | None = None):
    """Fine-tuning's data flow, left to right, with the two learning rates and the frozen blocks marked.

    ``frozen`` lower blocks (run once, their outputs cached) are drawn apart from the trained ones.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 4.0))
    trained = f"block {n_layers}" if frozen + 1 == n_layers else f"blocks {frozen + 1}-{n_layers}"
    encoder = (f"{n_layers} post-LN blocks,\nd={d_model}" if not frozen else
               f"blocks 1-{frozen} frozen\n(cached);\n{trained} trained")
    draw_pipeline([
        Stage("texts + labels", "str, int", "data"),
        Stage("tokenize once", "[CLS] ... [SEP]\nno padding", "op"),
        Stage("collate", "pad each batch\nto its longest;\nmask, labels", "op"),
        Stage("BERT encoder", encoder, "op", inputs=["encoder LR (small)"]),
        Stage("mean pool", "real tokens only\n(B, d)", "op"),
        Stage("head", f"dropout +\nLinear (d -> {n_classes})", "op", inputs=["head LR (large)"]),
        Stage("loss", "cross-entropy;\nAdamW, clip,\nwarm-up + decay", "data"),
    ], "Chapter 08: fine-tuning a pretrained encoder for classification", ax,
        loop_label="repeat for every batch; evaluate on validation texts after each epoch", loop_to=2)
    return ax.figure
