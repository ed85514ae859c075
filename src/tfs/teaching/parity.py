"""Parity checks of a learner's layer against ``torch.nn``, in one call each, for visible tests.

Each function copies the learner's weights into the ``torch.nn`` module of the same layout
(:mod:`tfs.convert`), runs both, and fails with a course message that names the likely mistake
(:mod:`tfs.teaching.probes`). When the layer depends on an earlier exercise (a block on the learner's
LayerNorm and feed-forward network), that exercise is checked first, so a failure says where it comes from.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from tfs.convert import copy_block_to_torch, copy_encoder_to_torch, copy_mha_to_torch
from tfs.teaching.checks import CheckError, call, check_close, check_shape, check_true, unpack
from tfs.teaching.probes import attention_mistakes, block_mistakes, layer_norm_mistakes, mha_mistakes

__all__ = ["check_attention", "check_block", "check_encoder", "check_feed_forward", "check_layer_norm", "check_layer_norm_gradients",
           "check_mha", "torch_mask_arguments"]


def torch_mask_arguments(mask: torch.Tensor | None, n_heads: int) -> dict[str, torch.Tensor]:
    """The course's mask (bool, True = may attend) as ``nn.MultiheadAttention``'s arguments (True = blocked).

    ``(Lq, Lk)`` -> ``attn_mask``; ``(batch, 1, 1, Lk)`` -> ``key_padding_mask``; ``(batch, Lq, Lk)`` or
    ``(batch, 1, Lq, Lk)`` -> a per-sequence ``attn_mask`` repeated for every head.
    """
    if mask is None:
        return {}
    if mask.dim() == 2:
        return {"attn_mask": ~mask}
    if mask.dim() == 4 and mask.shape[1] == 1 and mask.shape[2] == 1:
        return {"key_padding_mask": ~mask[:, 0, 0, :]}
    per_sequence = mask[:, 0] if mask.dim() == 4 else mask
    return {"attn_mask": (~per_sequence).repeat_interleave(n_heads, dim=0)}


def _rows(mask: torch.Tensor | None, batch: int, length: int) -> torch.Tensor:
    """Which query positions to compare: with a padding mask, only the real tokens."""
    if mask is not None and mask.dim() == 4 and mask.shape[1:3] == (1, 1) and mask.shape[-1] == length:
        return mask[:, 0, 0, :]
    return torch.ones(batch, length, dtype=torch.bool)


def check_mha(mha: nn.Module, x: torch.Tensor, context: torch.Tensor | None = None,
              mask: torch.Tensor | None = None, name: str = "MultiHeadAttention") -> None:
    """``mha(x, context, mask)`` (or ``mha(x, mask=mask)``) against ``nn.MultiheadAttention``: output and
    head-averaged weights, at float64 rounding when ``x`` is float64."""
    theirs = copy_mha_to_torch(mha, nn.MultiheadAttention(x.shape[-1], mha.n_heads, batch_first=True,
                                                          bias=mha.qkv.bias is not None).to(x.dtype))
    source = x if context is None else context
    arguments = {"mask": mask} if context is None else {"context": context, "mask": mask}
    out, weights = unpack(call(mha, x, name=name, **arguments), 2, name, "return (output, weights).")
    ref_out, ref_weights = theirs(x, source, source, **torch_mask_arguments(mask, mha.n_heads))
    rows = _rows(mask, x.shape[0], x.shape[1])
    hint = ("queries from x, keys and values from context, split the heads, attend, merge, then self.out."
            if context is not None else "split the heads, attend with the mask, merge, then self.out.")
    check_close(out[rows], ref_out[rows], f"{name} output vs nn.MultiheadAttention", rtol=0, atol=1e-6,
                mistakes={k: v[rows] for k, v in mha_mistakes(mha, x, context, mask).items()}, hint=hint)
    check_close(weights.mean(dim=1)[rows], ref_weights[rows], f"{name} weights, averaged over heads", rtol=0, atol=1e-6,
                hint="return the attention weights of every head: (batch, n_heads, L_q, L_k).")


def _check_sublayers(block: nn.Module, x: torch.Tensor) -> None:
    """The block's LayerNorms and feed-forward network, against ``F.layer_norm`` and an exact-GELU FFN."""
    for norm_name in ("norm1", "norm2"):
        norm = getattr(block, norm_name)
        expected = F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)
        try:
            check_close(call(norm, x, name=f"block.{norm_name}(x)"), expected, f"block.{norm_name}", rtol=0, atol=1e-6)
        except CheckError as error:
            raise CheckError(f"{error}\n  This block uses your LayerNorm: make its tests pass first.") from None
    ff = block.ff
    try:
        check_close(call(ff, x, name="block.ff(x)"), ff.linear2(F.gelu(ff.linear1(x))), "block.ff", rtol=0, atol=1e-6)
    except CheckError as error:
        raise CheckError(f"{error}\n  This block uses your FeedForward: make its tests pass first.") from None


