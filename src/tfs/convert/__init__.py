"""Weights between the course's modules, ``torch.nn`` and ``transformers``: the one place that maps them.

- :mod:`tfs.convert.torch_nn`  the course's attention and blocks <-> ``nn.MultiheadAttention``,
  ``nn.TransformerEncoderLayer``, ``nn.TransformerEncoder`` (same layout: a copy, no reshaping)
- :mod:`tfs.convert.bert`  the course's BERT <-> ``transformers`` ``BertModel``/``BertForMaskedLM``
- :mod:`tfs.convert.gpt`   the course's GPT <-> ``transformers`` ``GPT2LMHeadModel`` (``Conv1D`` transposed)
- :mod:`tfs.convert.llama` the course's LLaMA <-> ``transformers`` ``LlamaForCausalLM`` (a plain copy, by name)
"""

from tfs.convert.bert import bert_from_hf, bert_to_hf, load_hf_bert
from tfs.convert.gpt import gpt_from_hf, load_hf_state_dict, to_hf_model, to_hf_state_dict
from tfs.convert.torch_nn import copy_block_to_torch, copy_encoder_to_torch, copy_mha_to_torch, torch_mha_from_state

__all__ = ["bert_from_hf", "bert_to_hf", "copy_block_to_torch", "copy_encoder_to_torch", "copy_mha_to_torch",
           "gpt_from_hf", "load_hf_bert", "load_hf_state_dict", "to_hf_model", "to_hf_state_dict", "torch_mha_from_state"]
