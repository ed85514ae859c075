"""Diagnostic probes: the usual wrong answers, computed on purpose, so a failure can name them.

Each function returns ``{description: wrong_result}`` for the inputs a test uses. A check
(:func:`tfs.teaching.checks.check_close`) compares the learner's result with the right answer from an
independent oracle and, when it is wrong, with each of these; a match is reported as
"this looks like <description>". Nothing here is an oracle: these are deliberately wrong.
"""

from __future__ import annotations

import math

import torch


KEEPDIM_HINT = ("a reduction (amax, max, sum) drops the dimension it reduces unless keepdim=True, and a (rows,) "
                "result does not broadcast against (rows, cols).")

def softmax_mistakes(x: torch.Tensor, dim: int = -1, temperature: float = 1.0) -> dict[str, torch.Tensor]:
    """Wrong softmaxes of ``x / temperature`` along ``dim``."""
    scaled = x / temperature
    dim = dim % x.dim()
    mistakes = {
        f"softmax over dim={other} instead of dim={dim}": torch.softmax(scaled, other)
        for other in range(x.dim())
        if other != dim and x.shape[other] > 1
    }
    mistakes["exp without dividing by the sum (not normalised)"] = torch.exp(scaled)
    mistakes["normalising by the sum over the whole tensor, not along one dimension"] = (
        torch.exp(scaled - scaled.max()) / torch.exp(scaled - scaled.max()).sum()
    )
    if temperature != 1.0:
        mistakes["the temperature ignored"] = torch.softmax(x, dim)
        mistakes["logits multiplied by the temperature instead of divided"] = torch.softmax(x * temperature, dim)
    return mistakes


def overflow_mistakes(x: torch.Tensor, dim: int = -1) -> dict[str, torch.Tensor]:
    """Softmaxes of large logits ``x`` that overflow or underflow (NaN where the learner's would be)."""
    naive = torch.exp(x) / torch.exp(x).sum(dim=dim, keepdim=True)
    shifted = torch.exp(x - x.max())
    return {
        "exp(x) without subtracting the maximum first: exp(1000) overflows to inf, and inf / inf = nan": naive,
        "one maximum for the whole tensor: a row far below it underflows to 0 / 0 = nan; subtract each row's own "
        "maximum (amax along dim, keepdim=True)": shifted / shifted.sum(dim=dim, keepdim=True),
    }


def causal_mask_mistakes(size: int) -> dict[str, torch.Tensor]:
    """Wrong ``(size, size)`` causal masks, in the course's convention (True = may attend)."""
    ones = torch.ones(size, size, dtype=torch.bool)
    return {
        "an off-by-one mask that hides the diagonal (a token must see itself)": torch.tril(ones, diagonal=-1),
        "an off-by-one mask that lets each token see one future token": torch.tril(ones, diagonal=1),
        "an upper-triangular mask: each token sees the future instead of the past": torch.triu(ones),
        "an inverted mask: True should mean 'may attend', not 'blocked'": ~torch.tril(ones),
    }


