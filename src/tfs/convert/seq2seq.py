"""The course's encoder-decoder (:mod:`tfs.models.seq2seq`) to and from ``torch.nn.Transformer``.

==================================  ==================================================
course                              ``nn.Transformer`` (``batch_first=True``)
==================================  ==================================================
``encoder[i]`` (TransformerBlock)   ``encoder.layers[i]`` (see :mod:`tfs.convert.torch_nn`)
``encoder_norm``                    ``encoder.norm``
``decoder[i].self_attn.qkv/out``    ``decoder.layers[i].self_attn.in_proj_*/out_proj``
``decoder[i].cross_attn.qkv/out``   ``decoder.layers[i].multihead_attn.in_proj_*/out_proj``
``decoder[i].ff.linear1/2``         ``decoder.layers[i].linear1/2``
``decoder[i].norm1/2/3``            ``decoder.layers[i].norm1/2/3``
``decoder_norm``                    ``decoder.norm``
==================================  ==================================================

``nn.Transformer`` has no embeddings and no output layer: those stay in the course's model.
Functions take any module with these attribute names (the learner's or the reference).
"""

from __future__ import annotations

import torch
from torch import nn

from tfs.convert.torch_nn import _copy, copy_block_to_torch, copy_mha_to_torch

__all__ = ["copy_decoder_block_to_torch", "seq2seq_from_torch", "to_torch_transformer", "torch_transformer_for"]


def _copy_norm(theirs: nn.Module, mine: nn.Module, name: str) -> None:
    _copy(theirs.weight, mine.weight, f"{name}.weight")
    _copy(theirs.bias, mine.bias, f"{name}.bias")


@torch.no_grad()
def copy_decoder_block_to_torch(block: nn.Module, layer: nn.TransformerDecoderLayer) -> nn.TransformerDecoderLayer:
    """Copy a decoder block (``self_attn``, ``cross_attn``, ``ff``, ``norm1..3``) into ``layer``; return it."""
    copy_mha_to_torch(block.self_attn, layer.self_attn)
    copy_mha_to_torch(block.cross_attn, layer.multihead_attn)
    for name, mine, theirs in (("ff.linear1", block.ff.linear1, layer.linear1),
                               ("ff.linear2", block.ff.linear2, layer.linear2)):
        _copy(theirs.weight, mine.weight, f"{name}.weight")
        _copy(theirs.bias, mine.bias, f"{name}.bias")
    for i in (1, 2, 3):
        _copy_norm(getattr(layer, f"norm{i}"), getattr(block, f"norm{i}"), f"norm{i}")
    return layer


def torch_transformer_for(config, dtype: torch.dtype = torch.float32) -> nn.Transformer:
    """An ``nn.Transformer`` (batch first) with the sizes of a :class:`~tfs.models.seq2seq.Seq2SeqConfig`."""
    return nn.Transformer(d_model=config.d_model, nhead=config.n_heads, num_encoder_layers=config.n_encoder_layers,
                          num_decoder_layers=config.n_decoder_layers, dim_feedforward=config.d_ff, dropout=0.0,
                          activation=config.activation, layer_norm_eps=config.eps, batch_first=True,
                          norm_first=config.norm_first, dtype=dtype)


@torch.no_grad()
def to_torch_transformer(model: nn.Module, transformer: nn.Transformer | None = None) -> nn.Transformer:
    """Copy the model's encoder and decoder stacks into ``transformer`` (a new one by default); return it."""
    if transformer is None:
        transformer = torch_transformer_for(model.config, dtype=model.encoder_norm.weight.dtype)
    if len(model.encoder) != len(transformer.encoder.layers) or len(model.decoder) != len(transformer.decoder.layers):
        raise ValueError(f"{len(model.encoder)}+{len(model.decoder)} layers cannot be copied into "
                         f"{len(transformer.encoder.layers)}+{len(transformer.decoder.layers)}")
    for block, layer in zip(model.encoder, transformer.encoder.layers):
        copy_block_to_torch(block, layer)
    for block, layer in zip(model.decoder, transformer.decoder.layers):
        copy_decoder_block_to_torch(block, layer)
    _copy_norm(transformer.encoder.norm, model.encoder_norm, "encoder_norm")
    _copy_norm(transformer.decoder.norm, model.decoder_norm, "decoder_norm")
    return transformer


@torch.no_grad()
def seq2seq_from_torch(transformer: nn.Transformer, model: nn.Module) -> nn.Module:
    """Copy ``transformer``'s stacks into the course's ``model`` (the inverse of :func:`to_torch_transformer`)."""
    def mha(mine, theirs):
        mine.qkv.weight.copy_(theirs.in_proj_weight)
        mine.qkv.bias.copy_(theirs.in_proj_bias)
        mine.out.weight.copy_(theirs.out_proj.weight)
        mine.out.bias.copy_(theirs.out_proj.bias)

    def lin_norm(mine, theirs):
        mine.weight.copy_(theirs.weight)
        mine.bias.copy_(theirs.bias)

    for block, layer in zip(model.encoder, transformer.encoder.layers, strict=True):
        mha(block.attn, layer.self_attn)
        for a, b in ((block.ff.linear1, layer.linear1), (block.ff.linear2, layer.linear2),
                     (block.norm1, layer.norm1), (block.norm2, layer.norm2)):
            lin_norm(a, b)
    for block, layer in zip(model.decoder, transformer.decoder.layers, strict=True):
        mha(block.self_attn, layer.self_attn)
        mha(block.cross_attn, layer.multihead_attn)
        for a, b in ((block.ff.linear1, layer.linear1), (block.ff.linear2, layer.linear2), (block.norm1, layer.norm1),
                     (block.norm2, layer.norm2), (block.norm3, layer.norm3)):
            lin_norm(a, b)
    lin_norm(model.encoder_norm, transformer.encoder.norm)
    lin_norm(model.decoder_norm, transformer.decoder.norm)
    return model
