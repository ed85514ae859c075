"""Chapter 08's judges: the package's reference passes, each usual fine-tuning mistake fails with a message naming it.

Data goes through the real collectors (``tfs.grader.collectors.ch08``) and a save/load round trip, as in grading.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tfs import finetune as ref
from tfs.grader.judging import JudgeFailure, collect, load_judge, read_data_roundtrip


def verdict(test: str, **objects) -> None:
    load_judge(f"ch08.{test}")(read_data_roundtrip(collect(f"ch08.{test}", **objects)))


def fails(test: str, match: str, **objects) -> None:
    with pytest.raises(JudgeFailure, match=match):
        verdict(test, **objects)


# ------------------------------------------------------------------------ mutants: plausible wrong answers

class MeanOverPads(ref.ClassificationHead):
    def forward(self, hidden, attention_mask):
        summary = hidden.mean(1) if self.pooling == "mean" else hidden[:, 0]
        return self.linear(self.dropout(summary))


class SumPool(ref.ClassificationHead):
    def forward(self, hidden, attention_mask):
        summary = (hidden * attention_mask[..., None]).sum(1) if self.pooling == "mean" else hidden[:, 0]
        return self.linear(self.dropout(summary))


class AlwaysCLS(ref.ClassificationHead):
    def forward(self, hidden, attention_mask):
        return self.linear(self.dropout(hidden[:, 0]))


class NoDropout(ref.ClassificationHead):
    def forward(self, hidden, attention_mask):
        return self.linear(ref.mean_pool(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0])


class ExtraLayer(ref.ClassificationHead):
    def __init__(self, d_model, n_classes, dropout=0.1, pooling="mean"):
        super().__init__(d_model, n_classes, dropout, pooling)
        self.dense = nn.Linear(d_model, d_model)


class SoftmaxHead(ref.ClassificationHead):
    def forward(self, hidden, attention_mask):
        return super().forward(hidden, attention_mask).softmax(-1)


class DropoutOnLogits(ref.ClassificationHead):
    def forward(self, hidden, attention_mask):
        summary = ref.mean_pool(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0]
        return self.dropout(self.linear(summary))


class DropoutRateIgnored(ref.ClassificationHead):
    def __init__(self, d_model, n_classes, dropout=0.1, pooling="mean"):
        super().__init__(d_model, n_classes, 0.1, pooling)     # the argument not passed on: the default rate


class DividedByPaddedLength(ref.ClassificationHead):
    def forward(self, hidden, attention_mask):
        summary = (hidden * attention_mask[..., None]).sum(1) / hidden.shape[1] if self.pooling == "mean" else hidden[:, 0]
        return self.linear(self.dropout(summary))


def fixed_length(examples, pad_id=0, max_length=512, n_classes=None):
    batch = ref.collate(examples, pad_id, max_length, n_classes)
    extra = 8 - batch["input_ids"].shape[1]
    batch["input_ids"] = nn.functional.pad(batch["input_ids"], (0, extra), value=pad_id)
    batch["attention_mask"] = nn.functional.pad(batch["attention_mask"], (0, extra))
    return batch


def inverted_mask(examples, pad_id=0, max_length=512, n_classes=None):
    batch = ref.collate(examples, pad_id, max_length, n_classes)
    batch["attention_mask"] = 1 - batch["attention_mask"]
    return batch


def left_padded(examples, pad_id=0, max_length=512, n_classes=None):
    batch = ref.collate(examples, pad_id, max_length, n_classes)
    real = batch["attention_mask"].sum(1)
    for row, n in enumerate(real.tolist()):
        for key in ("input_ids", "attention_mask"):
            batch[key][row] = batch[key][row].roll(batch[key].shape[1] - n)
    return batch


def zero_pad(examples, pad_id=0, max_length=512, n_classes=None):
    return ref.collate(examples, 0, max_length, n_classes)


def mask_of_ones(examples, pad_id=0, max_length=512, n_classes=None):
    batch = ref.collate(examples, pad_id, max_length, n_classes)
    batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
    return batch


def mask_from_token_values(examples, pad_id=0, max_length=512, n_classes=None):
    batch = ref.collate(examples, pad_id, max_length, n_classes)
    batch["attention_mask"] = (batch["input_ids"] != pad_id).long()
    return batch


def not_truncated(examples, pad_id=0, max_length=512, n_classes=None):
    return ref.collate(examples, pad_id, 10_000, n_classes)


def negative_needs_n_classes(examples, pad_id=0, max_length=512, n_classes=None):
    if n_classes is None and any(e.get("label", 0) < 0 for e in examples):  # checked only when n_classes is given
        return ref.collate([{"input_ids": e["input_ids"]} for e in examples], pad_id, max_length)
    return ref.collate(examples, pad_id, max_length, n_classes)


def shifted_labels(examples, pad_id=0, max_length=512, n_classes=None):
    batch = ref.collate(examples, pad_id, max_length, n_classes)
    if "labels" in batch:
        batch["labels"] = batch["labels"] + 1
    return batch


def cut_sep(examples, pad_id=0, max_length=512, n_classes=None):
    return ref.collate([{**e, "input_ids": list(e["input_ids"])[:max_length]} for e in examples], pad_id, max_length, n_classes)


def keeps_the_end(examples, pad_id=0, max_length=512, n_classes=None):
    return ref.collate([{**e, "input_ids": list(e["input_ids"])[-max_length:]} for e in examples], pad_id, max_length, n_classes)


def no_checks(examples, pad_id=0, max_length=512, n_classes=None):
    return ref.collate(examples, pad_id, max_length, None) if examples else {}


def transposed(y_true, y_pred, n_classes):
    return ref.confusion_matrix(y_true, y_pred, n_classes).T


def counted_once(y_true, y_pred, n_classes):
    matrix = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    matrix[y_true, y_pred] += 1  # repeated index pairs are not added up
    return matrix


def seen_classes_only(y_true, y_pred, n_classes):
    present = int(max(y_true.max(), y_pred.max())) + 1
    return ref.confusion_matrix(y_true, y_pred, present)


def micro(y_true, y_pred, n_classes):
    result = ref.classification_metrics(y_true, y_pred, n_classes)
    return {**result, "f1": result["accuracy"]}


def f1_of_averages(y_true, y_pred, n_classes):
    result = ref.classification_metrics(y_true, y_pred, n_classes)
    p, r = result["precision"], result["recall"]
    return {**result, "f1": 2 * p * r / (p + r)}


def weighted_precision(y_true, y_pred, n_classes):
    from sklearn.metrics import precision_score

    result = ref.classification_metrics(y_true, y_pred, n_classes)
    return {**result, "precision": precision_score(y_true, y_pred, average="weighted", zero_division=0)}


def precision_recall_swapped(y_true, y_pred, n_classes):
    result = ref.classification_metrics(y_true, y_pred, n_classes)
    return {**result, "precision": result["recall"], "recall": result["precision"]}


def nan_precision(y_true, y_pred, n_classes):
    result = ref.classification_metrics(y_true, y_pred, n_classes)
    matrix = ref.confusion_matrix(y_true, y_pred, n_classes).double()
    precision = (matrix.diagonal() / matrix.sum(0)).mean().item()
    return {**result, "precision": precision}


def zero_division_one(y_true, y_pred, n_classes):
    from sklearn import metrics as skm

    labels = list(range(n_classes))
    return {"accuracy": skm.accuracy_score(y_true, y_pred),
            **{key: fn(y_true, y_pred, labels=labels, average="macro", zero_division=1)
               for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score))}}


def tensors_not_floats(y_true, y_pred, n_classes):
    """The right numbers as 0-d tensors (no .item()): the exercise returns Python floats."""
    return {key: torch.tensor(value) for key, value in ref.classification_metrics(y_true, y_pred, n_classes).items()}


def classes_present_only(y_true, y_pred, n_classes):
    """scikit-learn's default: the mean over the classes that occur in y_true or y_pred, not over all n_classes."""
    from sklearn import metrics as skm

    return {"accuracy": skm.accuracy_score(y_true, y_pred),
            **{key: fn(y_true, y_pred, average="macro", zero_division=0)
               for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score))}}


