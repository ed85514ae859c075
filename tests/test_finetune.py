"""tfs.finetune against independent oracles: scikit-learn's metrics, torch.nn, transformers' schedule."""

from __future__ import annotations

import pytest
import torch
from sklearn import metrics as skm
from torch import nn

from tfs import finetune as ft
from tfs.models.bert import BertConfig, BertModel

TINY = BertConfig(vocab_size=50, max_position=16, d_model=16, n_heads=4, n_layers=2, d_ff=32, dropout=0.0)


def tiny_classifier(n_classes=3, **options) -> ft.BertClassifier:
    torch.manual_seed(0)
    return ft.BertClassifier(BertModel(TINY), n_classes, dropout=0.0, **options)


# --------------------------------------------------------------------------------------- pooling and head

def test_mean_pool_ignores_padding():
    hidden = torch.randn(2, 5, 4, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    pooled = ft.mean_pool(hidden, mask)
    torch.testing.assert_close(pooled[0], hidden[0, :3].mean(0))
    torch.testing.assert_close(pooled[1], hidden[1].mean(0))


def test_head_is_dropout_then_linear():
    torch.manual_seed(0)
    head = ft.ClassificationHead(8, 3, dropout=0.5).eval()
    hidden = torch.randn(2, 4, 8)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    expected = nn.functional.linear(torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)]),
                                    head.linear.weight, head.linear.bias)
    torch.testing.assert_close(head(hidden, mask), expected)
    cls = ft.ClassificationHead(8, 3, pooling="cls").eval()
    torch.testing.assert_close(cls(hidden, mask), cls.linear(hidden[:, 0]))
    head.train()
    assert not torch.allclose(head(hidden, mask), expected)  # dropout acts in training mode


def test_classifier_padding_does_not_change_logits_and_split_matches():
    model = tiny_classifier().eval()
    ids = torch.randint(5, 50, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    with torch.no_grad():
        logits = model(ids, mask)
        alone = model(ids[1:, :4], mask[1:, :4])
        torch.testing.assert_close(logits[1:], alone, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model.forward_from(model.encode_to(1, ids, mask), mask, 1), logits, atol=1e-5, rtol=1e-5)


def test_bad_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="class names"):
        ft.BertClassifier(BertModel(TINY), 3, labels=["neg", "pos"])
    with pytest.raises(ValueError, match="pooling"):
        ft.ClassificationHead(8, 2, pooling="max")
    with pytest.raises(ValueError, match="empty batch"):
        ft.collate([])
    with pytest.raises(ValueError, match="outside the class range"):
        ft.collate([{"input_ids": [2, 7, 3], "label": 2}], n_classes=2)
    with pytest.raises(ValueError, match="outside the class range"):
        ft.collate([{"input_ids": [2, 7, 3], "label": -1}])
    with pytest.raises(ValueError, match="too long|max_position"):
        tiny_classifier()(torch.randint(5, 50, (1, 20)), torch.ones(1, 20, dtype=torch.int64))


# --------------------------------------------------------------------------------------- collate

