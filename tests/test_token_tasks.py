"""tfs.token_tasks: the plumbing of chapter 11's NER and QA fine-tuning (features, targets, metrics, loop)."""

from __future__ import annotations

import pytest
import torch

from tfs.data import load_bert_tokenizer
from tfs.tasks import ner_examples, plays, qa_examples
from tfs.token_tasks import (NER_LABELS, answer_token_span, ner_features, no_answer_questions, pad_batch,
                             predict_tags, qa_features, qa_scores, token_f1, train_steps)


@pytest.fixture(scope="module")
def tokenizer():
    return load_bert_tokenizer()


@pytest.fixture(scope="module")
def works():
    return plays()


def test_title_case_finds_names_of_plays_with_capital_speaker_lines(works):
    plain = ner_examples(works["twelfth_night"])
    titled = ner_examples(works["twelfth_night"], title_case=True)
    assert not any(t != "O" for _, tags in plain for t in tags)          # "SIR TOBY." never written so in dialogue
    names = {" ".join(w.strip(".,;:!?'\"()-") for w, t in zip(words, tags) if t != "O")
             for words, tags in titled if any(t != "O" for t in tags)}
    assert len(names) > 5 and "Malvolio" in " ".join(names)


def test_qa_targets_cover_exactly_the_answer(tokenizer, works):
    examples = qa_examples(works["romeo_and_juliet"])[:12]
    for ex, feature in zip(examples, qa_features(tokenizer, examples, max_length=160)):
        s, e = feature["start_positions"], feature["end_positions"]
        assert 0 < s <= e and feature["context_mask"][s] == feature["context_mask"][e] == 1
        begin, end = feature["offsets"][s][0], feature["offsets"][e][1]
        assert ex["context"][begin:end] == ex["answer_text"]


def test_answer_outside_the_window_or_empty_is_cls(tokenizer, works):
    ex = next(q for q in qa_examples(works["romeo_and_juliet"]) if q["answer_start"] > 150)
    cut = qa_features(tokenizer, [ex], max_length=40)[0]                 # the answer falls after the window
    assert (cut["start_positions"], cut["end_positions"]) == (0, 0)
    empty = qa_features(tokenizer, [{**ex, "answer_text": "", "answer_start": -1}])[0]
    assert (empty["start_positions"], empty["end_positions"]) == (0, 0)
    offsets, sequence_ids = [(0, 0), (0, 3), (0, 0), (0, 5), (6, 9), (0, 0)], [None, 0, None, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 6, 9) == (4, 4)     # by hand: "Romeo Capulet"[6:9]
    assert answer_token_span(offsets, sequence_ids, 0, 9) == (3, 4)


def test_no_answer_questions_ask_about_another_passage(works):
    examples = qa_examples(works["romeo_and_juliet"])
    for q in no_answer_questions(examples, 10):
        assert q["answer_text"] == "" and q["question"][len('Who says "'):-2] not in q["context"]


def test_squad_metrics_by_hand():
    assert token_f1("the Friar Lawrence", "Friar John") == pytest.approx(0.5)   # 1 common of 2 and 2 words
    assert token_f1(None, "") == 1.0 and token_f1("Romeo", None) == 0.0
    scores = qa_scores(["Romeo.", "Friar", None], ["romeo", "Friar John", "Tybalt"])
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    with pytest.raises(ValueError):
        qa_scores(["a"], [])


def test_features_batches_and_a_tiny_model_learns(tokenizer):
    from transformers import BertConfig, BertForTokenClassification

    examples = [("Good morrow , Romeo".split(), ["O", "O", "O", "B-PER"]),
                ("Where is Friar Lawrence ?".split(), ["O", "O", "B-PER", "I-PER", "O"])] * 4
    features = ner_features(tokenizer, examples)
    batch = pad_batch(features[:2])
    assert batch["input_ids"].shape == batch["labels"].shape and (batch["labels"][0, -1] == -100)
    with pytest.raises(ValueError, match="not among the labels"):
        ner_features(tokenizer, [(["Romeo"], ["B-LOC"])])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=len(NER_LABELS))
    model = BertForTokenClassification(config)
    losses = train_steps(model, features, steps=40, batch_size=4, lr=3e-3, progress=False)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    predicted = predict_tags(model, features[:2])
    assert [len(p) for p in predicted] == [4, 5] and predicted == [tags for _, tags in examples[:2]]


def test_a_question_longer_than_the_window_is_a_clear_error(tokenizer):
    example = {"question": "Who says " + "very " * 40 + "much?", "context": "Romeo. Hello.", "answer_start": 0,
               "answer_text": "Romeo"}
    with pytest.raises(ValueError, match=r"the question has \d+ tokens.*max_length >= \d+"):
        qa_features(tokenizer, [example], max_length=32)
    assert len(qa_features(tokenizer, [example], max_length=128)) == 1
