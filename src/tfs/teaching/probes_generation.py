"""Helpers for chapter 07's checks: run the course GPT on the learner's own attention class, and a real
``transformers`` model through the learner's decoding loop.

``with_attention(model, MultiHeadAttention)`` returns a copy of a :class:`tfs.models.gpt.GPT` whose every
block's attention is an instance of the given class, holding the original weights (its parameters must be
named ``qkv`` and ``out``, as in :class:`tfs.nn.MultiHeadAttention`). ``cached_logits`` runs a sequence
through a model the way decoding does: the first ``prompt`` positions at once, then one token per call.
:class:`CourseInterface` wraps a ``transformers`` causal LM so that a loop written for the course's GPT runs it.
:class:`TransformersCache` is ``transformers``' own cache behind the course's cache interface: it stands in for the
learner's ``KVCache`` wherever another exercise needs a cache, so that no exercise is graded on another's answer.
:func:`online_attention_mistakes` gives the outputs of the usual wrong versions of attention over blocks of keys
(the idea of FlashAttention), for the checks to name a learner's mistake.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import torch

__all__ = ["CourseInterface", "TransformersCache", "cached_logits", "online_attention_mistakes", "with_attention"]


def with_attention(model, attention_class):
    """A copy of ``model`` (a course GPT) whose blocks use ``attention_class(d_model, n_heads, bias=, dropout=,
    causal=True)``, loaded with the model's attention weights."""
    config = model.config
    own = copy.deepcopy(model)
    for block in own.blocks:
        attention = attention_class(config.n_embd, config.n_head, bias=config.bias, dropout=config.dropout,
                                    causal=True)
        missing, unexpected = attention.load_state_dict(block.attn.state_dict(), strict=False)
        if missing or unexpected:
            raise KeyError(f"{attention_class.__name__} must hold its weights as qkv (Linear(d, 3d)) and out "
                           f"(Linear(d, d)), as tfs.nn.MultiHeadAttention; missing {missing}, unexpected {unexpected}")
        block.attn = attention
    return own.eval()


@torch.no_grad()
def cached_logits(model, ids: torch.Tensor, prompt: int, cache) -> torch.Tensor:
    """Logits ``(batch, T, vocab)`` of ``ids (batch, T)``: the first ``prompt`` tokens in one call, then one
    token per call, all through ``cache`` (a fresh ``KVCache``)."""
    out = [model(ids[:, :prompt], cache=cache)[0]]
    for t in range(prompt, ids.shape[1]):
        out.append(model(ids[:, t:t + 1], cache=cache)[0])
    return torch.cat(out, dim=1)


class TransformersCache:
    """``transformers``' ``DynamicCache`` called the way the course's GPT calls its cache: ``update(layer, k, v)``
    appends ``k``, ``v`` ``(batch, heads, T_new, d_head)`` to that layer's entry and returns all of them, ``len()``
    is the number of cached positions. The tensors live in ``transformers_cache.layers[i].keys`` / ``.values``
    (``transformers``' objects, not the course's ``keys`` and ``values`` lists). :class:`CourseInterface` decodes
    a ``transformers`` model with the same ``DynamicCache``.

    Chapter 07's ``generate`` decodes with it until the learner's own ``KVCache`` is defined, and the grader
    checks the learner's attention with it."""

    def __init__(self):
        from transformers import DynamicCache

        self.transformers_cache = DynamicCache()

    def __len__(self) -> int:
        return self.transformers_cache.get_seq_length()

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transformers_cache.update(k, v, layer)


class CourseInterface(torch.nn.Module):
    """A ``transformers`` causal LM (e.g. SmolLM2's ``LlamaForCausalLM``) called the way the course's GPT is:
    ``forward(ids, attention_mask=None, cache=None, position_ids=None) -> (logits (batch, 1, vocab), None)``,
    so chapter 07's ``generate`` (the learner's or :func:`tfs.generate.generate`) decodes a real model.

    The keys and values live in a ``transformers`` ``DynamicCache`` kept on the ``cache`` object the loop
    passes (any object: :class:`tfs.nn.KVCache` or the learner's, where it is created at the first call, or a
    :class:`TransformersCache`, whose own it uses); without a cache every call runs the whole sequence. Only the
    last position's logits are computed (``logits_to_keep=1``, as ``model.generate`` does), and
    ``config.block_size`` is the model's ``max_position_embeddings``."""

    def __init__(self, model):
        super().__init__()
        self.model = model.eval()
        self.config = SimpleNamespace(block_size=model.config.max_position_embeddings)

    def forward(self, ids, attention_mask=None, cache=None, position_ids=None):
        past = None
        if cache is not None:
            past = getattr(cache, "transformers_cache", None)
            if past is None:
                from transformers import DynamicCache

                past = cache.transformers_cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=ids, attention_mask=attention_mask, position_ids=position_ids,
                         past_key_values=past, use_cache=cache is not None, logits_to_keep=1)
        return out.logits, None


def _blockwise_attention(q, k, v, block_size, rescale_denominator=True, rescale_numerator=True, inverted=False,
                         shift=True, scale=True):
    """Attention over blocks of keys with a running maximum; each switch turned off (or ``inverted`` on) is one
    mistake of :func:`online_attention_mistakes`."""
    running_max = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    denominator = torch.zeros_like(running_max)
    numerator = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype)
    for start in range(0, k.shape[-2], block_size):
        scores = q @ k[..., start:start + block_size, :].transpose(-2, -1) / (q.shape[-1] ** 0.5 if scale else 1)
        new_max = torch.maximum(running_max, scores.amax(-1, keepdim=True)) if shift else torch.zeros_like(running_max)
        factor = torch.exp(new_max - running_max) if inverted else torch.exp(running_max - new_max)
        factor = factor if shift else torch.ones_like(factor)
        weights = torch.exp(scores - new_max)
        denominator = (denominator * factor if rescale_denominator else denominator) + weights.sum(-1, keepdim=True)
        numerator = (numerator * factor if rescale_numerator else numerator) + weights @ v[..., start:start + block_size, :]
        running_max = new_max
    return numerator / denominator


def online_attention_mistakes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                              block_size: int) -> dict[str, torch.Tensor]:
    """What the usual wrong versions of attention over blocks of ``block_size`` keys return for ``q, k, v``
    ``(batch, heads, L, d)``, keyed by a description of the mistake."""
    with torch.no_grad():
        return {
            "no rescaling: the sums of earlier blocks were kept as they were when the running maximum rose":
                _blockwise_attention(q, k, v, block_size, rescale_denominator=False, rescale_numerator=False),
            "only the denominator rescaled when the running maximum rose (the numerator kept its old terms)":
                _blockwise_attention(q, k, v, block_size, rescale_numerator=False),
            "only the numerator rescaled when the running maximum rose (the denominator kept its old terms)":
                _blockwise_attention(q, k, v, block_size, rescale_denominator=False),
            "the rescaling factor upside down: multiplied by exp(new max - old max), which is infinite at the first "
            "block": _blockwise_attention(q, k, v, block_size, inverted=True),
            "exponentials of the raw scores, not shifted by a running maximum: exp overflows for large scores":
                _blockwise_attention(q, k, v, block_size, shift=False),
            "the scores not divided by sqrt(d)": _blockwise_attention(q, k, v, block_size, scale=False),
        }
