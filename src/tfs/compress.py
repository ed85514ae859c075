"""Chapter 10 (faster and smaller): the package's reference of the chapter's exercises and helpers.

- int8: :func:`quantize_per_channel` / :func:`dequantize` (symmetric, one scale per output row),
  :class:`Int8Linear` (int8 weights, float activations);
- pruning: :func:`magnitude_masks` (one *global* magnitude threshold over several tensors),
  :func:`head_importance` (loss increase when one attention head of a GPT-2 model is silenced);
- distillation: :func:`distillation_loss` (Hinton et al. 2015: T² · KL(teacher_T ‖ student_T) mixed with CE);
- LoRA: :class:`LoRALinear` (frozen base, ``A`` random, ``B`` zero, scale ``alpha / r``, :meth:`LoRALinear.merge`);
- 4-bit blocks: :func:`quantize_q4_1` / :func:`dequantize_q4_1` (llama.cpp's Q4_1: blocks of 32 weights, each
  ``w = d · q + m`` with a 4-bit ``q`` and float16 ``d``, ``m``), :func:`read_gguf_q4_1` (a tensor's raw blocks);
- safe saving: :func:`save_weights` / :func:`load_weights` (safetensors, or ``torch.load(weights_only=True)``);
- models: :func:`shared_copy`, :func:`swap_modules`, :func:`replace_linears` (a quantized copy that does not copy
  the float weights), :func:`activation_ranges` and :func:`quantized_inputs` (what per-tensor activation
  quantization does);
- measuring: :func:`serialized_mb`, :func:`latency`, :func:`timings` (medians and spread of interleaved rounds),
  :func:`recorded_speed` (the recorded run of ``benchmarks/compress_speed.py`` that chapter 10 quotes).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import random
import re
import statistics
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["QMAX", "Q4_BLOCK", "CheckpointError", "Timing", "quantize_per_channel", "dequantize", "Int8Linear",
           "quantize_q4_1", "dequantize_q4_1", "read_gguf_q4_1", "shared_copy", "swap_modules", "replace_linears", "activation_ranges",
           "quantized_inputs", "magnitude_masks", "apply_masks", "head_importance", "silence_heads", "distillation_loss",
           "LoRALinear", "add_lora", "merge_lora", "save_weights", "load_weights", "serialized_mb", "allocated_mb",
           "latency", "timings", "SPEED_RECORD", "recorded_speed"]

QMAX = 127  # symmetric int8: [-127, 127], so that -q is always representable and zero is exactly 0


# ------------------------------------------------------------------------------------------ int8

def quantize_per_channel(weight: torch.Tensor, scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-output-channel int8 quantization.

    ``weight (out, in)`` float -> ``(q (out, in) int8, scale (out,) float32)`` with
    ``scale[i] = max_j |weight[i, j]| / 127`` (1.0 for an all-zero row, so nothing divides by zero) and
    ``q = clamp(round(weight / scale), -127, 127)``. A given ``scale (out,)`` (e.g. clipped) is used as is;
    values beyond ``127 · scale`` saturate at ±127.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError("quantize_per_channel expects a 2-D float tensor (out_features, in_features)")
    if not torch.isfinite(weight).all():
        bad = (~torch.isfinite(weight)).nonzero()[0].tolist()
        raise ValueError(f"cannot quantize a tensor holding NaN or infinity (first at index {bad}): "
                         "its scale would be inf/NaN and every value in its row lost")
    weight = weight.detach().float()
    if scale is None:
        absmax = weight.abs().amax(dim=1)                                  # (out,)
        scale = torch.where(absmax > 0, absmax / QMAX, torch.ones_like(absmax))
    else:
        scale = torch.as_tensor(scale, dtype=torch.float32).reshape(-1)
        if scale.shape[0] != weight.shape[0] or not (scale > 0).all() or not torch.isfinite(scale).all():
            raise ValueError(f"scale must hold {weight.shape[0]} positive finite numbers")
    q = torch.clamp(torch.round(weight / scale[:, None]), -QMAX, QMAX).to(torch.int8)
    return q, scale.float()


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``q (out, in)`` int8, ``scale (out,)`` -> ``(out, in)`` float32: ``q * scale`` row by row."""
    return q.float() * scale.float()[:, None]


