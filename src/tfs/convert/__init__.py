"""Weights between the course's modules, ``torch.nn`` and ``transformers``: the one place that maps them.

- :mod:`tfs.convert.torch_nn`  the course's attention and blocks <-> ``nn.MultiheadAttention``,
  ``nn.TransformerEncoderLayer``, ``nn.TransformerEncoder`` (same layout: a copy, no reshaping)
"""

from tfs.convert.torch_nn import copy_block_to_torch, copy_encoder_to_torch, copy_mha_to_torch
from tfs.convert.gpt import gpt_from_hf, load_hf_state_dict, to_hf_model, to_hf_state_dict  # noqa: F401  (chapter 06)

__all__ = ["copy_block_to_torch", "copy_encoder_to_torch", "copy_mha_to_torch"]
