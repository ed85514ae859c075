"""scripts/train_gpt.py, the script that builds the course's GPT checkpoint: its output folder rules, a tiny run end
to end, its evaluation helpers against transformers' own loss and direct counts, and the shipped run's first steps.

Oracles: transformers (loading, GPT2LMHeadModel's loss), Python's Counter, the shipped training log."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]
TINY = ["--steps", "2", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "2",
        "--warmup", "1", "--eval-interval", "0", "--log-every", "1", "--vocab-size", "300"]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_gpt", REPO / "scripts" / "train_gpt.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def no_training(*args, **kwargs):
    raise AssertionError("the script started on the data before refusing --out")


@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_out_folder_with_other_files_is_refused_before_training(script, tmp_path, monkeypatch, flags):
    monkeypatch.setattr(script, "load_data", no_training)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="not empty" if not flags else r"did not write \(notes.txt, sub/\)"):
        script.main(["--out", str(out), *flags])
    assert (out / "notes.txt").read_text() == "mine" and (out / "config.json").read_text() == "{}"
    assert (out / "sub").is_dir()
    with pytest.raises(SystemExit, match="not a folder"):
        script.main(["--out", str(out / "notes.txt"), "--overwrite"])


def test_default_out_is_the_shipped_folder_and_needs_overwrite(script, monkeypatch):
    monkeypatch.setattr(script, "load_data", no_training)
    assert script.DEFAULT_OUT == REPO / "src" / "tfs" / "assets" / "checkpoints" / "gpt"
    with pytest.raises(SystemExit, match="--overwrite"):
        script.main([])


def test_tiny_run_writes_a_checkpoint_and_overwrite_replaces_only_its_files(script, tmp_path, capsys, one_thread):
    out = tmp_path / "gpt"
    result = script.main([*TINY, "--out", str(out)])
    files = {p.name for p in out.iterdir()}
    assert files == script.OUTPUT_FILES
    printed = capsys.readouterr().out  # not a terminal: plain progress lines
    assert "step     1/2  loss" in printed and "step     2/2  loss" in printed
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "GPT2LMHeadModel" and model.dtype == torch.float32
    assert len(tokenizer) == 300 and model.config.eos_token_id == tokenizer.eos_token_id
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "library_name: transformers" in card
    assert f"python scripts/train_gpt.py {' '.join(TINY)} --out {out}" in card
    log = json.loads((out / "train_log.json").read_text())
    assert log["summary"] == result["summary"] and len(log["per_position_nats"]) == 16
    weights_before = (out / "model.safetensors").read_bytes()

    with pytest.raises(SystemExit, match="not empty"):
        script.main([*TINY, "--out", str(out)])
    (out / "README.md").write_text("an old card")
    script.main([*TINY, "--out", str(out), "--overwrite"])
    assert {p.name for p in out.iterdir()} == script.OUTPUT_FILES
    assert (out / "README.md").read_text() != "an old card"
    assert (out / "model.safetensors").read_bytes() == weights_before  # same seed, same thread count


def test_position_losses_match_transformers_loss(script):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.randint(50, (16 * 7 + 5,), dtype=torch.int16)
    losses = script.position_losses(model, ids, 16, batch_size=3)
    assert losses.shape == (7, 16)
    for row in range(7):
        window = ids[16 * row:16 * row + 17].long()[None]  # 17 tokens: 16 inputs, 16 targets
        with torch.no_grad():
            expected = model(window, labels=window).loss.item()  # transformers shifts the labels itself
        assert losses[row].mean().item() == pytest.approx(expected, abs=1e-5)


def test_count_baselines_against_direct_counts(script):
    generator = torch.Generator().manual_seed(0)
    train_ids = torch.multinomial(torch.tensor([5.0, 3, 1, 1, 0.5]), 2000, replacement=True, generator=generator)
    val_ids = torch.multinomial(torch.tensor([5.0, 3, 1, 1, 0.5]), 41, replacement=True, generator=generator)
    got = script.count_baselines(train_ids, val_ids, 8, 6)  # token 5 never occurs
    assert got["bigram_k"] in script.BIGRAM_K
    train, val = train_ids.tolist(), val_ids.tolist()[:41]  # 5 windows of 8: targets val[1:41]
    unigram, pairs, firsts = Counter(train), Counter(zip(train, train[1:])), Counter(train[:-1])
    k = got["bigram_k"]
    expected_unigram = -sum(math.log((unigram[t] + 1) / (len(train) + 6)) for t in val[1:]) / 40
    expected_bigram = -sum(math.log((pairs[a, b] + k) / (firsts[a] + 6 * k)) for a, b in zip(val, val[1:])) / 40
    assert got["unigram"] == pytest.approx(expected_unigram, abs=1e-9)
    assert got["bigram"] == pytest.approx(expected_bigram, abs=1e-9)


def test_shipped_run_reproduces_its_first_steps(script, one_thread):
    """Rerun the shipped command for its first 10 steps (warm-up does not depend on the step count): the recorded
    training loss comes back, and the tokenizer is the shipped one."""
    from tfs import data

    folder = data.gpt_path()
    log = json.loads((folder / "train_log.json").read_text())
    args = script.parse_args([*log["argv"], "--steps", "10", "--eval-interval", "0"])
    assert args.warmup >= 10 and args.device == "cpu"
    torch.set_num_threads(args.threads)
    corpus = script.load_data(args.vocab_size)
    assert json.loads(corpus.tokenizer.backend_tokenizer.to_str()) == json.loads((folder / "tokenizer.json").read_text())
    _, history = script.train_model(args, corpus)
    assert sum(history["loss"]) / 10 == pytest.approx(log["train_loss_every_10"][0], abs=2e-3)
