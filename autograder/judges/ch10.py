"""Chapter 10 (faster and smaller) judges. Oracles: ``torch.quantize_per_channel`` (qint8),
``torch.nn.utils.prune.global_unstructured`` with ``L1Unstructured``, ``F.kl_div``/``F.cross_entropy``, and
plain matrix algebra for LoRA, written out here.

Inputs are rebuilt from the collector module's seeded generators; each failure names the likely mistake.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import prune

from tfs.grader.collectors import ch10 as c
from tfs.grader.judging import JudgeFailure, check_data, close, expect, finite, off


def _is_tensor(value, shape=None) -> bool:
    return isinstance(value, torch.Tensor) and (shape is None or tuple(value.shape) == tuple(shape))


def _close(received, expected: torch.Tensor, tol: float) -> bool:
    return (_is_tensor(received, expected.shape) and finite(received)
            and (received.double() - expected.double()).abs().max().item() <= tol if expected.numel() else True)


def _raised(line, kind: str = "ValueError") -> bool:
    return isinstance(line, str) and line.startswith(kind)


# ------------------------------------------------------------------------------------------ int8

def _oracle_q(weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``torch.quantize_per_channel`` (symmetric qint8, zero point 0), limited to [-127, 127] as the exercise asks."""
    q = torch.quantize_per_channel(weight, scale.double(), torch.zeros(len(scale), dtype=torch.int64), 0, torch.qint8)
    return q.int_repr().clamp(-127, 127)


def _quantized(data, name):
    check_data(data, {"q": None, "scale": None, "clipped": None, "float64_scale_dtype": None,
                      "given_float64_scale_dtype": None, "nan": None, "inf": None}, name)
    q, scale = data.get("q"), data.get("scale")
    expect(not _is_tensor(scale, (10,)), name, "one scale per input column: each column still mixes rows of very "
           "different sizes, so a row of small weights gets its step from a large row.",
           "group the weights that are alike in size: one scale per output row (per channel).")
    expect(_is_tensor(scale, (6,)), name, f"scale must be a tensor of shape (out_features,) = (6,); received "
           f"{tuple(scale.shape) if _is_tensor(scale) else type(scale).__name__}.",
           "one scale per output row (per channel), not one for the whole tensor.")
    expect(_is_tensor(q, (6, 10)) and q.dtype == torch.int8, name,
           f"q must be an int8 tensor of the weight's shape (6, 10); received "
           f"{(q.dtype, tuple(q.shape)) if _is_tensor(q) else type(q).__name__}.", "finish with .to(torch.int8).")
    return q, scale.double()


def quantize_scale(data) -> None:
    name = "quantize_per_channel"
    q, scale = _quantized(data, name)
    expect(data["scale"].dtype == torch.float32, name, f"the scale of a float32 weight is {data['scale'].dtype}; the "
           "exercise asks for a float32 scale.")
    wide = data.get("float64_scale_dtype")
    expect(wide == "torch.float32", name, f"for a float64 weight the scale is {wide}: the scale is float32 whatever "
           "the weight's dtype (convert the weight, or the scale, to float32).")
    given64 = data.get("given_float64_scale_dtype")
    expect(given64 == "torch.float32", name, f"with a float64 scale given, the scale returned is {given64}: the scale "
           "is float32 whatever dtype it arrives in (torch.as_tensor(scale, dtype=torch.float32)).")
    weight = c.quantize_weight()
    absmax = weight.abs().amax(1)
    expect(bool(torch.isfinite(scale).all()) and bool((scale > 0).all()), name,
           f"the all-zero row 3 got scale {scale[3].item()}: a zero (or NaN) scale divides by zero.",
           "give an all-zero row a positive scale (1.0, say); its values then quantize to 0.")
    real = absmax > 0
    expected_scale = absmax.double() / 127
    if not torch.allclose(scale[real], expected_scale[real], rtol=1e-5, atol=0):
        if torch.allclose(scale[real], torch.full_like(scale[real], absmax.max().item() / 127), rtol=1e-5):
            raise JudgeFailure(f"✗ {name}: one scale for the whole tensor (per-tensor): each row needs its own "
                               "absmax / 127 (per-channel), or small rows lose all their levels.")
        if torch.allclose(scale[real], weight.amax(1).double()[real] / 127, rtol=1e-5):
            raise JudgeFailure(f"✗ {name}: the scale uses max(w), not max(|w|): row 1's largest magnitude is "
                               "negative (-4.0) and would be clipped.")
        if torch.allclose(scale[real], absmax.double()[real] / 128, rtol=1e-5) or torch.allclose(
                scale[real], absmax.double()[real] / 255, rtol=1e-5) or torch.allclose(scale[real], absmax.double()[real] / 255 * 2, rtol=1e-5):
            raise JudgeFailure(f"✗ {name}: the scale must be absmax / 127 (symmetric int8 uses [-127, 127]).")
        raise JudgeFailure(f"✗ {name}: scale differs from max_j |w[i, j]| / 127 per row (row "
                           f"{int(((scale - expected_scale).abs() * real).argmax())}).")
    expect(bool((q[3] == 0).all()), name, "the all-zero row must quantize to zeros.")


