"""The offline date task and its metrics: held-out formats, exact match, chrF on cases worked by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from tfs.tasks import (DATE_FORMATS, TEST_FORMATS, TRAIN_FORMATS, CharVocab, chrf, corpus_chrf, date_pairs,
                       exact_match, ordinal)


def test_train_and_test_formats_are_disjoint_and_targets_are_iso_dates():
    assert set(TRAIN_FORMATS).isdisjoint(TEST_FORMATS) and set(TRAIN_FORMATS) | set(TEST_FORMATS) == set(DATE_FORMATS)
    train, test = date_pairs(300, "train"), date_pairs(100, "test")
    assert {f for *_, f in train} == set(TRAIN_FORMATS) and {f for *_, f in test} == set(TEST_FORMATS)
    for source, target, _ in train + test:
        day = dt.date.fromisoformat(target)
        assert 1950 <= day.year <= 2049 and str(day.year) in source
    assert date_pairs(5, "train", seed=3) == date_pairs(5, "train", seed=3) != date_pairs(5, "train", seed=4)


def test_formats_write_what_they_say():
    day = dt.date(2021, 3, 3)
    assert DATE_FORMATS["Weekday, Month d, yyyy"](day) == "Wednesday, March 3, 2021"
    assert DATE_FORMATS["dth of Month yyyy"](day) == "3rd of March 2021"
    assert DATE_FORMATS["dd.mm.yyyy"](day) == "03.03.2021"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_vocab_round_trip_and_unknown_characters():
    src, tgt = CharVocab.for_dates()
    for source, target, _ in date_pairs(200, "train") + date_pairs(50, "test"):
        assert src.decode(src.encode(source)) == source and tgt.decode(tgt.encode(target, bos=True)) == target
    ids, mask = tgt.batch(["2021-03-03", "1999-12-31"])
    assert ids.shape == mask.shape == (2, 11) and mask.sum().item() == 22
    with pytest.raises(ValueError, match=r"\['x'\]"):
        tgt.encode("20x1")


def test_exact_match():
    assert exact_match(["a", "b", "c", "d"], ["a", "x", "c", "y"]) == 0.5
    with pytest.raises(ValueError):
        exact_match(["a"], ["a", "b"])


def test_chrf_analytic_cases():
    assert chrf("2021-03-03", "2021-03-03") == pytest.approx(100.0)
    assert chrf("abc", "xyz") == 0.0
    # "ab" vs "abc": unigrams P=2/2, R=2/3; bigrams P=1/1, R=1/2; no trigram in the hypothesis, so
    # orders 1-2 only: chrP = 1, chrR = (2/3 + 1/2) / 2 = 7/12; F2 = 5 P R / (4 P + R)
    p, r = 1.0, 7 / 12
    assert chrf("ab", "abc") == pytest.approx(100 * 5 * p * r / (4 * p + r), abs=1e-12)
    # swapping roles swaps precision and recall
    assert chrf("abc", "ab") == pytest.approx(100 * 5 * r * p / (4 * r + p), abs=1e-12)
    assert chrf("a b", "ab") == pytest.approx(100.0)  # spaces are removed
    # a corpus of two identical pairs scores as one pair
    assert corpus_chrf(["ab", "ab"], ["abc", "abc"]) == pytest.approx(chrf("ab", "abc"))


# ------------------------------------------------------------------ Part 2: data derived from the plays, references

from tfs.tasks import (align_labels, bio_tags, entities, entity_scores, extract_answer, ner_examples,  # noqa: E402
                       plays, qa_examples, speakers)


def test_speakers_ner_and_qa_are_derived_from_the_plays():
    romeo = plays()["romeo_and_juliet"]
    cast = speakers(romeo)
    assert {"Romeo", "Juliet", "Friar Lawrence", "Sampson"} <= set(cast) and "No" not in cast
    tagged = [(w, t) for w, t in ner_examples(romeo) if "B-PER" in t]
    assert len(tagged) > 50
    for words, tags in tagged:
        for i, tag in enumerate(tags):
            if tag == "B-PER":
                assert any(" ".join(words[i:i + len(n.split())]).strip(".,;:!?'\"()-").startswith(n) for n in cast)
    for item in qa_examples(romeo)[:50]:
        start = item["answer_start"]
        assert item["context"][start:start + len(item["answer_text"])] == item["answer_text"]
        assert item["context"][start + len(item["answer_text"])] == "."


def test_bio_tags_multiword_names_first():
    assert bio_tags(["O", "Friar", "Lawrence,", "and", "Friar"], ["Friar", "Friar Lawrence"]) == \
        ["O", "B-PER", "I-PER", "O", "B-PER"]


def test_align_labels_and_entities_by_hand():
    assert align_labels([None, 0, 1, 1, 2, None], [5, 6, 7]) == [-100, 5, 6, -100, 7, -100]
    with pytest.raises(ValueError, match="do not align"):
        align_labels([None, 0, 3], [1, 2])
    assert entities(["B-PER", "I-PER", "O", "I-LOC", "B-PER", "I-LOC"]) == \
        {("PER", 0, 2), ("LOC", 3, 4), ("PER", 4, 5), ("LOC", 5, 6)}
    scores = entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert scores == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_extract_answer_picks_the_best_valid_pair():
    import torch

    start = torch.tensor([0.0, 9.0, 3.0, 0.0, 0.5, 0.0])
    end = torch.tensor([0.0, 9.0, 0.5, 0.0, 2.5, 0.0])
    offsets = [(0, 0), (0, 2), (0, 4), (5, 9), (10, 12), (0, 0)]
    mask = torch.tensor([0, 0, 1, 1, 1, 0])  # token 1 is the question
    assert extract_answer(start, end, offsets, mask, 2) == (0, 4)     # 3 + 0.5: token 2 alone (9 + 9 is the question)
    assert extract_answer(start, end, offsets, mask, 3) == (0, 12)    # 3 + 2.5: tokens 2-4, three tokens
    start[0] = end[0] = 5.0
    assert extract_answer(start, end, offsets, mask, 3) is None       # [CLS] 10 wins