def check_block(block: nn.Module, x: torch.Tensor, norm_first: bool, mask: torch.Tensor | None = None,
                name: str = "block") -> None:
    """``block(x, mask=mask)`` against ``nn.TransformerEncoderLayer(norm_first=...)`` with the same weights;
    with a padding mask only the real tokens are compared (what a layer writes at pads is unspecified)."""
    _check_sublayers(block, x)
    d_model, d_ff = block.ff.linear1.in_features, block.ff.linear1.out_features
    theirs = copy_block_to_torch(block, nn.TransformerEncoderLayer(
        d_model, block.attn.n_heads, d_ff, dropout=0.0, activation="gelu", batch_first=True,
        norm_first=norm_first, layer_norm_eps=block.norm1.eps).to(x.dtype))
    received = call(block, x, name=name, mask=mask)
    masks = torch_mask_arguments(mask, block.attn.n_heads)
    expected = theirs(x, src_mask=masks.get("attn_mask"), src_key_padding_mask=masks.get("key_padding_mask"))
    rows = _rows(mask, x.shape[0], x.shape[1])
    layout = "x = x + attn(norm1(x)); x = x + ff(norm2(x))" if norm_first else "x = norm1(x + attn(x)); x = norm2(x + ff(x))"
    mistakes = block_mistakes(block, x, norm_first, mask)
    check_close(received[rows], expected[rows], f"{name} vs nn.TransformerEncoderLayer(norm_first={norm_first})",
                rtol=0, atol=1e-6, mistakes={k: v[rows] for k, v in mistakes.items()}, hint=layout + "; pass mask on to attn.")


def check_attention(attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                    name: str = "scaled_dot_product_attention") -> None:
    """``attention(q, k, v, mask) -> (output, weights)`` against ``F.scaled_dot_product_attention``.

    Masked weights must be exactly 0; a query whose keys are all masked must get a zero output (where
    PyTorch's kernel may return nan or anything else, the course defines zeros).
    """
    label = f"{name}(q, k, v{', mask' if mask is not None else ''})"
    output, weights = unpack(call(attention, q, k, v, mask, name=label, hint="return weights @ v, weights"), 2, label,
                             "return (output, weights).")
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    shape = (*q.shape[:-1], k.shape[-2]) if mask is None else torch.broadcast_shapes((*q.shape[:-1], k.shape[-2]), mask.shape)
    check_shape(weights, shape, f"{label}: weights", hint="one row of weights per query, one column per key.")
    if mask is not None:
        blind = ~mask.expand(*weights.shape).any(dim=-1, keepdim=True)   # queries that may attend to nothing
        expected = expected.masked_fill(blind, 0.0)
        check_close(output, expected, f"{label}: output", op="attention", mistakes=attention_mistakes(q, k, v, mask),
                    hint="masked_fill the scores with -inf where mask is False, before the softmax; a query that may "
                         "see nothing gets softmax 0/0 = nan: replace those weights with zeros (nan_to_num).")
        check_true(bool((weights.masked_select(~mask.expand(*weights.shape)) == 0).all()), f"{label}: weights",
                   "masked positions must get exactly zero weight.")
    else:
        check_close(output, expected, f"{label}: output", op="attention", mistakes=attention_mistakes(q, k, v),
                    hint="softmax(q @ k.T / sqrt(d_k)) @ v, the softmax over the keys (dim=-1).")


def check_layer_norm(ln: nn.Module, x: torch.Tensor, name: str = "LayerNorm") -> None:
    """``ln(x)`` against ``F.layer_norm`` with ``ln``'s own weight, bias and eps, naming the usual mistakes."""
    weight, bias, eps = ln.weight.detach(), ln.bias.detach(), ln.eps
    received = call(ln, x, name=f"{name}(x)")
    check_close(received, F.layer_norm(x, x.shape[-1:], weight, bias, eps), f"{name}(x) vs F.layer_norm", rtol=0, atol=1e-6,
                mistakes={**layer_norm_mistakes(x, weight, bias, eps),
                          "weight and bias not applied": F.layer_norm(x, x.shape[-1:], None, None, eps)},
                hint="mean and biased variance over dim=-1 (keepdim=True), eps inside the sqrt, then * weight + bias.")