class Int8Linear(nn.Module):
    """A linear layer that stores int8 weights and one float scale per output row (4x smaller weights).

    ``forward(x (..., in)) -> (..., out)``: ``(x @ q.T) * scale + bias``: the matmul runs on the int8
    values converted to floats (memory is saved, not arithmetic), the scale is applied after; the
    activations stay float. ``per_tensor=True``: one scale for the whole matrix instead (for comparison).
    ``quantize``: the function that rounds the weight, :func:`quantize_per_channel`'s signature (chapter 10's
    demonstrations pass the learner's own).
    """

    def __init__(self, linear: nn.Linear, per_tensor: bool = False,
                 quantize: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None):
        super().__init__()
        weight = linear.weight.detach()
        scale = torch.full((weight.shape[0],), max(weight.abs().max().item(), 1e-30) / QMAX) if per_tensor else None
        q, scale = (quantize or quantize_per_channel)(weight, scale)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = (x @ self.q.to(x.dtype).T) * self.scale.to(x.dtype)   # (..., out)
        return out if self.bias is None else out + self.bias.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


# ------------------------------------------------------------------------------------------ 4-bit blocks (Q4_1)

Q4_BLOCK = 32  # llama.cpp's Q4_1: 32 consecutive weights of a row share one float16 step d and minimum m


def _blocks(weight: torch.Tensor) -> torch.Tensor:
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or weight.shape[1] % Q4_BLOCK:
        raise ValueError(f"Q4_1 needs a 2-D tensor (out, in) with in divisible by {Q4_BLOCK}; received "
                         f"{tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__}")
    return weight.reshape(weight.shape[0], -1, Q4_BLOCK)                     # (out, in / 32, 32)