def quantize_values(data) -> None:
    name = "quantize_per_channel"
    q, scale = _quantized(data, name)
    weight = c.quantize_weight()
    usable = torch.isfinite(scale) & (scale > 0)
    expect(bool(usable[weight.abs().amax(1) > 0].all()), name, "every row that is not all zero needs a positive finite scale.")
    expected_q = _oracle_q(weight, torch.where(usable, scale, torch.ones_like(scale)).float())
    if not torch.equal(q.long(), expected_q.long()):
        ratio = weight / scale.float()[:, None]   # float32, as the learner divides
        if torch.equal(q.long(), ratio.trunc().long().clamp(-127, 127)):
            raise JudgeFailure(f"✗ {name}: the values are truncated toward zero (a bare .to(torch.int8)), not rounded: "
                               "use torch.round before the cast.")
        if torch.equal(q.long(), ratio.floor().long().clamp(-127, 127)):
            raise JudgeFailure(f"✗ {name}: floor instead of round: use torch.round.")
        raise JudgeFailure(f"✗ {name}: q differs from round(w / scale) (torch.quantize_per_channel) in "
                           f"{int((q.long() != expected_q.long()).sum())} places.")
    clipped = data.get("clipped")
    expected_clipped = _oracle_q(weight, c.given_scale())
    expect(not isinstance(clipped, str), name, f"with a given scale (one per row), quantizing raised {clipped}.")
    expect(_is_tensor(clipped, (6, 10)), name, "with a given scale, return (q, scale) with q of the weight's shape.")
    if not torch.equal(clipped.long(), expected_clipped.long()):
        ratio = (weight.double() / c.given_scale().double()[:, None]).round()
        if torch.equal(clipped.long(), ratio.clamp(-128, 127).long()):
            raise JudgeFailure(f"✗ {name}: values are clamped to [-128, 127]; symmetric int8 uses [-127, 127].")
        if torch.equal(clipped.long(), expected_q.long()):
            raise JudgeFailure(f"✗ {name}: the scale argument is ignored: a given scale must be used as is.")
        beyond = ratio.abs() > 127
        if beyond.any() and not torch.equal(clipped.long()[beyond], expected_clipped.long()[beyond]):
            raise JudgeFailure(f"✗ {name}: with a small given scale, values beyond 127 · scale did not saturate at "
                               "±127 (they wrapped round or overflowed): clamp to [-127, 127] before casting to int8.")
        raise JudgeFailure(f"✗ {name}: with a given scale, q must be clamp(round(w / scale), -127, 127) "
                           f"({int((clipped.long() != expected_clipped.long()).sum())} values differ).")
    for key, what in (("nan", "NaN"), ("inf", "infinity")):
        expect(_raised(data.get(key)), name, f"a weight holding {what} must raise ValueError; received "
               f"{data.get(key)!r}.", "check torch.isfinite(weight).all() first: one bad value ruins its row's scale.")
    expect(check_data(data, {"weight_kept": bool}, name)["weight_kept"], name, "the function changed the weight it was "
           "given, in place (weight /= scale, weight.div_(...)): it is the model's float weight, which must stay as it "
           "was; divide into a new tensor (weight / scale).")


def dequantize(data) -> None:
    name = "dequantize"
    q, scale = c.dequantize_inputs()
    data = check_data(data, {"out": None, "half": None}, name)
    for key, given in (("out", scale), ("half", scale.half())):
        out = data[key]
        what = "" if key == "out" else " with a float16 scale (as GGUF stores its steps)"
        if isinstance(out, str):
            hint = (" Multiplying q (out, in) by scale (out,) broadcasts the scale along each row's columns: "
                    "scale[:, None] (out, 1) gives row i its own scale[i]." if "size of tensor" in out else "")
            raise JudgeFailure(f"✗ {name}: dequantizing q of shape {tuple(q.shape)}{what} raised {out}.{hint}")
        expect(_is_tensor(out, (5, 7)), name, f"expected a tensor of q's shape (5, 7){what}; received "
               f"{tuple(out.shape) if _is_tensor(out) else type(out).__name__}.")
        expect(out.dtype == torch.float32, name, f"expected a float32 tensor{what}, received {out.dtype}: "
               "convert q and the scale to float32 before multiplying.")
        expected = q.double() * given.double()[:, None]
        if _close(out, expected, 1e-5):
            continue
        mistakes = {"q is divided by the scale; dequantizing multiplies: w ≈ q · scale": q.double() / given.double()[:, None],
                    "the scale is divided by 127 again: the scale already is max|w| / 127, so w ≈ q · scale":
                        expected / 127,
                    "the scales are laid out in the wrong order: .repeat tiles the whole vector, so row i's values "
                    "meet other rows' scales; row i needs scale[i] (scale[:, None])":
                        q.double() * given.double().repeat(q.shape[1]).reshape(q.shape)}
        for mistake, wrong in mistakes.items():
            if _close(out, wrong, 1e-3 * max(1.0, wrong.abs().max().item())):
                raise JudgeFailure(f"✗ {name}{what}: {mistake}.")
        raise JudgeFailure(f"✗ {name}{what}: the output differs from q · scale row by row "
                           f"(max difference {(out.double() - expected).abs().max().item():.3g}).")


