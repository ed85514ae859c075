"""tfs.data: every asset loads offline, splits are fixed and disjoint, bad input gets a clear error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfs import data

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sentiment():
    return data.load_dataset("sentiment")


@pytest.fixture(scope="module")
def topics():
    return data.load_dataset("topics")


# ------------------------------------------------------------------------------------- offline

OFFLINE_SCRIPT = textwrap.dedent("""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from tfs import data
    from transformers import AutoTokenizer, BertModel

    gpt2 = data.load_gpt2_tokenizer()
    assert gpt2("Hello world").input_ids == [15496, 995], gpt2("Hello world").input_ids
    assert AutoTokenizer.from_pretrained(data.gpt2_path())("Hello world").input_ids == [15496, 995]
    bert = data.load_bert_tokenizer()
    assert bert("Hello world").input_ids == [101, 7592, 2088, 102], bert("Hello world").input_ids
    model = BertModel.from_pretrained(data.bert_path())
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert len(data.load_corpus()) > 5_000_000
    assert data.load_dataset("sentiment")["train"].num_rows > 10_000
    assert data.load_dataset("topics")["test"].num_rows > 200
    print("OFFLINE OK")
""")


def test_assets_load_with_the_network_blocked(tmp_path):
    """A fresh process, no Hub cache, HF_HUB_OFFLINE=1 and every socket connection refused."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf"), TFS_CACHE_DIR=str(tmp_path / "tfs-cache"))
    result = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OFFLINE OK" in result.stdout


# -------------------------------------------------------------------------------------- corpus

def test_corpus_is_clean_and_complete():
    text = data.load_corpus()
    works = data.corpus_works()
    assert len(works) == 42
    assert {"hamlet", "sonnets", "tempest", "macbeth"} <= set(works)
    assert "gutenberg" not in text.lower()
    assert "To be, or not to be" in works["hamlet"]
    assert len(text) == data.manifest()["shakespeare.txt.xz"]["uncompressed_bytes"]


def test_corpus_splits_partition_the_text():
    train, validation = data.load_corpus("train"), data.load_corpus("validation")
    assert train + validation == data.load_corpus()
    assert train.endswith("\n")
    assert 0.89 < len(train) / len(data.load_corpus()) <= 0.9
    with pytest.raises(ValueError, match="unknown corpus split 'test'"):
        data.load_corpus("test")


# ------------------------------------------------------------------------------------ datasets

@pytest.mark.parametrize("name", ["sentiment", "topics"])
def test_splits_are_fixed_and_disjoint(name, sentiment, topics):
    dataset = {"sentiment": sentiment, "topics": topics}[name]
    assert list(dataset) == ["train", "validation", "test"]
    texts = {split: set(dataset[split]["text"]) for split in dataset}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    for split in dataset:
        assert len(texts[split]) == dataset[split].num_rows  # no duplicates inside a split either
        assert all(data.split_of(text) == split for text in list(texts[split])[:200])
    total = sum(dataset[split].num_rows for split in dataset)
    assert 0.07 < dataset["test"].num_rows / total < 0.13
    assert 0.07 < dataset["validation"].num_rows / total < 0.13


def test_sentiment_set(sentiment):
    assert sentiment["train"].features["label"].names == ["rotten", "fresh"]
    assert sentiment.num_rows == {"train": 10271, "validation": 1228, "test": 1253}
    assert set(sentiment["train"]["label"]) == {0, 1}
    assert sentiment["train"].column_names == ["text", "label", "movie"]
    # `plot` rows were dropped: only two labels, and every row is a short review snippet.
    assert max(len(t) for t in sentiment["train"]["text"]) < 2000


def test_topic_set(topics):
    assert topics["train"].features["label"].names == data.TOPIC_LABELS
    assert topics.num_rows == {"train": 1669, "validation": 225, "test": 233}
    assert set(topics["test"]["label"]) == set(range(5))
    first = topics["train"][0]
    assert first["text"].startswith(first["title"])


def test_dataset_aliases_give_the_same_data(sentiment):
    assert list(data.load_dataset("rotten_tomatoes")["test"]["text"]) == list(sentiment["test"]["text"])


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown data set 'imdb'.*'sentiment'.*'topics'"):
        data.load_dataset("imdb")


# ------------------------------------------------------------------------- checksums and repair

