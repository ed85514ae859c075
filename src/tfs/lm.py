"""Chapter 09: using a pretrained causal language model correctly.

- :func:`perplexity` of a causal LM on a long text with a sliding window: each window holds at most
  ``window`` tokens and starts ``stride`` tokens after the previous one; a token is scored **at most once**,
  in the first window where it is not the first position. With ``stride < window`` the windows overlap and
  every token after the first is scored, with at least ``window - stride`` tokens of context (the first
  window's tokens aside); with ``stride == window`` they do not overlap, and each later window's first token
  is not scored (nothing precedes it in its window). This is the ``transformers`` perplexity guide's scheme,
  with the mean taken over the tokens actually scored.
- :func:`prepare_lm_blocks`: causal-LM training data by concatenation: every text followed by the end-of-text
  token, all joined, cut into blocks of ``block_size`` (the remainder dropped), ``labels`` a copy of
  ``input_ids`` (``transformers``' causal-LM models shift the labels themselves).
- :func:`causal_lm_batch`: per-text batches with right padding and the **loss mask**: ``labels`` is
  ``-100`` (ignored by ``F.cross_entropy``) on padding and on each text's prompt tokens.
- :func:`check_pipeline_task` / :func:`pipeline_for`: a ``pipeline`` task the checkpoint's head cannot serve
  raises a ``ValueError`` that names the missing head.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["IGNORE_INDEX", "PIPELINE_HEADS", "causal_lm_batch", "check_pipeline_task", "context_size", "lm_logits",
           "perplexity", "pipeline_for", "prepare_lm_blocks", "window_spans"]

IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: these labels cost nothing and get no gradient


def context_size(model: nn.Module) -> int | None:
    """The longest input ``model`` accepts (``config.n_positions`` / ``max_position_embeddings``), or None."""
    config = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings", "block_size", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    return None


def lm_logits(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, T, V)`` of a ``transformers`` model (``.logits``) or of a module that returns them."""
    out = model(input_ids)
    if isinstance(out, tuple):
        out = out[0]
    return getattr(out, "logits", out)


