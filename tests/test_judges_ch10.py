"""Chapter 10's judges: the solution's data passes (and the package's reference), each usual mistake fails
with a message naming it. Mutants are the notebook's own solution with one line changed.

Data goes through the real collectors and a save/load round trip, as in grading.
"""

from __future__ import annotations

import pytest

from judge_helpers import failure, mutate, run, solution_namespace
from tfs import compress as ref

CHAPTER = "10-faster-smaller"
TESTS = {"quantize_scale": "quantize_per_channel", "quantize_values": "quantize_per_channel",
         "dequantize": "dequantize", "prune_global": "magnitude_masks", "prune_edges": "magnitude_masks",
         "distill_soft": "distillation_loss", "distill_mixed": "distillation_loss",
         "lora_init": "LoRALinear", "lora_forward": "LoRALinear", "lora_merge": "LoRALinear", "lora_errors": "LoRALinear"}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(CHAPTER)


@pytest.mark.parametrize("test", sorted(TESTS))
def test_solution_and_reference_pass(solution, test):
    name = TESTS[test]
    run(f"ch10.{test}", **{name: solution[name]})
    run(f"ch10.{test}", **{name: getattr(ref, name)})


# (test, object name, old text in the solution, new text, words the failure must contain)
MUTANTS = [
    ("quantize_scale", "quantize_per_channel", "weight.abs().amax(dim=1)", "weight.abs().amax().expand(weight.shape[0])", "per-tensor"),
    ("quantize_scale", "quantize_per_channel", "weight.abs().amax(dim=1)", "weight.amax(dim=1)", "max(w), not max(|w|)"),
    ("quantize_scale", "quantize_per_channel", "amax(dim=1)                                       # (out,)\n"
     "        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
     "    scale = torch.as_tensor(scale, dtype=torch.float32)\n    q = torch.clamp(torch.round(weight / scale[:, None])",
     "amax(dim=0)\n        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
     "    scale = torch.as_tensor(scale, dtype=torch.float32)\n    q = torch.clamp(torch.round(weight / scale[None, :])",
     "per input column"),
    ("quantize_scale", "quantize_per_channel", "torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))", "absmax / 127",
     "divides by zero"),
    ("quantize_scale", "quantize_per_channel", "absmax / 127, torch.ones_like", "absmax / 128, torch.ones_like", "absmax / 127"),
    ("quantize_values", "quantize_per_channel", "torch.clamp(torch.round(weight / scale[:, None]), -127, 127)",
     "torch.round(weight / scale[:, None])", "saturat"),
    ("quantize_values", "quantize_per_channel", "torch.clamp(torch.round(weight / scale[:, None]), -127, 127)",
     "torch.clamp(weight / scale[:, None], -127, 127)", "truncated"),
    ("quantize_values", "quantize_per_channel", "-127, 127)", "-128, 127)", "[-128, 127]"),
    ("quantize_values", "quantize_per_channel", "    if scale is None:\n", "    if True:\n", "ignored"),
    ("quantize_values", "quantize_per_channel", "if not torch.isfinite(weight).all():", "if False:", "NaN"),
    ("dequantize", "dequantize", "q.float() * scale.float()[:, None]", "q.float() / scale.float()[:, None]", "divided"),
    ("dequantize", "dequantize", "q.float() * scale.float()[:, None]", "q * scale[:, None].to(torch.int8)", "float"),
    ("dequantize", "dequantize", "scale.float()[:, None]", "scale.float()", "scale[:, None]"),
    ("dequantize", "dequantize", "scale.float()[:, None]", "scale.float()[:, None] / 127", "divided by 127 again"),
    ("dequantize", "dequantize", "scale.float()[:, None]", "scale.float().repeat(q.shape[1]).reshape(q.shape)",
     "wrong order"),
    ("dequantize", "dequantize", "q.float() * scale.float()[:, None]", "q * scale[:, None]", "float16 scale"),
    ("prune_global", "magnitude_masks", "k = round(", "k = int(", "int() truncates"),
    ("prune_global", "magnitude_masks", "magnitudes.kthvalue(k).values", "magnitudes.quantile(sparsity)", "quantile"),
    ("prune_global", "magnitude_masks", "w.detach().abs()", "w.detach()", "signed weights"),
    ("prune_global", "magnitude_masks", "return [w.detach().abs() > threshold", "return [w.detach() > threshold",
     "every negative weight is pruned"),
    ("prune_global", "magnitude_masks", "magnitudes = torch.cat([w.detach().abs().reshape(-1) for w in weights])\n"
     "    k = round(sparsity * magnitudes.numel())\n    if k == 0:\n        return [torch.ones_like(w, dtype=torch.bool) for w in weights]\n"
     "    threshold = magnitudes.kthvalue(k).values\n    return [w.detach().abs() > threshold for w in weights]",
     "return [w.abs() > w.abs().reshape(-1).kthvalue(round(sparsity * w.numel())).values if round(sparsity * w.numel()) "
     "else torch.ones_like(w, dtype=torch.bool) for w in weights]", "per layer"),
    ("prune_global", "magnitude_masks", "w.detach().abs() > threshold for", "w.detach().abs() >= threshold for", "not >="),
    ("prune_global", "magnitude_masks", "w.detach().abs() > threshold for", "w.detach().abs() <= threshold for", "inverted"),
    ("prune_global", "magnitude_masks", "w.detach().abs() > threshold for", "(w.detach().abs() > threshold).float() for", "bool"),
    ("prune_edges", "magnitude_masks", "if not 0.0 <= sparsity < 1.0:", "if not 0.0 <= sparsity <= 1.0:", "raise ValueError"),
    ("prune_edges", "magnitude_masks", "    if k == 0:\n        return [torch.ones_like(w, dtype=torch.bool) for w in weights]\n",
     "    k = max(k, 1)\n", "sparsity 0.0"),
    ("prune_edges", "magnitude_masks", "    if k == 0:\n        return [torch.ones_like(w, dtype=torch.bool) for w in weights]\n",
     "", "no 0-th smallest"),
    ("distill_soft", "distillation_loss", "alpha * t * t * soft", "alpha * soft", "T²"),
    ("distill_soft", "distillation_loss", "alpha * t * t * soft", "alpha * t * soft", "multiplied by T, not T²"),
    ("distill_soft", "distillation_loss", "F.log_softmax(teacher_logits.detach() / t, dim=-1)",
     "F.log_softmax(teacher_logits.detach(), dim=-1)", "only the student"),
    ("distill_soft", "distillation_loss", "F.log_softmax(student_logits / t, dim=-1)", "F.log_softmax(student_logits, dim=-1)",
     "only the teacher"),
    ("distill_soft", "distillation_loss", "(log_p.exp() * (log_p - log_q))", "(log_q.exp() * (log_q - log_p))", "wrong way"),
    ("distill_soft", "distillation_loss", ".sum(-1).mean()", ".sum()", "batchmean"),
    ("distill_soft", "distillation_loss", "(log_p.exp() * (log_p - log_q)).sum(-1).mean()",
     "F.kl_div(log_q, log_p, reduction='mean', log_target=True)", "reduction='mean'"),
    ("distill_soft", "distillation_loss", "(log_p.exp() * (log_p - log_q)).sum(-1).mean()",
     "F.kl_div(log_q, log_p, reduction='batchmean')", "log_target=True"),
    ("distill_mixed", "distillation_loss", "F.cross_entropy(student_logits, labels)",
     "F.cross_entropy(student_logits / t, labels)", "softened logits"),
    ("distill_mixed", "distillation_loss", "alpha * t * t * soft + (1 - alpha) * F.cross_entropy",
     "(1 - alpha) * t * t * soft + alpha * F.cross_entropy", "alpha weighs the hard"),
    ("distill_mixed", "distillation_loss", "teacher_logits.detach()", "teacher_logits", "teacher"),
    ("lora_init", "LoRALinear", "torch.zeros(base.out_features, r, dtype=dtype)", "torch.randn(base.out_features, r, dtype=dtype)",
     "neither A nor B starts at zero"),
    ("lora_init", "LoRALinear", "        self.base.requires_grad_(False)\n", "", "only A and B may train"),
    ("lora_init", "LoRALinear", "torch.empty(r, base.in_features, dtype=dtype)", "torch.empty(base.in_features, r, dtype=dtype)",
     "(r, in_features)"),
    ("lora_init", "LoRALinear", "nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.zeros_(self.A)", "both start at zero"),
    ("lora_init", "LoRALinear", ", dtype=dtype))", "))", "float64 base layer"),
    ("lora_forward", "LoRALinear", "self.r, self.alpha, self.scale = r, alpha, alpha / r",
     "self.r, self.alpha, self.scale = r, alpha, r / alpha", "r / alpha"),
    ("lora_forward", "LoRALinear", "(x @ self.A.T @ self.B.T) * self.scale", "(x @ self.A.T @ self.B.T)", "not scaled"),
    ("lora_forward", "LoRALinear", "return self.base(x) + (x @", "return 0 + (x @", "base layer's output is missing"),
    ("lora_merge", "LoRALinear", "self.base.weight + self.scale * (self.B @ self.A)", "self.base.weight + self.B @ self.A",
     "not scaled"),
    ("lora_merge", "LoRALinear", "self.base.weight + self.scale * (self.B @ self.A)",
     "self.base.weight + self.scale * (self.A.T @ self.B.T)", "transposed"),
    ("lora_merge", "LoRALinear", "            if self.base.bias is not None:\n                merged.bias.copy_(self.base.bias)\n",
     "", "bias"),
    ("lora_merge", "LoRALinear", """        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                           dtype=self.base.weight.dtype)
        with torch.no_grad():
            merged.weight.copy_(self.base.weight + self.scale * (self.B @ self.A))
            if self.base.bias is not None:
                merged.bias.copy_(self.base.bias)
        return merged""", """        with torch.no_grad():
            self.base.weight += self.scale * (self.B @ self.A)
        return self.base""", "in place"),
    ("lora_errors", "LoRALinear", "if not 1 <= r <= min(base.in_features, base.out_features):", "if r <= 0:", "r=13"),
    ("lora_errors", "LoRALinear", "if not 1 <= r <= min(base.in_features, base.out_features):",
     "if not 1 <= r < min(base.in_features, base.out_features):", "is allowed"),
    # held-out list 5 (W2, benchmarks/results/heldout5/ch10-summary.md): both missed before these judges
    ("quantize_scale", "quantize_per_channel", "scale = torch.as_tensor(scale, dtype=torch.float32)",
     "scale = torch.as_tensor(scale)", "with a float64 scale given"),
    ("lora_errors", "LoRALinear", "if not 1 <= r <= min(base.in_features, base.out_features):",
     "if not 1 <= r <= base.out_features:", "not by out_features alone"),
    # a third reader's held-out list (tests/mutants/ch10.py HELD_OUT_3), missed or unnamed before these judges
    ("quantize_scale", "quantize_per_channel", "weight = weight.detach().float()\n    if scale is None:\n"
     "        absmax = weight.abs().amax(dim=1)                                       # (out,)\n"
     "        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
     "    scale = torch.as_tensor(scale, dtype=torch.float32)",
     "weight = weight.detach()\n    if scale is None:\n        absmax = weight.abs().amax(dim=1)\n"
     "        scale = torch.where(absmax > 0, absmax / 127, torch.ones_like(absmax))\n"
     "    scale = torch.as_tensor(scale, dtype=weight.dtype)", "scale is float32 whatever the weight's dtype"),
    ("prune_edges", "magnitude_masks", "if k == 0:", "if sparsity == 0:", "test k == 0, not sparsity == 0"),
    ("prune_edges", "magnitude_masks",
     "    threshold = magnitudes.kthvalue(k).values\n    return [w.detach().abs() > threshold for w in weights]",
     "    keep = torch.ones_like(magnitudes, dtype=torch.bool)\n    keep[magnitudes.argsort()[:k]] = False\n"
     "    masks, offset = [], 0\n    for w in weights:\n        masks.append(keep[offset:offset + w.numel()].view_as(w))\n"
     "        offset += w.numel()\n    return masks", "the k-th smallest |w| (0.2) is tied"),
    ("distill_mixed", "distillation_loss", "temperature=2.0, alpha=0.5):", "temperature=1.0, alpha=0.5):",
     "keep the signature's defaults"),
    ("distill_soft", "distillation_loss", "dim=-1)\n    log_p = F.log_softmax(teacher_logits.detach() / t, dim=-1)",
     "dim=0)\n    log_p = F.log_softmax(teacher_logits.detach() / t, dim=0)", "over the batch (dim 0)"),
    ("lora_init", "LoRALinear", "nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.normal_(self.A)",
     "kaiming_uniform_ with a=sqrt(5)"),
    ("lora_forward", "LoRALinear", "self.scale = r, alpha, alpha / r", "self.scale = r, alpha, alpha // r",
     "floor division"),
    ("lora_merge", "LoRALinear", "bias=self.base.bias is not None,\n", "bias=True,\n", "without a bias"),
    ("lora_merge", "LoRALinear", ",\n                           dtype=self.base.weight.dtype)", ")",
     "base weight's dtype"),
]


