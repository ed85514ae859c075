"""The head explorer, headless: construction, its update callback, and the static fallback."""

import base64

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from tfs.teaching.widgets import HeadExplorer, draw_head

TOKENS = ["the", "cat", "sat", "on", "the", "mat"]


def attentions(layers=2, heads=3, n=len(TOKENS)):
    torch.manual_seed(0)
    return torch.softmax(torch.randn(layers, heads, n, n), dim=-1)


def test_construction_offers_every_layer_head_and_token():
    explorer = HeadExplorer(attentions(), TOKENS)
    assert [value for _, value in explorer.layer.options] == [0, 1]
    assert [value for _, value in explorer.head.options] == [0, 1, 2]
    assert [label for label, _ in explorer.query.options] == [f"{i}: {t}" for i, t in enumerate(TOKENS)]
    assert explorer.updates == 1  # drawn once on construction
    assert len(explorer.figure.axes) == 3  # heatmap, its colour bar, the row's bars


def test_changing_a_dropdown_calls_the_update_and_redraws_the_chosen_row():
    weights = attentions()
    explorer = HeadExplorer(weights, TOKENS)
    explorer.layer.value = 1
    explorer.head.value = 2
    explorer.query.value = 4
    assert explorer.updates == 4
    assert torch.equal(explorer.row, weights[1, 2, 4])
    heat, bars = explorer.figure.axes[:2]  # then the colour bar
    assert torch.allclose(torch.tensor(heat.images[0].get_array()), weights[1, 2])
    assert [round(p.get_height(), 6) for p in bars.patches] == [round(v, 6) for v in weights[1, 2, 4].tolist()]
    assert heat.get_title() == "layer 1, head 2"
    assert "'the'" in bars.get_title()


def test_accepts_a_list_per_layer_with_a_batch_axis_and_a_single_layer():
    weights = attentions()
    per_layer = [weights[i][None] for i in range(2)]  # (1, heads, L, L), as models return them
    assert torch.equal(HeadExplorer(per_layer, TOKENS).weights, weights)
    assert HeadExplorer(weights[0], TOKENS).weights.shape == (1, 3, 6, 6)


def test_rejects_weights_that_do_not_fit_the_tokens():
    with pytest.raises(ValueError, match="6 tokens"):
        HeadExplorer(attentions(n=5), TOKENS)


def test_display_carries_a_png_and_text_for_readers_without_live_widgets():
    explorer = HeadExplorer(attentions(), TOKENS, layer=1, head=2, query=3)
    bundle, metadata = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert "HeadExplorer: 2 layer(s) x 3 head(s)" in bundle["text/plain"]
    alt = metadata["image/png"]["alt"]                       # the image's alt text says what the figure shows
    assert alt == bundle["text/plain"] and "layer 1, head 2" in alt and f"query 3 ({TOKENS[3]!r})" in alt
    top = explorer.weights[1, 2, 3].argmax().item()
    assert f"largest weights: {TOKENS[top]} {explorer.weights[1, 2, 3, top]:.2f}" in alt


def test_draw_head_checks_shapes():
    figure = draw_head(attentions()[0, 0], TOKENS, query=2, title="t")
    assert figure.axes[0].get_title() == "t"
    with pytest.raises(ValueError):
        draw_head(torch.ones(3, 3), TOKENS, query=0)
