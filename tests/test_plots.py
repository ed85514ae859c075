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
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw: shown.append((bundle, raw)))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    plots.show_figure(fig, "A line falling from 1 to 0.")
    (bundle, raw), = shown
    assert raw and bundle["text/plain"] == "A line falling from 1 to 0."
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(fig.number)