def one_lr(model, encoder_lr, head_lr, weight_decay=0.01):
    return [{**g, "lr": head_lr} for g in ref.parameter_groups(model, encoder_lr, head_lr, weight_decay)]


def swapped_lr(model, encoder_lr, head_lr, weight_decay=0.01):
    return ref.parameter_groups(model, head_lr, encoder_lr, weight_decay)


def decay_everything(model, encoder_lr, head_lr, weight_decay=0.01):
    return [{**g, "weight_decay": weight_decay} for g in ref.parameter_groups(model, encoder_lr, head_lr, weight_decay)]


def decay_by_name(model, encoder_lr, head_lr, weight_decay=0.01):
    groups = []
    for part, lr in ((model.bert, encoder_lr), (model.head, head_lr)):
        named = [(n, p) for n, p in part.named_parameters() if p.requires_grad]
        groups.append({"params": [p for n, p in named if not n.endswith("bias")], "lr": lr, "weight_decay": weight_decay})
        groups.append({"params": [p for n, p in named if n.endswith("bias")], "lr": lr, "weight_decay": 0.0})
    return groups


def default_decay(model, encoder_lr, head_lr, weight_decay=0.01):
    return ref.parameter_groups(model, encoder_lr, head_lr)


def includes_frozen(model, encoder_lr, head_lr, weight_decay=0.01):
    return [{"params": list(model.bert.parameters()), "lr": encoder_lr, "weight_decay": weight_decay},
            {"params": list(model.head.parameters()), "lr": head_lr, "weight_decay": weight_decay}]


