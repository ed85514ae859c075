"""Chapter 10 (faster and smaller) collectors: run the learner's objects on seeded inputs, return plain data.

Inputs come from the generators below, which the judges import to rebuild them; LoRA's ``A`` and ``B``
are overwritten with seeded values by name, so the judge knows them without trusting the kernel. An
exception the learner's code raises on a case that must raise is reported as its first line
(``"ValueError: ..."``), or ``"no error"``.
"""

from __future__ import annotations

import zlib

import torch
from torch import nn

from tfs.grader.judging import error_line, raised
from tfs.grader import judging

SPARSITIES = (0.0, 0.15, 0.3, 0.5, 0.9)   # of 356 weights: 53.4 and 106.8, so int(), a quantile and round() differ
BAD_SPARSITIES = (1.0, -0.1, 1.5)
TINY_SPARSITY = 0.001                     # round(0.001 · 356) = 0: nothing to prune, though the sparsity is not 0
TIED_SPARSITY = 0.375                     # of the 8 tied weights below: k = 3, and |w| = 0.2 three times from the 3rd
TIED_KEY = str(TIED_SPARSITY)             # the key of the tied weights' masks (a sparsity, as every mask key is)
DISTILL_SETTINGS = ((1.0, 1.0), (2.0, 1.0), (4.0, 1.0), (2.0, 0.5), (3.0, 0.0), (5.0, 0.25))
LORA_IN, LORA_OUT, LORA_R, LORA_ALPHA = 16, 12, 4, 10.0   # alpha / r = 2.5: alpha // r (2) differs
BAD_RANKS = (0, -2, 13)


