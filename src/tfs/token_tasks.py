"""Fine-tuning BERT for chapter 11's token-level (NER) and span (extractive QA) tasks, small and offline.

The data comes from :mod:`tfs.tasks` (labels derived from the plays' speakers); the learner-facing pieces
are the references :func:`tfs.tasks.align_labels`, :func:`tfs.tasks.entity_scores` and
:func:`tfs.tasks.extract_answer`. What this module adds is the plumbing around them: features with
``offset_mapping``, padded batches, a few optimisation steps of a ``transformers`` model (its ``.loss``),
word-level tag predictions and QA answers, and SQuAD's exact match / token F1.
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from typing import Callable, Sequence

import torch

from tfs.finetune import quiet_loading
from tfs.tasks import align_labels, extract_answer

__all__ = ["NER_LABELS", "answer_token_span", "load_small", "ner_features", "no_answer_questions", "pad_batch", "predict_answers",
           "predict_tags", "qa_features", "qa_scores", "squad_normalize", "token_f1", "train_steps"]

NER_LABELS = ["O", "B-PER", "I-PER"]


def load_small(model_class, path, n_layers: int = 2, **config):
    """``model_class.from_pretrained(path, num_hidden_layers=n_layers, **config)``, quietly (the cut layers are
    "unused", the new head "newly initialised": both expected here)."""
    with quiet_loading():
        return model_class.from_pretrained(path, num_hidden_layers=n_layers, **config)


# ----------------------------------------------------------------------------------------------- NER

def ner_features(tokenizer, examples: Sequence[tuple[Sequence[str], Sequence[str]]],
                 label_names: Sequence[str] = NER_LABELS, max_length: int = 64, align: Callable | None = None) -> list[dict]:
    """``[(words, tags)]`` -> one dict per example: ``input_ids``, ``attention_mask``, ``labels`` (token labels by
    :func:`tfs.tasks.align_labels`, or ``align`` of the same signature: -100 on continuation pieces and specials)
    and ``word_ids``."""
    index = {name: i for i, name in enumerate(label_names)}
    out = []
    for words, tags in examples:
        unknown = sorted(set(tags) - set(index))
        if unknown:
            raise ValueError(f"tags {unknown} are not among the labels {list(label_names)}")
        encoding = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
        word_ids = encoding.word_ids()
        out.append({"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"],
                    "labels": (align or align_labels)(word_ids, [index[t] for t in tags]), "word_ids": word_ids})
    return out


def pad_batch(features: Sequence[dict], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Right-pads the list fields a ``transformers`` model reads to the batch's longest row: ids with
    ``pad_id``, masks and token types with 0, ``labels`` with -100; ``start_positions``/``end_positions`` stacked."""
    width = max(len(f["input_ids"]) for f in features)
    fill = {"input_ids": pad_id, "attention_mask": 0, "token_type_ids": 0, "labels": -100}
    batch = {}
    for key, value in fill.items():
        if key in features[0]:
            batch[key] = torch.tensor([list(f[key]) + [value] * (width - len(f[key])) for f in features])
    for key in ("start_positions", "end_positions"):
        if key in features[0]:
            batch[key] = torch.tensor([f[key] for f in features])
    return batch


@torch.no_grad()
def predict_tags(model, features: Sequence[dict], label_names: Sequence[str] = NER_LABELS,
                 batch_size: int = 64) -> list[list[str]]:
    """One tag per *word* that the window kept: the prediction at the word's first piece (the token that
    carries the label in training). Words cut off by truncation are absent (compare with the true tags cut
    to the same length)."""
    model.eval()
    tags = []
    for i in range(0, len(features), batch_size):
        chunk = features[i:i + batch_size]
        batch = pad_batch(chunk)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        for feature, row in zip(chunk, logits.argmax(-1).tolist()):
            seen, words = set(), []
            for token, word in enumerate(feature["word_ids"]):
                if word is not None and word not in seen:
                    seen.add(word)
                    words.append(label_names[row[token]])
            tags.append(words)
    return tags


# ------------------------------------------------------------------------------------------------ QA

