"""Chapter 04 (tokenization): the offline tokenizers behave like the real ones, and the executed
solution notebook records the measurements the chapter promises (nbval re-executes it separately)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import regex

from tfs import data

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "solutions" / "04-tokenization" / "tokenization.ipynb"
TRICKY = [
    "Hello world", "  two  spaces   and\ttabs\t\t", "line one\n\n\nline two\n", "1234567 3.14159 1,000,000",
    "I'm, you're, they'll, we've, she'd, it's, IT'S", "naïve café Straße", "東京タワー 😀👍🏽 Ελληνικά русский",
    "\u00a0non-breaking\u3000ideographic", "a<|endoftext|>b",
]


@pytest.fixture(scope="module")
def gpt2():
    return data.load_gpt2_tokenizer()


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def outputs(notebook) -> str:
    return "\n".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for o in cell.get("outputs", []) if o.output_type == "stream")


def test_gpt2_round_trips_and_known_ids(gpt2):
    assert gpt2("Hello world").input_ids == [15496, 995]
    assert gpt2(" the").input_ids == [262]
    for text in TRICKY:
        assert gpt2.decode(gpt2(text).input_ids) == text


def test_gpt2_pretokenization_matches_the_pattern(gpt2):
    """The tokenizer's pre-tokenizer splits exactly like GPT-2's regex (what chapter 04 gives learners)."""
    pattern = regex.compile(data.GPT2_PATTERN)
    pre = gpt2.backend_tokenizer.pre_tokenizer
    table = data.bytes_to_unicode()
    for text in TRICKY[:-1] + [data.load_corpus("validation")[:5000]]:
        expected = ["".join(table[b] for b in chunk.encode("utf-8")) for chunk in pattern.findall(text)]
        assert [piece for piece, _ in pre.pre_tokenize_str(text)] == expected


def test_gpt2_merges_are_the_fifty_thousand_ranks():
    import json
    import lzma

    raw = json.loads(lzma.decompress(data.asset_path("gpt2-tokenizer.json.xz").read_bytes()))
    merges = raw["model"]["merges"]
    assert len(merges) == 50_000
    vocab = raw["model"]["vocab"]
    # merge i creates the token of rank 256 + i: ranks are creation order
    for i in (0, 1, 1000, 49_999):
        left, right = merges[i] if isinstance(merges[i], list) else merges[i].split(" ")
        assert vocab[left + right] == 256 + i


def test_bert_tokenizer_pads_truncates_and_pairs():
    tok = data.load_bert_tokenizer()
    batch = tok(["Good night, sweet prince, and flights of angels sing thee to thy rest!", "Exit."], padding=True, truncation=True, max_length=8, return_tensors="pt")
    assert batch.input_ids.shape == (2, 8)
    assert batch.input_ids[0, -1].item() == tok.sep_token_id  # truncation keeps [SEP]
    assert batch.attention_mask[1].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    pair = tok("To be?", "Yes.")
    assert pair.token_type_ids == [0, 0, 0, 0, 0, 1, 1, 1]


def test_chapter_records_parity_over_thousands_of_lines(notebook):
    text = outputs(notebook)
    found = re.search(r"([\d,]+) lines: GPT-2 mismatches (\d+), BERT mismatches (\d+)", text)
    assert found, "the parity cell's output is missing: re-execute the solution notebook"
    lines = int(found.group(1).replace(",", ""))
    assert lines >= 5000
    assert found.group(2) == "0" and found.group(3) == "0"


def test_chapter_records_bpe_timing_and_library_comparison(notebook):
    text = outputs(notebook)
    timing = re.search(r"1000 merges on 1,000,000 characters in ([\d.]+) s", text)
    assert timing and float(timing.group(1)) < 60
    shared = re.search(r"in common (\d+)", text)
    assert shared and int(shared.group(1)) >= 900


def test_chapter_grade_ids_are_unique_and_tests_follow_their_exercise(notebook):
    ids, kinds = [], []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") or meta.get("grade"):
            ids.append(meta["grade_id"])
            kinds.append("solution" if meta.get("solution") else "test")
    assert len(ids) == len(set(ids))
    assert kinds[0] == "solution"
    assert all(kinds[i + 1] == "test" for i, kind in enumerate(kinds) if kind == "solution")