def warmup_plus_one(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return ref.linear_warmup_decay(step, warmup_steps, total_steps)


def no_clamp(step, warmup_steps, total_steps):
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return (total_steps - step) / max(1, total_steps - warmup_steps)


def integer_warmup(step, warmup_steps, total_steps):
    return step // warmup_steps if step < warmup_steps else ref.linear_warmup_decay(step, warmup_steps, total_steps)


def decay_from_zero(step, warmup_steps, total_steps):
    return step / warmup_steps if step < warmup_steps else max(0.0, 1 - step / total_steps)


def cosine(step, warmup_steps, total_steps):
    import math

    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, total_steps - warmup_steps))))


class KeepsReferences(ref.EarlyStopping):
    def step(self, score, model):
        stop = super().step(score, model)
        if self.best_epoch == self.calls - 1:
            self.best_state = model.state_dict()  # references, not copies
        return stop


class PatiencePlusOne(ref.EarlyStopping):
    def step(self, score, model):
        super().step(score, model)
        return self.bad_epochs > self.patience


class TieImproves(ref.EarlyStopping):
    def __init__(self, patience=2, mode="max", min_delta=0.0):
        super().__init__(patience, mode, min_delta - 1e-12)  # a score equal to the best counts as better


class IgnoresMinDelta(ref.EarlyStopping):
    def __init__(self, patience=2, mode="max", min_delta=0.0):
        super().__init__(patience, mode, 0.0)


class MinDeltaSignFlipped(ref.EarlyStopping):
    def __init__(self, patience=2, mode="max", min_delta=0.0):
        super().__init__(patience, mode, -min_delta if mode == "min" else min_delta)


class CountNotReset(ref.EarlyStopping):
    def step(self, score, model):
        bad = self.bad_epochs
        stop = super().step(score, model)
        if self.best_epoch == self.calls - 1:  # improved: keep counting instead of restarting
            self.bad_epochs = bad
            stop = bad >= self.patience
        return stop


class OneBasedEpoch(ref.EarlyStopping):
    def step(self, score, model):
        stop = super().step(score, model)
        if self.bad_epochs == 0:  # improved: counted from 1
            self.best_epoch = self.calls
        return stop


class AlwaysMax(ref.EarlyStopping):
    def __init__(self, patience=2, mode="max", min_delta=0.0):
        super().__init__(patience, "max", min_delta)


class StopsAtOnce(ref.EarlyStopping):
    def step(self, score, model):
        super().step(score, model)
        return self.bad_epochs >= 1


# ------------------------------------------------------------------------ the tests

def test_reference_passes_every_judge():
    verdict("classification_head", ClassificationHead=ref.ClassificationHead)
    verdict("head_shapes", ClassificationHead=ref.ClassificationHead)
    verdict("metrics_binary", classification_metrics=ref.classification_metrics)
    verdict("collate_padding", collate=ref.collate)
    verdict("collate_labels", collate=ref.collate)
    verdict("confusion_matrix", confusion_matrix=ref.confusion_matrix)
    verdict("classification_metrics", classification_metrics=ref.classification_metrics)
    verdict("parameter_groups", parameter_groups=ref.parameter_groups)
    verdict("schedule", linear_warmup_decay=ref.linear_warmup_decay)
    verdict("early_stopping", EarlyStopping=ref.EarlyStopping)


