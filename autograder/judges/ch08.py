"""Chapter 08 (fine-tuning) judges. Oracles: ``torch.nn.functional``, ``scikit-learn``'s metrics,
``transformers.get_linear_schedule_with_warmup``, and analytic rules written out here.

Inputs are rebuilt from the collector module's seeded generators; each failure names the likely mistake.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from tfs.grader.collectors import ch08 as c
from tfs.grader.judging import JudgeFailure, check_data, close, expect, off, results

TOL = 1e-9


def _close(received, expected: torch.Tensor, tol: float = TOL) -> bool:
    return (isinstance(received, torch.Tensor) and received.shape == expected.shape
            and (received.double() - expected.double()).abs().max().item() <= tol)


def _shape(value, shape, name: str) -> torch.Tensor:
    expect(isinstance(value, torch.Tensor), name, f"expected a tensor, received {type(value).__name__}.")
    expect(tuple(value.shape) == tuple(shape), name, f"expected shape {tuple(shape)}, received {tuple(value.shape)}.")
    return value


def _expect_head_parameters(data, name: str) -> None:
    """The head's parameters are exactly one ``nn.Linear`` called ``linear``."""
    expect(isinstance(data, dict) and data.get("names") == ["linear.bias", "linear.weight"], name,
           f"parameters named {data.get('names') if isinstance(data, dict) else data}; expected exactly "
           "['linear.bias', 'linear.weight'].", "one nn.Linear(d_model, n_classes) called linear; dropout has no parameters.")


# ------------------------------------------------------------------------------------------ the head

def classification_head(data) -> None:
    name = "ClassificationHead"
    check_data(data, {"names": None, "mean": None, "cls": None, "train": None, "train_many": None,
                      "hidden_kept": bool}, name)
    _expect_head_parameters(data, name)
    hidden, mask = c.head_inputs()
    weight, bias = c.seeded("linear.weight", (c.N_CLASSES, c.D_MODEL)), c.seeded("linear.bias", (c.N_CLASSES,))
    m = mask.double()[..., None]
    mean = (hidden * m).sum(1) / m.sum(1)
    expected = F.linear(mean, weight, bias)
    got = _shape(data["mean"], (3, c.N_CLASSES), f"{name}(hidden, attention_mask) (eval mode)")
    if not _close(got, expected):
        mistakes = {"the mean is taken over every position, padding included: average the real tokens only "
                    "(multiply by the mask, divide by the number of real tokens)": F.linear(hidden.mean(1), weight, bias),
                    "the real tokens are summed, not averaged: divide by the number of real tokens":
                        F.linear((hidden * m).sum(1), weight, bias),
                    "the sum of the real tokens is divided by L, the padded length, which counts the padding: "
                    "divide by the number of real tokens (the mask's sum)": F.linear((hidden * m).sum(1) / m.shape[1], weight, bias),
                    "the [CLS] vector (position 0) is used; pooling='mean' (the default) averages the real tokens":
                        F.linear(hidden[:, 0], weight, bias),
                    "the mask is inverted: the padding positions are averaged instead of the real tokens":
                        F.linear((hidden * (1 - m)).sum(1) / (1 - m).sum(1).clamp(min=1), weight, bias),
                    "the output is a softmax of the logits: return the logits (F.cross_entropy applies the softmax)":
                        expected.softmax(-1)}
        for mistake, wrong in mistakes.items():
            if _close(got, wrong):
                raise JudgeFailure(f"✗ {name}: {mistake}.")
        raise JudgeFailure(f"✗ {name}: logits differ from linear(mean of the real tokens' hidden states) "
                           f"(max difference {(got.double() - expected).abs().max().item():.3g}).")
    expect(data["hidden_kept"], name, "the forward changed the hidden states it was given, in place (hidden *= mask, "
           "hidden.mul_(...)): they are the encoder's output, which other code still reads; multiply into a new tensor "
           "(hidden * mask).")
    got_cls = _shape(data["cls"], (3, c.N_CLASSES), f"{name}(..., pooling='cls')")
    if not _close(got_cls, F.linear(hidden[:, 0], weight, bias)):
        hint = " (it looks like the mean: pooling='cls' must take hidden[:, 0])" if _close(got_cls, expected) else ""
        raise JudgeFailure(f"✗ {name}: with pooling='cls' the logits must be linear(hidden[:, 0]){hint}.")
    train = _shape(data["train"], (3, c.N_CLASSES), f"{name} in training mode")
    expect(not _close(train, expected, 1e-6), name, "in training mode the output equals eval mode's: dropout "
           "(p=0.5 here) is not applied to the pooled vector.", "self.dropout = nn.Dropout(dropout), applied before linear.")
    train_many = _shape(data["train_many"], (24, c.N_CLASSES), f"{name} in training mode (24 sequences)")
    expect(not bool((train_many == 0).any()), name, "in training mode some logits are exactly 0: dropout was applied to "
           "the logits; it goes on the pooled vector, before the linear layer.")


