"""Chapter 09 (pretrained checkpoints) collectors: run the learner's functions on seeded inputs, return plain data.

The model is a tiny ``GPT2LMHeadModel`` (2 layers, 16 wide, 16 positions, vocabulary 50) whose weights are
written by parameter name from seeded generators, in float64, so the judge rebuilds the very same model
without trusting the kernel. An exception the learner's code raises is reported as its first line
(``"ValueError: ..."``), or ``"no error"``.
"""

from __future__ import annotations

import copy
import zlib

import torch

from tfs.grader.judging import error_line, raised
from tfs.grader import judging

VOCAB, CONTEXT, EOS = 50, 16, 0
PPL_CASES = {  # name: (n_tokens, window, stride)
    "one_window": (12, 16, 16),
    "disjoint": (40, 16, 16),
    "overlap": (40, 16, 6),
    "ragged": (37, 12, 5),
    "default_stride": (30, 12, None),   # None: the argument left out (stride defaults to window)
    "defaults": (40, None, None),       # window defaults to the model's context, stride to window
}
SHARP_CASE, SHARPNESS = (24, 16, 8), 20.0   # the float32 model with logits far apart: (n_tokens, window, stride)
BLOCK_LENGTHS, BLOCK_SIZE, EXACT_BLOCK = (5, 3, 9, 4), 4, 5   # 25 tokens with the eos: 5 blocks of 5 exactly
BATCH_LENGTHS, PROMPTS = (5, 2, 4), (2, 1, 0)
OTHER_PAD = 49   # a pad_id other than 0 (the eos): padding must use the argument
SCALING_SHAPES = ((1, 16), (2, 24), (2, 32), (2, 48), (3, 64), (4, 96), (4, 128))   # (layers, width), as the shipped table
SCALING_CASES = {  # name: (alpha, N_c, relative noise of the loss)
    "exact": (0.076, 8.8e13, 0.0),
    "noisy": (0.05, 3.0e11, 0.02),
}


