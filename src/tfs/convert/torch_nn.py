"""The course's attention and blocks into ``torch.nn``'s: the layouts match, so each weight is a copy.

============================  ==========================================
course (:mod:`tfs.nn`)        ``torch.nn``
============================  ==========================================
``MultiHeadAttention.qkv``    ``MultiheadAttention.in_proj_weight/bias``
``MultiHeadAttention.out``    ``MultiheadAttention.out_proj``
``TransformerBlock.attn``     ``TransformerEncoderLayer.self_attn``
``TransformerBlock.ff.linear1/2``  ``TransformerEncoderLayer.linear1/2``
``TransformerBlock.norm1/2``  ``TransformerEncoderLayer.norm1/2``
``Encoder.final_norm``        ``TransformerEncoder.norm``
============================  ==========================================

Each function takes any module with the course's attribute names (the learner's or the reference)
and copies *into* the ``torch.nn`` module, which then serves as the oracle.
"""

from __future__ import annotations

import torch
from torch import nn


def _copy(target: torch.Tensor | None, source: torch.Tensor | None, name: str) -> None:
    if (target is None) != (source is None):
        raise ValueError(f"{name}: one side has a bias and the other has none")
    if target is None:
        return
    if target.shape != source.shape:
        raise ValueError(f"{name}: expected shape {tuple(target.shape)}, received {tuple(source.shape)}")
    target.copy_(source)


@torch.no_grad()
def copy_mha_to_torch(mha: nn.Module, torch_mha: nn.MultiheadAttention) -> nn.MultiheadAttention:
    """Copy ``mha.qkv`` and ``mha.out`` into ``torch_mha``; return it."""
    _copy(torch_mha.in_proj_weight, mha.qkv.weight, "qkv.weight")
    _copy(torch_mha.in_proj_bias, mha.qkv.bias, "qkv.bias")
    _copy(torch_mha.out_proj.weight, mha.out.weight, "out.weight")
    _copy(torch_mha.out_proj.bias, mha.out.bias, "out.bias")
    return torch_mha


@torch.no_grad()
def torch_mha_from_state(state: dict[str, torch.Tensor], n_heads: int) -> nn.MultiheadAttention:
    """A new ``nn.MultiheadAttention`` (batch first) holding the course layout's weights ``state``
    (``qkv.weight``, ``qkv.bias``, ``out.weight``, ``out.bias``), in their dtype."""
    d_model = state["out.weight"].shape[0]
    torch_mha = nn.MultiheadAttention(d_model, n_heads, batch_first=True, dtype=state["out.weight"].dtype)
    _copy(torch_mha.in_proj_weight, state["qkv.weight"], "qkv.weight")
    _copy(torch_mha.in_proj_bias, state["qkv.bias"], "qkv.bias")
    _copy(torch_mha.out_proj.weight, state["out.weight"], "out.weight")
    _copy(torch_mha.out_proj.bias, state["out.bias"], "out.bias")
    return torch_mha


@torch.no_grad()
def copy_block_to_torch(block: nn.Module, layer: nn.TransformerEncoderLayer) -> nn.TransformerEncoderLayer:
    """Copy a block (``attn``, ``ff.linear1/2``, ``norm1/2``) into ``nn.TransformerEncoderLayer``; return it."""
    copy_mha_to_torch(block.attn, layer.self_attn)
    pairs = {"ff.linear1": (block.ff.linear1, layer.linear1), "ff.linear2": (block.ff.linear2, layer.linear2),
             "norm1": (block.norm1, layer.norm1), "norm2": (block.norm2, layer.norm2)}
    for name, (mine, theirs) in pairs.items():
        _copy(theirs.weight, mine.weight, f"{name}.weight")
        _copy(theirs.bias, mine.bias, f"{name}.bias")
    return layer


@torch.no_grad()
def copy_encoder_to_torch(encoder: nn.Module, torch_encoder: nn.TransformerEncoder) -> nn.TransformerEncoder:
    """Copy every block and, for a pre-LN stack, ``final_norm`` into ``torch_encoder.norm``; return it."""
    if len(encoder.layers) != len(torch_encoder.layers):
        raise ValueError(f"{len(encoder.layers)} blocks cannot be copied into {len(torch_encoder.layers)}")
    for block, layer in zip(encoder.layers, torch_encoder.layers):
        copy_block_to_torch(block, layer)
    if isinstance(torch_encoder.norm, nn.LayerNorm):
        _copy(torch_encoder.norm.weight, encoder.final_norm.weight, "final_norm.weight")
        _copy(torch_encoder.norm.bias, encoder.final_norm.bias, "final_norm.bias")
    return torch_encoder
