"""Probes for chapter 06 (GPT): the usual wrong answers, computed on purpose, so a failure can name them.

Each function returns ``{description: wrong_result}``; a check compares the learner's result with an
independent oracle and, when it is wrong, with each of these. Nothing here is an oracle.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["accumulation_mistakes", "attention_mask_mistakes", "attention_weight_mistakes", "block_mistakes",
           "clipping_mistakes", "cross_entropy_mistakes", "gpt_logits_mistakes", "lr_schedule_mistakes"]


def _attention_weights(module: nn.Module, x: torch.Tensor, allowed: torch.Tensor | None, *, scale: float | None = None,
                       dim: int = -1, mask_after: bool = False, split_first: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights (batch, heads, T, T), values)`` of multi-head attention with ``module.qkv`` and an explicit bool mask
    (True = may attend); ``scale`` divides the scores (default sqrt(d_head)), ``dim`` is the softmax's,
    ``mask_after`` zeroes the blocked weights after the softmax instead of before it, ``split_first`` splits the fused
    projection into heads before separating q, k and v."""
    batch, length, d = x.shape
    heads = module.n_heads
    if split_first:
        q, k, v = module.qkv(x).reshape(batch, length, heads, 3 * d // heads).transpose(1, 2).chunk(3, -1)
    else:
        q, k, v = (t.reshape(batch, length, heads, d // heads).transpose(1, 2) for t in module.qkv(x).chunk(3, -1))
    scores = q @ k.transpose(-2, -1) / (math.sqrt(d // heads) if scale is None else scale)
    if allowed is not None and not mask_after:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim).nan_to_num(0.0)
    if allowed is not None and mask_after:
        weights = weights.masked_fill(~allowed, 0.0)
    return weights, v


def _attend(module: nn.Module, x: torch.Tensor, allowed: torch.Tensor | None, **options) -> torch.Tensor:
    """Multi-head attention with ``module.qkv``/``module.out`` and an explicit bool mask (True = may attend)."""
    weights, v = _attention_weights(module, x, allowed, **options)
    return module.out((weights @ v).transpose(1, 2).reshape(x.shape))


def _scoring_mistakes(x: torch.Tensor) -> dict[str, dict]:
    """The usual slips between the scores and the weights, as options of :func:`_attention_weights`."""
    return {
        "scores not divided by sqrt(d_head) (the 1 / sqrt(d_head) scaling is missing)": {"scale": 1.0},
        "scores divided by sqrt(d_model) instead of sqrt(d_head) (the scale is the head's size)":
            {"scale": math.sqrt(x.shape[-1])},
        "the softmax taken over the queries (dim=-2): it must run over the keys, the last dim, so that each row "
        "sums to 1": {"dim": -2},
        "the mask applied after the softmax (blocked weights set to 0, the rest not renormalised): fill the blocked "
        "scores with -inf before the softmax": {"mask_after": True},
        "the fused projection split into heads before q, k and v were separated (each head's slice then mixes rows of "
        "W^Q, W^K and W^V): chunk qkv into q, k, v first, then split each into heads": {"split_first": True},
    }


def _mask_mistakes(length: int) -> dict[str, torch.Tensor | None]:
    ones = torch.ones(length, length, dtype=torch.bool)
    return {
        "no causal mask: every token sees the future": None,
        "an off-by-one mask that lets each token see the next one (tril(diagonal=1))": ones.tril(1),
        "an off-by-one mask that hides the token itself (tril(diagonal=-1))": ones.tril(-1),
        "an inverted mask (True taken as 'blocked')": ~ones.tril(),
        "the upper triangle kept instead of the lower (triu): queries attend to later keys": ones.triu(),
    }


def attention_mask_mistakes(module: nn.Module, x: torch.Tensor, padding: torch.Tensor | None = None
                            ) -> dict[str, torch.Tensor]:
    """Outputs of ``module``'s weights on ``x`` with the usual wrong causal masks and scores; with ``padding`` (bool,
    True = may attend, broadcastable to (batch, heads, T, T)) each is combined with it, and the usual wrong
    combinations of the two masks are added."""
    causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()

    def both(allowed):
        return padding if allowed is None else allowed if padding is None else allowed & padding

    with torch.no_grad():
        wrong = {} if padding is None else {  # first: without the causal mask, "no causal mask" is this one too
            "the padding mask replaces the causal mask (a key needs both: causal & mask)": _attend(module, x, padding),
            "the padding mask ignored (only the causal mask applied)": _attend(module, x, causal)}
        wrong |= {description: _attend(module, x, both(allowed)) for description, allowed in
                  _mask_mistakes(x.shape[1]).items() if description not in wrong}
        wrong |= {description: _attend(module, x, both(causal), **options)
                  for description, options in _scoring_mistakes(x).items()}
        return wrong


def attention_weight_mistakes(module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Attention weights ``(batch, heads, T, T)`` of ``module`` on ``x`` with the usual wrong scores and softmax."""
    causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
    with torch.no_grad():
        return {description: _attention_weights(module, x, causal, **options)[0]
                for description, options in _scoring_mistakes(x).items()}


def block_mistakes(block: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of ``block``'s weights on ``x`` wired the usual wrong ways (``norm1``, ``attn``, ``norm2``, ``ff``)."""
    length = x.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()

    def mlp(h, exact=False):
        hidden = block.ff.linear1(h)
        return block.ff.linear2(F.gelu(hidden) if exact else F.gelu(hidden, approximate="tanh"))

    def attend(h, allowed=causal):
        return _attend(block.attn, h, allowed)

    with torch.no_grad():
        post = block.norm1(x + attend(x))
        h = x + attend(block.norm1(x))
        return {
            "post-LN (LN(x + f(x))) instead of pre-LN (x + f(LN(x)))": block.norm2(post + mlp(post)),
            "the exact GELU instead of GPT-2's tanh approximation": h + mlp(block.norm2(h), exact=True),
            "no causal mask in the attention": (lambda g: g + mlp(block.norm2(g)))(x + attend(block.norm1(x), None)),
            "no residual connection around the attention": (lambda g: g + mlp(block.norm2(g)))(attend(block.norm1(x))),
            "the sublayers' outputs not added to x (no residual around the MLP)": mlp(block.norm2(h)),
            "norm1 used where norm2 belongs": h + mlp(block.norm1(h)),
        "the residual taken from norm1(x) instead of x (x = norm1(x) + attn(norm1(x))): the residual stream must "
        "carry x itself, un-normalised": (lambda g: g + mlp(block.norm2(g)))(block.norm1(x) + attend(block.norm1(x))),
            "norm1 and norm2 swapped (norm1 belongs before the attention, norm2 before the MLP)":
                (lambda g: g + mlp(block.norm1(g)))(x + attend(block.norm2(x))),
        }


def cross_entropy_mistakes(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
                           ) -> dict[str, torch.Tensor]:
    """Wrong cross-entropies of ``logits (N, V)`` against ``targets (N,)``."""
    keep = targets != ignore_index
    safe = targets.clamp(min=0)
    log_probs = logits - torch.logsumexp(logits, -1, keepdim=True)
    per_token = -log_probs.gather(-1, safe[:, None])[:, 0]
    return {
        "ignored positions counted in the mean (divide by the number of kept targets only)":
            (per_token * keep).sum() / targets.numel(),
        "ignore_index not ignored (the -100 targets used as ids)": per_token.mean(),
        "the sum instead of the mean over tokens": (per_token * keep).sum(),
        "log of softmax without the log-sum-exp (subtract the max first, or use logsumexp)":
            -(torch.log(torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)).gather(-1, safe[:, None])[:, 0]
              * keep).sum() / keep.sum(),
        "exp of the logits without their maximum subtracted: it overflows to inf above about 709 (subtract each "
        "row's maximum first: the log-sum-exp)":
            ((torch.log(torch.exp(logits).sum(-1)) - logits.gather(-1, safe[:, None])[:, 0]) * keep).sum() / keep.sum(),
        "one maximum over all the logits instead of each row's own: rows far below it underflow (exp = 0, log 0 = "
        "-inf); subtract each row's maximum":
            ((logits.max() + torch.log(torch.exp(logits - logits.max()).sum(-1))
              - logits.gather(-1, safe[:, None])[:, 0]) * keep).sum() / keep.sum(),
        "the log-sum-exp without its log (log of the sum left out)":
            (-(logits.gather(-1, safe[:, None])[:, 0] - torch.exp(logits).sum(-1)) * keep).sum() / keep.sum(),
    }


def lr_schedule_mistakes(steps, max_lr: float, warmup_steps: int, max_steps: int, min_lr: float
                         ) -> dict[str, torch.Tensor]:
    """Wrong schedules evaluated at ``steps``, as a float64 tensor each."""
    def cosine(step, start=warmup_steps):
        progress = min(max((step - start) / max(1, max_steps - start), 0.0), 1.0)
        return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))

    def table(f):
        return torch.tensor([f(s) for s in steps], dtype=torch.float64)

    return {
        "no warm-up (the cosine starts at step 0)": table(lambda s: cosine(s, 0)),
        "a warm-up that starts at 0 at step 0 (step / warmup_steps instead of (step + 1) / warmup_steps)":
            table(lambda s: max_lr * s / warmup_steps if s < warmup_steps else cosine(s)),
        "no decay after the warm-up (constant max_lr)":
            table(lambda s: max_lr * (s + 1) / warmup_steps if s < warmup_steps else max_lr),
        "no floor after max_steps: the cosine goes on (and rises again) instead of staying at min_lr":
            table(lambda s: max_lr * (s + 1) / warmup_steps if s < warmup_steps else
                  min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (s - warmup_steps) / (max_steps - warmup_steps)))),
        "the cosine's progress counted from step 0 (step / max_steps), not from the end of the warm-up "
        "((step - warmup_steps) / (max_steps - warmup_steps))":
            table(lambda s: max_lr * (s + 1) / warmup_steps if s < warmup_steps else
                  min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * min(s / max_steps, 1.0)))),
        "the warm-up formula used at step == warmup_steps too (step <= warmup_steps instead of step < warmup_steps): "
        "the rate overshoots max_lr there":
            table(lambda s: max_lr * (s + 1) / warmup_steps if s <= warmup_steps else cosine(s)),
        "the cosine decays to 0 instead of min_lr":
            table(lambda s: max_lr * (s + 1) / warmup_steps if s < warmup_steps else
                  (0.5 * max_lr * (1 + math.cos(math.pi * min((s - warmup_steps) / (max_steps - warmup_steps), 1.0))))),
    }