# ------------------------------------------------------------------------------------------ collate

def _padded(sequences, pad: int):
    length = max(len(s) for s in sequences)
    ids = torch.tensor([s + [pad] * (length - len(s)) for s in sequences])
    mask = torch.tensor([[1] * len(s) + [0] * (length - len(s)) for s in sequences])
    return ids, mask


def collate_padding(data) -> None:
    name = "collate"
    batch = {"input_ids": None, "attention_mask": None}
    check_data(data, {"keys": None, "full": batch, "short": batch, "other_pad": None, "token_is_pad": None}, name)
    examples = c.collate_examples()
    sequences = [e["input_ids"] for e in examples]
    expect(isinstance(data, dict) and data.get("keys") == ["attention_mask", "input_ids", "labels"], name,
           f"the batch's keys are {data.get('keys') if isinstance(data, dict) else data}; expected "
           "'input_ids', 'attention_mask' and 'labels'.")
    ids, mask = _padded(sequences, c.PAD)
    got_ids = data["full"]["input_ids"]
    expect(isinstance(got_ids, torch.Tensor), name, "input_ids must be a tensor (B, L).")
    if got_ids.shape[1:] != ids.shape[1:] and got_ids.shape[0] == 4:
        raise JudgeFailure(f"✗ {name}: a batch whose longest sequence has {ids.shape[1]} tokens was padded to "
                           f"{got_ids.shape[1]}: dynamic padding pads to the batch's own longest sequence.")
    if _close(got_ids, _padded([s[::-1] for s in sequences], c.PAD)[0].flip(1), 0):   # pad_id first, then the sequence
        raise JudgeFailure(f"✗ {name}: the padding is on the left: a shorter text's [CLS] no longer sits at position 0 "
                           "(where pooling='cls' reads it) and each of its tokens gets another position vector than "
                           "alone; pad after the sequence.")
    expect(_close(got_ids, ids, 0) and got_ids.dtype == torch.int64, name,
           "input_ids must be each sequence followed by pad_id up to the batch's longest, int64 (padding on the right).")
    got_mask = data["full"]["attention_mask"]
    if _close(got_mask, 1 - mask, 0):
        raise JudgeFailure(f"✗ {name}: the attention mask is inverted: 1 marks a real token, 0 padding.")
    if _close(got_mask, torch.ones_like(mask), 0):
        raise JudgeFailure(f"✗ {name}: the attention mask is 1 everywhere, padding included: 0 marks the padding, "
                           "so that attention and the mean skip it.")
    expect(_close(got_mask, mask, 0) and got_mask.dtype == torch.int64, name,
           "attention_mask must be 1 on real tokens and 0 on padding, int64, shape of input_ids.")
    short_ids, short_mask = _padded([sequences[1], sequences[3]], c.PAD)
    expect(_close(data["short"]["input_ids"], short_ids, 0) and _close(data["short"]["attention_mask"], short_mask, 0),
           name, f"a batch of sequences of lengths 3 and 2 must be padded to 3, not to a fixed length "
           f"(received shape {tuple(getattr(data['short']['input_ids'], 'shape', ()))}).")
    expect(_close(data["other_pad"], _padded(sequences[:2], 77)[0], 0), name,
           "padding must use the pad_id argument (the tokenizer's pad token), not a fixed 0.")
    with_pad_token = _padded([[101, c.PAD_TOKEN, 102], sequences[2]], c.PAD_TOKEN)[1]
    expect(_close(data["token_is_pad"], with_pad_token, 0), name,
           "a real token whose id equals pad_id was marked as padding: the mask must come from each sequence's "
           "length, not from the token values.")


