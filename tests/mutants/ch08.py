"""Chapter 08's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

MEAN = "summary = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)"
HEAD_OUT = "return self.linear(self.dropout(summary))"
FILL = "input_ids[row, : len(ids)] = torch.tensor(ids)\n        attention_mask[row, : len(ids)] = 1"
LOOP = "    for row, ids in enumerate(sequences):\n        "
RANGE = "if (labels < 0).any() or (limit is not None and (labels >= limit).any()):"
MATRIX_LOOP = ("    for t, p in zip(torch.as_tensor(y_true).tolist(), torch.as_tensor(y_pred).tolist()):\n"
               "        matrix[t, p] += 1\n")
PR = ("    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))\n"
      "    recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))\n")
PARTS = "for part, lr in ((model.bert, encoder_lr), (model.head, head_lr)):"
GROUPS = ('        groups.append({"params": [p for p in params if p.dim() >= 2], "lr": lr, "weight_decay": weight_decay})\n'
          '        groups.append({"params": [p for p in params if p.dim() < 2], "lr": lr, "weight_decay": 0.0})\n')
DECAY = "return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))"
BETTER_MAX = "better = score > self.best_score + self.min_delta"
COPY = "self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}"

MUTANTS = [
    # Exercise 1: ClassificationHead
    Mutant("head-mean-over-padding", "classification_head", MEAN, "summary = hidden.mean(1)",
           r"padding included|every position"),
    Mutant("head-sum-not-mean", "classification_head", MEAN, "summary = (hidden * weights).sum(1)",
           r"sum of the real tokens|not their mean"),
    Mutant("head-no-dropout", "classification_head", HEAD_OUT, "return self.linear(summary)", r"dropout"),
    Mutant("head-softmax", "classification_head", HEAD_OUT, "return self.linear(self.dropout(summary)).softmax(-1)",
           r"softmax|probabilit"),
    Mutant("head-mask-wrong-axis", "classification_head", "attention_mask.to(hidden.dtype).unsqueeze(-1)",
           "attention_mask.to(hidden.dtype).unsqueeze(1)", r"mask.*(axis|dim|shape|unsqueeze|\(B, L, 1\))"),
    Mutant("head-pooling-ignored", "classification_head", "self.pooling = pooling", "self.pooling = \"mean\"",
           r"pooling='cls' was ignored|looks like the mean", "rare"),
    Mutant("head-dropout-on-logits", "classification_head", HEAD_OUT, "return self.dropout(self.linear(summary))",
           r"dropout.*(logits|after the linear|pooled vector)|logits.*dropout", "rare"),
    # Exercise 2: collate
    Mutant("collate-left-padding", "collate", FILL,
           "input_ids[row, length - len(ids):] = torch.tensor(ids)\n        attention_mask[row, length - len(ids):] = 1",
           r"left|padding first"),
    Mutant("collate-inverted-mask", "collate", "torch.zeros((len(sequences), length), dtype=torch.int64)\n" + LOOP + FILL,
           "torch.ones((len(sequences), length), dtype=torch.int64)\n" + LOOP + FILL.replace("= 1", "= 0"),
           r"inverted|1 on (the )?padding"),
    Mutant("collate-mask-all-ones", "collate",
           "attention_mask = torch.zeros((len(sequences), length), dtype=torch.int64)",
           "attention_mask = torch.ones((len(sequences), length), dtype=torch.int64)",
           r"1 everywhere|padding included|1 on (the )?padding too"),
    Mutant("collate-truncation-drops-sep", "collate", "ids = ids[: max_length - 1] + ids[-1:]", "ids = ids[:max_length]",
           r"\[SEP\]"),
    Mutant("collate-no-truncation", "collate", "        if len(ids) > max_length:\n            ids = ids[: max_length - 1] + ids[-1:]\n",
           "", r"must be truncated|not truncated|longer than max_length"),
    Mutant("collate-fixed-length", "collate", "length = max(len(ids) for ids in sequences)", "length = max_length",
           r"dynamic|longest|fixed length"),
    Mutant("collate-pad-id-ignored", "collate",
           "input_ids = torch.full((len(sequences), length), pad_id, dtype=torch.int64)",
           "input_ids = torch.zeros((len(sequences), length), dtype=torch.int64)", r"instead of the pad_id|pad_id argument"),
    Mutant("collate-negative-label-needs-n-classes", "collate", RANGE,
           "if limit is not None and ((labels < 0).any() or (labels >= limit).any()):",
           r"without n_classes|negative label", "rare"),
    Mutant("collate-mask-from-token-values", "collate", FILL,
           "input_ids[row, : len(ids)] = torch.tensor(ids)\n    attention_mask = (input_ids != pad_id).long()",
           r"token values?|equal(s)? (to )?pad_id|id equal", "rare"),
    # Exercise 3: confusion_matrix
    Mutant("cm-transposed", "confusion_matrix", "matrix[t, p] += 1", "matrix[p, t] += 1", r"transpose|rows must be"),
    Mutant("cm-index-put-counts-once", "confusion_matrix", MATRIX_LOOP,
           "    matrix[torch.as_tensor(y_true), torch.as_tensor(y_pred)] += 1\n",
           r"once|repeated|duplicate|accumulat|index_put"),
    Mutant("cm-size-from-data", "confusion_matrix", "matrix = torch.zeros(n_classes, n_classes, dtype=torch.int64)",
           "size = int(max(max(y_true), max(y_pred))) + 1\n    matrix = torch.zeros(size, size, dtype=torch.int64)",
           r"never occurs|n_classes|every class", "rare"),
    # Exercise 4: classification_metrics
    Mutant("metrics-micro", "classification_metrics", PR,
           "    precision = tp.sum() / predicted.sum()\n    recall = tp.sum() / actual.sum()\n", r"micro"),
    Mutant("metrics-nan-on-zero-division", "classification_metrics", PR,
           "    precision = tp / predicted\n    recall = tp / actual\n", r"NaN|0/0"),
    Mutant("metrics-f1-of-means", "classification_metrics",
           "\"f1\": f1.mean().item()",
           "\"f1\": (2 * precision.mean() * recall.mean() / (precision.mean() + recall.mean())).item()",
           r"F1 of the (macro|mean)|harmonic mean of the (macro|mean)|mean of the per-class F1"),
    Mutant("metrics-precision-recall-swapped", "classification_metrics",
           "predicted, actual = matrix.diagonal(), matrix.sum(0), matrix.sum(1)",
           "predicted, actual = matrix.diagonal(), matrix.sum(1), matrix.sum(0)",
           r"swap|exchang|rows.*columns|columns.*rows"),
    Mutant("metrics-zero-division-as-one", "classification_metrics", PR,
           "    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.ones_like(tp))\n"
           "    recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.ones_like(tp))\n",
           r"counted as 1|looks perfect", "rare"),
    Mutant("metrics-weighted-by-support", "classification_metrics",
           "\"precision\": precision.mean().item(),\n            \"recall\": recall.mean().item(), \"f1\": f1.mean().item()",
           "\"precision\": (precision * actual).sum().item() / actual.sum().item(),\n"
           "            \"recall\": (recall * actual).sum().item() / actual.sum().item(), "
           "\"f1\": (f1 * actual).sum().item() / actual.sum().item()",
           r"weighted|support", "rare"),
    # Exercise 5: parameter_groups
    Mutant("pg-frozen-included", "parameter_groups", "params = [p for p in part.parameters() if p.requires_grad]",
           "params = list(part.parameters())", r"frozen"),
    Mutant("pg-decay-on-everything", "parameter_groups", GROUPS,
           '        groups.append({"params": params, "lr": lr, "weight_decay": weight_decay})\n',
           r"1-D|no weight decay|biases and LayerNorm"),
    Mutant("pg-rates-swapped", "parameter_groups", PARTS,
           "for part, lr in ((model.bert, head_lr), (model.head, encoder_lr)):", r"swap|exchang|the other way"),
    Mutant("pg-decay-by-name", "parameter_groups", None,
           "def parameter_groups(model, encoder_lr, head_lr, weight_decay=0.01):\n"
           "    groups = []\n"
           "    for part, lr in ((model.bert, encoder_lr), (model.head, head_lr)):\n"
           "        named = [(n, p) for n, p in part.named_parameters() if p.requires_grad]\n"
           "        groups.append({\"params\": [p for n, p in named if not n.endswith(\"bias\")], \"lr\": lr, "
           "\"weight_decay\": weight_decay})\n"
           "        groups.append({\"params\": [p for n, p in named if n.endswith(\"bias\")], \"lr\": lr, "
           "\"weight_decay\": 0.0})\n"
           "    return [group for group in groups if group[\"params\"]]\n",
           r"LayerNorm", "rare"),
    Mutant("pg-weight-decay-argument-ignored", "parameter_groups",
           '"lr": lr, "weight_decay": weight_decay}', '"lr": lr, "weight_decay": 0.01}',
           r"weight_decay argument", "rare"),
    # Exercise 6: linear_warmup_decay
    Mutant("sched-warmup-off-by-one", "linear_warmup_decay", "return step / max(1, warmup_steps)",
           "return (step + 1) / max(1, warmup_steps)", r"off by one|step \+ 1"),
    Mutant("sched-no-clamp", "linear_warmup_decay", DECAY,
           "return (total_steps - step) / max(1, total_steps - warmup_steps)", r"clamp|below 0|negative|after total"),
    Mutant("sched-decay-from-step-zero", "linear_warmup_decay", DECAY, "return max(0.0, 1 - step / total_steps)",
           r"from 1 at step 0"),
    Mutant("sched-integer-division", "linear_warmup_decay", "return step / max(1, warmup_steps)",
           "return step // max(1, warmup_steps)", r"integer|floor|//", "rare"),
    Mutant("sched-zero-length-decay", "linear_warmup_decay", DECAY,
           "return max(0.0, (total_steps - step) / (total_steps - warmup_steps))",
           r"ZeroDivision|warmup_steps == total_steps|equal", "rare"),
    # Exercise 7: EarlyStopping
    Mutant("es-tie-improves", "early_stopping", BETTER_MAX, "better = score >= self.best_score + self.min_delta",
           r"equals the best|tie"),
    Mutant("es-references", "early_stopping", COPY, "self.best_state = model.state_dict()",
           r"reference|clone|copies"),
    Mutant("es-min-delta-ignored", "early_stopping", BETTER_MAX, "better = score > self.best_score",
           r"gain of .* is no improvement|smaller than min_delta"),
    Mutant("es-mode-ignored", "early_stopping",
           "        elif self.mode == \"max\":\n            better = score > self.best_score + self.min_delta\n"
           "        else:\n            better = score < self.best_score - self.min_delta\n",
           "        else:\n            better = score > self.best_score + self.min_delta\n",
           r"mode='min'|lower"),
    Mutant("es-patience-off-by-one", "early_stopping", "return self.bad_epochs >= self.patience",
           "return self.bad_epochs > self.patience", r"one call late|off by one"),
    Mutant("es-count-not-reset", "early_stopping", "self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0",
           "self.best_score, self.best_epoch = score, epoch", r"reset", "rare"),
    Mutant("es-min-delta-sign-in-min-mode", "early_stopping", "better = score < self.best_score - self.min_delta",
           "better = score < self.best_score + self.min_delta", r"other way|below the best minus min_delta", "rare"),
    Mutant("es-best-epoch-one-based", "early_stopping", "epoch, self.calls = self.calls, self.calls + 1",
           "self.calls += 1\n        epoch = self.calls", r"counts the calls from 1|1-based", "rare"),
]
