"""LoRA adapters between the course's LLaMA and ``peft``'s files for ``transformers``' ``LlamaForCausalLM``.

In the course an adapter is the ``A (r, in)`` and ``B (out, r)`` of each :class:`tfs.compress.LoRALinear`
(``blocks.3.attn.q.A``); ``peft`` saves the same two matrices as ``lora_A.weight`` and ``lora_B.weight`` of the
``transformers`` module (``base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight``) in
``adapter_model.safetensors``, beside an ``adapter_config.json`` holding ``r``, ``lora_alpha`` and the targets.
Both compute ``W x + (alpha / r) B A x``, so a folder written here loads with ``PeftModel.from_pretrained`` onto
``LlamaForCausalLM`` and gives the same logits (``tests/test_align.py``). The module names come from
:data:`tfs.convert.llama.LLAMA_LAYER_MAP`, the course's one weight map.
"""

from __future__ import annotations

import json
from pathlib import Path
import torch
from torch import nn

from tfs.compress import LoRALinear
from tfs.convert.llama import LLAMA_LAYER_MAP

__all__ = ["ADAPTER_FILES", "from_peft_state_dict", "load_adapter", "load_lora_state", "save_adapter",
           "to_peft_state_dict"]

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
_PREFIX = "base_model.model."
_MATRIX = {"A": "lora_A.weight", "B": "lora_B.weight"}
_TO_HF = {mine: theirs for theirs, mine in LLAMA_LAYER_MAP}   # "attn.q" -> "self_attn.q_proj"
_TO_COURSE = {theirs: mine for theirs, mine in LLAMA_LAYER_MAP}


def to_peft_state_dict(adapter: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{"blocks.i.<module>.A" | ".B": tensor}`` -> ``peft``'s key names for ``LlamaForCausalLM``."""
    out = {}
    for key, value in adapter.items():
        _, layer, *module, matrix = key.split(".") if key.count(".") >= 3 else ("", "", "", "")
        hf_module = _TO_HF.get(".".join(module))
        if not key.startswith("blocks.") or hf_module is None or matrix not in _MATRIX:
            raise KeyError(f"{key!r} is not a LoRA matrix of the course's LLaMA (blocks.<i>.<module>.A or .B)")
        out[f"{_PREFIX}model.layers.{layer}.{hf_module}.{_MATRIX[matrix]}"] = value
    return out


def from_peft_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_peft_state_dict`."""
    out = {}
    for key, value in state.items():
        rest = key.removeprefix(f"{_PREFIX}model.layers.")
        layer, rest = rest.split(".", 1)
        hf_module, matrix = rest.rsplit(".lora_", 1)
        if hf_module not in _TO_COURSE or matrix not in ("A.weight", "B.weight"):
            raise KeyError(f"{key!r} is not a peft LoRA matrix of a LlamaForCausalLM layer")
        out[f"blocks.{layer}.{_TO_COURSE[hf_module]}.{matrix[0]}"] = value
    return out


def save_adapter(adapter: dict[str, torch.Tensor], folder: str | Path, r: int, alpha: float,
                 base_model: str, dtype: torch.dtype = torch.float16) -> list[Path]:
    """Write ``adapter`` (course names) as a ``peft`` LoRA folder, its matrices in ``dtype``; returns the files."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    targets = sorted({key.split(".")[-2] for key in adapter})
    hf_targets = sorted({_TO_HF[m].split(".")[-1] for m in _TO_HF if m.split(".")[-1] in targets})
    LoraConfig(r=r, lora_alpha=alpha, target_modules=hf_targets, lora_dropout=0.0, bias="none",
               task_type="CAUSAL_LM", base_model_name_or_path=base_model).save_pretrained(str(folder))
    save_file({k: v.detach().to(dtype).contiguous() for k, v in to_peft_state_dict(adapter).items()},
              str(folder / "adapter_model.safetensors"))
    return [folder / name for name in ADAPTER_FILES]


def load_adapter(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(adapter in course names, float32; {"r", "alpha", "targets"})`` from a ``peft`` LoRA folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    state = load_file(str(folder / "adapter_model.safetensors"))
    adapter = {k: v.float() for k, v in from_peft_state_dict(state).items()}
    targets = sorted(_TO_COURSE[m].split(".")[-1] for m in _TO_COURSE
                     if m.split(".")[-1] in set(config["target_modules"]))
    return adapter, {"r": int(config["r"]), "alpha": float(config["lora_alpha"]), "targets": targets}


@torch.no_grad()
def load_lora_state(model: nn.Module, adapter: dict[str, torch.Tensor], strict: bool = True) -> nn.Module:
    """Copy an adapter into the :class:`LoRALinear` layers of ``model`` (wrapped already, same rank); with
    ``strict``, every LoRA layer must get both matrices. Returns the model."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    missing = sorted(f"{name}.{m}" for name in layers for m in "AB" if f"{name}.{m}" not in adapter)
    unexpected = sorted(k for k in adapter if k.rsplit(".", 1)[0] not in layers)
    if unexpected or (strict and missing):
        raise KeyError(f"the adapter does not fit the model's LoRA layers: missing {missing[:3]}, "
                       f"unexpected {unexpected[:3]}")
    for key, value in adapter.items():
        name, matrix = key.rsplit(".", 1)
        target = getattr(layers[name], matrix)
        if target.shape != value.shape:
            raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit {tuple(target.shape)} (another rank?)")
        target.copy_(value)
    return model

