"""Chapter 09's in-context task and its shipped model: prompts hold the answer, the model reads it."""

from __future__ import annotations

import json

import pytest
import torch

from tfs import incontext as icl


def test_few_shot_prompts_hold_the_answer_among_distinct_keys():
    prompts, answers = icl.few_shot_batch(4, 50, torch.Generator().manual_seed(0))
    assert prompts.shape == (50, 9)
    keys, values, query = prompts[:, 0:8:2], prompts[:, 1:8:2], prompts[:, -1]
    assert all(len(set(row.tolist())) == 4 for row in keys)                     # distinct keys
    assert bool(((keys < icl.N_KEYS) & (values >= icl.N_KEYS)).all())
    assert bool((values[keys == query[:, None]] == answers).all())              # the query's value is in the prompt


def test_training_batch_labels_only_the_values_and_keeps_one_mapping_per_row():
    ids, labels = icl.training_batch(8, torch.Generator().manual_seed(1))
    assert ids.shape == labels.shape == (8, 2 * icl.N_PAIRS)
    assert bool((labels[:, 0::2] == -100).all()) and bool((labels[:, 1::2] == ids[:, 1::2]).all())
    for row in ids.tolist():
        seen = {}
        for key, value in zip(row[0::2], row[1::2]):
            assert seen.setdefault(key, value) == value


def test_shipped_model_answers_from_its_prompt_and_matches_its_card():
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(icl.icl_path(), dtype=torch.float32)
    accuracy = icl.accuracy_vs_shots(model, (0, 2, 4), n=256, seed=99)
    assert accuracy[0] < 0.25                       # nothing to read: near chance (0.1)
    assert accuracy[2] > 0.95 and accuracy[4] > 0.95
    log = json.loads((icl.icl_path() / "train_log.json").read_text())
    assert log["final_accuracy"]["2"] > 0.95 and log["steps"][-1] == log["args"]["steps"]


def test_shipped_folder_has_the_tokenizer_its_card_describes():
    """AutoTokenizer on the folder gives the model's own ids (not a GPT-2 tokenizer of another vocabulary), and the
    model, prompted through it, answers a 2-shot lookup with the value its prompt shows."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(icl.icl_path())
    assert len(tokenizer) == icl.VOCAB
    assert tokenizer("k3 v7 k3")["input_ids"] == [3, icl.N_KEYS + 7, 3]
    assert tokenizer.decode([0, icl.N_KEYS + 9]) == "k0 v9"
    with pytest.raises(Exception, match="UNK"):
        tokenizer("hello")
    model = GPT2LMHeadModel.from_pretrained(icl.icl_path(), dtype=torch.float32).eval()
    prompt = tokenizer("k1 v4 k2 v6 k1", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        answer = model(prompt).logits[0, -1].argmax().item()
    assert tokenizer.decode([answer]) == "v4"
    card = (icl.icl_path() / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "k0` .. `k9" in card


def test_chapter09_diagram_draws_each_pipeline_with_its_text_inside_the_boxes(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.patches import FancyBboxPatch

    from tfs.teaching.diagrams_pretrained import draw_pretrained

    for task in ("text-generation", "fill-mask", "feature-extraction"):
        figure = draw_pretrained(task)
        figure.savefig(tmp_path / f"{task}.png")
        texts = " ".join(t.get_text() for t in figure.axes[0].texts)
        assert "AutoTokenizer" in texts and "post-process" in texts and task in figure.axes[0].get_title()
        renderer = figure.canvas.get_renderer()
        boxes = [p.get_window_extent(renderer) for p in figure.axes[0].patches if isinstance(p, FancyBboxPatch)]
        for text in figure.axes[0].texts:
            extent = text.get_window_extent(renderer)
            around = [b for b in boxes if b.contains((extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2)]
            assert all(b.x0 <= extent.x0 and extent.x1 <= b.x1 and b.y0 <= extent.y0 and extent.y1 <= b.y1
                       for b in around), f"{text.get_text()!r} overflows its box in the {task} diagram"