def seeded(name: str, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    generator = judging.generator(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def token_ids(name: str, n: int, low: int = 1) -> torch.Tensor:
    """``n`` seeded token ids in ``low .. VOCAB-1`` (int64)."""
    generator = judging.generator(zlib.crc32(name.encode()))
    return torch.randint(low, VOCAB, (n,), generator=generator)


def tiny_gpt(dropout: float = 0.0):
    """The graders' GPT-2: float64, weights from :func:`seeded` by parameter name, in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=16, n_layer=2, n_head=2, n_inner=32,
                        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=EOS, eos_token_id=EOS)
    model = GPT2LMHeadModel(config).double()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 0.1 if name.endswith(".bias") else 0.5
            parameter.copy_(seeded(name, tuple(parameter.shape)) * scale + (1.0 if "ln" in name and name.endswith("weight") else 0.0))
    return model.eval()


def sharp_gpt():
    """:func:`tiny_gpt` in float32 with its final layer norm scaled by ``SHARPNESS``, so its logits are that much
    farther apart: a softmax underflows to 0 for unlikely tokens (float32 ends near exp(-104)) while their
    log-probabilities, computed stably, stay finite."""
    model = tiny_gpt().float()
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(SHARPNESS)
        model.transformer.ln_f.bias.mul_(SHARPNESS)
    return model


def _number(value):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    return float(value) if isinstance(value, (int, float)) else repr(type(value).__name__)


def perplexity_values(perplexity) -> dict:
    """One number (or the error line raised) per case of ``PPL_CASES``, and ``"sharp"`` on :func:`sharp_gpt`. A
    result that is not a Python float (the statement asks for one) is ``{"returned": what it was, "value": number}``."""
    model = tiny_gpt()
    values = {name: _float_or_what(perplexity, model, token_ids(name, n), *[a for a in (window, stride) if a is not None])
              for name, (n, window, stride) in PPL_CASES.items()}
    n, window, stride = SHARP_CASE
    return values | {"sharp": _float_or_what(perplexity, sharp_gpt(), token_ids("sharp", n), window, stride)}


def _float_or_what(function, *args):
    """The Python float ``function(*args)`` returns, the error line it raised, or, for anything else (a 0-d tensor, a
    list), ``{"returned": its type (and dtype), "value": its number or type name}``."""
    try:
        value = function(*args)
    except Exception as error:
        return error_line(error)
    if isinstance(value, float):
        return float(value)
    what = (f"a {value.dim()}-d torch.Tensor of {value.dtype}" if isinstance(value, torch.Tensor)
            else f"a {type(value).__name__}")
    return {"returned": what, "value": _number(value)}


def perplexity_mode(perplexity) -> dict:
    """The model arrives in training mode with dropout 0.3; hooks record the mode and autograd in each forward.
    Also the function's own result for the same model arriving in eval mode: the mode must not change it."""
    model = tiny_gpt(dropout=0.3).train()
    seen: list[list[bool]] = []
    model.register_forward_hook(lambda module, args, output: seen.append([module.training, torch.is_grad_enabled()]))
    torch.manual_seed(0)
    value = _number(perplexity(model, token_ids("overlap", 40), 16, 6))
    eval_model = tiny_gpt(dropout=0.3).eval()
    in_eval = _value_or_error(perplexity, eval_model, token_ids("overlap", 40), 16, 6)
    return {"value": value, "in_eval": in_eval, "seen": seen, "eval_model_left_training": eval_model.training}


def perplexity_errors(perplexity) -> dict:
    model = tiny_gpt()
    ids = token_ids("errors", 30)
    return {"stride_over_window": raised(perplexity, model, ids, 8, 12),
            "window_over_context": raised(perplexity, model, ids, 2 * CONTEXT, 8),
            "empty": raised(perplexity, model, torch.zeros(0, dtype=torch.int64), 8, 8),
            "one_token": raised(perplexity, model, ids[:1], 8, 8),
            "fine": _value_or_error(perplexity, model, ids, 8, 8),
            "two_tokens": _value_or_error(perplexity, model, ids[:2], 8, 8),                 # the fewest allowed
            "window_is_context": _value_or_error(perplexity, model, ids, CONTEXT, 8)}        # the largest window


def _value_or_error(function, *args):
    """The number ``function(*args)`` returns, or the error line it raised."""
    try:
        return _number(function(*args))
    except Exception as error:
        return error_line(error)


def block_texts() -> list[list[int]]:
    return [token_ids(f"block{i}", n).tolist() for i, n in enumerate(BLOCK_LENGTHS)]


def lm_blocks(prepare_lm_blocks) -> dict:
    texts = block_texts()
    out = prepare_lm_blocks(texts, BLOCK_SIZE, EOS)
    texts_kept = texts == block_texts()   # the caller's lists, read, never written
    texts = block_texts()
    other = prepare_lm_blocks(texts, 6, 7)
    texts = block_texts()
    keys = sorted(out) if isinstance(out, dict) else repr(type(out).__name__)
    pick = (lambda d, k: d.get(k) if isinstance(d, dict) else None)
    exact = prepare_lm_blocks(texts, EXACT_BLOCK, EOS)
    try:   # 3 tokens and their eos fill one block of 4 exactly: no error
        one_block = pick(prepare_lm_blocks([[1, 2, 3]], 4, EOS), "input_ids")
    except Exception as error:
        one_block = error_line(error)
    return {"keys": keys, "input_ids": pick(out, "input_ids"), "labels": pick(out, "labels"),
            "other_ids": pick(other, "input_ids"), "exact_ids": pick(exact, "input_ids"),
            "too_short": raised(prepare_lm_blocks, [[1, 2]], 8, EOS), "one_block": one_block, "texts_kept": texts_kept}


def batch_texts() -> list[list[int]]:
    """Three texts, each ending with the end-of-text token 0 (= the pad id: GPT-2 has no pad token)."""
    return [token_ids(f"batch{i}", n - 1).tolist() + [EOS] for i, n in enumerate(BATCH_LENGTHS)]


def _lm_batch(causal_lm_batch) -> dict:
    texts = batch_texts()
    plain = causal_lm_batch(texts, EOS)
    texts_kept = texts == batch_texts()   # the caller's lists, read, never written
    prompted = causal_lm_batch(batch_texts(), EOS, list(PROMPTS))
    other_pad = causal_lm_batch(batch_texts(), OTHER_PAD)
    pick = (lambda d, k: d.get(k) if isinstance(d, dict) else None)
    return {"keys": sorted(plain) if isinstance(plain, dict) else repr(type(plain).__name__),
            "input_ids": pick(plain, "input_ids"), "attention_mask": pick(plain, "attention_mask"),
            "labels": pick(plain, "labels"), "prompted_labels": pick(prompted, "labels"),
            "prompted_ids": pick(prompted, "input_ids"), "other_pad_ids": pick(other_pad, "input_ids"),
            "texts_kept": texts_kept}


def lm_batch_padding(causal_lm_batch) -> dict:
    return _lm_batch(causal_lm_batch)


def lm_batch_prompt(causal_lm_batch) -> dict:
    return _lm_batch(causal_lm_batch)


def scaling_case(name: str) -> tuple[list[dict], list[float]]:
    """Rows like the shipped table's (a vocabulary of 1,024 and 64 positions make the embedding tables a large,
    shrinking share of the parameters) and losses that follow ``(N_c / N) ** alpha`` in the non-embedding count ``N``,
    times seeded noise."""
    alpha, n_c, noise = SCALING_CASES[name]
    rows = [{"name": f"s{i + 1}", "n_layer": layers, "n_embd": width, "non_embedding_params": 12 * layers * width ** 2,
             "params": 12 * layers * width ** 2 + (1024 + 64) * width} for i, (layers, width) in enumerate(SCALING_SHAPES)]
    wobble = seeded(f"scaling-{name}", (len(rows),)) * noise
    losses = [(n_c / row["non_embedding_params"]) ** alpha * float(w.exp()) for row, w in zip(rows, wobble)]
    return rows, losses


def _pair_or_error(function, *args):
    """``[alpha, N_c]`` as two numbers from what ``function(*args)`` returns, or the error line it raised."""
    try:
        out = function(*args)
        if isinstance(out, (tuple, list)) and len(out) == 2:
            return [_number(value) for value in out]
        return f"returned a {type(out).__name__}, not a pair (alpha, n_c)"
    except Exception as error:
        return error_line(error)


def scaling_fit(fit_scaling_law) -> dict:
    return {name: _pair_or_error(fit_scaling_law, *scaling_case(name)) for name in SCALING_CASES}