@pytest.mark.parametrize("test, name, old, new, words", MUTANTS, ids=[f"{m[0]}-{i}" for i, m in enumerate(MUTANTS)])
def test_mutant_fails_with_named_mistake(solution, test, name, old, new, words):
    namespace = mutate(solution, name, old, new, CHAPTER)
    message = failure(f"ch10.{test}", **{name: namespace[name]})
    assert words in message, message


# (test, object name, old, new): a mistake another test of the exercise names must not cost this test's point too
ELSEWHERE = [
    ("prune_edges", "magnitude_masks", "return [w.detach().abs() > threshold for w in weights]",
     "return [w.abs() > w.abs().reshape(-1).kthvalue(max(1, round(sparsity * w.numel()))).values for w in weights]"),
    ("prune_edges", "magnitude_masks", "w.detach().abs() > threshold for", "w.detach().abs() >= threshold for"),
    ("prune_global", "magnitude_masks", "    if k == 0:\n        return [torch.ones_like(w, dtype=torch.bool) for w in weights]\n",
     ""),
    ("lora_errors", "LoRALinear", "self.r, self.alpha, self.scale = r, alpha, alpha / r",
     "self.r, self.alpha, self.scale = r, alpha, r / alpha"),
    ("lora_errors", "LoRALinear", "return self.base(x) + (x @", "return 0 + (x @"),
    ("lora_errors", "LoRALinear", "self.scale = r, alpha, alpha / r", "self.scale = r, alpha, alpha // r"),
    ("distill_soft", "distillation_loss", "temperature=2.0, alpha=0.5):", "temperature=1.0, alpha=0.5):"),
    ("prune_global", "magnitude_masks", "if k == 0:", "if sparsity == 0:"),
    ("prune_edges", "magnitude_masks", "magnitudes.kthvalue(k).values", "magnitudes.quantile(sparsity)"),
]