def answer_token_span(offsets: Sequence[Sequence[int]], sequence_ids: Sequence[int | None], char_start: int,
                      char_end: int) -> tuple[int, int]:
    """Characters ``[char_start, char_end)`` of the context -> ``(start token, end token)`` through the offset
    mapping; ``(0, 0)`` (``[CLS]``, "no answer") when the window does not contain the whole answer."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    if not context or offsets[context[0]][0] > char_start or offsets[context[-1]][1] < char_end:
        return 0, 0
    start = next(i for i in context if offsets[i][1] > char_start)
    end = next(i for i in reversed(context) if offsets[i][0] < char_end)
    return start, end


def qa_features(tokenizer, examples: Sequence[dict], max_length: int = 160) -> list[dict]:
    """QA examples (``question``, ``context``, ``answer_start``, ``answer_text``) -> features: ids, masks, token
    types, ``offsets``, ``context_mask`` (1 on context tokens), and ``start_positions``/``end_positions`` from
    the character answer; ``0, 0`` (``[CLS]``: "no answer") when ``answer_text`` is empty or truncation cut
    the answer off.

    A question too long to leave room for any context raises ``ValueError`` (``truncation="only_second"`` never
    cuts the question)."""
    out = []
    for ex in examples:
        n_question = len(tokenizer(ex["question"], add_special_tokens=False)["input_ids"])
        if n_question + 4 > max_length:  # [CLS] question [SEP] at least one context token [SEP]
            raise ValueError(f"the question has {n_question} tokens, so with [CLS], two [SEP] and one context token "
                             f"it needs max_length >= {n_question + 4}; received {max_length}: shorten the question "
                             "or raise max_length")
        enc = tokenizer(ex["question"], ex["context"], truncation="only_second", max_length=max_length,
                        return_offsets_mapping=True)
        sequence_ids = enc.sequence_ids()
        if not ex["answer_text"]:       # a question with no answer in this context: trained to point at [CLS]
            start, end = 0, 0
        else:
            start, end = answer_token_span(enc["offset_mapping"], sequence_ids, ex["answer_start"],
                                           ex["answer_start"] + len(ex["answer_text"]))
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                    "token_type_ids": enc["token_type_ids"], "offsets": enc["offset_mapping"],
                    "context_mask": [1 if s == 1 else 0 for s in sequence_ids],
                    "start_positions": start, "end_positions": end})
    return out


def no_answer_questions(examples: Sequence[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` unanswerable questions (SQuAD 2.0 style): a question of one passage asked over another passage that
    does not contain its quote; ``answer_text`` ``""``, ``answer_start`` -1."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        asked, context = rng.sample(list(examples), 2)
        quote = asked["question"][len('Who says "'):-2]
        if context["context"] != asked["context"] and quote not in context["context"]:
            out.append({"question": asked["question"], "context": context["context"], "answer_start": -1,
                        "answer_text": ""})
    return out


@torch.no_grad()
def predict_answers(model, features: Sequence[dict], contexts: Sequence[str], max_answer_length: int = 8,
                    batch_size: int = 64, extract: Callable | None = None) -> list[str | None]:
    """The answer text per feature (``None``: no answer), found by :func:`tfs.tasks.extract_answer` (or ``extract``,
    of the same signature)."""
    model.eval()
    answers = []
    for i in range(0, len(features), batch_size):
        chunk = features[i:i + batch_size]
        batch = pad_batch(chunk)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    token_type_ids=batch["token_type_ids"])
        for j, feature in enumerate(chunk):
            n = len(feature["input_ids"])
            span = (extract or extract_answer)(out.start_logits[j, :n], out.end_logits[j, :n], feature["offsets"],
                                               torch.tensor(feature["context_mask"]), max_answer_length)
            answers.append(None if span is None else contexts[i + j][span[0]:span[1]])
    return answers


def squad_normalize(text: str | None) -> str:
    """SQuAD's normalisation: lower case, punctuation and articles removed, whitespace collapsed."""
    text = "".join(c for c in (text or "").lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(prediction: str | None, reference: str | None) -> float:
    """SQuAD's token F1 between two answers (``None`` = no answer: 1 if both are empty, else 0)."""
    pred, ref = squad_normalize(prediction).split(), squad_normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    p, r = common / len(pred), common / len(ref)
    return 2 * p * r / (p + r)


def qa_scores(predictions: Sequence[str | None], references: Sequence[str | None]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in [0, 1], SQuAD's definitions averaged over the questions."""
    if len(predictions) != len(references) or not references:
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    em = sum(squad_normalize(p) == squad_normalize(r) for p, r in zip(predictions, references)) / len(references)
    f1 = sum(token_f1(p, r) for p, r in zip(predictions, references)) / len(references)
    return {"exact_match": em, "f1": f1}


# ---------------------------------------------------------------------------------------------- loop

def train_steps(model, features: Sequence[dict], steps: int, batch_size: int = 16, lr: float = 1e-4,
                seed: int = 0, description: str = "fine-tuning", progress: bool = True) -> list[float]:
    """``steps`` AdamW steps on shuffled batches of ``features`` with the model's own loss (``model(**batch).loss``),
    a linear decay of the learning rate and gradient clipping at 1. Returns the loss per step."""
    from tqdm.auto import tqdm

    rng = random.Random(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / max(steps, 1))
    order: list[int] = []
    losses = []
    model.train()
    bar = tqdm(range(steps), desc=description, disable=not progress)
    for _ in bar:
        if len(order) < batch_size:
            order += rng.sample(range(len(features)), len(features))
        batch = pad_batch([features[i] for i in order[:batch_size]])
        del order[:batch_size]
        loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses
