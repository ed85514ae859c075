"""Probes for chapter 09 (pretrained checkpoints): the usual wrong answers, computed on purpose, so a failing
visible test can name them. Each function returns ``{description: wrong_result}``; nothing here is an oracle.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["batch_input_mistakes", "batch_label_mistakes", "batch_mask_mistakes", "block_mistakes",
           "label_shift_mistakes", "perplexity_aggregation_mistakes", "perplexity_mistakes", "scaling_fit_mistakes"]


def perplexity_mistakes(model, ids: torch.Tensor, spans) -> dict[str, torch.Tensor]:
    """Wrong perplexities of ``model`` on ``ids`` (N,) read in the windows ``spans`` (``[(begin, end, first
    scored)]``, from the caller's oracle), as 0-d float64 tensors, each a wrong way of reading or aggregating the
    windows' losses (with a single window, double counting and the mean of the windows' means are right)."""
    model.eval()
    with torch.no_grad():
        logps = [F.log_softmax(model(ids[b:e][None]).logits[0].double(), -1) for b, e, _ in spans]
    nll = [-lp[:-1].gather(1, ids[b + 1:e, None]).squeeze(1) for lp, (b, e, _) in zip(logps, spans)]
    scored = [x[f - b - 1:] for x, (b, _, f) in zip(nll, spans)]
    unshifted = [-lp.gather(1, ids[b:e, None]).squeeze(1)[f - b:] for lp, (b, e, f) in zip(logps, spans)]
    skipped = [x[f - b - 1 + (f > b + 1):] for x, (b, _, f) in zip(nll, spans)]   # after an overlap, one token less
    wrong = {
        "tokens in the overlap scored again in every window (double counting)": torch.cat(nll).mean().exp(),
        "the mean of the windows' mean losses instead of the mean over tokens": torch.stack([x.mean() for x in scored]).mean().exp(),
        "logits not shifted (the logit at t scored against token t)": torch.cat(unshifted).mean().exp(),
        "one token skipped at each window boundary: the first token after the previous window's end is never "
        "scored (an off-by-one in where a window's scoring starts)": torch.cat(skipped).mean().exp(),
        "the count counts every position a window predicts (end - begin - 1), the overlap's context included, while "
        "the sum holds only the tokens scored in it: divide by the number of scored tokens":
            (torch.cat(scored).sum() / sum(e - b - 1 for b, e, _ in spans)).exp(),
    }
    longest = max(e - b for b, e, _ in spans)
    whole = [x for x, (b, e, _) in zip(scored, spans) if e - b == longest]
    if 0 < len(whole) < len(spans):      # windows that stop at the last one that fits whole: the text's end unread
        wrong["the windows stop at the last one that fits whole in the text: the last tokens, after it, are never "
              "scored; go on until a window reaches the end of the text (the last one may be shorter)"] = \
            torch.cat(whole).mean().exp()
    return {k: v.double() for k, v in wrong.items()}


def perplexity_aggregation_mistakes(right: float, n_scored: int, n_tokens: int) -> dict[str, torch.Tensor]:
    """Wrong results computed from the right perplexity ``right`` (the caller's oracle) of ``n_scored`` scored
    tokens among ``n_tokens``: the mean NLL left without its exponential, the NLL divided by every token."""
    nll = math.log(right)
    wrong = {"the NLL divided by N instead of the N - 1 predicted tokens": math.exp(nll * n_scored / n_tokens),
             "the mean NLL returned instead of its exponential": nll}
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in wrong.items()}


def block_mistakes(token_lists, block_size: int, eos_id: int) -> dict[str, torch.Tensor]:
    """Wrong ``input_ids`` blocks for these texts (some of another shape than the right blocks)."""
    def cut(stream):
        n = len(stream) // block_size
        return torch.tensor(stream[: n * block_size], dtype=torch.int64).view(n, block_size)

    ended = [[*ids, eos_id] for ids in token_lists]
    stream = [t for ids in ended for t in ids]
    return {"the texts joined without the end-of-text token": cut([t for ids in token_lists for t in ids]),
            "the end-of-text token put before each text": cut([t for ids in token_lists for t in [eos_id, *ids]]),
            "the last, incomplete block padded and kept: its padding would train as text (these blocks have no mask)":
                cut(stream + [eos_id] * (-len(stream) % block_size)),
            "each text cut into blocks on its own: every text loses its own remainder, and a text shorter than a "
            "block is lost whole": cut([t for ids in ended for t in ids[: len(ids) - len(ids) % block_size]]),
            "the end-of-text token put only between texts: the last text must end with it too": cut(stream[:-1])}


def label_shift_mistakes(input_ids: torch.Tensor, eos_id: int | None = None) -> dict[str, torch.Tensor]:
    """Wrong ``labels`` for blocks ``input_ids`` (n, block_size): shifted by the caller, as the model shifts again;
    given ``eos_id``, also the end-of-text tokens left out of the loss."""
    wrong = {"labels shifted by you and again by the model (shifted twice: the logit at t meets token t + 2)":
                 torch.roll(input_ids.flatten(), -1).view_as(input_ids),
             "labels shifted by you and again by the model (shifted twice: the logit at t meets token t + 2), "
             "-100 at each block's end": F.pad(input_ids[:, 1:], (0, 1), value=-100)}
    if eos_id is not None:
        wrong["the end-of-text tokens labelled -100: the loss then never asks the model to end a text (these blocks "
              "hold no padding: every position is a real target, eos included)"] = \
            input_ids.masked_fill(input_ids == eos_id, -100)
    return wrong


def batch_input_mistakes(token_lists, pad_id: int) -> dict[str, torch.Tensor]:
    """Wrong ``input_ids`` for a batch of these texts padded with ``pad_id``."""
    length = max(map(len, token_lists))
    left = [[pad_id] * (length - len(ids)) + list(ids) for ids in token_lists]
    return {"the texts padded on the left: for training, pad on the right (left padding is for batched generation)":
                torch.tensor(left, dtype=torch.int64)}


def batch_mask_mistakes(input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int) -> dict[str, torch.Tensor]:
    """Wrong ``attention_mask`` for a right-padded batch."""
    return {"an inverted mask (1 must mark a real token, 0 padding)": 1 - attention_mask,
            "the mask computed from token values (input_ids != pad_id): the real end-of-text tokens, which share the "
            "pad id, are masked out too; mark the padding by position (each text's length)":
                (input_ids != pad_id).long()}


def batch_label_mistakes(input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int,
                         prompt_lengths=None) -> dict[str, torch.Tensor]:
    """Wrong ``labels`` for a right-padded batch."""
    right = input_ids.masked_fill(attention_mask == 0, -100)
    wrong = {"padding kept as labels, not -100 (the model learns to predict padding)": input_ids.clone(),
             "padding labelled -1: the loss skips only -100 (the ignore_index of F.cross_entropy)":
                 input_ids.masked_fill(attention_mask == 0, -1),
             "-100 wherever input_ids == pad_id: the real end-of-text tokens are hidden too":
                 input_ids.masked_fill(input_ids == pad_id, -100),
             "labels shifted by you and again by the model (shifted twice: the logit at t meets token t + 2)":
                 F.pad(right[:, 1:], (0, 1), value=-100)}
    if prompt_lengths is None:
        return wrong
    prompt = {"the prompt tokens keep their labels": right.clone()}      # first: a prompt test names these before the rest
    for shift in (1, -1):
        off = right.clone()
        for row, p in enumerate(prompt_lengths):
            off[row, : max(0, p + shift)] = -100
        prompt[f"the prompt mask off by one ({'one token too many' if shift > 0 else 'one token too few'})"] = off
    return prompt | wrong


def scaling_fit_mistakes(right: tuple[float, float], every_parameter: tuple[float, float], counts=None,
                         losses=None) -> dict[str, torch.Tensor]:
    """Wrong ``(alpha, ln n_c)`` of a power-law fit, from the caller's oracle: ``right`` with N the non-embedding
    parameters, ``every_parameter`` the same fit with N counting every parameter; float64 tensors of 2 elements.
    Given the points (``counts``, the non-embedding N, and ``losses``), also the line fitted the other way round."""
    alpha, log_n_c = right
    if counts is not None:
        log_n, log_loss = torch.tensor(counts, dtype=torch.float64).log(), torch.tensor(losses, dtype=torch.float64).log()
        design = torch.stack([log_loss, torch.ones_like(log_loss)], dim=1)
        slope, intercept = torch.linalg.lstsq(design, log_n[:, None]).solution[:, 0].tolist()   # ln N = slope ln L + b
        other_way = {"the line fitted the other way round, ln N against ln L: least squares must predict ln L from "
                     "ln N (the two lines differ unless the points lie exactly on one)": (-1 / slope, intercept)}
        design = torch.stack([log_n, torch.ones_like(log_n)], dim=1)
        slope, intercept = torch.linalg.lstsq(design, torch.tensor(losses, dtype=torch.float64)[:, None]).solution[:, 0].tolist()
        other_way["the loss not logged: a line through (ln N, L), where a power law is a straight line only when both "
                  "axes are logarithmic (ln L against ln N)"] = (-slope, intercept / -slope)
    else:
        other_way = {}
    wrong = {"N counting every parameter, embeddings included (Kaplan's 0.076 counts the non-embedding ones)": every_parameter,
             "the slope returned as the exponent (alpha is minus the slope of ln L against ln N)": (-alpha, log_n_c),
             "the slope used in place of alpha throughout (alpha is minus the slope)": (-alpha, -log_n_c),
             "the constant C of L = C N^-alpha returned in place of n_c (C = n_c^alpha)": (alpha, alpha * log_n_c),
             "log10 for the fit, exp for the way back": (alpha, log_n_c / math.log(10)),
             "ln for the fit, 10 ** for the way back": (alpha, log_n_c * math.log(10)),
             "N's logarithm in base 10, the loss's natural: mixed bases make alpha ln 10 = 2.303 times too large":
                 (alpha * math.log(10), log_n_c / math.log(10)),
             "the loss's logarithm in base 10, N's natural: mixed bases make alpha ln 10 = 2.303 times too small":
                 (alpha / math.log(10), log_n_c)} | other_way
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in wrong.items()}