@pytest.mark.parametrize("mutant, match", [
    (MeanOverPads, "padding included"), (SumPool, "summed, not averaged"), (AlwaysCLS, r"\[CLS\] vector"),
    (NoDropout, "dropout"), (ExtraLayer, "parameters named"), (SoftmaxHead, "softmax"),
    (DropoutOnLogits, "dropout was applied to the logits"), (DividedByPaddedLength, "divided by L, the padded length"),
])
def test_head_mutants(mutant, match):
    fails("classification_head", match, ClassificationHead=mutant)


@pytest.mark.parametrize("mutant, test, match", [
    (fixed_length, "collate_padding", "batch's own longest"), (inverted_mask, "collate_padding", "inverted"),
    (left_padded, "collate_padding", "on the left"),
    (zero_pad, "collate_padding", "pad_id"), (shifted_labels, "collate_labels", "shifted by one"),
    (cut_sep, "collate_labels", r"\[SEP\] was cut off"), (keeps_the_end, "collate_labels", r"no longer starts with \[CLS\]"), (no_checks, "collate_labels", "must raise ValueError"),
    (mask_of_ones, "collate_padding", "1 everywhere"), (mask_from_token_values, "collate_padding", "not from the token values"),
    (not_truncated, "collate_labels", "must be truncated"),
    (negative_needs_n_classes, "collate_labels", "without n_classes must raise ValueError"),
])
def test_collate_mutants(mutant, test, match):
    fails(test, match, collate=mutant)


def test_head_shape_and_binary_metric_mutants():
    fails("head_shapes", "parameters named", ClassificationHead=ExtraLayer)
    fails("head_shapes", "the dropout argument was not passed on", ClassificationHead=DropoutRateIgnored)

    fails("metrics_binary", "micro average", classification_metrics=micro)


@pytest.mark.parametrize("mutant, match", [(transposed, "transposed"), (seen_classes_only, "size it by n_classes"),
                                            (counted_once, "counted once")])
def test_confusion_matrix_mutants(mutant, match):
    fails("confusion_matrix", match, confusion_matrix=mutant)


@pytest.mark.parametrize("mutant, match", [
    (micro, "micro average"), (f1_of_averages, "harmonic mean of the macro"), (weighted_precision, "weighted by class"),
    (nan_precision, "NaN"), (zero_division_one, "0/0 ratio as 1"), (classes_present_only, "out of the mean"),
    (precision_recall_swapped, "swapped"), (tensors_not_floats, "Python floats"),
])
def test_metrics_mutants(mutant, match):
    fails("classification_metrics", match, classification_metrics=mutant)


@pytest.mark.parametrize("mutant, match", [
    (one_lr, "encoder_lr"), (swapped_lr, "swapped"), (decay_everything, "biases and LayerNorm"),
    (includes_frozen, "frozen parameters"), (decay_by_name, "LayerNorm weight"), (default_decay, "weight_decay argument"),
])
def test_parameter_group_mutants(mutant, match):
    fails("parameter_groups", match, parameter_groups=mutant)


@pytest.mark.parametrize("mutant, match", [
    (warmup_plus_one, "off by one"), (no_clamp, "clamp"), (cosine, "get_linear_schedule_with_warmup"),
    (integer_warmup, "integer division"), (decay_from_zero, "from 1 at step 0"),
])
def test_schedule_mutants(mutant, match):
    fails("schedule", match, linear_warmup_decay=mutant)


@pytest.mark.parametrize("mutant, match", [
    (KeepsReferences, "keep a copy"), (PatiencePlusOne, "patience off by one"), (AlwaysMax, "lower is better"),
    (StopsAtOnce, "first call without improvement"), (TieImproves, "equal to the best"),
    (IgnoresMinDelta, "smaller than min_delta"), (MinDeltaSignFlipped, "the other way"), (CountNotReset, "reset the count"),
    (OneBasedEpoch, "counts the calls from 1"),
])
def test_early_stopping_mutants(mutant, match):
    fails("early_stopping", match, EarlyStopping=mutant)