# ------------------------------------------------------------------------------------------ pruning

def _oracle_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    layers = []
    for weight in weights:
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            layer.weight.copy_(weight)
        layers.append(layer)
    prune.global_unstructured([(layer, "weight") for layer in layers], pruning_method=prune.L1Unstructured, amount=sparsity)
    return [layer.weight_mask.bool() for layer in layers]


def _check_masks(data, sparsities) -> None:
    name = "magnitude_masks"
    weights = c.prune_weights()
    for sparsity in sparsities:
        _check_not_raised(data, sparsity)
    check_data(data, {str(sparsity): [None] * len(weights) for sparsity in sparsities}, name)
    total = sum(w.numel() for w in weights)
    for sparsity in sparsities:
        got = data.get(str(sparsity))
        expect(isinstance(got, list) and len(got) == len(weights), name,
               f"expected a list of {len(weights)} masks (one per tensor) at sparsity {sparsity}.")
        for mask, weight in zip(got, weights):
            expect(_is_tensor(mask, weight.shape), name, f"each mask must have its tensor's shape {tuple(weight.shape)}.")
            expect(mask.dtype == torch.bool, name, f"masks must be bool (True = keep); received {mask.dtype}.")
        expected = _oracle_masks(weights, sparsity)
        if all(torch.equal(m, e) for m, e in zip(got, expected)):
            continue
        if all(torch.equal(m, ~e) for m, e in zip(got, expected)) and sparsity > 0:
            raise JudgeFailure(f"✗ {name}: the masks are inverted: True must mark the weights kept (the large ones).")
        per_layer = [w.abs() > w.abs().reshape(-1).kthvalue(round(sparsity * w.numel())).values
                     if round(sparsity * w.numel()) else torch.ones_like(w, dtype=torch.bool) for w in weights]
        if all(torch.equal(m, p) for m, p in zip(got, per_layer)):
            raise JudgeFailure(f"✗ {name}: one threshold per tensor (per layer); the exercise asks for one global "
                               "threshold over all the tensors together, so a layer of small weights loses more.")
        pruned = total - sum(int(m.sum()) for m in got)
        k = round(sparsity * total)
        if pruned == k - 1 and k - 1 != int(sparsity * total):
            raise JudgeFailure(f"✗ {name}: at sparsity {sparsity}, {pruned} weights were pruned instead of {k}: "
                               "the weight equal to the threshold (the k-th smallest) is kept: keep |w| > threshold, not >=.")
        if pruned == int(sparsity * total) != k:
            raise JudgeFailure(f"✗ {name}: at sparsity {sparsity}, {pruned} weights were pruned instead of "
                               f"round({sparsity} · {total}) = {k}: int() truncates sparsity · N; take k = round(sparsity · N).")
        signed = torch.cat([w.reshape(-1) for w in weights]).kthvalue(k).values if k else None
        if k and all(torch.equal(m, w > signed) for m, w in zip(got, weights)):
            raise JudgeFailure(f"✗ {name}: the threshold is taken on the signed weights w, not on their magnitudes |w|: "
                               "large negative weights are pruned; compare |w|.")
        magnitudes = torch.cat([w.abs().reshape(-1) for w in weights])
        if k and all(torch.equal(m, w > magnitudes.kthvalue(k).values) for m, w in zip(got, weights)):
            raise JudgeFailure(f"✗ {name}: the threshold is the k-th smallest |w|, but the masks compare the signed "
                               "weights w with it: every negative weight is pruned, however large its magnitude; "
                               "keep |w| > threshold.")
        if k and all(torch.equal(m, w.abs() > magnitudes.quantile(sparsity)) for m, w in zip(got, weights)):
            raise JudgeFailure(f"✗ {name}: at sparsity {sparsity}, {pruned} weights were pruned instead of {k}: a "
                               "quantile interpolates between two weights (its position is sparsity · (N - 1)); the "
                               "threshold must be the k-th smallest |w| itself, k = round(sparsity · N).")
        raise JudgeFailure(f"✗ {name}: at sparsity {sparsity} the masks differ from global magnitude pruning "
                           f"(torch.nn.utils.prune.global_unstructured): {pruned} pruned, expected {k}.")