def collate_labels(data) -> None:
    name = "collate"
    check_data(data, {key: None for key in ("labels", "truncated", "truncated_mask", "unlabelled_keys", "empty",
                                            "label_too_big", "label_negative", "label_negative_no_n_classes",
                                            "examples_kept", "last_class")}, name)
    examples = c.collate_examples()
    labels = torch.tensor([e["label"] for e in examples])
    got = _shape(data.get("labels"), (4,), "collate(...)['labels']")
    if _close(got, labels + 1, 0) or _close(got, labels - 1, 0):
        raise JudgeFailure(f"✗ {name}: the labels are shifted by one: keep the class indices as given (0-based).")
    expect(_close(got, labels, 0) and got.dtype == torch.int64, name,
           "labels must be the examples' labels in the examples' order, int64 (cross_entropy wants class indices).")
    truncated = [s if len(s) <= 4 else s[:3] + s[-1:] for s in (e["input_ids"] for e in examples)]
    ids, mask = _padded(truncated, c.PAD)
    got_ids = data.get("truncated")
    if isinstance(got_ids, torch.Tensor) and got_ids.dim() == 2 and got_ids.shape[1] > 4:
        raise JudgeFailure(f"✗ {name}: with max_length=4 the rows have {got_ids.shape[1]} tokens: a sequence longer "
                           "than max_length must be truncated to max_length tokens.")
    if isinstance(got_ids, torch.Tensor) and got_ids.shape == ids.shape and got_ids[:, 0].tolist() != ids[:, 0].tolist():
        raise JudgeFailure(f"✗ {name}: a truncated row no longer starts with [CLS]: the end of the sequence was kept and "
                           "its start cut off; keep the first max_length - 1 tokens and the last token ([SEP]).")
    if isinstance(got_ids, torch.Tensor) and got_ids.shape == ids.shape and got_ids[:, -1].tolist() != ids[:, -1].tolist():
        raise JudgeFailure(f"✗ {name}: a sequence longer than max_length must keep its first max_length - 1 tokens "
                           "and its last token ([SEP]); the final [SEP] was cut off.")
    expect(_close(got_ids, ids, 0), name,
           "with max_length=4, longer sequences must become their first 3 tokens + their last token ([SEP]).")
    expect(_close(data.get("truncated_mask"), mask, 0), name,
           "the attention mask of a truncated batch: 1 on each row's real tokens (at most max_length), 0 on padding.")
    expect(data["examples_kept"] is True, name, "collate changed the examples it was given, in place (their "
           "input_ids truncated with del or a slice assignment): they belong to the data set, which the next epoch "
           "reads again; truncate a copy (ids = list(example['input_ids'])).")
    last = data["last_class"]
    if isinstance(last, str):
        raise JudgeFailure(f"✗ {name}: labels 1, 0, 2, 1 with n_classes={c.N_CLASSES} raised {last!r}: the classes are "
                           f"0 .. n_classes - 1, so {c.N_CLASSES - 1}, the last class, is a valid label; only a label "
                           "< 0 or >= n_classes is outside.")
    expect(_close(last, labels, 0), name, f"with n_classes={c.N_CLASSES} the labels must be the examples' labels, "
           "as without it.")
    expect(data.get("unlabelled_keys") == ["attention_mask", "input_ids"], name,
           "examples without 'label' give a batch with input_ids and attention_mask only.")
    for key, case in (("empty", "an empty batch"), ("label_too_big", f"a label equal to n_classes={c.N_CLASSES}"),
                      ("label_negative", "a label of -1"),
                      ("label_negative_no_n_classes", "a negative label (-1) without n_classes")):
        expect(str(data.get(key, "")).startswith("ValueError"), name,
               f"{case} must raise ValueError with a clear message; received {data.get(key)!r}.")