def quantize_q4_1(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """llama.cpp's Q4_1, block by block along each row (the input dimension).

    ``weight (out, in)`` -> ``(q (out, in) uint8 in 0..15, d (out, in/32) float16, m (out, in/32) float16)``:
    for each block of 32 consecutive weights, ``m = min``, ``d = (max - min) / 15`` and
    ``q = min(15, trunc((w - m) / d + 0.5))`` (``q = 0`` where ``d = 0``), computed in float32 as llama.cpp's
    reference quantizer does; ``d`` and ``m`` are then stored as float16. 4 bits per weight plus 32 bits per
    32 weights: 5 bits per weight (llama.cpp packs two ``q`` per byte; here one per byte, for reading).
    """
    blocks = _blocks(weight.detach().float())
    if not torch.isfinite(blocks).all():
        raise ValueError("cannot quantize a tensor holding NaN or infinity")
    low, high = blocks.amin(-1, keepdim=True), blocks.amax(-1, keepdim=True)
    step = (high - low) / 15
    inverse = torch.where(step > 0, 1 / step, torch.zeros_like(step))
    q = torch.trunc((blocks - low) * inverse + 0.5).clamp(0, 15).to(torch.uint8)
    return q.reshape(weight.shape), step[..., 0].half(), low[..., 0].half()


def dequantize_q4_1(q: torch.Tensor, d: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``q (out, in)`` in 0..15, ``d``, ``m (out, in/32)`` -> ``(out, in)`` float32: ``w = d · q + m`` per block."""
    blocks = _blocks(q).float()                                              # (out, in / 32, 32)
    return (d.float()[..., None] * blocks + m.float()[..., None]).reshape(q.shape)


def read_gguf_q4_1(gguf_file: str | os.PathLike, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A Q4_1 tensor's raw blocks, unpacked, from a GGUF file (needs the ``gguf`` package).

    Each block is 20 bytes: ``d`` (float16), ``m`` (float16), then 16 bytes holding 32 four-bit ``q``: byte
    ``j`` keeps weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble. Returns
    ``(q (rows, cols) uint8, d (rows, cols/32) float16, m (rows, cols/32) float16)`` in the file's layout
    (``rows`` = output features; llama.cpp stores some models' query and key rows in another order)."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFReader

    tensors = {t.name: t for t in GGUFReader(str(gguf_file)).tensors}
    if name not in tensors:
        raise KeyError(f"{name!r} is not in {Path(gguf_file).name}")
    tensor = tensors[name]
    if tensor.tensor_type != GGMLQuantizationType.Q4_1:
        raise ValueError(f"{name} is stored as {tensor.tensor_type.name}, not Q4_1")
    raw = np.asarray(tensor.data).reshape(tensor.data.shape[0], -1, 20)       # (rows, blocks, 20 bytes)
    d = torch.from_numpy(raw[..., 0:2].copy().view(np.float16)[..., 0])
    m = torch.from_numpy(raw[..., 2:4].copy().view(np.float16)[..., 0])
    packed = torch.from_numpy(raw[..., 4:20].copy())                          # (rows, blocks, 16)
    q = torch.cat([packed & 0x0F, packed >> 4], dim=-1)                       # (rows, blocks, 32)
    return q.reshape(q.shape[0], -1), d, m


# ------------------------------------------------------------------------------------------ quantized models

def shared_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s modules that shares every parameter and buffer with it (nothing numeric is
    copied): replacing a layer of the copy leaves ``model`` untouched, and a quantized copy of a large model
    costs only its new layers' memory."""
    memo = {id(tensor): tensor for tensor in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)


def swap_modules(model: nn.Module, modules: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """Put each ``modules[name]`` at ``name`` in ``model`` (in place); returns the modules it replaced, so
    that ``swap_modules(model, swap_modules(model, new))`` restores ``model``."""
    replaced = {}
    for name, module in modules.items():
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        replaced[name] = getattr(owner, child)
        setattr(owner, child, module)
    return replaced


def replace_linears(model: nn.Module, make: Callable[[nn.Linear], nn.Module], skip: Iterable[str] = ()) -> nn.Module:
    """A :func:`shared_copy` of ``model`` in which every ``nn.Linear`` whose name is not in ``skip`` is
    ``make(linear)`` (e.g. :class:`Int8Linear`); ``model`` itself is unchanged."""
    skip = set(skip)
    copied = shared_copy(model)
    swap_modules(copied, {name: make(module) for name, module in copied.named_modules()
                          if isinstance(module, nn.Linear) and name not in skip})
    return copied


@torch.no_grad()
def activation_ranges(model: nn.Module, run: Callable[[], object]) -> dict[str, tuple[float, float]]:
    """``{name: (max |x|, median |x|)}`` of the input ``x`` of every ``nn.Linear`` of ``model`` while ``run()``
    calls it (the last call, if a layer runs several times). A large ratio means a per-tensor scale set by
    the largest value leaves few levels for the typical one."""
    ranges: dict[str, tuple[float, float]] = {}

    def hook_for(name: str):
        def record(module, args):
            magnitudes = args[0].detach().abs().float()
            ranges[name] = (magnitudes.max().item(), magnitudes.median().item())
        return record

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return ranges


@contextlib.contextmanager
def quantized_inputs(model: nn.Module, levels: int = 127, skip: Iterable[str] = ()) -> Iterator[None]:
    """Within the block, the input of every ``nn.Linear`` of ``model`` (names in ``skip`` excepted) is rounded
    as dynamic quantization rounds activations: one step for the whole tensor, ``(max - min) / levels`` with
    min and max widened to include 0, on a grid that holds 0 exactly (an integer zero point). FBGEMM's
    dynamic int8 linear uses ``levels = 127`` (its ``reduce_range``: 7 bits). The weights stay float, and
    so does the arithmetic: only the rounding is reproduced."""
    skip = set(skip)

    def round_input(module, args):
        x = args[0]
        low, high = x.min().clamp(max=0), x.max().clamp(min=0)
        step = torch.where(high > low, (high - low) / levels, torch.ones_like(high))
        zero = torch.round(-low / step).clamp(0, levels)                     # the integer that stands for 0.0
        q = torch.clamp(torch.round(x / step) + zero, 0, levels)
        return ((q - zero) * step,) + tuple(args[1:])

    handles = [m.register_forward_pre_hook(round_input) for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and n not in skip]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ------------------------------------------------------------------------------------------ pruning

def magnitude_masks(weights: Sequence[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Global unstructured magnitude pruning: boolean masks, True = keep.

    The ``k = round(sparsity · N)`` weights of smallest ``|w|`` among all ``N`` weights of all tensors
    together are pruned: one threshold for every tensor (a layer of small weights loses more), and a
    weight survives only if ``|w|`` is strictly greater than the k-th smallest.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not (0.0 <= sparsity < 1.0):
        raise ValueError(f"sparsity must be a number in [0, 1) (the fraction of weights pruned); received {sparsity!r}")
    weights = list(weights)
    if not weights:
        raise ValueError("magnitude_masks needs at least one tensor")
    magnitudes = torch.cat([w.detach().abs().reshape(-1) for w in weights])
    k = round(sparsity * magnitudes.numel())
    if k == 0:
        return [torch.ones_like(w, dtype=torch.bool) for w in weights]
    threshold = magnitudes.kthvalue(k).values
    return [w.detach().abs() > threshold for w in weights]


def apply_masks(parameters: Iterable[torch.Tensor], masks: Iterable[torch.Tensor]) -> None:
    """Zero the pruned weights in place (``mask`` False)."""
    with torch.no_grad():
        for parameter, mask in zip(parameters, masks):
            parameter.mul_(mask.to(parameter.dtype))


def _output_projections(model) -> list[nn.Module]:
    """The attention output projection of every block: the course GPT's ``blocks[i].attn.out`` or a
    ``GPT2LMHeadModel``'s ``transformer.h[i].attn.c_proj``."""
    if hasattr(model, "blocks"):
        return [block.attn.out for block in model.blocks]
    return [block.attn.c_proj for block in model.transformer.h]


def _lm_loss(model, input_ids: torch.Tensor) -> float:
    if hasattr(model, "blocks"):  # the course GPT: forward(idx, targets) -> (logits, loss)
        return model(input_ids[:, :-1], input_ids[:, 1:])[1].item()
    return model(input_ids=input_ids, labels=input_ids).loss.item()


@torch.no_grad()
def head_importance(model, input_ids: torch.Tensor, n_heads: int, silenced: Iterable[tuple[int, int]] = ()) -> torch.Tensor:
    """``(n_layers, n_heads)``: how much a GPT's language-model loss on ``input_ids (B, T)`` rises when
    one head's output is zeroed (before the attention's output projection), with the heads in
    ``silenced`` already zeroed. Structured pruning removes the heads that cost least."""
    projections = _output_projections(model)
    d_head = projections[0].in_features // n_heads
    zeroed = {(int(layer), int(head)) for layer, head in silenced}
    handles = []

    def hook_for(layer: int):
        def silence(module, args):
            x = args[0]
            heads = [h for (l, h) in zeroed if l == layer]
            if not heads:
                return None
            x = x.clone()
            for head in heads:
                x[..., head * d_head:(head + 1) * d_head] = 0
            return (x,)
        return silence

    try:
        handles = [p.register_forward_pre_hook(hook_for(i)) for i, p in enumerate(projections)]
        base = _lm_loss(model, input_ids)
        scores = torch.full((len(projections), n_heads), float("nan"))
        for layer in range(len(projections)):
            for head in range(n_heads):
                if (layer, head) in zeroed:
                    continue
                zeroed.add((layer, head))
                scores[layer, head] = _lm_loss(model, input_ids) - base
                zeroed.discard((layer, head))
    finally:
        for handle in handles:
            handle.remove()
    return scores


def silence_heads(model, heads: Iterable[tuple[int, int]], n_heads: int) -> None:
    """Structured pruning: zero the columns of each attention output projection that read the given
    ``(layer, head)`` pairs, in place (the head's whole contribution is gone; its rows in ``qkv`` could be
    dropped too, making the matrices smaller)."""
    projections = _output_projections(model)
    d_head = projections[0].in_features // n_heads
    with torch.no_grad():
        for layer, head in heads:
            weight = projections[layer].weight
            if weight.shape[0] == projections[layer].in_features and not hasattr(model, "blocks"):
                weight[head * d_head:(head + 1) * d_head, :] = 0      # Conv1D: (in, out)
            else:
                weight[:, head * d_head:(head + 1) * d_head] = 0      # nn.Linear: (out, in)


# ------------------------------------------------------------------------------------------ distillation

def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al. (2015): ``alpha · T² · KL(p_T ‖ q_T) + (1 - alpha) · CE(student, labels)``.

    ``p_T = softmax(teacher / T)``, ``q_T = softmax(student / T)`` (both softened by the same T), the KL
    averaged over the batch; ``T²`` keeps the soft term's gradients the size of the hard term's.
    Logits ``(B, C)``, labels ``(B,)`` -> a scalar. The teacher gets no gradient.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive; received {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; received {alpha}")
    t = temperature
    log_q = F.log_softmax(student_logits / t, dim=-1)
    log_p = F.log_softmax(teacher_logits.detach() / t, dim=-1)
    soft = (log_p.exp() * (log_p - log_q)).sum(-1).mean()
    hard = F.cross_entropy(student_logits, labels)
    return alpha * t * t * soft + (1 - alpha) * hard


# ------------------------------------------------------------------------------------------ LoRA

class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) · x Aᵀ Bᵀ`` with ``base`` frozen, ``A (r, in)`` random and ``B (out, r)`` zero.

    At initialisation the layer equals ``base`` exactly (B = 0); training moves only ``A`` and ``B``:
    ``r · (in + out)`` numbers instead of ``in · out``. :meth:`merge` folds the update into one
    ``nn.Linear`` with weight ``W + (alpha / r) · B A`` for inference at the base layer's cost.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear; received {type(base).__name__}")
        limit = min(base.in_features, base.out_features)
        if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= limit:
            raise ValueError(f"LoRA rank r must be an integer in 1 .. min(in_features, out_features) = {limit}; received {r!r}")
        self.base = base
        self.base.requires_grad_(False)
        self.r, self.alpha, self.scale = r, alpha, alpha / r
        weight = base.weight
        self.A = nn.Parameter(torch.empty(r, base.in_features, dtype=weight.dtype, device=weight.device))
        self.B = nn.Parameter(torch.zeros(base.out_features, r, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # as nn.Linear (and peft) initialise a weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale   # (..., in) -> (..., r) -> (..., out)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` computing the same function (weight ``W + scale · B A``)."""
        merged = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                           dtype=self.base.weight.dtype, device=self.base.weight.device)
        merged.weight.copy_(self.base.weight + self.scale * (self.B @ self.A))
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged


def add_lora(model: nn.Module, names: Iterable[str], r: int = 8, alpha: float = 16.0,
             layer: type[nn.Module] | None = None) -> nn.Module:
    """Freeze ``model`` and replace each ``nn.Linear`` whose name ends with one of ``names`` by a
    ``layer(linear, r, alpha)`` (:class:`LoRALinear` by default; chapter 10's demonstrations pass the learner's
    own); returns the model."""
    layer = layer or LoRALinear
    model.requires_grad_(False)
    names = tuple(names)
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.split(".")[-1] in names:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, layer(module, r, alpha))
    return model


def merge_lora(model: nn.Module, layer: type[nn.Module] | None = None) -> nn.Module:
    """Replace every ``layer`` (:class:`LoRALinear` by default) in ``model`` by its ``merge()``, an ``nn.Linear``;
    returns the model."""
    layer = layer or LoRALinear
    for name, module in list(model.named_modules()):
        if isinstance(module, layer):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module.merge())
    return model


# ------------------------------------------------------------------------------------------ safe saving

class CheckpointError(ValueError):
    """A file that is not a weights checkpoint (or holds more than tensors)."""


SAFETENSORS_MAX_HEADER = 100_000_000


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return 0 < size < SAFETENSORS_MAX_HEADER and head[8:9] == b"{"


def save_weights(state: nn.Module | dict, path: str | os.PathLike) -> Path:
    """Save a module's (or a dict's) tensors with safetensors: no pickle, nothing that runs on load.
    Shared (tied) tensors are saved as separate copies."""
    from safetensors.torch import save_file

    tensors = state.state_dict() if isinstance(state, nn.Module) else dict(state)
    save_file({k: v.detach().cpu().clone().contiguous() for k, v in tensors.items()}, str(path))
    return Path(path)


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A dict of tensors from a safetensors file or a ``torch.save`` file, never running pickled code.

    Raises :class:`CheckpointError` for a missing file, a file that is neither format, or a ``torch.save``
    file holding objects other than tensors (``weights_only=True`` refuses them)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if _is_safetensors(path):
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise CheckpointError(f"{path}: a damaged safetensors file ({error})") from None
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a checkpoint: neither a safetensors file nor a torch.save archive")
    try:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split(". ")[0]
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True): {first}") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"{path} holds a {type(loaded).__name__}, not a dict of tensors")
    return loaded


# ------------------------------------------------------------------------------------------ measuring

class _ByteCounter(io.RawIOBase):
    """A write-only file that only counts the bytes written to it."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        self.count += size
        return size


def serialized_mb(model: nn.Module) -> float:
    """Size in MB (10⁶ bytes) of ``torch.save(model.state_dict())``: what the model costs on disk (a tensor
    shared by two layers counts once). The bytes are counted, not kept, so a large model costs no copy."""
    counter = _ByteCounter()
    torch.save(model.state_dict(), counter)
    return counter.count / 1e6


def allocated_mb(function: Callable[[], object]) -> float:
    """MB (10⁶ bytes) that the CPU allocator handed out while ``function()`` ran, by the PyTorch profiler
    (``profile_memory=True``): the sum of every allocation, so a big temporary shows in full. The
    profiler's own log lines (written to file descriptor 2) are silenced while it runs."""
    from torch.profiler import ProfilerActivity, profile

    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            function()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return sum(max(event.self_cpu_memory_usage, 0) for event in prof.key_averages()) / 1e6


def latency(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Fastest wall time of ``function()`` in seconds over ``repeats`` calls, after ``warmup`` untimed
    calls: the least disturbed run on a shared machine. A demonstration: compare ratios measured in the
    same run, never absolute numbers between machines."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


class Timing(NamedTuple):
    """Wall times of repeated runs, in seconds: their median and their range (``low`` .. ``high``)."""

    median: float
    low: float
    high: float

    def ms(self, per: float = 1.0) -> str:
        """``"12.3 ms [11.9-14.0]"`` (divided by ``per``, e.g. the examples in a batch)."""
        return f"{1000 * self.median / per:.3g} ms [{1000 * self.low / per:.3g}-{1000 * self.high / per:.3g}]"

    def versus(self, base: "Timing") -> str:
        """How this compares with ``base``: a speed-up or slow-down is stated only when the two ranges do
        not overlap; otherwise they are the same within the spread. Ratios of medians on a shared machine
        carry two significant digits at most: ``"440x faster"``, ``"3.3x slower"``, ``"same within the
        spread (1x)"``."""
        ratio = base.median / self.median

        def two_digits(value: float) -> str:
            return f"{float(f'{value:.2g}'):g}x"

        if self.high < base.low:
            return f"{two_digits(ratio)} faster"
        if self.low > base.high:
            return f"{two_digits(1 / ratio)} slower"
        return f"same within the spread ({two_digits(ratio)})"


def timings(runs: dict[object, Callable[[], object]], repeats: int = 5, warmup: int = 1,
            seed: int = 0) -> dict[object, Timing]:
    """Time several functions in ``repeats`` interleaved rounds (each function once per round, after
    ``warmup`` untimed calls each), so that every function sees the same state of a shared machine;
    each gets the median and the range of its rounds. Each round runs the functions in a new order
    (shuffled with ``seed``): a small model timed right after a large one finds the caches full of the
    large one's data, and a fixed order would charge that to the same function every round."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    seconds: dict[object, list[float]] = {name: [] for name in runs}
    order, shuffler = list(runs), random.Random(seed)
    for _ in range(max(1, repeats)):
        shuffler.shuffle(order)
        for name in order:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return {name: Timing(statistics.median(times), min(times), max(times)) for name, times in seconds.items()}


SPEED_RECORD = Path(__file__).resolve().parents[2] / "benchmarks" / "compress_speed.txt"
SPEED_COMMAND = "python benchmarks/compress_speed.py --compile --threads 1 --repeat 5 > benchmarks/compress_speed.txt"


def recorded_speed() -> str:
    """The text of ``benchmarks/compress_speed.txt``: a recorded run of ``benchmarks/compress_speed.py --compile``
    (its first line says when and with which command), which chapter 10 quotes for ``torch.compile`` instead of
    compiling in the notebook. Found from the package's own location, so the notebook finds it wherever it runs
    (its folder, a copy elsewhere, the grader's); raises ``FileNotFoundError`` naming the command that writes it."""
    if not SPEED_RECORD.exists():
        raise FileNotFoundError(f"{SPEED_RECORD} is missing: run {SPEED_COMMAND} from the repository's root")
    return SPEED_RECORD.read_text()
