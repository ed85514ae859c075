"""Held-out list 4, chapter 08 (writer W2, blind: written from the solution notebook and the release's visible tests only)."""
from mutants import Mutant

MUTANTS = [
    # ---- common ----
    Mutant("h4-head-mean-all-positions", "classification_head",
           "summary = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)",
           "summary = hidden.mean(1)",
           r"padding|real token|every position", "common"),
    Mutant("h4-collate-left-padding", "collate",
           "input_ids[row, : len(ids)] = torch.tensor(ids)\n        attention_mask[row, : len(ids)] = 1",
           "input_ids[row, length - len(ids):] = torch.tensor(ids)\n        attention_mask[row, length - len(ids):] = 1",
           r"left|side|padding first|index 0", "common"),
    Mutant("h4-cm-transposed", "confusion_matrix",
           "matrix[t, p] += 1", "matrix[p, t] += 1",
           r"transpose|rows? (must be|are) the true|true class", "common"),
    Mutant("h4-metrics-f1-of-macro-pr", "classification_metrics",
           '"f1": f1.mean().item()',
           '"f1": (2 * precision.mean() * recall.mean() / (precision.mean() + recall.mean()).clamp(min=1e-300)).item()',
           r"harmonic|per-class F1", "common"),
    Mutant("h4-groups-no-decay-by-name-bias", "parameter_groups",
           'params = [p for p in part.parameters() if p.requires_grad]\n'
           '        groups.append({"params": [p for p in params if p.dim() >= 2], "lr": lr, "weight_decay": weight_decay})\n'
           '        groups.append({"params": [p for p in params if p.dim() < 2], "lr": lr, "weight_decay": 0.0})',
           'named = [(n, p) for n, p in part.named_parameters() if p.requires_grad]\n'
           '        groups.append({"params": [p for n, p in named if not n.endswith("bias")], "lr": lr, "weight_decay": weight_decay})\n'
           '        groups.append({"params": [p for n, p in named if n.endswith("bias")], "lr": lr, "weight_decay": 0.0})',
           r"LayerNorm|1-D", "common"),
    Mutant("h4-sched-warmup-plus-one", "linear_warmup_decay",
           "return step / max(1, warmup_steps)", "return (step + 1) / max(1, warmup_steps)",
           r"off by one|step \+ 1", "common"),
    # ---- rare ----
    Mutant("h4-head-functional-dropout-in-eval", "classification_head",
           "return self.linear(self.dropout(summary))",
           "return self.linear(F.dropout(summary, self.dropout.p))",
           r"eval|F\.dropout|training=", "rare"),
    Mutant("h4-collate-bool-mask", "collate",
           "attention_mask = torch.zeros((len(sequences), length), dtype=torch.int64)",
           "attention_mask = torch.zeros((len(sequences), length), dtype=torch.bool)",
           r"dtype|int64|bool", "rare"),
    Mutant("h4-es-min-mode-ignores-min-delta", "early_stopping",
           "better = score < self.best_score - self.min_delta",
           "better = score < self.best_score",
           r"min_delta|margin", "rare"),
    Mutant("h4-cm-float-counts", "confusion_matrix",
           "matrix = torch.zeros(n_classes, n_classes, dtype=torch.int64)",
           "matrix = torch.zeros(n_classes, n_classes)",
           r"dtype|int64|integer", "rare"),
    Mutant("h4-metrics-tensors-not-floats", "classification_metrics",
           'return {"accuracy": (tp.sum() / matrix.sum()).item(), "precision": precision.mean().item(),\n'
           '            "recall": recall.mean().item(), "f1": f1.mean().item()}',
           'return {"accuracy": tp.sum() / matrix.sum(), "precision": precision.mean(),\n'
           '            "recall": recall.mean(), "f1": f1.mean()}',
           r"a float|floats|Python float|\.item|0-d", "rare"),
    Mutant("h4-groups-2d-matrices-no-decay", "parameter_groups",
           'if p.dim() >= 2], "lr": lr, "weight_decay": weight_decay})\n        groups.append({"params": [p for p in params if p.dim() < 2]',
           'if p.dim() > 2], "lr": lr, "weight_decay": weight_decay})\n        groups.append({"params": [p for p in params if p.dim() <= 2]',
           r"matri|2-D|weight_decay", "rare"),
    Mutant("h4-sched-warmup-inclusive", "linear_warmup_decay",
           "if step < warmup_steps:", "if step <= warmup_steps:",
           r"step <= warmup_steps|strict|warm-up of 0|warmup_steps=0", "rare"),
    Mutant("h4-es-tie-is-improvement", "early_stopping",
           "better = score > self.best_score + self.min_delta",
           "better = score >= self.best_score + self.min_delta",
           r"tie|equal", "rare"),
]