# ------------------------------------------------------------------------------------------ metrics

def confusion_matrix(data) -> None:
    from sklearn.metrics import confusion_matrix as sk_confusion

    name = "confusion_matrix"
    cases = c.label_cases()
    data = results(data, len(cases), name)
    for (y_true, y_pred, n), got in zip(cases, data):
        expected = torch.as_tensor(sk_confusion(y_true.numpy(), y_pred.numpy(), labels=list(range(n))))
        if isinstance(got, torch.Tensor) and got.dim() == 2 and got.shape[0] == got.shape[1] < n:
            raise JudgeFailure(f"✗ {name}: a {got.shape[0]} x {got.shape[1]} matrix for n_classes={n}: size it by "
                               "n_classes, not by the largest label seen; every class gets a row and a column, even "
                               "one that never occurs.")
        got = _shape(got, (n, n), f"{name}(y_true, y_pred, {n})")
        if _close(got, expected.T, 0) and not _close(got, expected, 0):
            raise JudgeFailure(f"✗ {name}: transposed: rows are the true classes, columns the predicted ones.")
        if _close(got, expected.clamp(max=1), 0) and not _close(got, expected, 0):
            raise JudgeFailure(f"✗ {name}: each (true, predicted) pair is counted once, however often it occurs: an "
                               "indexed += does not add up repeated indices; count every example.")
        expect(_close(got, expected, 0), name, f"counts differ from scikit-learn's for {n} classes: "
               "entry [i, j] counts the examples of true class i predicted as j (every class gets a row, "
               "even one never seen).")
        expect(not got.dtype.is_floating_point, name, f"expected integer counts, received {got.dtype}.")


def classification_metrics(data) -> None:
    from sklearn import metrics as skm

    name = "classification_metrics"
    cases = c.label_cases()
    data = results(data, len(cases), name)
    for index, ((y_true, y_pred, n), got) in enumerate(zip(cases, data)):
        expect(isinstance(got, dict) and {"accuracy", "precision", "recall", "f1"} <= set(got), name,
               f"expected a dict with accuracy, precision, recall and f1; received {got!r}.")
        not_floats = {key: value for key, value in got.items() if isinstance(value, str)}
        expect(not not_floats, name, f"the values must be Python floats; received {not_floats} (a 0-d tensor prints, "
               "compares and serialises differently: .item() gives its float).")
        check_data(got, {"accuracy": float, "precision": float, "recall": float, "f1": float}, name)
        labels = list(range(n))
        t, p = y_true.numpy(), y_pred.numpy()
        expected = {"accuracy": skm.accuracy_score(t, p)}
        for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
            expected[key] = fn(t, p, labels=labels, average="macro", zero_division=0)
        if not close(got["accuracy"], expected["accuracy"], TOL):
            raise JudgeFailure(f"✗ {name}: accuracy {got['accuracy']:.4f}, {off(got['accuracy'], expected['accuracy'])} "
                               f"the fraction of predictions equal to the label (case {index + 1}).")
        for key in ("precision", "recall", "f1"):
            value = got[key]
            if value != value:  # NaN
                raise JudgeFailure(f"✗ {name}: {key} is NaN: a class never predicted (or never present) gives 0/0; "
                                   "count that ratio as 0, as scikit-learn's zero_division=0.")
            if close(value, expected[key], TOL):
                continue
            micro = skm.f1_score(t, p, labels=labels, average="micro", zero_division=0)
            weighted = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[key](
                t, p, labels=labels, average="weighted", zero_division=0)
            if key != "recall" and close(value, weighted, TOL):  # weighted recall is the micro one
                raise JudgeFailure(f"✗ {name}: {key} is weighted by class frequency; macro is the plain mean over classes.")
            if close(value, micro, TOL):
                raise JudgeFailure(f"✗ {name}: {key} is the micro average (pooled counts, equal to accuracy here); "
                                   "macro averages the per-class values, each class weighing the same.")
            swapped = {"precision": "recall", "recall": "precision"}.get(key)
            if swapped and close(value, expected[swapped], TOL):
                raise JudgeFailure(f"✗ {name}: {key} equals the macro {swapped}: precision and recall are swapped; "
                                   "precision divides by the predicted counts (columns), recall by the true counts (rows).")
            fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[key]
            if close(value, fn(t, p, labels=labels, average="macro", zero_division=1), TOL):
                raise JudgeFailure(f"✗ {name}: {key} counts a 0/0 ratio as 1: a class the model never predicts (or "
                                   "that never occurs) would score perfectly; a ratio with nothing to count is 0.")
            per_class = fn(t, p, labels=labels, average=None, zero_division=float("nan"))
            if close(value, float(per_class[per_class == per_class].mean()), TOL):
                raise JudgeFailure(f"✗ {name}: {key} leaves the classes whose ratio is 0/0 out of the mean: a class "
                                   f"the model never predicts must pull the average down; average over all {n} classes.")
            if key == "f1":
                mp, mr = expected["precision"], expected["recall"]
                if mp + mr and close(value, 2 * mp * mr / (mp + mr), TOL):
                    raise JudgeFailure(f"✗ {name}: f1 is the harmonic mean of the macro precision and recall; macro-F1 "
                                       "is the mean of the per-class F1 scores.")
            raise JudgeFailure(f"✗ {name}: {key} {value:.4f}, {off(value, expected[key])} the macro average over "
                               f"{n} classes (case {index + 1}).")