@pytest.fixture
def assets_copy(tmp_path, monkeypatch):
    folder = tmp_path / "assets"
    shutil.copytree(data.ASSETS_DIR, folder)
    monkeypatch.setenv("TFS_ASSETS_DIR", str(folder))
    monkeypatch.setenv("TFS_CACHE_DIR", str(tmp_path / "cache"))
    data._corpus.cache_clear()
    data.gpt2_ranks.cache_clear()
    yield folder
    data._corpus.cache_clear()
    data.gpt2_ranks.cache_clear()


def test_manifest_matches_the_shipped_files():
    files = data.manifest()
    assert set(files) == {"shakespeare.txt.xz", "rotten_tomatoes.jsonl.xz", "gpt2-tokenizer.json.xz"}
    for name, entry in files.items():
        path = data.asset_path(name)  # verifies the checksum
        assert path.stat().st_size == entry["bytes"]
    assert sum(entry["bytes"] for entry in files.values()) < 3_000_000  # the repository stays lean


def test_corrupted_asset_says_what_and_how_to_repair(assets_copy):
    path = assets_copy / "shakespeare.txt.xz"
    blob = bytearray(path.read_bytes())
    blob[1000] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(data.AssetError, match=r"shakespeare\.txt\.xz is corrupted.*SHA-256.*scripts/build_assets\.py"):
        data.load_corpus()


def test_missing_asset_says_what_and_how_to_repair(assets_copy):
    (assets_copy / "gpt2-tokenizer.json.xz").unlink()
    with pytest.raises(data.AssetError, match=r"gpt2-tokenizer\.json\.xz is missing.*git checkout -- src/tfs/assets"):
        data.load_gpt2_tokenizer()


def test_missing_manifest_and_unknown_asset(assets_copy):
    with pytest.raises(data.AssetError, match="unknown asset 'weights.bin'"):
        data.asset_path("weights.bin")
    (assets_copy / "manifest.json").unlink()
    with pytest.raises(data.AssetError, match="manifest .* is missing"):
        data.load_corpus()


def test_manifest_records_the_build_command():
    raw = json.loads((data.ASSETS_DIR / "manifest.json").read_text())
    assert raw["command"] == "python scripts/build_assets.py"
    assert (REPO / "scripts" / "build_assets.py").is_file()


# ------------------------------------------------------------------------------------ tokenizers

def test_gpt2_tokenizer():
    tok = data.load_gpt2_tokenizer()
    assert tok("Hello world").input_ids == [15496, 995]
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 50256
    assert len(tok) == 50257
    assert tok("a<|endoftext|>b").input_ids == [64, 50256, 65]
    for text in ["naïve café 東京 😀👍🏽", "  spaces\t\ttabs\n\n", "I'm you're they'll 12345"]:
        assert tok.decode(tok(text).input_ids) == text


def test_gpt2_ranks_are_the_token_ids():
    ranks = data.gpt2_ranks()
    assert len(ranks) == 50256
    assert sorted(ranks.values()) == list(range(50256))
    assert ranks[b"Hello"] == 15496 and ranks[b" world"] == 995
    assert all(ranks[bytes([b])] < 256 for b in range(256))  # every single byte is a token


def test_gpt2_path_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("TFS_CACHE_DIR", str(tmp_path))
    first = data.gpt2_path()
    stamp = (first / "tokenizer.json").stat().st_mtime_ns
    assert data.gpt2_path() == first and (first / "tokenizer.json").stat().st_mtime_ns == stamp
    assert json.loads((first / "tokenizer_config.json").read_text())["eos_token"] == "<|endoftext|>"


def test_bert_tokenizer_on_the_minilm_vocab():
    from transformers import BertTokenizerFast

    tok = data.load_bert_tokenizer()
    assert isinstance(tok, BertTokenizerFast)
    assert tok("Hello world").input_ids == [101, 7592, 2088, 102]
    assert tok.convert_ids_to_tokens(tok("unaffable").input_ids) == ["[CLS]", "una", "##ffa", "##ble", "[SEP]"]
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.mask_token_id) == (101, 102, 0, 103)
    vocab = data.bert_vocab()
    assert len(vocab) == 30522 and vocab["[MASK]"] == 103 and vocab == tok.get_vocab()


def test_bert_path_loads_the_model_and_checks_its_files():
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(data.bert_path())
    assert (config.model_type, config.hidden_size, config.num_attention_heads, config.vocab_size) == ("bert", 384, 12, 30522)
