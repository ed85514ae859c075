"""Chapter 09's data-flow diagram: a checkpoint folder -> Auto* classes -> a pipeline's three steps."""

from __future__ import annotations

import matplotlib.pyplot as plt

from tfs.teaching.diagrams import Stage, draw_pipeline

__all__ = ["draw_pretrained"]


def draw_pretrained(task: str = "text-generation", ax: plt.Axes | None = None):
    """What ``pipeline(task, model=<folder or hub id>)`` does, left to right, with the files each step reads."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.6))
    head = {"text-generation": ("AutoModelFor-\nCausalLM", "logits", "generate():\nappend the chosen\ntoken, repeat"),
            "fill-mask": ("AutoModelFor-\nMaskedLM", "logits", "softmax at [MASK],\ntop-k tokens"),
            "feature-extraction": ("AutoModel\n(no head)", "vectors", "hidden states;\nmean-pool ->\ncosine")}[task]
    draw_pipeline([
        Stage("checkpoint", "folder or hub id:\nconfig.json,\n*.safetensors,\ntokenizer.json", "data"),
        Stage("AutoConfig", "model_type ->\nwhich class", "op", inputs=["config.json"]),
        Stage("AutoTokenizer", "text -> input_ids,\nattention_mask", "op", inputs=["tokenizer.json"]),
        Stage(head[0], f"forward: {head[1]},\nno_grad, but no\neval() call", "op",
              inputs=["model.safetensors"]),
        Stage("post-process", head[2], "op"),
        Stage("output", "text, tokens +\nscores, vectors", "data"),
    ], f"Chapter 09: pipeline({task!r}) = tokenize -> forward -> post-process", ax)
    return ax.figure