# ------------------------------------------------------------------------------------------ optimisation

def parameter_groups(data) -> None:
    name = "parameter_groups"
    model = c.tiny_classifier()
    shapes = {n: p for n, p in model.named_parameters()}
    expect(isinstance(data, dict) and data.get("adamw") == "yes", name,
           f"torch.optim.AdamW refused the groups: {data.get('adamw') if isinstance(data, dict) else data}.",
           "a list of dicts, each with 'params' (a list of parameters), 'lr' and 'weight_decay'.")
    check_data(data, {"groups": list}, name)
    for group in data["groups"]:
        check_data(group, {"names": [str] * len(group.get("names", [])) if isinstance(group, dict) else list,
                           "lr": float, "weight_decay": float}, name)
    seen = [n for group in data["groups"] for n in group["names"]]
    trainable = sorted(n for n, p in shapes.items() if p.requires_grad)
    frozen = [n for n in seen if n in shapes and not shapes[n].requires_grad]
    if frozen:
        raise JudgeFailure(f"✗ {name}: frozen parameters ({frozen[0]}, ...) are in the groups: leave out those "
                           "with requires_grad=False.")
    twice = sorted({n for n in seen if seen.count(n) > 1})
    if twice:
        raise JudgeFailure(f"✗ {name}: {twice[0]} is in two groups: each parameter must appear exactly once.")
    missing = sorted(set(trainable) - set(seen))
    if missing:
        raise JudgeFailure(f"✗ {name}: {missing[0]} (and {len(missing) - 1} more) is in no group.")
    lrs = {n: group["lr"] for group in data["groups"] for n in group["names"]}
    head_lrs = {lr for n, lr in lrs.items() if n.startswith("head.")}
    encoder_lrs = {lr for n, lr in lrs.items() if not n.startswith("head.")}
    if head_lrs == {2e-5} and encoder_lrs == {1e-3}:
        raise JudgeFailure(f"✗ {name}: encoder and head learning rates are swapped: the pretrained encoder takes the "
                           "small encoder_lr, the new head the large head_lr.")
    for group in data["groups"]:
        for n in group["names"]:
            want_lr = 1e-3 if n.startswith("head.") else 2e-5
            if group["lr"] != want_lr:
                raise JudgeFailure(f"✗ {name}: {n} has lr {group['lr']:g}, expected {want_lr:g}: the encoder "
                                   "(model.bert) takes encoder_lr, the head (model.head) head_lr.")
            if shapes[n].dim() >= 2 and group["weight_decay"] != 0.05:
                raise JudgeFailure(f"✗ {name}: {n} has weight_decay {group['weight_decay']:g}, expected 0.05: a matrix "
                                   "takes the weight_decay argument.")
            if shapes[n].dim() < 2 and group["weight_decay"] != 0.0:
                what = "a bias" if n.endswith("bias") else "a LayerNorm weight (1-D, like the biases)"
                raise JudgeFailure(f"✗ {name}: {n} has weight_decay {group['weight_decay']:g}, expected 0: it is {what}; "
                                   "matrices decay, biases and LayerNorm weights (1-D) do not.")


