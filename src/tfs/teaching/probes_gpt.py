"""Probes for chapter 06 (GPT): the usual wrong answers, computed on purpose, so a failure can name them.

Each function returns ``{description: wrong_result}``; a check compares the learner's result with an
independent oracle and, when it is wrong, with each of these. Nothing here is an oracle.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["accumulation_mistakes", "attention_mask_mistakes", "block_mistakes", "clipping_mistakes",
           "cross_entropy_mistakes", "lr_schedule_mistakes"]


def _attend(module: nn.Module, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Multi-head attention with ``module.qkv``/``module.out`` and an explicit bool mask (True = may attend)."""
    batch, length, d = x.shape
    heads = module.n_heads
    q, k, v = (t.reshape(batch, length, heads, d // heads).transpose(1, 2) for t in module.qkv(x).chunk(3, -1))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d // heads)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, -1).nan_to_num(0.0)
    return module.out((weights @ v).transpose(1, 2).reshape(batch, length, d))


def attention_mask_mistakes(module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of ``module``'s weights on ``x`` with the usual wrong causal masks."""
    length = x.shape[1]
    ones = torch.ones(length, length, dtype=torch.bool)
    with torch.no_grad():
        return {
            "no causal mask: every token sees the future": _attend(module, x, None),
            "an off-by-one mask that lets each token see the next one (tril(diagonal=1))": _attend(module, x, ones.tril(1)),
            "an off-by-one mask that hides the token itself (tril(diagonal=-1))": _attend(module, x, ones.tril(-1)),
            "an inverted mask (True taken as 'blocked')": _attend(module, x, ~ones.tril()),
            "the upper triangle kept instead of the lower (triu)": _attend(module, x, ones.triu()),
        }


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
        "the cosine decays to 0 instead of min_lr":
            table(lambda s: max_lr * (s + 1) / warmup_steps if s < warmup_steps else
                  (0.5 * max_lr * (1 + math.cos(math.pi * min((s - warmup_steps) / (max_steps - warmup_steps), 1.0))))),
    }


def clipping_mistakes(gradients: list[torch.Tensor], max_norm: float) -> list[dict[str, torch.Tensor]]:
    """For each of ``gradients``, what it becomes after the usual wrong clippings (one dict per tensor)."""
    return [{"no clipping at all": g.clone(),
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
