"""tfs.teaching.plots.show_figure: a figure shown as a PNG whose text form is its description."""

from __future__ import annotations

import base64


def test_show_figure_displays_a_png_with_the_alt_text_and_closes_the_figure(monkeypatch):
    import IPython.display
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfs.teaching import plots

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw, metadata: shown.append((bundle, raw, metadata)))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    plots.show_figure(fig, "A line falling from 1 to 0.")
    (bundle, raw, metadata), = shown
    assert raw and bundle["text/plain"] == "A line falling from 1 to 0."
    assert metadata == {"image/png": {"alt": "A line falling from 1 to 0."}}  # the img's alt in nbconvert's HTML
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(fig.number)


def test_describe_figure_reads_titles_axes_legends_and_a_diagrams_boxes_in_reading_order():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from tfs.teaching import plots

    fig, (left, right) = plt.subplots(1, 2)
    fig.suptitle("two panels")
    plots.plot_attention(torch.eye(2), ["a", "b"], ["a", "b"], ax=left, title="weights")
    right.plot([0, 1], label="train")
    right.plot([1, 0], label="validation")
    right.set(xlabel="step", ylabel="loss")
    right.legend()
    assert plots.describe_figure(fig) == ("two panels. panel 1 of 2: weights - heat map, x: key (attended to), "
                                          "y: query (attending). panel 2 of 2: lines, x: step, y: loss - "
                                          "legend: train, validation")
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.axis("off")
    ax.text(0.5, 0.2, "output")
    ax.text(0.1, 0.8, "input")
    ax.text(0.6, 0.8, "weights")
    assert plots.describe_figure(fig) == "text: input; weights; output"
    plt.close(fig)


def test_show_figure_without_alt_describes_the_figure(monkeypatch):
    import IPython.display
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfs.teaching import plots

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw, metadata: shown.append(metadata))
    fig, ax = plt.subplots()
    ax.bar([0, 1], [1, 2])
    ax.set(title="counts", xlabel="token", ylabel="count")
    plots.show_figure(fig)
    assert shown == [{"image/png": {"alt": "counts - bars, x: token, y: count"}}]