@pytest.mark.parametrize("test, name, old, new", ELSEWHERE, ids=[f"{m[0]}-{i}" for i, m in enumerate(ELSEWHERE)])
def test_mistake_judged_elsewhere_passes(solution, test, name, old, new):
    run(f"ch10.{test}", **{name: mutate(solution, name, old, new, CHAPTER)[name]})


def test_lora_may_start_with_A_zero_and_B_random(solution):
    """The exercise asks the learner to decide which of A and B starts at zero: the other sound start (A zero, B
    random: the layer starts as the base one, and the first gradient reaches A) passes every LoRA test."""
    namespace = mutate(solution, "LoRALinear", "torch.zeros(base.out_features, r, dtype=dtype))\n"
                       "        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))",
                       "torch.empty(base.out_features, r, dtype=dtype))\n"
                       "        nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))\n        nn.init.zeros_(self.A)", CHAPTER)
    for test in ("lora_init", "lora_forward", "lora_merge", "lora_errors"):
        run(f"ch10.{test}", LoRALinear=namespace["LoRALinear"])


# The sweep of issue 31 (arguments and boundaries): the learner's function writing into its inputs, inputs with
# leading dimensions, the smallest rank. (test, object name, old, new, words the failure must contain)
SWEEP = [
    ("quantize_values", "quantize_per_channel", "torch.round(weight / scale[:, None])",
     "torch.round(weight.div_(scale[:, None]))", "changed the weight it was given, in place"),
    ("prune_global", "magnitude_masks", "    return [w.detach().abs() > threshold for w in weights]\n",
     "    masks = [w.detach().abs() > threshold for w in weights]\n    for w, mask in zip(weights, masks):\n"
     "        w.detach().mul_(mask)\n    return masks\n", "changed the weights it was given, in place"),
    ("distill_soft", "distillation_loss", "F.log_softmax(teacher_logits.detach() / t, dim=-1)",
     "F.log_softmax(teacher_logits.detach().div_(t), dim=-1)", "changed the logits it was given, in place"),
    ("lora_forward", "LoRALinear", "return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale",
     "return self.base(x) + (self.B @ (self.A @ x.T)).T * self.scale", "leading dimensions"),
    ("lora_errors", "LoRALinear", "if not 1 <= r <= min(", "if not 1 < r <= min(", "r = 1, the smallest rank, is allowed"),
]


@pytest.mark.parametrize("test, name, old, new, words", SWEEP, ids=[m[0] for m in SWEEP])
def test_sweep_mutant_fails_with_named_mistake(solution, test, name, old, new, words):
    namespace = mutate(solution, name, old, new, CHAPTER)
    message = failure(f"ch10.{test}", **{name: namespace[name]})
    assert words in message, message