def clipping_mistakes(gradients: list[torch.Tensor], max_norm: float) -> list[dict[str, torch.Tensor]]:
    """For each of ``gradients``, what it becomes after the usual wrong clippings (one dict per tensor)."""
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in gradients)).item()
    return [{"no clipping at all": g.clone(),
             "gradients scaled up to max_norm although their norm is below it: leave them unchanged then "
             "(scale = min(1, max_norm / norm))": g * max_norm / (norm + 1e-6),
             "each tensor clipped by its own norm (the update's direction changes: clip all together, by one norm)":
                 g * min(1.0, max_norm / (g.norm().item() + 1e-6))} for g in gradients]


def accumulation_mistakes(model: nn.Module, micro_batches, ignore_index: int = -100
                          ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The usual wrong gradient accumulations over ``micro_batches`` (``[(x, y), ...]``, ``model(x)[0]`` the logits):
    ``(gradients, losses)``, each ``{description: tensor}``; a gradient is every parameter's, as one vector; a loss
    a float64 scalar."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads, losses, tokens, rows = [], [], [], []
    for x, y in micro_batches:
        logits = model(x)[0]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=ignore_index)
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
        losses.append(loss.item())
        tokens.append(int((y != ignore_index).sum()))
        rows.append(x.shape[0])
    k, n_tokens, n_rows = len(grads), sum(tokens), sum(rows)

    def weighted(weights):
        return sum(w * g for w, g in zip(weights, grads))

    gradients = {
        "no scaling: each micro-batch's mean loss backpropagated as it is (k times too large when the micro-batches "
        "are alike)": weighted([1.0] * k),
        "each loss scaled by 1/k: exact only when every micro-batch holds the same number of target tokens, and "
        "these do not": weighted([1.0 / k] * k),
        "each loss weighted by its share of the sequences (rows): ignored targets (-100) count nowhere, so rows are "
        "not what the whole batch's mean is taken over": weighted([r / n_rows for r in rows]),
        "the gradient of the sum of the token losses, not of their mean over the whole batch":
            weighted(tokens),
        "the last micro-batch's gradient alone: were the gradients zeroed (or replaced) between micro-batches?":
            grads[-1] * tokens[-1] / n_tokens,
        "the last micro-batch's gradient alone, unscaled: were the gradients zeroed between micro-batches?": grads[-1],
    }
    losses_wrong = {
        "the mean of the micro-batches' losses (each counts the same, whatever its number of target tokens)":
            sum(losses) / k,
        "the sum of the micro-batches' mean losses": sum(losses),
        "the last micro-batch's loss": losses[-1],
    }
    return gradients, {description: torch.tensor(value, dtype=torch.float64)
                       for description, value in losses_wrong.items()}


def gpt_logits_mistakes(reference: nn.Module, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Logits of ``reference`` (a ``transformers`` ``GPT2LMHeadModel`` holding the learner's weights) on ``idx``, wired
    the usual wrong ways: no position embeddings, no final LayerNorm."""
    import copy

    def without(change):
        model = copy.deepcopy(reference)
        change(model.transformer)
        with torch.no_grad():
            return model(idx).logits

    return {"no position embeddings (wpe of positions 0..T-1 added to wte)": without(lambda t: t.wpe.weight.data.zero_()),
            "no final LayerNorm (ln_f between the last block and the head)":
                without(lambda t: setattr(t, "ln_f", nn.Identity()))}