def _attention(q, k, v, mask, scale, softmax_dim=-1, mask_after_softmax=False, keys_t=None, fill=float("-inf"),
               zero_nan=True):
    scores = q @ (k.transpose(-2, -1) if keys_t is None else keys_t(k)) * scale
    if mask is not None and not mask_after_softmax:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=softmax_dim)
    weights = weights.nan_to_num(0.0) if zero_nan else weights
    if mask is not None and mask_after_softmax:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def attention_mistakes(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    d_model: int | None = None,
    which: str = "output",
) -> dict[str, torch.Tensor]:
    """Wrong scaled dot-product attentions of ``q (..., Lq, d_k)``, ``k (..., Lk, d_k)``, ``v``.

    ``which`` selects whether the mistakes are for the ``"output"`` or the ``"weights"``.
    ``d_model``, when given and different from ``d_k``, adds "scaled by √d_model".
    """
    d_k = q.shape[-1]
    variants = {
        "no scaling (the scores must be divided by √d_k)": dict(scale=1.0),
        "dividing by d_k instead of √d_k": dict(scale=1.0 / d_k),
        "multiplying by √d_k instead of dividing": dict(scale=math.sqrt(d_k)),
        "a softmax over the queries (dim=-2) instead of over the keys (dim=-1)": dict(
            scale=1.0 / math.sqrt(d_k), softmax_dim=-2
        ),
    }
    if d_model is not None and d_model != d_k:
        variants["scaling by √d_model instead of √d_k (the head size)"] = dict(scale=1.0 / math.sqrt(d_model))
    if mask is not None:
        variants["the mask applied after the softmax (the weights no longer sum to 1)"] = dict(
            scale=1.0 / math.sqrt(d_k), mask_after_softmax=True
        )
        variants["masked scores set to 0 instead of -inf: a masked key keeps a weight"] = dict(
            scale=1.0 / math.sqrt(d_k), fill=0.0)
        if not mask.expand(*q.shape[:-1], k.shape[-2]).any(-1).all():  # a query that may see no key
            variants["masked scores set to a large negative number instead of -inf: a query whose keys are all "
                     "masked gets the average of every value instead of zeros"] = dict(scale=1.0 / math.sqrt(d_k), fill=-1e9)
            variants["no nan_to_num: a query whose keys are all masked gets softmax 0/0 = nan; give it zero "
                     "weights"] = dict(scale=1.0 / math.sqrt(d_k), zero_nan=False)
    if v.shape[-1] != d_k:
        variants["scaling by √d_v (the values' size) instead of √d_k (the queries' and keys' size)"] = dict(
            scale=1.0 / math.sqrt(v.shape[-1]))
    if k.dim() >= 3:
        variants["k.T reverses every dimension of k; transpose only the last two: k.transpose(-2, -1)"] = dict(
            scale=1.0 / math.sqrt(d_k), keys_t=lambda t: t.permute(*reversed(range(t.dim()))))
    if k.dim() >= 4:
        variants["k.transpose(1, 2): with leading (batch, heads) dimensions that swaps heads and positions; "
                 "transpose the last two: k.transpose(-2, -1)"] = dict(
            scale=1.0 / math.sqrt(d_k), keys_t=lambda t: t.transpose(1, 2))
    position = 0 if which == "output" else 1
    mistakes = {}
    for name, kw in variants.items():
        try:
            mistakes[name] = _attention(q, k, v, mask, **kw)[position]
        except (RuntimeError, IndexError):  # a wrong transpose whose shapes do not fit these inputs
            continue
    if mask is not None:
        mistakes["an inverted mask (True should mean 'may attend')"] = _attention(
            q, k, v, ~mask, 1.0 / math.sqrt(d_k)
        )[position]
        mistakes["the mask ignored"] = _attention(q, k, v, None, 1.0 / math.sqrt(d_k))[position]
    return mistakes


