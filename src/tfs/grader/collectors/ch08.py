"""Chapter 08 (fine-tuning) collectors: run the learner's objects on seeded inputs, return plain data.

Inputs come from the generators below, which the judges import to rebuild them; weights are
written into the learner's modules by parameter name (``linear.weight``, ``linear.bias``), so the
judge knows them without trusting the kernel. An exception the learner's code raises on a case
that must raise is reported as its first line (``"ValueError: ..."``), or ``"no error"``.
"""

from __future__ import annotations

import copy
import zlib

import torch

from tfs.grader.judging import raised
from tfs.grader import judging

D_MODEL, N_CLASSES = 8, 3
PAD = 0
PAD_TOKEN = 1500  # a pad_id equal to a real token of a text: the mask must come from the lengths, not the ids
SCHEDULES = ((0, 6), (3, 10), (4, 9), (5, 5))
# EarlyStopping(patience=2) runs: name -> (mode, min_delta, scores). "max" has a tie with the best (call 2) and an
# improvement after two bad calls (the count must restart); the min_delta runs have gains smaller than min_delta.
STOPPING_RUNS = {"max": ("max", 0.0, [0.50, 0.70, 0.70, 0.65, 0.90, 0.90]),
                 "min": ("min", 0.0, [1.00, 0.80, 0.85, 0.70, 0.75, 0.72, 0.71]),
                 "max_delta": ("max", 0.05, [0.60, 0.63, 0.70, 0.72, 0.74, 0.80]),
                 "min_delta": ("min", 0.05, [1.00, 0.90, 0.93, 0.91, 0.88, 0.80])}
# runs with another patience: name -> (patience, mode, min_delta, scores); a patience fixed at 2 decides otherwise
PATIENCE_RUNS = {"patience1": (1, "max", 0.0, [0.50, 0.60, 0.55, 0.70, 0.65]),
                 "patience3": (3, "min", 0.0, [1.00, 0.90, 0.95, 0.92, 0.91, 0.93])}


