"""Interactive head explorer: pick a layer, a head and a query token; see where that query looks.

    explorer = HeadExplorer(attentions, tokens)   # attentions: (layers, heads, L, L), or a list of (heads, L, L)
    explorer                                      # last expression of a cell: the widget

Left: the head's attention heatmap over the tokens, the chosen query's row outlined. Right: that row
as bars, one per key token. With live widgets (JupyterLab, Binder) the dropdowns redraw the figure.
Where widgets are not live (a notebook rendered on GitHub, nbconvert HTML), the same display carries
a PNG of the current view, so a reader still sees the figure.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import ipywidgets as widgets
import torch
from IPython import get_ipython
from IPython.display import Image, clear_output, display
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["HeadExplorer", "draw_head"]


def draw_head(weights: torch.Tensor, tokens: Sequence[str], query: int, title: str = "",
              figure: Figure | None = None) -> Figure:
    """Draw one head's ``weights (L, L)``: heatmap with row ``query`` outlined, and that row as bars."""
    weights = weights.detach().float().cpu()
    n = len(tokens)
    if weights.shape != (n, n):
        raise ValueError(f"weights of shape {tuple(weights.shape)} for {n} tokens")
    figure = figure or Figure(figsize=(10, 4))
    figure.clear()
    heat, bars = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    image = heat.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=heat, fraction=0.046, pad=0.04)
    heat.set_xticks(range(n), tokens, rotation=60, ha="right", fontsize=8)
    heat.set_yticks(range(n), tokens, fontsize=8)
    heat.set_xlabel("key (attended to)")
    heat.set_ylabel("query (attending)")
    heat.add_patch(Rectangle((-0.5, query - 0.5), n, 1, fill=False, edgecolor="red", linewidth=2))
    heat.set_title(title)
    row = weights[query].numpy()
    bars.bar(range(n), row, color=["tab:red" if j == int(row.argmax()) else "tab:blue" for j in range(n)])
    bars.set_xticks(range(n), tokens, rotation=60, ha="right", fontsize=8)
    bars.set_ylim(0, 1)
    bars.set_ylabel("attention weight")
    bars.set_title(f"where query {query} ({tokens[query]!r}) looks")
    figure.tight_layout()
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class HeadExplorer(widgets.VBox):
    """Dropdowns for layer, head and query token over ``attentions`` of one sequence of ``tokens``.

    Args:
        attentions: ``(layers, heads, L, L)`` tensor, or a sequence of ``(heads, L, L)`` (one per
            layer), or a single ``(heads, L, L)`` (one layer). A leading batch axis of size 1 is dropped.
        tokens: the ``L`` token strings.
        layer, head, query: the initial choice.
    """

    def __init__(self, attentions, tokens: Sequence[str], layer: int = 0, head: int = 0, query: int = 0):
        if isinstance(attentions, torch.Tensor):
            weights = attentions.detach()
        else:
            weights = torch.stack([w.detach().squeeze(0) if w.dim() == 4 else w.detach() for w in attentions])
        if weights.dim() == 5 and weights.shape[1] == 1:
            weights = weights[:, 0]
        if weights.dim() == 3:
            weights = weights[None]
        if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2] or weights.shape[-1] != len(tokens):
            raise ValueError(f"expected (layers, heads, {len(tokens)}, {len(tokens)}) attention weights "
                             f"for {len(tokens)} tokens, got {tuple(weights.shape)}")
        self.weights = weights.float().cpu()
        self.tokens = list(tokens)
        n_layers, n_heads = self.weights.shape[:2]
        style = {"description_width": "initial"}
        self.layer = widgets.Dropdown(options=[(f"layer {i}", i) for i in range(n_layers)], value=layer,
                                      description="Layer", style=style)
        self.head = widgets.Dropdown(options=[(f"head {i}", i) for i in range(n_heads)], value=head,
                                     description="Head", style=style)
        self.query = widgets.Dropdown(options=[(f"{i}: {t}", i) for i, t in enumerate(self.tokens)], value=query,
                                      description="Query token", style=style)
        self.output = widgets.Output()
        self.figure = Figure(figsize=(10, 4))
        self.updates = 0
        for control in (self.layer, self.head, self.query):
            control.observe(self.update, names="value")
        super().__init__([widgets.HBox([self.layer, self.head, self.query]), self.output])
        self.update()

    @property
    def row(self) -> torch.Tensor:
        """The attention row on display: ``(L,)``, the chosen query over every key."""
        return self.weights[self.layer.value, self.head.value, self.query.value]

    def update(self, change=None) -> None:
        """Redraw for the current dropdown values (the dropdowns' observer)."""
        title = f"layer {self.layer.value}, head {self.head.value}"
        draw_head(self.weights[self.layer.value, self.head.value], self.tokens, self.query.value, title, self.figure)
        self.updates += 1
        if get_ipython() is None:  # plain Python (tests): nothing to display into
            return
        with self.output:
            clear_output(wait=True)
            display(Image(_png(self.figure)))

    def alt_text(self) -> str:
        """What the figure on display shows, in words: its text alternative."""
        row, query = self.row, self.query.value
        top = row.topk(min(3, len(self.tokens))).indices.tolist()
        return (f"HeadExplorer: {self.weights.shape[0]} layer(s) x {self.weights.shape[1]} head(s) over "
                f"{len(self.tokens)} tokens (run the notebook for the interactive version). On display: layer "
                f"{self.layer.value}, head {self.head.value}, as a heat map of its weights (rows: queries, columns: keys) "
                f"and, as bars, where query {query} ({self.tokens[query]!r}) looks; its largest weights: "
                + ", ".join(f"{self.tokens[k]} {row[k]:.2f}" for k in top) + ".")

    def _repr_mimebundle_(self, **kwargs):
        """The live widget, plus a PNG and a text fallback for readers without live widgets, and the PNG's alt
        text in the metadata: ``(data, metadata)``, as IPython takes it."""
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle = dict(bundle)
        alt = self.alt_text()
        bundle["image/png"] = base64.b64encode(_png(self.figure)).decode("ascii")
        bundle["text/plain"] = alt
        return bundle, {"image/png": {"alt": alt}}