def prune_global(data) -> None:
    _check_masks(data, [s for s in c.SPARSITIES if s > 0])
    kept = check_data(data, {"weights_kept": (bool, str)}, "magnitude_masks")["weights_kept"]
    expect(kept is True, "magnitude_masks", "the function changed the weights it was given, in place (the pruned "
           "ones zeroed with mul_ or an indexed assignment): it returns the masks only, and the weights must stay "
           "as they were; compare |w| into new tensors." if kept is False else f"at sparsity 0.5 it raised {kept}.")


def _check_not_raised(data, sparsity) -> None:
    """A call that raised at ``sparsity`` fails with that error (and, at sparsity 0, what that case asks for)."""
    line = data.get(str(sparsity)) if isinstance(data, dict) else None
    if isinstance(line, str):
        total = sum(w.numel() for w in c.prune_weights())
        edge = (" sparsity = 0 keeps everything: it prunes k = round(0 · N) = 0 weights, and there is no 0-th "
                "smallest |w| to take as the threshold (kthvalue(0) fails).") if sparsity == 0 else (
                f" k = round({sparsity} · {total}) = 0 weights to prune: a sparsity above 0 can still prune none, and "
                "then everything is kept (there is no 0-th smallest |w|): test k == 0, not sparsity == 0.")  \
            if round(sparsity * total) == 0 else ""
        raise JudgeFailure(f"✗ magnitude_masks: at sparsity {sparsity} your function raised {line}.{edge}")


def _check_magnitude_masks(data, sparsities) -> None:
    """At each sparsity the masks keep, in every tensor, exactly the weights above some magnitude, and prune about
    round(sparsity · N) in all: magnitude pruning, with one global threshold or one per tensor (which of the two is
    :func:`prune_global`'s point)."""
    name = "magnitude_masks"
    weights = c.prune_weights()
    for sparsity in sparsities:
        _check_not_raised(data, sparsity)
    check_data(data, {str(sparsity): [None] * len(weights) for sparsity in sparsities}, name)
    total = sum(w.numel() for w in weights)
    for sparsity in sparsities:
        masks = data[str(sparsity)]
        expect(all(_is_tensor(m, w.shape) and m.dtype == torch.bool for m, w in zip(masks, weights)), name,
               f"at sparsity {sparsity}: expected one bool mask of its tensor's shape per tensor.")
        for mask, weight in zip(masks, weights):
            kept, pruned = weight.abs()[mask], weight.abs()[~mask]
            expect(not (len(kept) and len(pruned)) or bool(kept.min() > pruned.max()), name,
                   f"at sparsity {sparsity} a pruned weight is larger in magnitude than a kept one of the same tensor: "
                   "keep the weights of largest |w| (True = keep).")
        pruned = total - sum(int(m.sum()) for m in masks)
        expect(abs(pruned - round(sparsity * total)) <= len(weights), name,
               f"at sparsity {sparsity}, {pruned} of {total} weights were pruned: a fraction sparsity of them must go.")


def _check_ties(data) -> None:
    """Tied magnitudes at the threshold: every weight with |w| equal to the k-th smallest goes (|w| > threshold is
    kept), even when that prunes more than k, as the exercise states (torch's global_unstructured prunes exactly k)."""
    name = "magnitude_masks"
    weights = c.prune_weights()
    for sparsity in (s for s in c.SPARSITIES if s > 0):   # a mistake prune_global names is judged there only
        got = data.get(str(sparsity))
        if not (isinstance(got, list) and len(got) == len(weights) and all(_is_tensor(m) for m in got)
                and all(torch.equal(m, e) for m, e in zip(got, _oracle_masks(weights, sparsity)))):
            return
    tied = data.get(c.TIED_KEY) if isinstance(data, dict) else None
    if isinstance(tied, str):
        raise JudgeFailure(f"✗ {name}: on weights whose magnitudes repeat, your function raised {tied}.")
    weights = c.tied_weights()
    expect(isinstance(tied, list) and len(tied) == 1 and _is_tensor(tied[0], weights[0].shape)
           and tied[0].dtype == torch.bool, name, "on one tensor of 8 weights, expected a list of one bool mask of its shape.")
    magnitudes = weights[0].abs().reshape(-1)
    k = round(c.TIED_SPARSITY * magnitudes.numel())
    expected = weights[0].abs() > magnitudes.kthvalue(k).values
    if not torch.equal(tied[0], expected):
        pruned = int((~tied[0]).sum())
        if pruned == k:
            raise JudgeFailure(f"✗ {name}: |w| = 0.1, 0.1, 0.2, 0.2, 0.2, 0.3, 0.5, 0.7 at sparsity {c.TIED_SPARSITY}: "
                               f"exactly k = {k} were pruned, but the k-th smallest |w| (0.2) is tied: every weight "
                               "whose |w| equals the threshold goes too (keep |w| strictly greater), 5 here.")
        raise JudgeFailure(f"✗ {name}: on weights whose magnitudes repeat (sparsity {c.TIED_SPARSITY}), the mask "
                           f"differs from keeping |w| > the k-th smallest |w| (k = {k}): {pruned} pruned, expected "
                           f"{int((~expected).sum())}.")