def schedule(data) -> None:
    from transformers import get_linear_schedule_with_warmup

    name = "linear_warmup_decay"
    data = results(data, len(c.SCHEDULES), name)
    for (warmup, total), got in zip(c.SCHEDULES, data):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        expected = []
        for _ in range(total + 3):
            expected.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        expect(isinstance(got, list) and len(got) == len(expected), name, "expected one float per step.")
        check_data(got, [float] * len(expected), name)
        bad = [s for s, (g, e) in enumerate(zip(got, expected)) if not close(g, e, 1e-12)]
        if not bad:
            continue
        step = bad[0]
        shifted = [min(1.0, (s + 1) / warmup) if s < warmup else e for s, e in enumerate(expected)] if warmup else None
        if warmup == 0 and close(got[0], 0.0, 1e-12):
            raise JudgeFailure(f"✗ {name}(0, warmup_steps=0, total_steps={total}) = 0: with warmup_steps=0 there is no "
                               "warm-up, so step 0 is already the peak (1.0, then the decay): `step < warmup_steps` "
                               "(strict) is never true there; `step <= warmup_steps` puts step 0 in a warm-up of 0 steps.")
        if shifted and all(close(g, e, 1e-12) for g, e in zip(got, shifted)):
            raise JudgeFailure(f"✗ {name}: warm-up off by one: step 0 must give 0 (step / warmup_steps), "
                               f"reaching 1 at step {warmup}.")
        if any(g < 0 for g in got):
            raise JudgeFailure(f"✗ {name}: negative multiplier after total_steps: clamp the decay at 0.")
        if warmup and all(close(g, e, 1e-12) for g, e in zip(got, [0.0 if s < warmup else e for s, e in enumerate(expected)])):
            raise JudgeFailure(f"✗ {name}: the warm-up gives 0 until its last step: integer division (//) where "
                               "step / warmup_steps is a fraction.")
        from_zero = [e if s < warmup else max(0.0, 1 - s / total) for s, e in enumerate(expected)]
        if all(close(g, e, 1e-12) for g, e in zip(got, from_zero)):
            raise JudgeFailure(f"✗ {name}: the decay runs from 1 at step 0 to 0 at total_steps; it runs from 1 at "
                               "warmup_steps: (total_steps - step) / (total_steps - warmup_steps).")
        raise JudgeFailure(f"✗ {name}(step={step}, warmup_steps={warmup}, total_steps={total}) = {got[step]:.4g}, "
                           f"{off(got[step], expected[step])} transformers' get_linear_schedule_with_warmup.")


