"""Helpers for chapter 07's checks: run the course GPT on the learner's own attention class.

``with_attention(model, MultiHeadAttention)`` returns a copy of a :class:`tfs.models.gpt.GPT` whose every
block's attention is an instance of the given class, holding the original weights (its parameters must be
named ``qkv`` and ``out``, as in :class:`tfs.nn.MultiHeadAttention`). ``cached_logits`` runs a sequence
through a model the way decoding does: the first ``prompt`` positions at once, then one token per call.
"""

from __future__ import annotations

import copy

import torch

__all__ = ["cached_logits", "with_attention"]


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
