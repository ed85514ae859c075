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


def _overflowing_texts(figure, margin_px=2.0):
    """Every text of ``figure`` that overlaps a box (a FancyBboxPatch) without lying inside it, ``margin_px`` from
    its edges, as (text, box's data-coordinate corner): a label wider or taller than its box, or one drawn across
    a box's border. The extents are the renderer's, so the fonts' real sizes count."""
    from matplotlib.patches import FancyBboxPatch

    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    found = []
    for ax in figure.axes:
        boxes = [(p.get_window_extent(renderer), p) for p in ax.patches if isinstance(p, FancyBboxPatch)]
        for text in ax.texts:
            if not text.get_text().strip():
                continue
            e = text.get_window_extent(renderer)
            for b, patch in boxes:
                overlaps = min(e.x1, b.x1) > max(e.x0, b.x0) and min(e.y1, b.y1) > max(e.y0, b.y0)
                inside = (b.x0 + margin_px <= e.x0 and e.x1 <= b.x1 - margin_px
                          and b.y0 + margin_px <= e.y0 and e.y1 <= b.y1 - margin_px)
                if overlaps and not inside:
                    found.append((text.get_text(), (round(patch.get_x(), 2), round(patch.get_y(), 2))))
    return found


def _every_chapter_diagram():
    """(name, function drawing it as its chapter calls it): chapters 00-13, both sizes of chapter 06's GPT,
    chapter 08's variant with frozen blocks, chapter 09's three pipelines."""
    from tfs.models.gpt import GPTConfig
    from tfs.models.llama import LLaMAConfig
    from tfs.teaching import diagrams
    from tfs.teaching.diagrams_align import draw_alignment
    from tfs.teaching.diagrams_applications import draw_encoder_decoder
    from tfs.teaching.diagrams_compress import draw_compression
    from tfs.teaching.diagrams_finetuning import draw_finetuning
    from tfs.teaching.diagrams_llama import draw_llama
    from tfs.teaching.diagrams_pretrained import draw_pretrained

    cases = [(name, getattr(diagrams, name)) for name in ("draw_training_loop", "draw_attention", "draw_multihead",
                                                          "draw_blocks", "draw_tokenization", "draw_generation")]
    cases += [("05 draw_bert", lambda: diagrams.draw_bert(n_layers=6, d_model=384)),
              ("06 draw_gpt()", diagrams.draw_gpt),
              ("06 draw_gpt(model)", lambda: diagrams.draw_gpt(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12,
                                                                         n_head=12, n_embd=768))),
              ("08 draw_finetuning", lambda: draw_finetuning(n_layers=6, d_model=384, n_classes=2, frozen=0)),
              ("08 draw_finetuning(frozen=5)", lambda: draw_finetuning(frozen=5))]
    cases += [(f"09 draw_pretrained({task})", lambda task=task: draw_pretrained(task))
              for task in ("text-generation", "fill-mask", "feature-extraction")]
    cases += [("10 draw_compression", draw_compression),
              ("11 draw_encoder_decoder", lambda: draw_encoder_decoder(n_encoder_layers=2, n_decoder_layers=2, d_model=64)),
              ("12 draw_llama", lambda: draw_llama(LLaMAConfig())),
              ("13 draw_alignment", draw_alignment)]
    return cases


def test_every_chapter_diagrams_text_lies_inside_its_boxes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    for name, draw in _every_chapter_diagram():
        drawn = draw()
        figure = drawn if isinstance(drawn, Figure) else drawn.figure
        overflowing = _overflowing_texts(figure)
        plt.close("all")
        assert not overflowing, f"{name}: text wider or taller than its box, or across a box's border: {overflowing}"


def test_the_overflow_check_finds_a_label_wider_than_its_box():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfs.teaching.diagrams import Stage, draw_pipeline

    fits = draw_pipeline([Stage("short", "(B, d)"), Stage("also short"), Stage("x"), Stage("y")]).figure
    assert _overflowing_texts(fits) == []
    too_wide = draw_pipeline([Stage("a label far too long to fit in one box of the pipeline", "(B, d)"), Stage("also short"),
                              Stage("x"), Stage("y")]).figure
    assert {text for text, _ in _overflowing_texts(too_wide)} == {"a label far too long to fit in one box of the pipeline\n(B, d)"}
    plt.close("all")
