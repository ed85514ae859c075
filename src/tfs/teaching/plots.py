"""Plots the chapters share: attention heatmaps and training curves, and figures shown with a text alternative."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch


def plot_attention(
    weights: torch.Tensor,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    annotate: bool | None = None,
) -> plt.Axes:
    """Draw ``weights (Lq, Lk)`` as a heatmap: one row per query, one column per key.

    Token labels go on the axes; cells are annotated with their value when the matrix is small
    (or when ``annotate`` says so).
    """
    weights = weights.detach().float().cpu()
    if weights.dim() != 2:
        raise ValueError(f"plot_attention draws one (queries, keys) matrix; got shape {tuple(weights.shape)}")
    n_q, n_k = weights.shape
    for label, tokens, n in (("query_tokens", query_tokens, n_q), ("key_tokens", key_tokens, n_k)):
        if tokens is not None and len(tokens) != n:
            raise ValueError(f"{label} has {len(tokens)} labels for {n} rows/columns")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.5 * n_k, 0.8 + 0.45 * n_q))
    image = ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=max(1e-9, float(weights.max())))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n_k), key_tokens if key_tokens is not None else range(n_k), rotation=45, ha="right")
    ax.set_yticks(range(n_q), query_tokens if query_tokens is not None else range(n_q))
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if annotate if annotate is not None else n_q * n_k <= 100:
        threshold = 0.6 * float(weights.max())
        for i in range(n_q):
            for j in range(n_k):
                value = float(weights[i, j])
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if value > threshold else "white")
    if title:
        ax.set_title(title)
    return ax


def plot_losses(
    curves: dict[str, Sequence[float]], ax: plt.Axes | None = None, xlabel: str = "step",
    ylabel: str = "loss", log_y: bool = False, title: str | None = None,
) -> plt.Axes:
    """Plot one or more loss curves, ``{label: values}``, on one axis."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in curves.items():
        ax.plot(list(values), label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log_y:
        ax.set_yscale("log")
    if len(curves) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return ax


def describe_figure(figure: plt.Figure) -> str:
    """A text alternative read off ``figure``: its title, then for each panel its title, what it draws (lines,
    bars, a heat map), its axis labels and legend, and the words written inside it (a diagram's boxes, in reading
    order: top to bottom, left to right)."""
    parts = [figure._suptitle.get_text()] if figure._suptitle is not None else []
    panels = [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]
    for number, ax in enumerate(panels, 1):
        words = [ax.get_title()] if ax.get_title() else []
        kinds = [name for name, present in (("heat map", ax.images), ("lines", ax.lines), ("bars", ax.patches and
                 any(type(p).__name__ == "Rectangle" for p in ax.patches) and ax.axison), ("points", ax.collections))
                 if present]
        if ax.axison:
            words.append(" and ".join(kinds) + ", " if kinds else "")
            words[-1] += f"x: {ax.get_xlabel() or 'unlabelled'}, y: {ax.get_ylabel() or 'unlabelled'}"
        legend = ax.get_legend()
        if legend is not None:
            words.append("legend: " + ", ".join(t.get_text() for t in legend.get_texts()))
        texts = sorted((t for t in ax.texts if t.get_text().strip()),
                       key=lambda t: (-round(t.get_position()[1], 3), t.get_position()[0]))
        if texts and not ax.images:  # a heat map's cell values are its data, not words
            words.append("text: " + "; ".join(" ".join(t.get_text().split()) for t in texts))
        label = f"panel {number} of {len(panels)}: " if len(panels) > 1 else ""
        parts.append(label + " - ".join(w for w in words if w))
    return ". ".join(p for p in parts if p) or "a figure without text"


def show_figure(figure: plt.Figure, alt: str | None = None) -> None:
    """Show ``figure`` in a notebook as a PNG with a text alternative ``alt`` (by default read off the figure by
    :func:`describe_figure`): its text form (instead of ``<Figure size ...>``), what a reader who cannot see the
    image gets from a text-only view of the notebook, and the ``alt`` of the image in HTML exports and feedback
    pages. The figure is closed."""
    from IPython.display import display

    alt = alt or describe_figure(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    display({"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": alt},
            metadata={"image/png": {"alt": alt}}, raw=True)