def test_a_wrong_confusion_matrix_costs_no_metrics_points():
    """The metrics are collected on a reference confusion matrix, whatever the learner's one does."""
    import builtins
    import types

    def metrics_on(confusion_matrix):
        """The reference metrics, reading ``confusion_matrix`` from a namespace of their own (as a notebook's)."""
        space = {"__builtins__": builtins, "torch": torch, "confusion_matrix": confusion_matrix}
        return types.FunctionType(ref.classification_metrics.__code__, space)

    for test in ("classification_metrics", "metrics_binary"):
        verdict(test, classification_metrics=metrics_on(transposed))
        verdict(test, classification_metrics=metrics_on(counted_once))


def test_a_crash_in_the_learners_code_reaches_the_grader_as_an_error():
    def broken(examples, pad_id=0, max_length=512, n_classes=None):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        collect("ch08.collate_padding", collate=broken)


# ------------------------------------------------------------- held-out list 3: checks added after its measurement

class StartsAtMinusInf(ref.EarlyStopping):  # the best starts at -inf: in mode="min" no loss ever beats it
    def __init__(self, patience=2, mode="max", min_delta=0.0):
        super().__init__(patience, mode, min_delta)
        self.best_score = float("-inf")

    def step(self, score, model):
        better = score > self.best_score + self.min_delta if self.mode == "max" else score < self.best_score - self.min_delta
        epoch, self.calls = getattr(self, "calls", 0), getattr(self, "calls", 0) + 1
        if better:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model):
        model.load_state_dict(getattr(self, "best_state", None))
        return model


def zero_warmup_starts_at_zero(step, warmup_steps, total_steps):  # step <= warmup_steps: a warm-up of 0 steps gives 0
    if step <= warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def test_held_out_3_early_stopping_best_starts_at_minus_inf():
    fails("early_stopping", "The first call always sets the best", EarlyStopping=StartsAtMinusInf)


def test_held_out_3_schedule_zero_warmup_starts_at_zero():
    fails("schedule", "no warm-up, so step 0 is already the peak", linear_warmup_decay=zero_warmup_starts_at_zero)


# ------------------------------------------------------------------------ the sweep of issue 31: arguments and boundaries

class SqueezedHead(ref.ClassificationHead):   # a batch of 1 loses its batch axis
    def forward(self, hidden, attention_mask):
        return super().forward(hidden, attention_mask).squeeze()


class MasksHiddenInPlace(ref.ClassificationHead):   # the encoder's output multiplied by the mask in place
    def forward(self, hidden, attention_mask):
        if self.pooling == "mean":
            hidden.mul_(attention_mask.to(hidden.dtype).unsqueeze(-1))
        return super().forward(hidden, attention_mask)


def truncates_in_place(examples, pad_id=0, max_length=512, n_classes=None):
    for example in examples:
        if len(example["input_ids"]) > max_length:
            del example["input_ids"][max_length - 1:-1]
    return ref.collate(examples, pad_id, max_length, n_classes)


def rejects_last_class(examples, pad_id=0, max_length=512, n_classes=None):
    if n_classes is not None and any(e.get("label", 0) == n_classes - 1 for e in examples):
        raise ValueError("label outside 0 .. n_classes - 2")
    return ref.collate(examples, pad_id, max_length, n_classes)


class PatienceFixedAtTwo(ref.EarlyStopping):
    def step(self, score, model):
        super().step(score, model)
        return self.bad_epochs >= 2


def test_sweep_head_batch_of_one_and_input_kept():
    fails("head_shapes", "batch of 1 sequence", ClassificationHead=SqueezedHead)
    fails("classification_head", "changed the hidden states it was given, in place", ClassificationHead=MasksHiddenInPlace)


@pytest.mark.parametrize("mutant, match", [(truncates_in_place, "changed the examples it was given, in place"),
                                            (rejects_last_class, "the last class, is a valid label")])
def test_sweep_collate_mutants(mutant, match):
    fails("collate_labels", match, collate=mutant)


def test_sweep_early_stopping_patience_argument():
    fails("early_stopping", r"patience=1.*decisions of patience=2; use the patience argument", EarlyStopping=PatienceFixedAtTwo)
