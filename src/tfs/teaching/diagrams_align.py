"""Chapter 13's data-flow diagram: supervised fine-tuning on chats (top row) and direct preference optimisation
(bottom row), both training LoRA adapters on a frozen LLaMA."""

from __future__ import annotations

import matplotlib.pyplot as plt

from tfs.teaching.diagrams import Stage, draw_pipeline

__all__ = ["ALIGNMENT_ALT", "draw_alignment"]

ALIGNMENT_ALT = (
    "Diagram in two rows of boxes. SFT: a chat of system, user and assistant messages; the chat template turns it into "
    "ChatML text; tokens with labels that are -100 except on the assistant's reply and its end-of-turn token, shifted "
    "by one; chats packed into rows with a block-diagonal mask; the frozen LLaMA with LoRA adapters computing "
    "W x + (alpha / r) B A x; the mean cross-entropy over labelled tokens, whose gradient reaches only A and B. "
    "DPO: a preference pair of a prompt, a chosen and a rejected response; the policy's log-probability of each "
    "response (adapters on); the reference's (adapters off, computed once and cached); the log-ratios; the loss "
    "minus log sigmoid of beta times the chosen log-ratio minus the rejected one; the update of A and B.")


def draw_alignment(ax: plt.Axes | None = None) -> plt.Axes:
    """Two rows: SFT (chat -> template -> labels -> packing -> LLaMA + LoRA -> loss) and DPO (pair -> policy and
    reference log-probabilities -> log-ratios -> loss -> adapters)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 4.4))
    sft = [Stage("chat", "system, user,\nassistant", "data"),
           Stage("chat template", "ChatML text", "op"),
           Stage("tokens, labels", "-100 but the reply\nand <|im_end|>", "op"),
           Stage("pack rows", "block-diagonal\nmask", "op"),
           Stage("LLaMA + LoRA", "W x + (α/r) B A x\nW frozen", "attn"),
           Stage("SFT loss", "mean CE over\nlabelled tokens", "op")]
    dpo = [Stage("pair", "prompt, chosen,\nrejected", "data"),
           Stage("policy log p", "sum over response\n(adapters on)", "attn"),
           Stage("reference log p", "adapters off,\ncomputed once", "norm"),
           Stage("log-ratios", "(π_c - ref_c)\n- (π_r - ref_r)", "op"),
           Stage("DPO loss", "-log σ(β · ratio)", "op"),
           Stage("update A, B", "AdamW on the\nadapters only", "ff")]
    for index, (label, stages) in enumerate((("SFT", sft), ("DPO", dpo))):
        draw_pipeline(stages, "", ax, y=-1.6 * index)
        ax.text(-1.2, -1.6 * index, label, ha="right", va="center", fontsize=11, fontweight="bold")
    ax.set_title("Chapter 13: new behaviour from chats (SFT) and from preferences (DPO), training LoRA adapters only")
    left, right, bottom, top = ax._tfs_bounds
    ax.set_xlim(left - 1.3, right)
    return ax