def window_spans(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """``[(begin, end, first_scored)]``: the windows ``ids[begin:end]`` and the first position each one scores.

    Positions ``first_scored .. end-1`` are scored in that window, and no position twice. With ``stride < window``
    together they score every position ``1 .. n_tokens-1``; with ``stride == window`` each window after the first
    starts at a position it cannot score (``first_scored == begin + 1``), so those positions are left out.
    """
    spans, previous_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        spans.append((begin, end, max(previous_end, begin + 1)))
        previous_end = end
        if end == n_tokens:
            break
    return spans


def perplexity(model: nn.Module, input_ids: torch.Tensor, window: int | None = None, stride: int | None = None) -> float:
    """Perplexity of a causal LM on one token sequence, with a sliding window.

    input_ids (N,) int64 (or (1, N)); window: tokens per forward pass (default: the model's context);
    stride: tokens between window starts (default: window). Returns exp(mean NLL over the scored tokens), each
    scored at most once (:func:`window_spans`): all N - 1 tokens after the first when ``stride < window``; when
    ``stride == window`` (the default) the first token of every later window is left out. Runs in eval mode
    without gradients (the mode is restored after).
    """
    ids = torch.as_tensor(input_ids)
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1:
        raise ValueError(f"perplexity takes one sequence of token ids (N,) or (1, N); received shape {tuple(ids.shape)}.")
    if ids.numel() < 2:
        raise ValueError(f"perplexity needs a text of at least 2 tokens (the first is never predicted); "
                         f"received {ids.numel()} token(s): is the text empty?")
    limit = context_size(model)
    window = window or limit
    if window is None:
        raise ValueError("give window=: the model's context length could not be read from model.config.")
    stride = stride or window
    if window < 2 or stride < 1:
        raise ValueError(f"window must be >= 2 and stride >= 1; received window={window}, stride={stride}.")
    if stride > window:
        raise ValueError(f"stride={stride} is larger than window={window}: the tokens between two windows would "
                         "never be scored. Use stride <= window.")
    if limit is not None and window > limit:
        raise ValueError(f"window={window} is longer than the model's context ({limit} positions): the position "
                         f"embeddings stop there. Use window <= {limit}.")
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        with torch.no_grad():
            for begin, end, first in window_spans(ids.numel(), window, stride):
                chunk = ids[begin:end].unsqueeze(0)                               # (1, T)
                logits = lm_logits(model, chunk)[0].double()                      # (T, V)
                log_probs = F.log_softmax(logits[first - begin - 1:end - begin - 1], dim=-1)  # predictions of ids[first:end]
                targets = ids[first:end]
                total -= log_probs.gather(1, targets[:, None]).sum().item()
                count += end - first
    finally:
        model.train(was_training)
    return math.exp(total / count)


def prepare_lm_blocks(token_lists: Sequence[Sequence[int]], block_size: int, eos_id: int) -> dict[str, torch.Tensor]:
    """Texts (lists of token ids) -> {"input_ids", "labels"}: (n_blocks, block_size) int64 each.

    Every text is followed by ``eos_id``, all are joined into one stream, the stream is cut into full blocks
    of ``block_size`` (the remainder is dropped) and ``labels`` is a copy of ``input_ids``: the model shifts.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2; received {block_size}.")
    stream = [token for ids in token_lists for token in [*ids, eos_id]]
    n_blocks = len(stream) // block_size
    if n_blocks == 0:
        raise ValueError(f"the texts hold {len(stream)} tokens (with end-of-text tokens), fewer than one block "
                         f"of {block_size}: nothing to train on.")
    input_ids = torch.tensor(stream[: n_blocks * block_size], dtype=torch.int64).view(n_blocks, block_size)
    return {"input_ids": input_ids, "labels": input_ids.clone()}


def causal_lm_batch(token_lists: Sequence[Sequence[int]], pad_id: int,
                    prompt_lengths: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """Texts -> {"input_ids", "attention_mask", "labels"}: (B, L) int64, right-padded to the longest text.

    ``labels`` equals ``input_ids`` (unshifted: the model shifts) except ``-100`` on padding and, when
    ``prompt_lengths`` is given, on the first ``prompt_lengths[i]`` tokens of text ``i`` (the prompt is read,
    not learned). ``attention_mask`` is 1 on real tokens, 0 on padding.
    """
    if len(token_lists) == 0:
        raise ValueError("causal_lm_batch received no texts.")
    if prompt_lengths is not None and len(prompt_lengths) != len(token_lists):
        raise ValueError(f"{len(prompt_lengths)} prompt lengths for {len(token_lists)} texts.")
    length = max(len(ids) for ids in token_lists)
    input_ids = torch.full((len(token_lists), length), pad_id, dtype=torch.int64)
    attention_mask = torch.zeros((len(token_lists), length), dtype=torch.int64)
    labels = torch.full((len(token_lists), length), IGNORE_INDEX, dtype=torch.int64)
    for row, ids in enumerate(token_lists):
        n = len(ids)
        if n:
            input_ids[row, :n] = torch.as_tensor(list(ids), dtype=torch.int64)
        attention_mask[row, :n] = 1
        start = 0 if prompt_lengths is None else int(prompt_lengths[row])
        if not 0 <= start <= n:
            raise ValueError(f"prompt length {start} for a text of {n} tokens.")
        labels[row, start:n] = input_ids[row, start:n]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# ------------------------------------------------------------------------------------------ pipelines

PIPELINE_HEADS = {  # task -> (architecture suffixes that serve it, the head in words)
    "text-generation": (("ForCausalLM", "LMHeadModel"), "a causal language-model head (…ForCausalLM / …LMHeadModel)"),
    "fill-mask": (("ForMaskedLM", "ForPreTraining"), "a masked language-model head (…ForMaskedLM)"),
    "feature-extraction": (("Model", "ForMaskedLM", "ForCausalLM", "LMHeadModel", "ForPreTraining"), "a base model"),
    "text-classification": (("ForSequenceClassification",), "a sequence-classification head (…ForSequenceClassification)"),
    "token-classification": (("ForTokenClassification",), "a token-classification head (…ForTokenClassification)"),
    "question-answering": (("ForQuestionAnswering",), "a span-prediction head (…ForQuestionAnswering)"),
}


def check_pipeline_task(task: str, model_path: str | os.PathLike) -> str:
    """The architecture of the checkpoint in ``model_path`` if it can serve ``task``; else a ValueError naming the missing head."""
    config_file = Path(model_path) / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{model_path} has no config.json: not a checkpoint folder.")
    architectures = json.loads(config_file.read_text()).get("architectures") or []
    if task not in PIPELINE_HEADS:
        raise ValueError(f"unknown task {task!r}; the course checks {sorted(PIPELINE_HEADS)}.")
    suffixes, head = PIPELINE_HEADS[task]
    for architecture in architectures:
        if architecture.endswith(suffixes):
            return architecture
    have = ", ".join(architectures) or "no recorded architecture"
    raise ValueError(f"pipeline({task!r}) needs {head}, and the checkpoint in {Path(model_path).name!r} has {have}: "
                     f"its weights hold no such head. A new head would start from random weights; fine-tune it first, "
                     f"or pick a checkpoint trained for {task!r}.")


def pipeline_for(task: str, model_path: str | os.PathLike, **kwargs):
    """``transformers.pipeline(task, model=model_path)`` after :func:`check_pipeline_task`."""
    from transformers import pipeline

    check_pipeline_task(task, model_path)
    return pipeline(task, model=str(model_path), **kwargs)
