"""Chapter 10's diagram draws (four rows of five boxes, labelled)."""


def test_compression_diagram_draws(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from tfs.teaching.diagrams_compress import draw_compression

    ax = draw_compression()
    ax.figure.savefig(tmp_path / "compression.png")
    assert len(ax.patches) >= 20 and ax.get_title()
    assert {"int8", "prune", "distil", "LoRA"} <= {text.get_text() for text in ax.texts}
