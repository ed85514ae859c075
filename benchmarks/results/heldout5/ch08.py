"""Held-out list 5, chapter 08, written blind by W2 (session 11) from the solution notebook alone."""
from mutants import Mutant

MUTANTS = [
    # ---- common ----
    Mutant("h5_head_mean_all_positions", "classification_head",
           "summary = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)",
           "summary = hidden.mean(1)",
           r"padding|real token|mask", "common"),
    Mutant("h5_collate_left_pad", "collate",
           "        input_ids[row, : len(ids)] = torch.tensor(ids)\n        attention_mask[row, : len(ids)] = 1",
           "        input_ids[row, length - len(ids):] = torch.tensor(ids)\n        attention_mask[row, length - len(ids):] = 1",
           r"left|padding first|index 0|side", "common"),
    Mutant("h5_metrics_f1_of_macro_pr", "classification_metrics",
           '"f1": f1.mean().item()}',
           '"f1": (2 * precision.mean() * recall.mean() / (precision.mean() + recall.mean())).item()}',
           r"harmonic mean|per-class F1", "common"),
    Mutant("h5_warmup_plus_one", "linear_warmup_decay",
           "return step / max(1, warmup_steps)",
           "return (step + 1) / max(1, warmup_steps)",
           r"off by one|step \+ 1", "common"),
    Mutant("h5_es_tie_is_improvement", "early_stopping",
           "better = score > self.best_score + self.min_delta",
           "better = score >= self.best_score + self.min_delta",
           r"equal|tie|plateau", "common"),
    # ---- rare ----
    Mutant("h5_head_linear_no_bias", "classification_head",
           "self.linear = nn.Linear(d_model, n_classes)",
           "self.linear = nn.Linear(d_model, n_classes, bias=False)",
           r"bias", "rare"),
    Mutant("h5_collate_label_upper_bound_gt", "collate",
           "(labels >= limit).any()",
           "(labels > limit).any()",
           r"n_classes|outside|label 2", "rare"),
    Mutant("h5_collate_mask_bool", "collate",
           "attention_mask = torch.zeros((len(sequences), length), dtype=torch.int64)",
           "attention_mask = torch.zeros((len(sequences), length), dtype=torch.bool)",
           r"dtype|int64|bool", "rare"),
    Mutant("h5_cm_float_counts", "confusion_matrix",
           "matrix = torch.zeros(n_classes, n_classes, dtype=torch.int64)",
           "matrix = torch.zeros(n_classes, n_classes)",
           r"dtype|int64|float", "rare"),
    Mutant("h5_metrics_recall_absent_class_one", "classification_metrics",
           "recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))",
           "recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.ones_like(tp))",
           r"0/0|counted as 1|never occurs|absent", "rare"),
    Mutant("h5_pg_no_decay_by_hf_names", "parameter_groups",
           "    for part, lr in ((model.bert, encoder_lr), (model.head, head_lr)):\n"
           "        params = [p for p in part.parameters() if p.requires_grad]\n"
           "        groups.append({\"params\": [p for p in params if p.dim() >= 2], \"lr\": lr, \"weight_decay\": weight_decay})\n"
           "        groups.append({\"params\": [p for p in params if p.dim() < 2], \"lr\": lr, \"weight_decay\": 0.0})",
           "    no_decay = (\"bias\", \"LayerNorm.weight\")\n"
           "    for part, lr in ((model.bert, encoder_lr), (model.head, head_lr)):\n"
           "        named = [(n, p) for n, p in part.named_parameters() if p.requires_grad]\n"
           "        groups.append({\"params\": [p for n, p in named if not any(k in n for k in no_decay)], \"lr\": lr, \"weight_decay\": weight_decay})\n"
           "        groups.append({\"params\": [p for n, p in named if any(k in n for k in no_decay)], \"lr\": lr, \"weight_decay\": 0.0})",
           r"LayerNorm|1-D", "rare"),
    Mutant("h5_sched_decay_floor_division", "linear_warmup_decay",
           "return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))",
           "return max(0.0, (total_steps - step) // max(1, total_steps - warmup_steps))",
           r"integer|floor|//", "rare"),
    Mutant("h5_es_stop_only_once", "early_stopping",
           "return self.bad_epochs >= self.patience",
           "return self.bad_epochs == self.patience",
           r"once|again|stays|every later call|after stopping", "rare"),
    Mutant("h5_es_detach_without_clone", "early_stopping",
           "self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}",
           "self.best_state = {k: v.detach() for k, v in model.state_dict().items()}",
           r"clone|cop(y|ies)|reference", "rare"),
]
