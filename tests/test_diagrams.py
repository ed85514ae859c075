"""Every chapter's data-flow diagram draws (tfs.teaching.diagrams)."""


def test_every_chapter_diagram_draws(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from tfs.teaching import diagrams

    for name in ("draw_training_loop", "draw_attention", "draw_multihead", "draw_blocks", "draw_tokenization",
                 "draw_generation"):
        ax = getattr(diagrams, name)()
        ax.figure.savefig(tmp_path / f"{name}.png")
        assert len(ax.patches) >= 5 and ax.get_title()