def prune_edges(data) -> None:
    name = "magnitude_masks"
    _check_masks(data, [0.0, c.TINY_SPARSITY])
    _check_ties(data)
    errors = check_data(data, {"errors": [None] * len(c.BAD_SPARSITIES)}, name)["errors"]
    expect(all(_raised(e) for e in errors), name,
           f"sparsities {list(c.BAD_SPARSITIES)} must each raise ValueError (sparsity lies in [0, 1)); received {errors}.")
    # sparsity 0 is judged with the other sparsities on the same weights: masks that keep everything whatever the
    # sparsity (or written by hand) fail there
    _check_magnitude_masks(data, [s for s in c.SPARSITIES if s > 0])


# ------------------------------------------------------------------------------------------ distillation

def _kl(student, teacher, t_student, t_teacher) -> torch.Tensor:
    return F.kl_div(F.log_softmax(student / t_student, -1), F.log_softmax(teacher / t_teacher, -1),
                    reduction="batchmean", log_target=True)


def _check_distillation(data, soft_only: bool) -> None:
    name = "distillation_loss"
    expect(isinstance(data, dict) and isinstance(data.get("values"), list)
           and len(data["values"]) == len(c.DISTILL_SETTINGS), name, "expected one loss per setting of (T, alpha).")
    student, teacher, labels = c.distill_inputs()
    ce = F.cross_entropy(student, labels).item()
    for value, (t, alpha) in zip(data["values"], c.DISTILL_SETTINGS):
        if soft_only != (alpha == 1.0):
            continue
        expect(isinstance(value, float), name, f"the loss must be a number; received {value!r}.")
        expect(value == value, name, f"the loss at (T={t}, alpha={alpha}) is NaN: a log of a negative number, or "
               "0 · log 0. F.kl_div reads its target as probabilities unless log_target=True: given log-probabilities "
               "without it, it takes their log.")
        kl = _kl(student, teacher, t, t).item()
        expected = alpha * t * t * kl + (1 - alpha) * ce
        if close(value, expected, 1e-6 * max(1.0, abs(expected))):
            continue
        where = f"(T={t}, alpha={alpha})"
        mistakes = {
            "the soft term is not multiplied by T²: at large T its gradients shrink as 1/T² and the teacher is ignored":
                alpha * kl + (1 - alpha) * ce,
            "the soft term is multiplied by T, not T²: at large T its gradients shrink as 1/T², so T undoes only half of that":
                alpha * t * kl + (1 - alpha) * ce,
            "T divides only the student's logits; soften both distributions by the same T":
                alpha * t * t * _kl(student, teacher, t, 1.0).item() + (1 - alpha) * ce,
            "T divides only the teacher's logits; soften both distributions by the same T":
                alpha * t * t * _kl(student, teacher, 1.0, t).item() + (1 - alpha) * ce,
            "the KL runs the wrong way: KL(student ‖ teacher); the teacher's distribution p comes first, KL(p ‖ q)":
                alpha * t * t * _kl(teacher, student, t, t).item() + (1 - alpha) * ce,
            "alpha weighs the hard-label term; alpha weighs the soft (teacher) term, 1 - alpha the cross-entropy":
                (1 - alpha) * t * t * kl + alpha * ce,
            "the KL is summed over the batch: average it per example (F.kl_div's reduction='batchmean')":
                alpha * t * t * kl * student.shape[0] + (1 - alpha) * ce,
            "the KL is averaged over all B · C elements (F.kl_div's reduction='mean'), which gives 1/C of the "
            "per-example KL: sum over the classes, average over the batch (reduction='batchmean')":
                alpha * t * t * kl / student.shape[1] + (1 - alpha) * ce,
            "the cross-entropy is taken on the softened logits (student / T); the hard term uses the raw logits":
                alpha * t * t * kl + (1 - alpha) * F.cross_entropy(student / t, labels).item(),
            "the softmax is taken over the batch (dim 0), not over the classes (dim -1): each example's "
            "distribution is over its C classes":
                alpha * t * t * (F.softmax(teacher / t, 0) * (F.log_softmax(teacher / t, 0)
                                                              - F.log_softmax(student / t, 0))).sum(-1).mean().item()
                + (1 - alpha) * ce,
        }
        for mistake, wrong in mistakes.items():
            if close(value, wrong, 1e-6 * max(1.0, abs(wrong))) and abs(wrong - expected) > 1e-9:
                raise JudgeFailure(f"✗ {name} {where}: {mistake}.")
        raise JudgeFailure(f"✗ {name} {where}: received {value:.6f}, {off(value, expected)} "
                           "alpha · T² · KL(p_T ‖ q_T) + (1 - alpha) · CE.")


