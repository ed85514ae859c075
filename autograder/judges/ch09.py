"""Chapter 09 (pretrained checkpoints) judges. Oracles: the loss ``transformers.GPT2LMHeadModel`` reports with
``labels=`` (perplexity, assembled window by window here), and the data-preparation rules written out with
``itertools``; the scaling law's fit from ``numpy.polyfit`` on the logarithms. Inputs are rebuilt from the collector module's seeded generators; each failure names the likely mistake.
"""

from __future__ import annotations

import itertools
import math

import numpy
import torch
from torch.nn import functional as F

from tfs.grader.collectors import ch09 as c
from tfs.grader.judging import JudgeFailure, check_data, close, expect, finite, off

REL = 1e-5  # transformers computes its loss in float32 (it upcasts the logits to float32, not float64)


# ------------------------------------------------------------------------------------------ perplexity

def _windows(n: int, window: int, stride: int):
    """(begin, end, first scored position) of each window: written out here, not imported from the package."""
    out, previous_end, begin = [], 0, 0
    while True:
        end = min(begin + window, n)
        out.append((begin, end, max(previous_end, begin + 1)))
        if end == n:
            return out
        previous_end, begin = end, begin + stride


def oracle_perplexity(model, ids: torch.Tensor, window: int, stride: int) -> float:
    """exp(sum of window losses x scored tokens / scored tokens), each loss from ``model(chunk, labels=...)``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for begin, end, first in _windows(len(ids), window, stride):
            chunk = ids[begin:end][None]
            labels = chunk.clone()
            labels[:, : first - begin] = -100          # context only: predicted in an earlier window
            loss = model(chunk, labels=labels).loss.item()
            total += loss * (end - first)
            count += end - first
    return math.exp(total / count)


def perplexity_mistakes(model, ids: torch.Tensor, window: int, stride: int) -> dict[str, float]:
    """The usual wrong perplexities, computed on purpose to name a wrong answer."""
    with torch.no_grad():
        spans = _windows(len(ids), window, stride)
        logps = [F.log_softmax(model(ids[b:e][None]).logits[0], -1) for b, e, _ in spans]
        nll = [-lp[:-1].gather(1, ids[b + 1:e, None]).squeeze(1) for lp, (b, e, _) in zip(logps, spans)]
        scored = [x[f - b - 1:] for x, (b, e, f) in zip(nll, spans)]
        unshifted = [-lp.gather(1, ids[b:e, None]).squeeze(1)[f - b:] for lp, (b, e, f) in zip(logps, spans)]
        skipped = [x[f - b - 1 + (f > b + 1):] for x, (b, e, f) in zip(nll, spans)]   # one token less after an overlap
        everything = torch.cat(nll)
        right = torch.cat(scored)
        full = [x for x, (b, e, _) in zip(scored, spans) if e - b == window]   # the windows that hold `window` tokens
        mistakes = {}
        if 0 < len(full) < len(spans):
            mistakes["the last tokens, after the last full window, are never scored: the windows must go on until one "
                     "reaches the end of the text (the last one may be shorter)"] = math.exp(torch.cat(full).mean().item())
        return mistakes | {
            "overlapping tokens are scored in every window that holds them (stride < window): score only the "
            "tokens after the previous window's end": math.exp(everything.mean().item()),
            "the mean of the windows' mean losses, not the mean over tokens: the last window is shorter and "
            "must weigh less": math.exp(torch.stack([x.mean() for x in scored]).mean().item()),
            "the logits are not shifted: the logit at position t predicts token t + 1, not token t":
                math.exp(torch.cat(unshifted).mean().item()),
            "one token is skipped at each window boundary: the first token after the previous window's end is never "
            "scored (an off-by-one in where a window's scoring starts)": math.exp(torch.cat(skipped).mean().item()),
            "the total is divided by the number of tokens N, not by the N - 1 predicted ones":
                math.exp(right.sum().item() / len(ids)),
            "the summed NLL is exponentiated without averaging": math.exp(min(right.sum().item(), 700.0)),
            "the mean NLL (a loss) is returned, not its exponential (the perplexity)": right.mean().item(),
            "the count counts every position a window predicts (end - begin - 1), the overlap's context included, "
            "while the sum holds only the tokens scored in that window: divide by the number of scored tokens":
                math.exp(right.sum().item() / sum(e - b - 1 for b, e, _ in spans)),
        }


def _same(a, b: float) -> bool:
    return close(a, b, REL * max(1.0, abs(b)))


def perplexity_values(data) -> None:
    name = "perplexity"
    expect(isinstance(data, dict) and set(data) == set(c.PPL_CASES) | {"sharp"}, name,
           "expected one perplexity per grader's case.")
    for got in data.values():   # the statement asks for a Python float: the chapter prints and compares it as one
        if isinstance(got, dict):
            raise JudgeFailure(f"✗ {name}: returned {str(got.get('returned'))[:80]}: a tensor (or another type), not a "
                               "Python float. Return the number itself: .item() on a 0-d tensor, or float(...) "
                               "(math.exp of a Python float is one already).")
    model = c.tiny_gpt()
    for case, (n, window, stride) in c.PPL_CASES.items():
        got = data[case]
        where = f"perplexity(model, {n} tokens" + "".join(f", {k}={v}" for k, v in (("window", window), ("stride", stride))
                                                           if v is not None) + ")"
        default = ((" (stride left out: it defaults to window)" if window is not None else
                    f" (window and stride left out: window defaults to the model's context, "
                    f"model.config.n_positions = {c.CONTEXT}, and stride to window)") if stride is None else "")
        if stride is None and isinstance(got, str):
            raise JudgeFailure(f"✗ {name}: {where}{default} raised {got}.")
        _expect_number(got, where, name)
        ids = c.token_ids(case, n)
        window = window or c.CONTEXT
        expected = oracle_perplexity(model, ids, window, stride or window)
        if not _same(got, expected) and stride is None:
            for other in range(1, window):
                if _same(got, oracle_perplexity(model, ids, window, other)):
                    raise JudgeFailure(f"✗ {name}: {where}: the windows moved by {other} tokens; the stride left out "
                                       f"defaults to window ({window}): windows side by side, without overlap.")
            raise JudgeFailure(f"✗ {name}: {where} returned {got:.6g}, {off(got, expected)} the perplexity with "
                               f"{default.strip(' ()')}.")
        if not _same(got, expected):
            for mistake, wrong in perplexity_mistakes(model, ids, window, stride).items():
                if _same(got, wrong):
                    raise JudgeFailure(f"✗ {name}: {where}: {mistake}.")
            raise JudgeFailure(f"✗ {name}: {where} returned {got:.6g}, {off(got, expected)} exp of the mean NLL of the "
                               "N - 1 predicted tokens, each scored once.")
    _sharp_model(data["sharp"], name)


def _expect_number(got, where: str, name: str) -> None:
    if got == "ZeroDivisionError: float division by zero":
        raise JudgeFailure(f"✗ {name}: {where} divided by zero: no token was scored. The windows must go on until one "
                           "reaches the end of the text, also for a text shorter than one window (a single, shorter "
                           "window then scores tokens 1..N-1).")
    expect(isinstance(got, float), name, f"{where} returned {got}; expected a Python float."
           if not isinstance(got, str) else f"{where} raised {got}")


def _sharp_model(got, name: str) -> None:
    """A float32 model whose logits lie far apart: log(softmax(x)) underflows to log(0) = -inf there."""
    n, window, stride = c.SHARP_CASE
    where = f"perplexity(a float32 model with logits far apart, {n} tokens, window={window}, stride={stride})"
    _expect_number(got, where, name)
    expect(finite(got), name, f"{where} returned {got}: a probability below float32's smallest number (about "
           "exp(-104)) underflowed to 0 and its log to -inf. Take F.log_softmax of the logits (or F.cross_entropy), "
           "computed stably, not torch.log of a softmax.")
    expected = oracle_perplexity(c.sharp_gpt(), c.token_ids("sharp", n), window, stride)
    expect(close(got, expected, 0.0, 1e-3), name, f"{where} returned a perplexity {off(got, expected)} the right one "
           "(the model computes in float32: its log-probabilities are far below -100 here).")


def perplexity_mode(data) -> None:
    name = "perplexity"
    expect(isinstance(data, dict) and isinstance(data.get("seen"), list) and data["seen"], name,
           "the model was never called: compute the logits with model(input_ids).")
    if any(training for training, _ in data["seen"]):
        raise JudgeFailure(f"✗ {name}: the model ran in training mode, so dropout changed the result: call model.eval() "
                           "before measuring (and restore the mode after, if you like).")
    if any(grad for _, grad in data["seen"]):
        raise JudgeFailure(f"✗ {name}: the forward passes ran with autograd on: wrap them in torch.no_grad() "
                           "(a measurement needs no gradients, and they cost memory).")
    value, in_eval = data.get("value"), data.get("in_eval")
    model, ids = c.tiny_gpt(dropout=0.3), c.token_ids("overlap", 40)   # eval mode: dropout off
    if _known_value_mistake(model, ids, 16, 6, value) and _same(value, in_eval):
        return   # a wrong value that the model's mode does not change: perplexity_values names it
    expected = oracle_perplexity(model, ids, 16, 6)
    expect(_same(value, expected), name, f"with a model that arrives in training mode the result was "
           f"{value}, {off(value, expected) if isinstance(value, float) else 'unlike'} "
           "the perplexity of the same model in eval mode.")
    expect(data.get("eval_model_left_training") is False, name, "a model that arrived in eval mode was left in "
           "training mode after the call (dropout on for whoever uses it next): restore the mode it arrived in "
           "(was_training = model.training ... model.train(was_training)), or leave it in eval mode.")


def _known_value_mistake(model, ids: torch.Tensor, window: int, stride: int, value) -> bool:
    """Whether ``value`` is one of the wrong perplexities that perplexity_values names (for this run's inputs)."""
    return isinstance(value, float) and any(_same(value, wrong) for wrong in
                                            perplexity_mistakes(model, ids, window, stride).values())


def perplexity_errors(data) -> None:
    name = "perplexity"
    check_data(data, {"stride_over_window": None, "window_over_context": None, "empty": None, "one_token": None,
                      "fine": None}, name)
    fine = data["fine"]
    expect(not isinstance(fine, str), name, f"window=8, stride=8 on 30 tokens raised {fine}.")
    model, ids = c.tiny_gpt(), c.token_ids("errors", 30)
    for key, what, args in (("two_tokens", "a text of 2 tokens, the fewest allowed (the second is predicted from the "
                             "first): only fewer than 2 must raise", (ids[:2], 8, 8)),
                            ("window_is_context", f"window={c.CONTEXT}, equal to the model's context (n_positions), the "
                             "largest window allowed: only a longer one must raise", (ids, c.CONTEXT, 8))):
        got = check_data(data, {key: None}, name)[key]
        expect(not isinstance(got, str), name, f"{what}; received {got!r}.")
        expect(_same(got, oracle_perplexity(model, *args)) or _known_value_mistake(model, *args, got), name,
               f"{what}: the value differs from transformers' loss assembled window by window.")
    model, ids = c.tiny_gpt(), c.token_ids("errors", 30)
    expect(_same(fine, oracle_perplexity(model, ids, 8, 8)) or _known_value_mistake(model, ids, 8, 8, fine), name,
           "the valid call beside the bad ones (window=8, stride=8 on 30 tokens) must still return the right "
           "perplexity: checking the arguments must not change the result.")
    for key, what in (("stride_over_window", "stride=12 with window=8 (tokens between windows would never be scored)"),
                      ("window_over_context", f"window={2 * c.CONTEXT} for a model whose context is {c.CONTEXT} positions"),
                      ("one_token", "a text of one token (fewer than 2 tokens: the first is never predicted)"),
                      ("empty", "an empty text (no token to predict)")):
        got = data.get(key, "")
        expect(isinstance(got, str) and got.startswith("ValueError"), name,
               f"{what} must raise ValueError with a clear message; received {got!r}.",
               "read the context from model.config.n_positions" if key == "window_over_context" else None)


# ------------------------------------------------------------------------------------------ data preparation

def _exact(value, expected: torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and value.shape == expected.shape and value.dtype == expected.dtype \
        and bool((value == expected).all())


def lm_blocks(data) -> None:
    name = "prepare_lm_blocks"
    check_data(data, {"keys": None, "input_ids": None, "labels": None, "other_ids": None, "exact_ids": None,
                      "too_short": None, "one_block": None, "texts_kept": bool}, name)
    expect(data["texts_kept"], name, "the function changed the token lists it was given, in place (ids.append(eos_id) "
           "appends to the caller's text, so a second call sees two end-of-text tokens): build a new stream "
           "(stream.extend(ids); stream.append(eos_id)).")
    texts = c.block_texts()
    expect(isinstance(data, dict) and data.get("keys") == ["input_ids", "labels"], name,
           f"the result's keys are {data.get('keys') if isinstance(data, dict) else data}; expected 'input_ids' and 'labels'.")
    stream = list(itertools.chain.from_iterable(t + [c.EOS] for t in texts))
    n = len(stream) // c.BLOCK_SIZE
    expected = torch.tensor(stream[: n * c.BLOCK_SIZE]).view(n, c.BLOCK_SIZE)
    got = data["input_ids"]
    if not _exact(got, expected):
        no_eos = list(itertools.chain.from_iterable(texts))
        eos_first = list(itertools.chain.from_iterable([c.EOS] + t for t in texts))
        if isinstance(got, torch.Tensor) and got.dim() == 2 and got.shape[1] == c.BLOCK_SIZE:
            flat = got.flatten().tolist()
            if flat == no_eos[: len(flat)]:
                raise JudgeFailure(f"✗ {name}: the texts are joined without the end-of-text token: append eos_id after "
                                   "every text, so the model learns where one text ends and the next begins.")
            if flat == eos_first[: len(flat)]:
                raise JudgeFailure(f"✗ {name}: eos_id is put before each text; it goes after each text.")
            if len(flat) > n * c.BLOCK_SIZE and flat[: n * c.BLOCK_SIZE] == stream[: n * c.BLOCK_SIZE]:
                raise JudgeFailure(f"✗ {name}: the last, incomplete block is padded and kept: drop the remainder "
                                   "(fewer than block_size tokens), as transformers' group_texts does.")
            if flat != stream[: len(flat)]:
                raise JudgeFailure(f"✗ {name}: the blocks are not consecutive pieces of one stream (all texts, each "
                                   "followed by eos_id): are the texts cut into blocks one by one instead of concatenated first?")
        raise JudgeFailure(f"✗ {name}: input_ids must be the stream cut into {n} blocks of {c.BLOCK_SIZE} (int64, "
                           f"shape ({n}, {c.BLOCK_SIZE})); received "
                           f"{tuple(got.shape) if isinstance(got, torch.Tensor) else got}.")
    labels = data["labels"]
    if isinstance(labels, torch.Tensor) and labels.shape == (n, c.BLOCK_SIZE - 1) or (
            isinstance(labels, torch.Tensor) and labels.shape == expected.shape and
            bool((labels[:, :-1] == expected[:, 1:]).all()) and not bool((labels == expected).all())):
        raise JudgeFailure(f"✗ {name}: the labels are shifted twice, by you and again inside the model (transformers' "
                           "causal-LM loss compares labels[t] with the logit at t - 1), so the logit at t meets token t + 2.")
    if _exact(labels, expected.masked_fill(expected == c.EOS, -100)):
        raise JudgeFailure(f"✗ {name}: the end-of-text tokens are labelled -100, so the loss never asks the model to end "
                           "a text: these blocks hold no padding, every label is a real target, eos_id included.")
    expect(_exact(labels, expected), name, "labels must be a copy of input_ids (the model shifts them itself).")
    stream7 = list(itertools.chain.from_iterable(t + [7] for t in texts))
    n6 = len(stream7) // 6
    expect(_exact(data["other_ids"], torch.tensor(stream7[: n6 * 6]).view(n6, 6)), name,
           "with block_size=6 and eos_id=7 the blocks are wrong: use the block_size and eos_id arguments, not fixed values.")
    k = c.EXACT_BLOCK
    if _exact(data["exact_ids"], torch.tensor(stream[: len(stream) - 1 - (len(stream) - 1) % k]).view(-1, k)):
        raise JudgeFailure(f"✗ {name}: the last text is not followed by eos_id: every text ends with it, the last one "
                           f"included (with block_size={k} the {len(stream)} tokens fill {len(stream) // k} blocks "
                           "exactly, the last one ending with eos_id).")
    expect(_exact(data["exact_ids"], torch.tensor(stream).view(-1, k)), name,
           f"with block_size={k} the {len(stream)} tokens (each text followed by eos_id) fill {len(stream) // k} blocks "
           "exactly: every token must be in them.")
    expect(isinstance(data["too_short"], str) and data["too_short"].startswith("ValueError"), name,
           f"texts shorter than one block must raise ValueError (nothing to train on); received {data['too_short']!r}.")
    one_block = data.get("one_block")
    expect(not (isinstance(one_block, str) and one_block.startswith("ValueError")), name,
           f"prepare_lm_blocks([[1, 2, 3]], 4, eos_id) raised {one_block}: the 3 tokens and the end-of-text token after "
           "them fill one block of 4 exactly; the end-of-text tokens count when you decide whether the texts fill a block.")
    expect(_exact(one_block, torch.tensor([[1, 2, 3, c.EOS]])), name,
           f"prepare_lm_blocks([[1, 2, 3]], 4, eos_id) must return input_ids [[1, 2, 3, eos_id]] (one block, int64); "
           f"received {one_block.tolist() if isinstance(one_block, torch.Tensor) else one_block!r}.")


def lm_batch_padding(data) -> None:
    name = "causal_lm_batch"
    check_data(data, {"keys": None, "input_ids": None, "attention_mask": None, "labels": None, "other_pad_ids": None,
                      "texts_kept": bool}, name)
    texts = c.batch_texts()
    expect(data["texts_kept"], name, "the function changed the token lists it was given, in place (ids += [pad_id] "
           "* ... pads the caller's texts, so the next call sees them longer): pad inside the new tensors.")
    expect(isinstance(data, dict) and data.get("keys") == ["attention_mask", "input_ids", "labels"], name,
           f"the batch's keys are {data.get('keys') if isinstance(data, dict) else data}; expected "
           "'input_ids', 'attention_mask' and 'labels'.")
    length = max(len(t) for t in texts)
    ids = torch.tensor([t + [c.EOS] * (length - len(t)) for t in texts])
    mask = torch.tensor([[1] * len(t) + [0] * (length - len(t)) for t in texts])
    got_ids = data["input_ids"]
    if isinstance(got_ids, torch.Tensor) and got_ids.shape == ids.shape and \
            got_ids.tolist() == [[c.EOS] * (length - len(t)) + t for t in texts]:
        raise JudgeFailure(f"✗ {name}: the texts are padded on the left; for training, pad on the right "
                           "(left padding is for batched generation).")
    expect(_exact(got_ids, ids), name, "input_ids must be each text followed by pad_id up to the longest, int64.")
    if _exact(data["attention_mask"], 1 - mask):
        raise JudgeFailure(f"✗ {name}: the attention mask is inverted: 1 marks a real token, 0 padding.")
    if _exact(data["attention_mask"], (ids != c.EOS).long()):
        raise JudgeFailure(f"✗ {name}: the attention mask is computed from token values (input_ids != pad_id), which "
                           "also masks the real end-of-text tokens (GPT-2's pad id is its eos id): mark the padding "
                           "by position, from each text's length.")
    expect(_exact(data["attention_mask"], mask), name, "attention_mask must be 1 on real tokens, 0 on padding, int64.")
    other = torch.tensor([t + [c.OTHER_PAD] * (length - len(t)) for t in texts])
    if _exact(data["other_pad_ids"], ids.masked_fill(mask == 0, 0)):
        raise JudgeFailure(f"✗ {name}: with pad_id={c.OTHER_PAD} the padding is 0: padding must use the pad_id argument.")
    expect(_exact(data["other_pad_ids"], other), name, f"with pad_id={c.OTHER_PAD}, input_ids must be each text followed "
           "by pad_id up to the longest: use the pad_id argument.")
    labels = ids.masked_fill(mask == 0, -100)
    got = data["labels"]
    if _exact(got, ids):
        raise JudgeFailure(f"✗ {name}: the padding positions keep their token as label: set labels to -100 there, "
                           "or the model is trained to predict padding.")
    if _exact(got, ids.masked_fill(ids == c.EOS, -100)):
        raise JudgeFailure(f"✗ {name}: labels are set to -100 wherever input_ids == pad_id, which also hides the real "
                           "end-of-text tokens (GPT-2's pad id is its eos id): use the attention mask, not the token value.")
    padding = got[mask == 0].unique() if isinstance(got, torch.Tensor) and got.shape == labels.shape else None
    if padding is not None and len(padding) == 1 and int(padding) != -100 and bool((got[mask == 1] == ids[mask == 1]).all()):
        raise JudgeFailure(f"✗ {name}: the padding is labelled {int(padding)}: the loss skips only -100 (the "
                           "ignore_index of F.cross_entropy), so set labels to -100 there.")
    if isinstance(got, torch.Tensor) and got.shape == labels.shape and bool((got[:, :-1] == labels[:, 1:]).all()) \
            and not _exact(got, labels):
        raise JudgeFailure(f"✗ {name}: the labels are shifted twice, by you and again inside the model, so the logit at t "
                           "meets token t + 2.")
    expect(_exact(got, labels), name, "labels must equal input_ids, with -100 on padding (int64).")


def _padding_label_mistakes(ids: torch.Tensor, mask: torch.Tensor, got) -> list[torch.Tensor]:
    """The wrong labels (for this run's texts) that lm_batch_padding names; ``got`` gives the constant on padding."""
    labels = ids.masked_fill(mask == 0, -100)
    padding = got[mask == 0].unique() if isinstance(got, torch.Tensor) and got.shape == ids.shape else ()
    return [ids, ids.masked_fill(ids == c.EOS, -100), F.pad(labels[:, 1:], (0, 1), value=-100)] + \
        [ids.masked_fill(mask == 0, int(value)) for value in padding[:1] if len(padding) == 1 and int(value) != -100]


def lm_batch_prompt(data) -> None:
    name = "causal_lm_batch"
    texts = c.batch_texts()
    expect(isinstance(data, dict) and isinstance(data.get("prompted_labels"), torch.Tensor), name,
           "with prompt_lengths the batch must hold labels, a tensor (B, L).")
    check_data(data, {"prompted_labels": None, "prompted_ids": None}, name)
    length = max(len(t) for t in texts)
    ids = torch.tensor([t + [c.EOS] * (length - len(t)) for t in texts])
    mask = torch.tensor([[1] * len(t) + [0] * (length - len(t)) for t in texts])
    labels = ids.masked_fill(mask == 0, -100)
    prompted = labels.clone()
    for row, p in enumerate(c.PROMPTS):
        prompted[row, :p] = -100
    got_p = data["prompted_labels"]
    own = data.get("labels")   # the same texts without prompt_lengths: a mistake there is named in lm_batch_padding
    if any(_exact(own, wrong) for wrong in _padding_label_mistakes(ids, mask, own)) \
            and _exact(data["prompted_ids"], data.get("input_ids")):
        own = own.clone()
        for row, p in enumerate(c.PROMPTS):
            own[row, :p] = -100
        if _exact(got_p, own):
            return
    if _exact(got_p, labels):
        raise JudgeFailure(f"✗ {name}: with prompt_lengths the prompt tokens keep their labels: set them to -100, "
                           "so the loss covers only the answer.")
    for shift in (1, -1):
        wrong = labels.clone()
        for row, p in enumerate(c.PROMPTS):
            wrong[row, : max(0, p + shift)] = -100
        if _exact(got_p, wrong):
            raise JudgeFailure(f"✗ {name}: the prompt mask is off by one: exactly the first prompt_lengths[i] tokens of "
                               "text i get -100.")
    expect(_exact(got_p, prompted), name, "with prompt_lengths, labels must be -100 on the first prompt_lengths[i] "
           "tokens of text i and on padding, input_ids elsewhere.")
    expect(_exact(data["prompted_ids"], ids), name, "prompt_lengths must not change input_ids.")


# ------------------------------------------------------------------------------------------ the scaling law

def _line(x, y) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (x, y): numpy.polyfit, not the package's formula."""
    slope, intercept = numpy.polyfit(numpy.asarray(x, dtype=numpy.float64), numpy.asarray(y, dtype=numpy.float64), 1)
    return float(slope), float(intercept)


def oracle_scaling_fit(counts, losses) -> tuple[float, float]:
    """(alpha, N_c) of L = (N_c / N) ** alpha: a line through (ln N, ln L), slope -alpha, intercept alpha ln N_c."""
    slope, intercept = _line(numpy.log(counts), numpy.log(losses))
    return -slope, math.exp(intercept / -slope)


def _alpha_mistakes(rows, losses) -> dict[str, float]:
    """Wrong exponents, each from a plausible wrong fit."""
    n = numpy.array([r["non_embedding_params"] for r in rows], dtype=numpy.float64)
    total = numpy.array([r["params"] for r in rows], dtype=numpy.float64)
    loss = numpy.asarray(losses, dtype=numpy.float64)
    alpha = oracle_scaling_fit(n, loss)[0]
    return {"the line is fitted the other way round, ln N against ln L: least squares must predict ln L from ln N "
            "(the two lines differ unless the points lie exactly on one)": -1 / _line(numpy.log(loss), numpy.log(n))[0],
            "N's logarithm is taken in base 10 and the loss's in base e: mixed bases make alpha ln 10 times too large":
                alpha * math.log(10),
            "the loss's logarithm is taken in base 10 and N's in base e: mixed bases make alpha ln 10 times too small":
                alpha / math.log(10),"N counts every parameter, embeddings included: Kaplan's exponent, the one to compare with, counts the "
            "non-embedding parameters": oracle_scaling_fit(total, loss)[0],
            "the exponent is returned with the slope's sign: L falls as N grows, so the slope of ln L against ln N is "
            "negative and alpha is minus the slope": -oracle_scaling_fit(n, loss)[0],
            "the line goes through (N, ln L): a power law is a straight line only when both axes are logarithmic":
                -_line(n, numpy.log(loss))[0],
            "the line goes through (ln N, L): a power law is a straight line only when both axes are logarithmic":
                -_line(numpy.log(n), loss)[0],
            "the line goes through (N, L): a power law is a straight line only when both axes are logarithmic":
                -_line(n, loss)[0]}


def _constant_mistakes(rows, losses, alpha: float) -> dict[str, float]:
    """Wrong N_c for the right exponent."""
    n = numpy.array([r["non_embedding_params"] for r in rows], dtype=numpy.float64)
    _, intercept = _line(numpy.log(n), numpy.log(losses))
    return {"the constant C of L = C N^-alpha is returned, not N_c (C = N_c^alpha, so N_c = C^(1/alpha))":
                math.exp(intercept),
            "the logarithm's base changes between the fit and the way back (log10 one way, exp the other)":
                math.exp(intercept / math.log(10) / alpha),
            "the logarithm's base changes between the fit and the way back (ln one way, 10 ** the other)":
                10 ** (intercept / alpha),
            "N_c is computed with the slope (-alpha) in place of alpha": math.exp(-intercept / alpha)}


def scaling_fit(data) -> None:
    name = "fit_scaling_law"
    check_data(data, {case: ([float, float], str) for case in c.SCALING_CASES}, name)
    for case, (alpha_true, n_c_true, noise) in c.SCALING_CASES.items():
        rows, losses = c.scaling_case(case)
        where = f"fit_scaling_law on {len(rows)} sizes ({'exact power law' if not noise else 'losses with noise'})"
        got = data[case]
        expect(not (isinstance(got, str) and got.startswith("OverflowError")), name,
               f"{where}: {got}: an exponential overflowed, as exp(intercept / alpha) does when the fitted slope is near "
               "0, which a line through N itself (not ln N) gives: a power law is a straight line only on log-log axes.")
        expect(not isinstance(got, str), name, f"{where}: {got}.")
        alpha, n_c = got
        expect(finite(alpha) and finite(n_c) and n_c > 0, name,
               f"{where} returned alpha={alpha:.6g}, N_c={n_c:.6g}; expected two finite numbers, N_c > 0.")
        right_alpha, right_n_c = oracle_scaling_fit([r["non_embedding_params"] for r in rows], losses)
        if not close(alpha, right_alpha, 1e-4 * abs(right_alpha)):   # float32 arithmetic passes
            for mistake, wrong in _alpha_mistakes(rows, losses).items():
                if close(alpha, wrong, 1e-3 * abs(wrong)):
                    raise JudgeFailure(f"✗ {name}: {where}: {mistake}.")
            raise JudgeFailure(f"✗ {name}: {where} returned the exponent {alpha:.6g}, {off(alpha, right_alpha)} the "
                               "least-squares line through the points on log-log axes.")
        if not close(math.log(n_c), math.log(right_n_c), 1e-4 * abs(math.log(right_n_c))):
            for mistake, wrong in _constant_mistakes(rows, losses, right_alpha).items():
                if wrong > 0 and close(math.log(n_c), math.log(wrong), 1e-3 * max(1.0, abs(math.log(wrong)))):
                    raise JudgeFailure(f"✗ {name}: {where}: the exponent is right; {mistake}.")
            raise JudgeFailure(f"✗ {name}: {where}: the exponent is right, but N_c={n_c:.6g} is "
                               f"{off(n_c, right_n_c)} the N_c of the same line: L = (N_c / N) ** alpha.")
        if not noise:   # the analytic case: the known exponent and constant come back
            expect(close(alpha, alpha_true, 1e-4 * alpha_true) and close(math.log(n_c), math.log(n_c_true), 1e-4 * math.log(n_c_true)), name,
                   f"{where}: the exponent and constant the data were made with do not come back.")