def check_layer_norm_gradients(ln: nn.Module, x: torch.Tensor, name: str = "LayerNorm") -> None:
    """Gradients of ``(ln(x) * position).sum()`` with respect to ``x`` and ``ln.weight``, against ``nn.LayerNorm``.

    A wrong forward pass (the usual cause of wrong gradients) is named first."""
    check_layer_norm(ln, x.detach(), name)
    reference = nn.LayerNorm(x.shape[-1], eps=ln.eps).to(x.dtype)
    with torch.no_grad():
        reference.weight.copy_(ln.weight)
        reference.bias.copy_(ln.bias)
    scale = torch.arange(x.shape[-1], dtype=x.dtype)
    mine, theirs = x.detach().clone().requires_grad_(True), x.detach().clone().requires_grad_(True)
    ln.zero_grad()
    (call(ln, mine, name=f"{name}(x)") * scale).sum().backward()
    (reference(theirs) * scale).sum().backward()
    hint = "the forward pass is right, so a step breaks the graph: no .detach(), .item(), numpy or in-place changes of x."
    check_true(mine.grad is not None, f"{name}: gradient with respect to x", "no gradient reached x.", hint=hint)
    check_close(mine.grad, theirs.grad, f"{name}: gradient with respect to x", rtol=0, atol=1e-6, hint=hint)
    check_true(ln.weight.grad is not None, f"{name}: gradient with respect to weight", "no gradient reached weight.",
               hint="weight and bias must be nn.Parameter and be used in forward.")
    check_close(ln.weight.grad, reference.weight.grad, f"{name}: gradient with respect to weight", rtol=0, atol=1e-6)


def check_feed_forward(ff: nn.Module, x: torch.Tensor, name: str = "FeedForward") -> None:
    """``ff(x)`` against ``linear2(gelu(linear1(x)))`` computed with ``F`` from ``ff``'s weights."""
    w1, b1, w2, b2 = (t.detach() for t in (ff.linear1.weight, ff.linear1.bias, ff.linear2.weight, ff.linear2.bias))
    hidden = F.linear(x, w1, b1)
    mistakes = {"ReLU instead of GELU": F.linear(F.relu(hidden), w2, b2),
                "the tanh approximation of GELU (use the exact one, F.gelu(z))": F.linear(F.gelu(hidden, approximate="tanh"), w2, b2),
                "no activation between the layers": F.linear(hidden, w2, b2),
                "GELU after linear2 instead of between the layers": F.gelu(F.linear(hidden, w2, b2))}
    check_close(call(ff, x, name=f"{name}(x)"), F.linear(F.gelu(hidden), w2, b2), f"{name}(x)", rtol=0, atol=1e-6,
                mistakes=mistakes, hint="linear1, then the exact GELU (F.gelu), then linear2.")


def check_encoder(encoder: nn.Module, x: torch.Tensor, norm_first: bool, mask: torch.Tensor | None = None,
                  name: str = "Encoder") -> None:
    """``encoder(x, mask=mask)`` against ``nn.TransformerEncoder`` with the same weights (+ its final ``norm`` when
    pre-LN). The first block is checked first, so a failure there is named as the block's."""
    first = encoder.layers[0]
    check_block(first, x, norm_first, mask=mask, name=f"{name}.layers[0], your TransformerBlock (make its tests pass first)")
    d_model, n_heads = x.shape[-1], first.attn.n_heads
    layer = nn.TransformerEncoderLayer(d_model, n_heads, first.ff.linear1.out_features, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=norm_first, layer_norm_eps=first.norm1.eps)
    final = nn.LayerNorm(d_model, eps=getattr(encoder.final_norm, "eps", 1e-5)) if norm_first else None
    theirs = copy_encoder_to_torch(encoder, nn.TransformerEncoder(layer, len(encoder.layers), norm=final,
                                                                  enable_nested_tensor=False).to(x.dtype))
    masks = torch_mask_arguments(mask, n_heads)
    expected = theirs(x, mask=masks.get("attn_mask"), src_key_padding_mask=masks.get("key_padding_mask"))
    rows = _rows(mask, x.shape[0], x.shape[1])
    mistakes = {"the mask not passed on to the blocks": theirs(x)[rows]} if mask is not None else {}
    check_close(call(encoder, x, name=name, mask=mask)[rows], expected[rows],
                f"{name}(norm_first={norm_first}) vs nn.TransformerEncoder", rtol=0, atol=1e-6, mistakes=mistakes,
                hint="run every block in order, each with the mask, then final_norm.")