def distill_soft(data) -> None:
    _check_distillation(data, soft_only=True)
    expect(check_data(data, {"inputs_kept": bool}, "distillation_loss")["inputs_kept"], "distillation_loss",
           "the function changed the logits it was given, in place (logits /= T, div_): the teacher's and the "
           "student's logits are the caller's, which must stay as they were; divide into new tensors (logits / T).")


def distill_mixed(data) -> None:
    name = "distillation_loss"
    _check_distillation(data, soft_only=False)
    check_data(data, {"student_grad": None, "teacher_grad": None}, name)
    student = c.distill_inputs()[0]
    grad = data.get("student_grad")
    expect(_is_tensor(grad, student.shape) and bool(grad.abs().sum() > 0), name,
           "no gradient reached the student's logits: keep the loss differentiable (no .item(), no detach on the student).")
    expect(data.get("teacher_grad") is None or bool((data["teacher_grad"] == 0).all()), name,
           "a gradient flowed into the teacher's logits: the teacher is a fixed target (detach it).")
    defaults = check_data(data, {"defaults": [float] * 3}, name)["defaults"]   # learner's own: (), (2, 0.5), (1, 0.5)
    if not close(defaults[0], defaults[1], 1e-9 * max(1.0, abs(defaults[1]))):
        which = (" (it gives what temperature=1.0 gives)" if close(defaults[0], defaults[2], 1e-9 * max(1.0, abs(defaults[2])))
                 else "")
        raise JudgeFailure(f"✗ {name}: called without temperature and alpha it returned {defaults[0]:.6g}, not what "
                           f"temperature=2.0, alpha=0.5 give ({defaults[1]:.6g}){which}: keep the signature's defaults, "
                           "temperature=2.0 and alpha=0.5.")


# ------------------------------------------------------------------------------------------ LoRA

def _base():
    return (c.seeded("base.weight", (c.LORA_OUT, c.LORA_IN), dtype=torch.float64),
            c.seeded("base.bias", (c.LORA_OUT,), dtype=torch.float64))


def lora_init(data) -> None:
    name = "LoRALinear"
    check_data(data, {"params": dict, "A": None, "B": None, "out": None, "error": None}, name)
    params = data.get("params") or {}
    trainable = sorted(n for n, (shape, grad) in params.items() if grad)
    error = data.get("error")
    expect("A" in params and "B" in params, name, f"expected parameters named A and B; found {sorted(params)}.",
           "self.A = nn.Parameter(...) of shape (r, in_features), self.B of shape (out_features, r).")
    expect(params["A"][0] == [c.LORA_R, c.LORA_IN], name, f"A must have shape (r, in_features) = {(c.LORA_R, c.LORA_IN)}; "
           f"received {tuple(params['A'][0])}.")
    expect(params["B"][0] == [c.LORA_OUT, c.LORA_R], name, f"B must have shape (out_features, r) = {(c.LORA_OUT, c.LORA_R)}; "
           f"received {tuple(params['B'][0])}.")
    check_data(params, {p: [list, bool] for p in ("A", "B", "base.weight", "base.bias")}, name)
    expect(trainable == ["A", "B"], name, f"trainable parameters are {trainable}; only A and B may train.",
           "freeze the base layer: its weight and bias need no gradient.")
    A, B = data.get("A"), data.get("B")
    expect(_is_tensor(A, (c.LORA_R, c.LORA_IN)) and _is_tensor(B, (c.LORA_OUT, c.LORA_R)) and finite(A) and finite(B),
           name, "A and B must be finite tensors at initialisation.")
    expect(A.dtype == B.dtype == torch.float64, name, f"A and B are {A.dtype} and {B.dtype} for a float64 base layer: "
           "create them in the base weight's dtype (dtype=base.weight.dtype).")
    zero = [label for label, matrix in (("A", A), ("B", B)) if bool((matrix == 0).all())]
    expect(len(zero) < 2, name, "A and B both start at zero: no gradient reaches either (the gradient with respect to A "
           "holds B, the one with respect to B holds A x), so the layer never learns.")
    expect(len(zero) == 1, name, "neither A nor B starts at zero: at initialisation the layer adds a random update "
           "to the pretrained layer's output.")
    expect(error is None, name, f"calling the layer raised {error}.")
    for label, matrix in (("A", A), ("B", B)):
        if label in zero:
            continue
        bound = matrix.shape[1] ** -0.5   # nn.Linear's init: kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), +)
        largest = matrix.abs().max().item()
        expect(largest <= bound * (1 + 1e-6) and largest >= bound / 2, name,
               f"the random {label} {tuple(matrix.shape)} has its largest |value| {largest:.3g}; nn.Linear's own "
               f"initialisation (reset_parameters: kaiming_uniform_ with a=sqrt(5)) draws uniformly in ±1/sqrt(fan_in) "
               f"= ±{bound:.3g} here.", f"nn.init.kaiming_uniform_(self.{label}, a=math.sqrt(5))")
    weight, bias = _base()
    expect(_close(data.get("out"), F.linear(c.lora_x(), weight, bias), 1e-10), name,
           "at initialisation the output must equal the base layer's (B = 0).")