def seeded(name: str, shape: tuple[int, ...], seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    generator = judging.generator(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


# ------------------------------------------------------------------------------------------ int8

def quantize_weight() -> torch.Tensor:
    """``(6, 10)`` float32: rows of very different sizes, one all-zero row (3), one row whose largest
    magnitude is negative (row 1), and one row with a single outlier (row 4)."""
    weight = seeded("weight", (6, 10)) * torch.tensor([0.02, 1.0, 5.0, 0.0, 0.3, 40.0])[:, None]
    weight[1, 7] = -4.0   # absmax is a negative number: max() would miss it
    weight[4, 2] = 3.0    # an outlier: the row's other values use few levels
    return weight


def given_scale() -> torch.Tensor:
    """A scale too small for some rows (clipped scales, e.g. from a percentile): those values saturate."""
    return torch.tensor([0.0001, 0.01, 0.02, 0.5, 0.004, 0.1])


def _scale_dtype(quantize_per_channel, *args, **kwargs) -> str:
    """The dtype of the scale ``quantize_per_channel(*args, **kwargs)`` returns (as text), or what it returned or raised."""
    try:
        result = quantize_per_channel(*args, **kwargs)
    except Exception as failure:
        return error_line(failure)
    scale = result[1] if isinstance(result, (tuple, list)) and len(result) == 2 else None
    return str(scale.dtype) if isinstance(scale, torch.Tensor) else type(scale).__name__


def quantize(quantize_per_channel) -> dict:
    weight = quantize_weight()
    given = weight.clone()
    q, scale = quantize_per_channel(given)
    weight_kept = bool(torch.equal(given, weight))   # a model's weight, read, never written
    try:  # a scale per row given: fails where the learner's groups are not rows (judged from their own scales)
        clipped = quantize_per_channel(weight.clone(), scale=given_scale())
        clipped = clipped[0] if isinstance(clipped, (tuple, list)) else clipped
    except Exception as failure:
        clipped = error_line(failure)
    nan, inf = weight.clone(), weight.clone()
    nan[2, 3] = float("nan")
    inf[5, 0] = float("inf")
    wide_dtype = _scale_dtype(quantize_per_channel, weight.clone().double())  # a float64 weight: float32 all the same
    given64_dtype = _scale_dtype(quantize_per_channel, weight.clone(), scale=given_scale().double())  # a float64 scale given
    return {"q": q, "scale": scale, "clipped": clipped, "float64_scale_dtype": wide_dtype,
            "given_float64_scale_dtype": given64_dtype,
            "nan": raised(quantize_per_channel, nan), "inf": raised(quantize_per_channel, inf), "weight_kept": weight_kept}


quantize_scale = quantize_values = quantize


def dequantize_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """``(q (5, 7) int8, scale (5,) float32)``."""
    generator = judging.generator(10)
    q = torch.randint(-127, 128, (5, 7), generator=generator).to(torch.int8)
    scale = torch.rand(5, generator=generator) * 0.1 + 0.001
    return q, scale


def dequantize(dequantize) -> dict:
    """The output for a float32 scale and for the same scale stored as float16 (as GGUF stores its steps), or the
    error line each raised."""
    q, scale = dequantize_inputs()
    out = {}
    for key, given in (("out", scale), ("half", scale.half())):
        try:
            out[key] = dequantize(q.clone(), given.clone())
        except Exception as failure:
            out[key] = error_line(failure)
    return out


# ------------------------------------------------------------------------------------------ pruning

def prune_weights() -> list[torch.Tensor]:
    """Three tensors of different sizes and scales (a per-layer threshold would prune them differently)."""
    return [seeded("w0", (8, 12)) * 1.0, seeded("w1", (20, 8)) * 0.1, seeded("w2", (5, 20)) * 3.0]


def tied_weights() -> list[torch.Tensor]:
    """8 weights whose magnitudes repeat: 0.1 twice, 0.2 three times (the k-th smallest at TIED_SPARSITY)."""
    return [torch.tensor([[0.5, -0.2, 0.2, 0.1], [-0.2, 0.7, 0.1, -0.3]])]


def magnitude_masks(magnitude_masks) -> dict:
    """The masks at each sparsity, or the error line the call raised there (a crash at one sparsity, such as 0,
    is judged by the test of that case, not by every test), what each bad sparsity raised, and the masks of
    weights with tied magnitudes."""
    out = {}
    try:
        tied = magnitude_masks([w.clone() for w in tied_weights()], TIED_SPARSITY)
        out[TIED_KEY] = list(tied) if isinstance(tied, (list, tuple)) else tied
    except NotImplementedError:
        raise
    except Exception as failure:
        out[TIED_KEY] = error_line(failure)
    for sparsity in SPARSITIES + (TINY_SPARSITY,):
        try:
            masks = magnitude_masks([w.clone() for w in prune_weights()], sparsity)
        except NotImplementedError:
            raise
        except Exception as failure:
            masks = error_line(failure)
        out[str(sparsity)] = list(masks) if isinstance(masks, (list, tuple)) else masks
    out["errors"] = [raised(magnitude_masks, [w.clone() for w in prune_weights()], s) for s in BAD_SPARSITIES]
    given = [w.clone() for w in prune_weights()]
    try:   # a model's weights, read, never written: the masks are applied later (or not at all)
        magnitude_masks(given, 0.5)
        out["weights_kept"] = all(torch.equal(g, w) for g, w in zip(given, prune_weights()))
    except Exception as failure:  # judged at sparsity 0.5 with the others
        out["weights_kept"] = error_line(failure)
    return out


prune_global = prune_edges = magnitude_masks


# ------------------------------------------------------------------------------------------ distillation

def distill_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(student (8, 5), teacher (8, 5) float64 logits, labels (8,))``."""
    student = seeded("student", (8, 5), dtype=torch.float64) * 2.0
    teacher = seeded("teacher", (8, 5), dtype=torch.float64) * 3.0
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    return student, teacher, labels


def distillation_loss(distillation_loss) -> dict:
    student, teacher, labels = distill_inputs()
    values = []
    for temperature, alpha in DISTILL_SETTINGS:
        loss = distillation_loss(student.clone(), teacher.clone(), labels.clone(), temperature=temperature, alpha=alpha)
        values.append(float(loss))
    given_student, given_teacher = student.clone(), teacher.clone()
    distillation_loss(given_student, given_teacher, labels.clone(), temperature=2.0, alpha=0.5)
    inputs_kept = bool(torch.equal(given_student, student) and torch.equal(given_teacher, teacher))   # read, never written
    s = student.clone().requires_grad_(True)
    t = teacher.clone().requires_grad_(True)
    distillation_loss(s, t, labels.clone(), temperature=2.0, alpha=0.5).backward()
    defaults = []   # the signature's defaults (T = 2, alpha = 0.5) against the same values passed by name, and T = 1
    for kwargs in ({}, {"temperature": 2.0, "alpha": 0.5}, {"temperature": 1.0, "alpha": 0.5}):
        defaults.append(float(distillation_loss(student.clone(), teacher.clone(), labels.clone(), **kwargs)))
    return {"values": values, "student_grad": s.grad, "teacher_grad": t.grad, "defaults": defaults,
            "inputs_kept": inputs_kept}


distill_soft = distill_mixed = distillation_loss


# ------------------------------------------------------------------------------------------ LoRA

def lora_base() -> nn.Linear:
    base = nn.Linear(LORA_IN, LORA_OUT).double()
    with torch.no_grad():
        base.weight.copy_(seeded("base.weight", (LORA_OUT, LORA_IN), dtype=torch.float64))
        base.bias.copy_(seeded("base.bias", (LORA_OUT,), dtype=torch.float64))
    return base


def lora_x() -> torch.Tensor:
    return seeded("x", (3, LORA_IN), dtype=torch.float64)


def lora_values() -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``A (r, in)`` and ``B (out, r)`` written into the learner's layer after its initialisation."""
    return (seeded("A", (LORA_R, LORA_IN), dtype=torch.float64),
            seeded("B", (LORA_OUT, LORA_R), dtype=torch.float64))


def _lora_layer(LoRALinear):
    torch.manual_seed(0)
    return LoRALinear(lora_base(), r=LORA_R, alpha=LORA_ALPHA)


def lora_init(LoRALinear) -> dict:
    layer = _lora_layer(LoRALinear)
    x = lora_x()
    params = {name: [list(p.shape), bool(p.requires_grad)] for name, p in layer.named_parameters()}
    A, B = getattr(layer, "A", None), getattr(layer, "B", None)
    out, error = None, None
    try:
        with torch.no_grad():
            out = layer(x)
    except Exception as failure:  # reported after the shapes, which usually explain it
        error = error_line(failure)
    return {"params": params, "A": A if isinstance(A, torch.Tensor) else None,
            "B": B if isinstance(B, torch.Tensor) else None, "out": out, "error": error}


def lora_forward(LoRALinear) -> dict:
    layer = _lora_layer(LoRALinear)
    A, B = lora_values()
    with torch.no_grad():
        layer.A.copy_(A)
        layer.B.copy_(B)
        out = layer(lora_x())
        try:   # inputs with leading dimensions (..., in): a batch of sequences
            out3 = layer(lora_x3())
        except Exception as failure:
            out3 = error_line(failure)
    return {"out": out, "out3": out3}


def lora_x3() -> torch.Tensor:
    return seeded("x3", (2, 3, LORA_IN), dtype=torch.float64)


def lora_merge(LoRALinear) -> dict:
    layer = _lora_layer(LoRALinear)
    A, B = lora_values()
    try:
        with torch.no_grad():
            layer.A.copy_(A)
            layer.B.copy_(B)
            merged = layer.merge()
            is_linear = isinstance(merged, nn.Linear)
            out = merged(lora_x()) if is_linear else None
            after = layer(lora_x())   # the LoRA layer itself, after merging: unchanged
    except Exception as failure:  # a transposed update usually fails here on a non-square layer
        return {"error": error_line(failure)}
    try:   # a base layer without a bias: the merged layer has none either
        torch.manual_seed(0)
        plain = LoRALinear(lora_base_without_bias(), r=LORA_R, alpha=LORA_ALPHA)
        with torch.no_grad():
            plain.A.copy_(A)
            plain.B.copy_(B)
            merged_plain = plain.merge()
            no_bias = {"bias": merged_plain.bias if isinstance(merged_plain, nn.Linear) else "not an nn.Linear",
                       "out": merged_plain(lora_x()) if isinstance(merged_plain, nn.Linear) else None}
    except Exception as failure:
        no_bias = {"bias": error_line(failure), "out": None}
    return {"is_linear": is_linear, "weight": merged.weight if is_linear else None,
            "bias": merged.bias if is_linear else None, "out": out, "after": after, "no_bias": no_bias}


def lora_base_without_bias() -> nn.Linear:
    base = nn.Linear(LORA_IN, LORA_OUT, bias=False).double()
    with torch.no_grad():
        base.weight.copy_(seeded("base.weight", (LORA_OUT, LORA_IN), dtype=torch.float64))
    return base


def full_rank_values() -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``A (r, in)`` and ``B (out, r)`` for the largest allowed rank, ``r = min(in, out)``."""
    r = min(LORA_IN, LORA_OUT)
    return (seeded("A.full", (r, LORA_IN), dtype=torch.float64),
            seeded("B.full", (LORA_OUT, r), dtype=torch.float64))


def _output_at_rank(LoRALinear, r: int, values) -> torch.Tensor | str:
    """The output of a layer of rank ``r`` (allowed, alpha ``2 r``: scale 2) with the seeded ``values = (A, B)``, or
    the error line it raised: evidence that an allowed rank runs, which a hand-written "no error" is not."""
    try:
        layer = LoRALinear(lora_base(), r=r, alpha=2.0 * r)
        A, B = values
        with torch.no_grad():
            layer.A.copy_(A)
            layer.B.copy_(B)
            return layer(lora_x())
    except Exception as failure:
        return error_line(failure)


def rank_one_values() -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``A (1, in)`` and ``B (out, 1)`` for the smallest allowed rank, ``r = 1``."""
    return seeded("A.one", (1, LORA_IN), dtype=torch.float64), seeded("B.one", (LORA_OUT, 1), dtype=torch.float64)


def lora_errors(LoRALinear) -> dict:
    wide = nn.Linear(LORA_OUT, LORA_IN).double()   # in = 12 < out = 16: r = 13 exceeds in_features, not out_features
    return {"errors": [raised(LoRALinear, lora_base(), r=r, alpha=LORA_ALPHA) for r in BAD_RANKS],
            "above_in_features": raised(LoRALinear, wide, r=LORA_OUT + 1, alpha=LORA_ALPHA),
            "full_rank": _output_at_rank(LoRALinear, min(LORA_IN, LORA_OUT), full_rank_values()),
            "rank_one": _output_at_rank(LoRALinear, 1, rank_one_values())}
