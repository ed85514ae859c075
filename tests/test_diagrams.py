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


def test_draw_gpt_reads_sizes_and_part_names_off_a_model():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch import nn

    from tfs.models.gpt import GPT, GPTConfig
    from tfs.teaching.diagrams import draw_gpt

    model = GPT(GPTConfig(vocab_size=85, block_size=64, n_layer=3, n_head=4, n_embd=32))
    texts = [t.get_text() for t in draw_gpt(model).texts]
    assert "wte  token embedding\n(85, 32)" in texts and "wpe  positions 0..T-1\n(64, 32), learned" in texts
    assert {"norm1  LayerNorm", "norm2  LayerNorm", "x 3\nblocks"} <= set(texts)
    assert "ff  MLP  32 -> 128 -> 32\nGELU (tanh)" in texts and "lm_head  (32 -> 85)\nweight = wte.weight (tied)" in texts
    model.lm_head.weight = nn.Parameter(model.wte.weight.detach().clone())
    assert "lm_head  (32 -> 85)\nits own weight (not tied)" in [t.get_text() for t in draw_gpt(model).texts]
    assert "norm1  LayerNorm" in [t.get_text() for t in draw_gpt().texts]   # symbols, this course's names
    plt.close("all")