def early_stopping(data) -> None:
    name = "EarlyStopping"
    for run_name, (mode, min_delta, scores) in c.STOPPING_RUNS.items():
        run = data.get(run_name) if isinstance(data, dict) else None
        expect(isinstance(run, dict), name, f"no results for mode={mode!r}, min_delta={min_delta}.")
        check_data(run, {"decisions": [bool] * len(scores), "best_score": None, "best_epoch": None, "restored": None}, name)
        call = f"{name}(patience=2, mode={mode!r}, min_delta={min_delta})"
        best = run["best_score"]
        if best is None or (isinstance(best, float) and math.isinf(best)) or run["best_epoch"] not in range(len(scores)):
            raise JudgeFailure(f"✗ {call}: after {len(scores)} calls best_score is {best} and best_epoch "
                               f"{run['best_epoch']}: no call counted as an improvement. The first call always sets the "
                               "best, in either mode: an initial best of -inf (or 0) is never beaten by a loss in "
                               "mode='min'; start from None (the first score is the best so far), or +inf for 'min'.")
        decisions, best_epoch = _stopping_rule(scores, mode, min_delta)
        got = (run["decisions"], run["best_epoch"])
        if got != (decisions, best_epoch):
            for mistake, wrong in _stopping_mistakes(scores, mode, min_delta):
                if got == wrong and wrong != (decisions, best_epoch):
                    raise JudgeFailure(f"✗ {call}: {mistake}")
        if run["best_score"] != scores[best_epoch]:
            raise JudgeFailure(f"✗ {call}: best_score {run['best_score']} is not the score of the best call"
                               + (": 'min' means lower is better (a loss)." if mode == "min" else "."))
        expect(run["best_epoch"] == best_epoch, name, f"best_epoch {run['best_epoch']} is not the 0-based index of the "
               "step call with the best score.")
        if run["decisions"] != decisions:
            first = next(i for i, (got, want) in enumerate(zip(run["decisions"], decisions)) if got != want)
            raise JudgeFailure(f"✗ {call}: step returned {run['decisions']} for scores {scores}; the decision of "
                               f"call {first} is wrong.")
        restored = run.get("restored")
        if not isinstance(restored, torch.Tensor):
            raise JudgeFailure(f"✗ {name}: restore(model) failed or loaded nothing: keep a copy of the state dict "
                               "whenever the score improves (the first call included), and load it in restore.")
        if _close(restored, torch.full((1, 2), -1.0), 0):
            raise JudgeFailure(f"✗ {name}: restore gave back the current weights, not the best ones: keep a copy "
                               "({k: v.clone() ...}) of the state dict when the score improves (model.state_dict() "
                               "returns references that the optimizer keeps changing), and load it in restore.")
        if not _close(restored, torch.full((1, 2), float(best_epoch)), 0):
            raise JudgeFailure(f"✗ {name}: restore loaded the weights of another epoch ({restored.flatten().tolist()}): "
                               "keep a copy (tensor.clone()) of the state dict when the score improves; "
                               "model.state_dict() alone returns references that the optimizer keeps changing.")
    for run_name, (patience, mode, min_delta, scores) in c.PATIENCE_RUNS.items():
        run = data.get(run_name) if isinstance(data, dict) else None
        expect(isinstance(run, dict), name, f"no results for patience={patience}.")
        check_data(run, {"decisions": [bool] * len(scores)}, name)
        decisions, _ = _stopping_rule(scores, mode, min_delta, patience=patience)
        if run["decisions"] != decisions:
            fixed = [p for p in (2, patience + 1, patience - 1)
                     if p > 0 and run["decisions"] == _stopping_rule(scores, mode, min_delta, patience=p)[0]]
            why = (f": these are the decisions of patience={fixed[0]}; use the patience argument, self.patience"
                   if fixed else "")
            raise JudgeFailure(f"✗ {name}(patience={patience}, mode={mode!r}): step returned {run['decisions']} for "
                               f"scores {scores}; stop after exactly {patience} call(s) in a row without improvement{why}.")