def seeded(name: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    generator = judging.generator(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def head_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``(hidden (3, 6, 8) float64, attention_mask (3, 6) int64)``; lengths 6, 4 and 1."""
    hidden = seeded("hidden", (3, 6, D_MODEL))
    mask = torch.zeros(3, 6, dtype=torch.int64)
    for row, length in enumerate((6, 4, 1)):
        mask[row, :length] = 1
    hidden = hidden + 5.0 * (1 - mask)[..., None]  # padding positions far off: averaging them shows
    return hidden, mask


def _fill(head) -> None:
    head.double()
    with torch.no_grad():
        for name, parameter in head.named_parameters():
            parameter.copy_(seeded(name, tuple(parameter.shape)))


def classification_head(ClassificationHead) -> dict:
    hidden, mask = head_inputs()
    mean_head = ClassificationHead(D_MODEL, N_CLASSES, dropout=0.5)
    _fill(mean_head)
    cls_head = ClassificationHead(D_MODEL, N_CLASSES, dropout=0.0, pooling="cls")
    _fill(cls_head)
    given = hidden.clone()
    with torch.no_grad():
        mean_out = mean_head.eval()(hidden, mask)
    hidden_kept = bool(torch.equal(hidden, given))   # the encoder's output, read, never written
    hidden = given.clone()
    with torch.no_grad():
        cls_out = cls_head.eval()(hidden, mask)
        torch.manual_seed(0)
        train_out = mean_head.train()(hidden, mask)
        train_many = mean_head(hidden.repeat(8, 1, 1), mask.repeat(8, 1))  # 72 logits: dropout's zeros show
    return {"names": sorted(name for name, _ in mean_head.named_parameters()),
            "mean": mean_out, "cls": cls_out, "train": train_out, "train_many": train_many, "hidden_kept": hidden_kept}


def collate_examples() -> list[dict]:
    """Four tokenized examples of lengths 5, 3, 7 and 2 ([CLS]=101 ... [SEP]=102), labels 1, 0, 2, 1."""
    generator = judging.generator(8)
    examples = []
    for length, label in zip((5, 3, 7, 2), (1, 0, 2, 1)):
        middle = torch.randint(1000, 2000, (length - 2,), generator=generator).tolist()
        examples.append({"input_ids": [101] + middle + [102], "label": label})
    return examples


def collate_padding(collate) -> dict:
    examples = collate_examples()
    full = collate(examples, pad_id=PAD)
    short = collate([examples[1], examples[3]], pad_id=PAD)
    other_pad = collate(examples[:2], pad_id=77)
    token_is_pad = collate([{"input_ids": [101, PAD_TOKEN, 102]}, examples[2]], pad_id=PAD_TOKEN)
    keys = lambda batch: sorted(batch) if isinstance(batch, dict) else None  # noqa: E731
    return {"keys": keys(full), "full": {k: full[k] for k in ("input_ids", "attention_mask")},
            "short": {k: short[k] for k in ("input_ids", "attention_mask")}, "other_pad": other_pad["input_ids"],
            "token_is_pad": token_is_pad["attention_mask"]}


def collate_labels(collate) -> dict:
    examples = collate_examples()
    full = collate(examples, pad_id=PAD)
    given = copy.deepcopy(examples)
    truncated = collate(examples, pad_id=PAD, max_length=4)
    examples_kept = examples == given            # the data set's examples, read, never written
    examples = given
    try:   # labels 1, 0, 2, 1 with n_classes=3: 2 is the last class, valid
        last_class = collate(copy.deepcopy(examples), pad_id=PAD, n_classes=N_CLASSES)["labels"]
    except Exception as error:  # noqa: BLE001
        last_class = judging.error_line(error)
    unlabelled = collate([{"input_ids": e["input_ids"]} for e in examples], pad_id=PAD)
    bad_label = [dict(e) for e in examples]
    bad_label[2]["label"] = N_CLASSES
    negative = [dict(e) for e in examples]
    negative[0]["label"] = -1
    return {"labels": full["labels"], "truncated": truncated["input_ids"], "truncated_mask": truncated["attention_mask"],
            "unlabelled_keys": sorted(unlabelled), "examples_kept": examples_kept, "last_class": last_class,
            "empty": raised(collate, [], pad_id=PAD),
            "label_too_big": raised(collate, bad_label, pad_id=PAD, n_classes=N_CLASSES),
            "label_negative": raised(collate, negative, pad_id=PAD, n_classes=N_CLASSES),
            "label_negative_no_n_classes": raised(collate, negative, pad_id=PAD)}


def label_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """``(y_true, y_pred, n_classes)``: binary (fixed counts, see ``_binary_case``), 4 classes, and 4 classes with a
    class never predicted and one never present (zero divisions), and an imbalanced one where macro and micro F1
    differ, whose last class appears nowhere."""
    generator = judging.generator(88)
    cases = [list(_binary_case(generator))]
    for n_classes, size in ((4, 50), (4, 30)):
        y_true = torch.randint(0, n_classes, (size,), generator=generator)
        noise = torch.randint(0, n_classes, (size,), generator=generator)
        y_pred = torch.where(torch.rand(size, generator=generator) < 0.6, y_true, noise)
        cases.append([y_true, y_pred, n_classes])
    y_true, y_pred, _ = cases[2]
    y_pred[y_pred == 3] = 0  # class 3 never predicted
    y_true[y_true == 2] = 1  # class 2 never present
    y_true = torch.tensor([0] * 20 + [1] * 3 + [2] * 2)
    y_pred = torch.tensor([0] * 19 + [1] + [0, 1, 1] + [2, 0])
    cases.append([y_true, y_pred, 4])  # class 3 nowhere: macro still averages over all 4 classes
    return [tuple(case) for case in cases]


def _binary_case(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """40 binary labels, counts [[7, 5], [2, 26]] (true x predicted) in a per-run order: macro, micro, weighted
    and the harmonic mean of the macro precision and recall all differ, and precision differs from recall."""
    pairs = [(0, 0)] * 7 + [(0, 1)] * 5 + [(1, 0)] * 2 + [(1, 1)] * 26
    order = torch.randperm(len(pairs), generator=generator).tolist()
    y_true, y_pred = zip(*(pairs[i] for i in order))
    return torch.tensor(y_true), torch.tensor(y_pred), 2


def confusion_matrix(confusion_matrix) -> list:
    return [confusion_matrix(y_true, y_pred, n) for y_true, y_pred, n in label_cases()]


def _reference_confusion_matrix(y_true, y_pred, n_classes) -> torch.Tensor:
    pairs = torch.as_tensor(y_true) * n_classes + torch.as_tensor(y_pred)
    return torch.bincount(pairs, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _metrics(classification_metrics, y_true, y_pred, n) -> dict | str:
    with judging.stand_ins(classification_metrics, confusion_matrix=_reference_confusion_matrix):
        got = classification_metrics(y_true, y_pred, n)
    if not isinstance(got, dict):
        return repr(type(got))
    # the exercise returns Python floats: any other value (a 0-d tensor) is sent as its type's name, for the judge to name
    return {k: float(v) if type(v) in (float, int) or isinstance(v, float) else type(v).__name__ for k, v in got.items()}


def classification_metrics(classification_metrics) -> list:
    return [_metrics(classification_metrics, y_true, y_pred, n) for y_true, y_pred, n in label_cases()]


def tiny_classifier():
    """A tiny BERT classifier's parameters (3 classes), embeddings frozen: the package's BERT (chapter 05) as
    ``bert`` and a ``head.linear``, the names of ``tfs.finetune.BertClassifier`` without chapter 08's own code (hidden
    while chapter 08 is graded); no forward."""
    from torch import nn

    from tfs.models.bert import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, max_position=8, d_model=8, n_heads=2, n_layers=1, d_ff=16, dropout=0.0)
    model = nn.Module()
    model.bert = BertModel(config)
    model.head = nn.Module()
    model.head.dropout = nn.Dropout(0.1)
    model.head.linear = nn.Linear(config.d_model, N_CLASSES)
    for parameter in model.bert.embeddings.parameters():
        parameter.requires_grad_(False)
    return model


def parameter_groups(parameter_groups) -> dict:
    model = tiny_classifier()
    names = {id(p): name for name, p in model.named_parameters()}
    groups = parameter_groups(model, 2e-5, 1e-3, 0.05)
    described = []
    for group in groups:
        params = list(group["params"])
        described.append({"names": [names.get(id(p), "<not a parameter of the model>") for p in params],
                          "lr": float(group.get("lr", -1.0)), "weight_decay": float(group.get("weight_decay", -1.0))})
    try:
        torch.optim.AdamW(groups)
        accepted = "yes"
    except Exception as error:  # noqa: BLE001
        accepted = f"{type(error).__name__}: {error}"
    return {"groups": described, "adamw": accepted}


def schedule(linear_warmup_decay) -> list:
    return [[float(linear_warmup_decay(step, warmup, total)) for step in range(total + 3)] for warmup, total in SCHEDULES]


def early_stopping(EarlyStopping) -> dict:
    from torch import nn

    runs = {}
    for run, (mode, min_delta, scores) in STOPPING_RUNS.items():
        model = nn.Linear(2, 1)
        stopper = EarlyStopping(patience=2, mode=mode, min_delta=min_delta)
        decisions = []
        for epoch, score in enumerate(scores):
            with torch.no_grad():
                model.weight.fill_(float(epoch))  # in place, as an optimizer does
            decisions.append(bool(stopper.step(score, model)))
        with torch.no_grad():
            model.weight.fill_(-1.0)
        try:
            stopper.restore(model)
            restored = model.weight.detach().clone()
        except Exception:  # nothing kept to restore (the judge says why, from best_score and best_epoch)
            restored = None
        runs[run] = {"decisions": decisions,
                     "best_score": None if stopper.best_score is None else float(stopper.best_score),
                     "best_epoch": int(stopper.best_epoch), "restored": restored}
    for run, (patience, mode, min_delta, scores) in PATIENCE_RUNS.items():
        stopper = EarlyStopping(patience=patience, mode=mode, min_delta=min_delta)
        runs[run] = {"decisions": [bool(stopper.step(score, nn.Linear(2, 1))) for score in scores]}
    return runs


def dropout_rate() -> float:
    """The ``dropout`` argument of the head whose shapes are collected: drawn in [0.2, 0.7), never the default 0.1."""
    return round(0.2 + 0.5 * torch.rand((), generator=judging.generator(81)).item(), 2)


def head_shapes(ClassificationHead) -> dict:
    head = ClassificationHead(D_MODEL, N_CLASSES, dropout=dropout_rate()).eval()
    hidden, mask = head_inputs()
    with torch.no_grad():
        out = head.float()(hidden.float(), mask)
        one = head(hidden[1:2].float(), mask[1:2])   # a batch of one sequence
    return {"names": sorted(name for name, _ in head.named_parameters()),
            "shapes": {name: list(p.shape) for name, p in head.named_parameters()}, "out_shape": list(out.shape),
            "one_shape": list(one.shape) if isinstance(one, torch.Tensor) else repr(type(one).__name__),
            "dropout_p": [float(m.p) for m in head.modules() if isinstance(m, torch.nn.Dropout)]}


def metrics_binary(classification_metrics) -> dict:
    return _metrics(classification_metrics, *label_cases()[0])