def test_collate_pads_each_batch_to_its_own_longest():
    examples = [{"input_ids": [2, 10, 11, 3], "label": 1}, {"input_ids": [2, 12, 3], "label": 0}]
    batch = ft.collate(examples, pad_id=0)
    assert batch["input_ids"].tolist() == [[2, 10, 11, 3], [2, 12, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.int64
    assert "labels" not in ft.collate([{"input_ids": [2, 3]}])


def test_collate_truncates_keeping_the_last_token():
    batch = ft.collate([{"input_ids": [2, 5, 6, 7, 8, 3], "label": 0}], max_length=4)
    assert batch["input_ids"].tolist() == [[2, 5, 6, 3]]


def test_collate_matches_the_tokenizers_own_padding():
    from tfs.data import load_bert_tokenizer

    tokenizer = load_bert_tokenizer()
    texts = ["a gripping film.", "dull, and far too long for what it has to say."]
    ours = ft.collate(ft.encode_texts(tokenizer, texts, [1, 0]), pad_id=tokenizer.pad_token_id)
    theirs = tokenizer(texts, padding=True, return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["attention_mask"], theirs["attention_mask"])


# --------------------------------------------------------------------------------------- metrics

@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed):
    generator = torch.Generator().manual_seed(seed)
    n_classes = 2 + seed
    y_true = torch.randint(0, n_classes, (60,), generator=generator)
    y_pred = torch.where(torch.rand(60, generator=generator) < 0.6, y_true,
                         torch.randint(0, n_classes, (60,), generator=generator))
    if seed == 4:  # one class never predicted, one never present: zero division
        y_pred[y_pred == 0] = 1
        y_true[y_true == n_classes - 1] = 2
    labels = list(range(n_classes))
    got = ft.classification_metrics(y_true, y_pred, n_classes)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[key] == pytest.approx(fn(y_true, y_pred, labels=labels, average="macro", zero_division=0)), key
    assert ft.confusion_matrix(y_true, y_pred, n_classes).tolist() == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()


def test_metrics_refuse_mismatched_inputs():
    with pytest.raises(ValueError, match="one prediction per example"):
        ft.classification_metrics(torch.tensor([0, 1]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="outside"):
        ft.confusion_matrix(torch.tensor([0, 2]), torch.tensor([0, 1]), 2)


# --------------------------------------------------------------------------------------- optimisation

def test_parameter_groups_split_lr_and_decay():
    model = tiny_classifier()
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    groups = ft.parameter_groups(model, 1e-5, 1e-3, 0.1)
    seen = [id(p) for g in groups for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(seen) == sorted(id(p) for p in trainable)  # each once, frozen ones out
    head = {id(p) for p in model.head.parameters()}
    for group in groups:
        for p in group["params"]:
            assert group["lr"] == (1e-3 if id(p) in head else 1e-5)
            assert group["weight_decay"] == (0.1 if p.dim() >= 2 else 0.0)
    torch.optim.AdamW(groups)  # accepted by torch


def test_schedule_matches_transformers():
    from transformers import get_linear_schedule_with_warmup

    for warmup, total in ((0, 10), (3, 10), (5, 12), (10, 10)):
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        for step in range(total + 3):
            assert ft.linear_warmup_decay(step, warmup, total) == pytest.approx(optimizer.param_groups[0]["lr"]), (warmup, total, step)
            optimizer.step()
            scheduler.step()


def test_early_stopping_keeps_a_copy_of_the_best_weights():
    model = nn.Linear(2, 1)
    stopper = ft.EarlyStopping(patience=2)
    decisions = []
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.65, 0.9]):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        decisions.append(stopper.step(score, model))
    assert decisions == [False, False, False, True, False]
    assert stopper.best_epoch == 4 and stopper.best_score == 0.9
    stopper = ft.EarlyStopping(patience=1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        stopper.step(0.8, model)
        model.weight.fill_(7.0)  # in place: a stopper that kept a reference, not a copy, sees 7 too
    assert stopper.step(0.1, model)
    assert stopper.restore(model).weight.eq(1.0).all()
    with pytest.raises(ValueError):
        ft.EarlyStopping(mode="best")


def test_fine_tune_learns_a_separable_toy_task_and_restores_the_best():
    torch.manual_seed(0)
    model = tiny_classifier(n_classes=2)
    generator = torch.Generator().manual_seed(1)

    def make(n):  # class 1 sequences contain token 7, class 0 never do
        examples = []
        for i in range(n):
            ids = [2] + torch.randint(10, 50, (int(torch.randint(3, 9, (1,), generator=generator)),), generator=generator).tolist() + [3]
            if i % 2:
                ids[1 + i % (len(ids) - 2)] = 7
            examples.append({"input_ids": ids, "label": i % 2})
        return examples

    train, val = make(96), make(32)
    val_batches = [ft.collate(val[i:i + 16]) for i in range(0, 32, 16)]
    history = ft.fine_tune(model, lambda epoch: [ft.collate([train[j] for j in b]) for b in
                                                 ft.length_batches(train, 16, shuffle=True, generator=generator)],
                           val_batches, epochs=15, encoder_lr=1e-3, head_lr=1e-2, patience=5, progress=False)
    assert len(history["loss"]) == history["steps"] > 0
    probs, labels = ft.predict(model, val_batches)
    best = history["val"][history["best_epoch"]]["f1"]
    assert ft.classification_metrics(labels, probs.argmax(-1), 2)["f1"] == pytest.approx(best)
    assert best > 0.8
    assert not model.training


def test_draw_finetuning_names_the_stages_and_the_frozen_blocks():
    import matplotlib

    matplotlib.use("Agg")
    from tfs.teaching.diagrams_finetuning import draw_finetuning

    figure = draw_finetuning(n_layers=6, d_model=384, n_classes=5, frozen=4)
    texts = " ".join(t.get_text() for ax in figure.axes for t in ax.texts)
    for word in ("collate", "mean pool", "blocks 1-4 frozen", "d -> 5", "encoder LR", "head LR"):
        assert word in texts, word
    last_only = draw_finetuning(frozen=5)
    assert "block 6 trained" in " ".join(t.get_text() for ax in last_only.axes for t in ax.texts)


# --------------------------------------------------------------------------------------- the cached recipe

def test_cache_frozen_and_split_batches_give_the_full_models_logits_per_example():
    """The frozen pass run once, cut into training batches, then the top block + head: each example's logits are
    the whole model's on that example alone (the oracle: the model run on the unpadded example)."""
    model = tiny_classifier().eval()
    generator = torch.Generator().manual_seed(0)
    examples = [{"input_ids": torch.randint(5, 50, (n,), generator=generator).tolist(), "label": n % 3}
                for n in (3, 9, 5, 12, 4, 7, 6)]
    cached = ft.cache_frozen(model, examples, 1, batch_size=4, n_classes=3)
    assert sorted(torch.cat([b["index"] for b in cached]).tolist()) == list(range(len(examples)))
    assert "input_ids" not in cached[0] and cached[0]["hidden"].shape[-1] == TINY.d_model
    pieces = ft.split_batches(cached, 3)
    assert [len(b["labels"]) for b in pieces] == [3, 1, 3]
    for piece in pieces:
        assert piece["attention_mask"].shape[1] == piece["attention_mask"].sum(1).max()  # trimmed to its own longest
        with torch.no_grad():
            logits = model.forward_from(piece["hidden"], piece["attention_mask"], 1)
        for row, i in enumerate(piece["index"].tolist()):
            ids = torch.tensor([examples[i]["input_ids"]])
            with torch.no_grad():
                alone = model(ids, torch.ones_like(ids))
            torch.testing.assert_close(logits[row:row + 1], alone, atol=1e-5, rtol=1e-5)
            assert piece["labels"][row] == examples[i]["label"]


def test_cached_forward_in_float32_and_under_bf16_autocast():
    """``cached_forward(layer)`` is ``forward_from`` on the cached batch; under bf16 autocast the logits come back
    float32 and near the float32 ones (bfloat16 keeps 8 bits of mantissa), and the weights' gradients stay float32."""
    model = tiny_classifier().eval()
    examples = [{"input_ids": list(range(5, 5 + n)), "label": n % 3} for n in (4, 7, 9)]
    batch = ft.cache_frozen(model, examples, 1, n_classes=3)[0]
    expected = model.forward_from(batch["hidden"], batch["attention_mask"], 1)
    torch.testing.assert_close(ft.cached_forward(1)(model, batch), expected)
    model.train()
    logits = ft.cached_forward(1, bf16=True)(model, batch)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, atol=5e-2, rtol=5e-2)
    nn.functional.cross_entropy(logits, batch["labels"]).backward()
    grads = [p.grad for p in model.bert.encoder.layers[1].parameters()]
    assert all(g is not None and g.dtype == torch.float32 for g in grads)
    assert isinstance(ft.bf16_is_fast(), bool)


def test_bf16_is_fast_reads_the_cpu_flags_alone(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(ft, "CPUINFO", cpuinfo)
    assert ft.bf16_is_fast() is False                      # no file to read (another system)
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert ft.bf16_is_fast() is False                      # AVX-512 without its bfloat16 instructions
    for flag in ("avx512_bf16", "amx_bf16"):
        cpuinfo.write_text(f"flags\t\t: fpu sse2 avx2 avx512f {flag}\n")
        assert ft.bf16_is_fast() is True


def test_quiet_loading_restores_the_progress_bar_and_verbosity():
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    with ft.quiet_loading():
        assert not hf_logging.is_progress_bar_enabled()
    assert (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()) == before


def benchmark_script():
    """``benchmarks/finetune_sentiment.py``: its path and the module it defines (imported from the file)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "finetune_sentiment.py"
    spec = importlib.util.spec_from_file_location("finetune_sentiment", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return script, module


def test_saved_full_recipe_matches_the_script_and_its_baseline_reproduces():
    """``benchmarks/results/finetune_sentiment.json`` (chapter 08 shows it) was written by the script's full recipe:
    its settings are the script's defaults, its counts add up, and its TF-IDF baseline is reproduced here. The seed
    runs beside it (``_seed1``, ``_seed2``: the chapter's seed spread) differ from it in the seed alone."""
    from tfs.data import load_dataset

    result = ft.full_recipe_results()
    script, module = benchmark_script()
    sentiment = load_dataset("sentiment")
    assert result["recipe"]["n_train"] == 0 and result["texts"]["train"] == len(sentiment["train"])
    assert result["texts"]["test"] == len(sentiment["test"]) == sum(result["predicted_counts"])
    defaults = vars(module.make_parser().parse_args([]))
    assert result["recipe"] == {key: value for key, value in defaults.items() if key in result["recipe"]}
    assert set(result["recipe"]) >= {"frozen", "epochs", "batch_size", "encoder_lr", "head_lr", "max_length", "seed"}
    assert "--frozen" in script.read_text() and result["gain_points"] == pytest.approx(
        100 * (result["fine_tuned"]["accuracy"] - result["baseline"]["accuracy"]))
    again = module.baseline(sentiment)
    assert again["accuracy"] == pytest.approx(result["baseline"]["accuracy"], abs=1e-12)
    assert again["f1"] == pytest.approx(result["baseline"]["f1"], abs=1e-12)
    for seed in (1, 2):
        run = ft.full_recipe_results(f"finetune_sentiment_seed{seed}")
        assert run["recipe"] == {**result["recipe"], "seed": seed} and run["texts"] == result["texts"]
        assert run["baseline"]["accuracy"] == result["baseline"]["accuracy"] and sum(run["predicted_counts"]) == len(sentiment["test"])
        assert run["gain_points"] == pytest.approx(100 * (run["fine_tuned"]["accuracy"] - run["baseline"]["accuracy"]))


def test_selection_runs_differ_from_the_recipe_in_their_named_flags_only():
    """The six runs that chose chapter 08's recipe on the validation split
    (``benchmarks/results/finetune_sentiment_selection_<name>.json``) are the script's recipe with only the flags
    their name stands for changed, on the same texts, each with a validation score to choose by; the rule they were
    chosen by (highest validation macro-F1 within 180 fine-tuning CPU-seconds) picks the recipe from them."""
    _, module = benchmark_script()
    flags = {"recipe": [], "lr1e-4": ["--encoder-lr", "1e-4"], "lr3e-4": ["--encoder-lr", "3e-4"],
             "bs16": ["--batch-size", "16"], "fp32": ["--no-bf16"],
             "block6": ["--frozen", "5", "--epochs", "2", "--no-bf16", "--encoder-lr", "1e-4"]}
    runs = {name: ft.full_recipe_results(f"finetune_sentiment_selection_{name}") for name in flags}
    texts = runs["recipe"]["texts"]
    for name, extra in flags.items():
        expected = vars(module.make_parser().parse_args(extra))
        recipe = runs[name]["recipe"]
        assert recipe == {key: value for key, value in expected.items() if key in recipe}, name
        assert runs[name]["texts"] == texts and len(runs[name]["validation_f1"]) == recipe["epochs"], name
    within = {name: run for name, run in runs.items() if run["fine_tuning"]["cpu_s"] <= 180}
    best = max(within, key=lambda name: (max(within[name]["validation_f1"]), -within[name]["fine_tuning"]["cpu_s"]))
    assert best == "recipe"