def _stopping_mistakes(scores, mode, min_delta) -> list[tuple[str, tuple[list[bool], int]]]:
    """(message, the (decisions, best_epoch) that mistake gives) for the usual wrong rules."""
    right_decisions, right_best = _stopping_rule(scores, mode, min_delta)
    return [
        ("a score equal to the best was counted as an improvement: on a plateau the patience never runs out, and the "
         "later weights replace the earlier ones without scoring better.",
         _stopping_rule(scores, mode, min_delta, ties_improve=True)),
        ("'min' means lower is better (a loss); the scores were compared as for mode='max'.",
         _stopping_rule(scores, "max", min_delta) if mode == "min" else None),
        ("an improvement smaller than min_delta was counted: a score must beat the best by more than min_delta.",
         _stopping_rule(scores, mode, 0.0) if min_delta else None),
        ("with mode='min' a score must fall below the best minus min_delta; the margin was added the other way.",
         _stopping_rule(scores, mode, -min_delta) if min_delta and mode == "min" else None),
        ("an improvement did not reset the count of calls without improvement: stop after `patience` calls in a row "
         "without improvement.", _stopping_rule(scores, mode, min_delta, reset=False)),
        ("patience off by one: stop after exactly `patience` calls in a row without improvement.",
         _stopping_rule(scores, mode, min_delta, patience=3)),
        ("stops at the first call without improvement: wait `patience` calls.",
         _stopping_rule(scores, mode, min_delta, patience=1)),
        ("best_epoch counts the calls from 1; it is the 0-based index of the best call.", (right_decisions, right_best + 1)),
    ]


def _stopping_rule(scores, mode, min_delta=0.0, ties_improve=False, patience=2, reset=True) -> tuple[list[bool], int]:
    """The rule, written out: (the stop decision after each call, the 0-based index of the best call)."""
    best, best_epoch, bad, decisions = None, -1, 0, []
    for epoch, score in enumerate(scores):
        better = best is None or (score > best + min_delta if mode == "max" else score < best - min_delta)
        if better or (ties_improve and score == best):
            best, best_epoch = score, epoch
            bad = 0 if reset else bad
        else:
            bad += 1
        decisions.append(bad >= patience)
    return decisions, best_epoch

def head_shapes(data) -> None:
    name = "ClassificationHead"
    check_data(data, {"names": None, "shapes": {"linear.weight": None}, "out_shape": None, "dropout_p": None}, name)
    _expect_head_parameters(data, name)
    rate = c.dropout_rate()
    default = (" 0.1 is the default: the dropout argument was not passed on, nn.Dropout(dropout)."
               if data["dropout_p"] == [0.1] else "")
    expect(data["dropout_p"] == [rate], name,
           f"ClassificationHead(..., dropout={rate}) holds dropout layers with p = {data['dropout_p']}; expected one "
           f"nn.Dropout with p = {rate}, the dropout argument.{default}")
    expect(data["shapes"]["linear.weight"] == [c.N_CLASSES, c.D_MODEL], name,
           f"linear.weight has shape {data['shapes']['linear.weight']}; expected (n_classes, d_model) = "
           f"({c.N_CLASSES}, {c.D_MODEL}): nn.Linear(d_model, n_classes).")
    expect(data["out_shape"] == [3, c.N_CLASSES], name,
           f"logits of shape {data['out_shape']} for 3 sequences; expected (3, {c.N_CLASSES}): one row per sequence.")
    expect(data.get("one_shape") == [1, c.N_CLASSES], name,
           f"logits of shape {data.get('one_shape')} for a batch of 1 sequence; expected (1, {c.N_CLASSES}): a batch "
           "of one keeps its batch axis (a squeeze() drops it).")


def metrics_binary(data) -> None:
    """The binary case only: the other cases are filled with the oracle's values, so only this one can fail."""
    expect(isinstance(data, dict), "classification_metrics", f"expected a dict, received {data!r}.")
    classification_metrics([data, *[_oracle_metrics(t, p, n) for t, p, n in c.label_cases()[1:]]])


def _oracle_metrics(y_true, y_pred, n) -> dict:
    from sklearn import metrics as skm

    labels = list(range(n))
    return {"accuracy": skm.accuracy_score(y_true, y_pred),
            **{key: fn(y_true, y_pred, labels=labels, average="macro", zero_division=0)
               for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score))}}