def lora_forward(data) -> None:
    name = "LoRALinear.forward"
    weight, bias = _base()
    A, B = c.lora_values()
    x = c.lora_x()
    base = F.linear(x, weight, bias)
    delta = x @ A.T @ B.T
    r, alpha = c.LORA_R, c.LORA_ALPHA
    out = check_data(data, {"out": None}, name)["out"]
    expect(_is_tensor(out, base.shape), name, f"expected an output of shape {tuple(base.shape)}.")
    if _close(out, base + alpha / r * delta, 1e-8):
        return _check_leading_dimensions(data, name)
    mistakes = {"the update is scaled by r / alpha; LoRA scales it by alpha / r": base + r / alpha * delta,
                "the update is not scaled: multiply it by alpha / r": base + delta,
                "the update is scaled by alpha, not alpha / r": base + alpha * delta,
                "the base layer's output is missing: return base(x) + the low-rank update": alpha / r * delta,
                f"the scale is alpha // r = {alpha // r:g} (floor division), not alpha / r = {alpha / r:g}":
                    base + (alpha // r) * delta}
    for mistake, wrong in mistakes.items():
        if _close(out, wrong, 1e-8):
            raise JudgeFailure(f"✗ {name}: {mistake}.")
    raise JudgeFailure(f"✗ {name}: output differs from base(x) + (alpha / r) · x Aᵀ Bᵀ "
                       f"(max difference {(out.double() - base - alpha / r * delta).abs().max().item():.3g}).")


def _check_leading_dimensions(data, name: str) -> None:
    """The same layer on an input (2, 3, in): forward takes (..., in)."""
    out3 = check_data(data, {"out3": None}, name)["out3"]
    x3 = c.lora_x3()
    if isinstance(out3, str):
        raise JudgeFailure(f"✗ {name}: on an input of shape {tuple(x3.shape)} (leading dimensions (..., in), a batch of "
                           f"sequences) the layer raised {out3}: x @ A.T @ B.T works for any leading dimensions, "
                           "(B @ A @ x.T).T only for 2-D x.")
    weight, bias = _base()
    A, B = c.lora_values()
    expected = F.linear(x3, weight, bias) + c.LORA_ALPHA / c.LORA_R * (x3 @ A.T @ B.T)
    expect(_close(out3, expected, 1e-8), name, f"on an input of shape {tuple(x3.shape)} (leading dimensions (..., in)) "
           "the output is not base(x) + (alpha / r) · x Aᵀ Bᵀ, of shape (..., out).")


def lora_merge(data) -> None:
    name = "LoRALinear.merge"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        hint = (" A size mismatch usually means the update is transposed: B A is (out, in), like W."
                if "size" in error or "shape" in error else
                " The merged nn.Linear must be made in the base weight's dtype (dtype=self.base.weight.dtype): here "
                "the base layer is float64." if "dtype" in error or "Double" in error else "")
        raise JudgeFailure(f"✗ {name}: merging (or calling the merged layer) raised {error}.{hint}")
    expect(isinstance(data, dict) and data.get("is_linear") is True, name, "merge() must return an nn.Linear.")
    check_data(data, {"weight": None, "bias": None, "out": None, "after": None}, name)
    weight, bias = _base()
    A, B = c.lora_values()
    scale = c.LORA_ALPHA / c.LORA_R
    expected = weight + scale * B @ A
    got = data.get("weight")
    if _is_tensor(got, expected.T.shape):
        raise JudgeFailure(f"✗ {name}: the merged weight has shape {tuple(got.shape)}, the transpose of W (out, in): "
                           "merge as W + (alpha / r) · B A, with B (out, r) and A (r, in).")
    expect(_is_tensor(got, expected.shape), name, f"the merged weight must have shape (out, in) = {tuple(expected.shape)}; "
           f"received {tuple(got.shape) if _is_tensor(got) else got}.")
    if not _close(got, expected, 1e-8):
        if _close(got, weight + B @ A, 1e-8):
            raise JudgeFailure(f"✗ {name}: the merged update is not scaled: W + (alpha / r) · B A.")
        raise JudgeFailure(f"✗ {name}: the merged weight differs from W + (alpha / r) · B A.")
    expect(_close(data.get("bias"), bias, 1e-12), name, "the merged layer must keep the base layer's bias.")
    expect(_close(data.get("out"), F.linear(c.lora_x(), expected, bias), 1e-8), name,
           "the merged layer's output differs from the LoRA layer's.")
    expect(_close(data.get("after"), F.linear(c.lora_x(), expected, bias), 1e-8), name,
           "after merge() the LoRA layer's own output changed: merge() modified the base layer in place; return a "
           "new nn.Linear and leave self.base as it is.")
    expect(got.dtype == torch.float64, name, f"the merged weight of a float64 layer is {got.dtype}: make the merged "
           "nn.Linear in the base weight's dtype (dtype=self.base.weight.dtype).")
    no_bias = check_data(data, {"no_bias": {"bias": None, "out": None}}, name)["no_bias"]
    expect(not isinstance(no_bias["bias"], str), name, f"merging a LoRA layer whose base has no bias gave "
           f"{no_bias['bias']!r}.")
    expect(no_bias["bias"] is None, name, "merging a base layer without a bias (nn.Linear(..., bias=False)) gave the "
           "merged layer a bias (a fresh, random one): bias=self.base.bias is not None.")
    expect(_close(no_bias["out"], F.linear(c.lora_x(), expected), 1e-8), name,
           "the merged layer of a base without a bias differs from W + (alpha / r) · B A.")


def lora_errors(data) -> None:
    name = "LoRALinear"
    errors = check_data(data, {"errors": [None] * len(c.BAD_RANKS), "full_rank": None}, name)["errors"]
    for r, line in zip(c.BAD_RANKS, errors):
        expect(_raised(line), name, f"rank r={r} must raise ValueError (1 <= r <= min(in, out) = "
               f"{min(c.LORA_IN, c.LORA_OUT)}); received {line!r}.")
    above_in = check_data(data, {"above_in_features": None}, name)["above_in_features"]
    expect(_raised(above_in), name, f"rank r={c.LORA_OUT + 1} of a layer with in_features={c.LORA_OUT} and "
           f"out_features={c.LORA_IN} must raise ValueError: r is bounded by the smaller of the two, min(in, out) = "
           f"{c.LORA_OUT}, not by out_features alone; received {above_in!r}.")
    r = min(c.LORA_IN, c.LORA_OUT)
    full = data["full_rank"]
    expect(not isinstance(full, str), name, f"r = min(in, out) = {r} is allowed; building (or calling) that layer "
           f"gave {full!r}.")
    weight, bias = _base()
    A, B = c.full_rank_values()
    x = c.lora_x()
    base, delta = F.linear(x, weight, bias), x @ A.T @ B.T
    expect(_is_tensor(full, base.shape) and finite(full), name, f"the layer of rank r = {r} (allowed) must return an "
           f"output of shape {tuple(base.shape)}.")
    # the scale of the update is Exercise 5's forward test; here any layer that adds a multiple of x Aᵀ Bᵀ to base(x)
    # (or returns the update alone) shows that the full rank runs
    parts = torch.stack([base.reshape(-1), delta.reshape(-1)], 1)                     # (n, 2)
    share = torch.linalg.lstsq(parts, full.double().reshape(-1, 1)).solution          # (2, 1)
    residual = (parts @ share - full.double().reshape(-1, 1)).abs().max().item()
    expect(residual <= 1e-8 * max(1.0, full.double().abs().max().item()) and abs(share[1].item()) > 1e-6, name,
           f"the layer of rank r = {r} (allowed) ran, but its output is not base(x) plus the update x Aᵀ Bᵀ of the "
           "A and B it holds.")
    one = check_data(data, {"rank_one": None}, name)["rank_one"]
    expect(not isinstance(one, str), name, f"r = 1, the smallest rank, is allowed (1 <= r <= min(in, out)); building "
           f"(or calling) that layer gave {one!r}.")
    A, B = c.rank_one_values()
    parts = torch.stack([base.reshape(-1), (x @ A.T @ B.T).reshape(-1)], 1)
    expect(_is_tensor(one, base.shape) and finite(one), name, f"the layer of rank r = 1 (allowed) must return an output "
           f"of shape {tuple(base.shape)}.")
    share = torch.linalg.lstsq(parts, one.double().reshape(-1, 1)).solution
    residual = (parts @ share - one.double().reshape(-1, 1)).abs().max().item()
    expect(residual <= 1e-8 * max(1.0, one.double().abs().max().item()) and abs(share[1].item()) > 1e-6, name,
           "the layer of rank r = 1 (allowed) ran, but its output is not base(x) plus the update x Aᵀ Bᵀ of the A and "
           "B it holds.")