def mha_mistakes(mha, x: torch.Tensor, context: torch.Tensor | None = None,
                 mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Wrong multi-head attention outputs for a module with the course's ``qkv``/``out`` layout."""
    d = x.shape[-1]
    h = mha.n_heads
    w_q, w_kv = mha.qkv.weight.split([d, 2 * d])
    b_q, b_kv = (None, None) if mha.qkv.bias is None else mha.qkv.bias.split([d, 2 * d])
    source = x if context is None else context
    q = torch.nn.functional.linear(x, w_q, b_q)
    k, v = torch.nn.functional.linear(source, w_kv, b_kv).chunk(2, dim=-1)
    if mask is not None and mask.dim() == 3:
        mask = mask[:, None]

    def run(split, scale, project=True, qkv=None, masked=True):
        qh, kh, vh = (split(t) for t in (qkv or (q, k, v)))
        scores = qh @ kh.transpose(-2, -1) * scale
        if mask is not None and masked:
            scores = scores.masked_fill(~mask, float("-inf"))
        heads = (scores.softmax(-1).nan_to_num(0.0) @ vh).transpose(1, 2).reshape(*x.shape)
        return torch.nn.functional.linear(heads, mha.out.weight, mha.out.bias) if project else heads

    def right(t):
        return t.reshape(t.shape[0], t.shape[1], h, d // h).transpose(1, 2)

    def no_transpose(t):
        return t.reshape(t.shape[0], h, t.shape[1], d // h)

    mistakes = {
        "heads split by reshape(batch, h, L, d_head) without the transpose": run(no_transpose, (d // h) ** -0.5),
        "scores scaled by √d_model instead of √d_head": run(right, d ** -0.5),
        "the output projection self.out left out": run(right, (d // h) ** -0.5, project=False),
        "K and V swapped: the first d_model features of self.qkv are Q, the next K, the last V":
            run(right, (d // h) ** -0.5, qkv=(q, v, k)),
    }
    if context is None:
        mistakes["Q and K swapped: the first d_model features of self.qkv are Q, the next K, the last V"] = run(
            right, (d // h) ** -0.5, qkv=(k, q, v))
    if mask is not None:
        mistakes["the mask not passed on to the attention"] = run(right, (d // h) ** -0.5, masked=False)
    if context is not None:
        mistakes["keys and values projected from x instead of context (that is self-attention)"] = mha(x)[0]
        if b_q is not None:
            mistakes["the queries projected without their bias (the first d_model entries of qkv.bias)"] = run(
                right, (d // h) ** -0.5, qkv=(torch.nn.functional.linear(x, w_q), k, v))
    return mistakes


def layer_norm_mistakes(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        eps: float) -> dict[str, torch.Tensor]:
    """Wrong LayerNorms of ``x`` over its last dimension."""
    mean = x.mean(-1, keepdim=True)
    shift = 0 if bias is None else bias
    return {
        "the unbiased variance (divide by d, not d - 1: unbiased=False)":
            (x - mean) / torch.sqrt(x.var(-1, keepdim=True, unbiased=True) + eps) * weight + shift,
        "eps added outside the square root": (x - mean) / (x.var(-1, keepdim=True, unbiased=False).sqrt() + eps) * weight + shift,
        "normalised over the batch (dim=0) instead of the features (dim=-1)":
            (x - x.mean(0, keepdim=True)) / torch.sqrt(x.var(0, keepdim=True, unbiased=False) + eps) * weight + shift,
        "the mean not subtracted (that is RMSNorm-like)": x / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps) * weight + shift,
        "the mean taken over the batch (dim=0) instead of the features (dim=-1)":
            (x - x.mean(0, keepdim=True)) / torch.sqrt(((x - x.mean(0, keepdim=True)) ** 2).mean(-1, keepdim=True) + eps)
            * weight + shift,
        "the bias (beta) not added": (x - mean) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps) * weight,
        **({} if eps == 1e-5 else {f"eps ignored: 1e-5 used instead of self.eps = {eps:g}":
                                   (x - mean) / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + 1e-5) * weight + shift}),
    }


def block_mistakes(block, x: torch.Tensor, norm_first: bool,
                   mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Wrong Transformer blocks built from ``block``'s own layers (``attn``, ``ff``, ``norm1``, ``norm2``)."""
    def attn(t):
        return block.attn(t, mask=mask)[0]

    n1, n2, ff = block.norm1, block.norm2, block.ff
    no_mask = block_without_mask(block, x, norm_first) if mask is not None else None
    a, a_normed = attn(x), attn(n1(x))  # the two attention calls every mistake below is made of
    if norm_first:
        h_post = n1(x + a)
        h = n1(x) + a_normed
        h_one = x + a_normed
        mistakes = {"the residual adds LN(x) instead of x: x + f(LN(x)) is right": h + ff(n2(h)),
                    "the residuals add LN(x) instead of x in both sublayers: x + f(LN(x)) is right": n2(h) + ff(n2(h)),
                    "the post-LN layout (LN after the residual)": n2(h_post + ff(h_post)),
                    "norm1 used before both sublayers (norm2 never used)": h_one + ff(n1(h_one))}
    else:
        h_pre = x + a_normed
        h_post = n1(x + a)
        h = x + n1(a)
        mistakes = {"x + LN(f(x)) instead of LN(x + f(x))": h + n2(ff(h)),
                    "the pre-LN layout x + f(LN(x))": h_pre + ff(n2(h_pre)),
                    "norm1 used after both sublayers (norm2 never used)": n1(h_post + ff(h_post))}
    if no_mask is not None:
        mistakes["the mask not passed on to self.attn"] = no_mask
    return mistakes


def block_without_mask(block, x: torch.Tensor, norm_first: bool) -> torch.Tensor:
    """The right block computed with no mask at all: what a block that drops its ``mask`` returns."""
    def attn(t):
        return block.attn(t)[0]

    if norm_first:
        h = x + attn(block.norm1(x))
        return h + block.ff(block.norm2(h))
    h = block.norm1(x + attn(x))
    return block.norm2(h + block.ff(h))
