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
(the idea of FlashAttention), :func:`beam_search_mistakes` those of beam search, :func:`padding_mistake` reads a
left-padded batch's model calls (recorded by :class:`CallRecorder`) and :func:`sampled_outside` finds a sampled token
that temperature, top-k and top-p would have removed: for the checks to name a learner's mistake.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import torch

__all__ = ["CallRecorder", "CourseInterface", "TransformersCache", "beam_search_mistakes", "cached_logits",
           "gpt2_with_attention_scale", "gpt2_without_attention_scale", "online_attention_mistakes", "padding_mistake",
           "penalised_generated_only", "sampled_outside", "SwappedTokens", "with_attention"]


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
        return {**_online_mistakes_more(q, k, v, block_size),
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


def _online_mistakes_more(q, k, v, block_size) -> dict[str, torch.Tensor]:
    """Two more wrong versions: the running maximum never carried over, and each block's own maximum in its place."""
    never, own = (torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype) for _ in range(2))
    for carry, out in ((False, never), (True, own)):
        running_max = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
        denominator = torch.zeros_like(running_max)
        numerator = torch.zeros_like(out)
        for start in range(0, k.shape[-2], block_size):
            scores = q @ k[..., start:start + block_size, :].transpose(-2, -1) / q.shape[-1] ** 0.5
            block_max = scores.amax(-1, keepdim=True)
            new_max = block_max if carry else torch.maximum(running_max, block_max)
            factor = torch.exp(running_max - new_max)
            weights = torch.exp(scores - new_max)
            denominator = denominator * factor + weights.sum(-1, keepdim=True)
            numerator = numerator * factor + weights @ v[..., start:start + block_size, :]
            if carry:
                running_max = new_max
        out.copy_(numerator / denominator)
    return {"the running maximum never updated (m stays -inf, so each block's factor e^(m - m') wipes out the blocks "
            "before it)": never,
            "each block's own maximum used instead of the running maximum max(m, block max): when a later block's "
            "scores are much lower, e^(m - m') overflows": own}


class CallRecorder(torch.nn.Module):
    """A model (the course's GPT interface) that records what each call was given: the number of tokens fed,
    whether a cache came with it, and its ``attention_mask`` and ``position_ids`` (or None)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config, self.calls = model, model.config, []

    def forward(self, ids, **kwargs):
        self.calls.append({"tokens": ids.shape[1], "cache": kwargs.get("cache") is not None,
                           "attention_mask": kwargs.get("attention_mask"), "position_ids": kwargs.get("position_ids")})
        return self.model(ids, **kwargs)

    def plain_calls(self) -> list[dict]:
        """The calls as plain data (tensors detached and cloned, other objects as None)."""
        def plain(value):
            return value.detach().clone() if isinstance(value, torch.Tensor) else None

        return [{**call, "attention_mask": plain(call["attention_mask"]), "position_ids": plain(call["position_ids"])}
                for call in self.calls]


def padding_mistake(calls: list[dict], mask: torch.Tensor) -> str | None:
    """Which known mistake the recorded calls of a left-padded batch's decoding show (``mask`` (batch, T) is the
    prompt's attention mask), or None: no attention_mask, no position_ids, or positions that are column indices."""
    if not calls:
        return None
    if any(call["attention_mask"] is None for call in calls):
        return ("the model was called without attention_mask: the pad tokens are attended to; pass the mask, "
                "extended by a 1 per new token")
    if any(call["position_ids"] is None for call in calls):
        return ("the model was called without position_ids: it then numbers the columns, pads included, so a "
                "padded prompt's tokens get the wrong positions; pass position_ids = mask.cumsum(-1) - 1")
    first = calls[0]["position_ids"]
    columns = torch.arange(first.shape[-1]).expand_as(first)
    if bool(~mask.bool().all()) and torch.equal(first, columns):
        return ("the position_ids are the column indices, pads included: a padded prompt's first token must be at "
                "position 0; use the mask's cumulative sum, mask.cumsum(-1) - 1")
    return None


@torch.no_grad()
def _beam_search(model, prompt, max_new_tokens, num_beams, length_penalty, eos, *, finish_all_eos=False,
                 all_beams_start=False, length_with_prompt=False, raw_logits=False, stop_at_first=False,
                 no_early_stop=False):
    """Beam search as ``transformers`` does it (``early_stopping=True``), without a cache; each switch is one
    mistake of :func:`beam_search_mistakes`."""
    beams = prompt.repeat(num_beams, 1)
    scores = torch.zeros(num_beams) if all_beams_start else torch.tensor([0.0] + [-1e9] * (num_beams - 1))
    finished = []
    for step in range(max_new_tokens):
        logits = model(beams)[0][:, -1].float()
        log_p = logits if raw_logits else logits.log_softmax(-1)
        top, index = (scores[:, None] + log_p).flatten().topk(2 * num_beams)
        last = step == max_new_tokens - 1
        next_beams, next_scores = [], []
        for rank in range(2 * num_beams):
            parent, token = divmod(int(index[rank]), log_p.shape[-1])
            seq = torch.cat([beams[parent], torch.tensor([token])])
            if last or token == eos:
                if rank < num_beams or (finish_all_eos and not last):
                    length = seq.shape[0] if length_with_prompt else step + 1
                    finished.append((float(top[rank]) / length ** length_penalty, seq))
            elif len(next_beams) < num_beams:
                next_beams.append(seq)
                next_scores.append(top[rank])
        finished = sorted(finished, key=lambda f: f[0], reverse=True)[:num_beams]
        if last or (len(finished) == num_beams and not no_early_stop) or (stop_at_first and finished):
            break
        beams, scores = torch.stack(next_beams), torch.stack(next_scores)
    return finished[0][1][None]


def beam_search_mistakes(model, prompt: torch.Tensor, max_new_tokens: int, num_beams: int, length_penalty: float = 1.0,
                         eos_token_id: int | None = None) -> dict[str, torch.Tensor]:
    """What the usual wrong versions of beam search return for ``prompt (1, T)`` on ``model`` (the course's GPT
    interface), keyed by a description of the mistake."""
    mistakes = {
        "every beam expanded at the first step: the beams start as copies of the prompt, so they fill with "
        "duplicates and follow the greedy path; give all but the first beam a score of -1e9 at step 1":
            dict(all_beams_start=True),
        "the scores summed raw logits, not log-probabilities (log_softmax): logits of different steps are not "
        "comparable": dict(raw_logits=True),
    }
    if eos_token_id is not None:
        mistakes.update({
            "a candidate ending in EOS was finished although it ranked outside the best num_beams of the 2 * num_beams "
            "candidates: only those among the best num_beams are finished": dict(finish_all_eos=True),
            "the search stopped at the first finished hypothesis: with early_stopping it stops when num_beams "
            "hypotheses are finished": dict(stop_at_first=True),
            "the search went on after num_beams hypotheses had finished: with early_stopping=True it stops as soon as "
            "num_beams hypotheses are finished": dict(no_early_stop=True),
        })
        mistakes["EOS ignored: a hypothesis whose new token is eos_token_id is finished (set aside with its score) "
                 "and no longer extended"] = dict(eos=None)
        if length_penalty != 0:
            mistakes["the length penalty not applied: a finished hypothesis scores sum(log p) / n ** length_penalty, "
                     "n its new tokens (EOS included)"] = dict(length_penalty=0.0)
            mistakes["the length penalty divided by the whole length, prompt included: n counts the new tokens only "
                     "(EOS included)"] = dict(length_with_prompt=True)
    def run(switches):
        changed = {"length_penalty": length_penalty, "eos": eos_token_id, **switches}
        return _beam_search(model, prompt, max_new_tokens, num_beams, changed.pop("length_penalty"), changed.pop("eos"),
                            **changed)

    return {description: run(switches) for description, switches in mistakes.items()}


def sampled_outside(model, out: torch.Tensor, n_prompt: int, temperature: float, top_k: int | None = None,
                    top_p: float | None = None) -> tuple[int, int] | None:
    """The first (row, step) whose sampled token the filters would have removed: ``model`` (the course's GPT
    interface, without cache) reads each row of ``out`` (batch, n_prompt + n), and ``transformers``' temperature,
    top-k and top-p warpers, in that order, decide which tokens may be sampled. None when every token may be."""
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    with torch.no_grad():
        logits = model(out[:, :-1])[0][:, n_prompt - 1:].double()            # (batch, n, vocab)
    for step in range(logits.shape[1]):
        z = TemperatureLogitsWarper(temperature)(None, logits[:, step])
        z = TopKLogitsWarper(top_k)(None, z) if top_k else z
        z = TopPLogitsWarper(top_p)(None, z) if top_p else z
        allowed = torch.isfinite(z.gather(1, out[:, n_prompt + step, None]))[:, 0]
        if not allowed.all():
            return int((~allowed).nonzero()[0]), step
    return None


def gpt2_without_attention_scale(model):
    """A copy of a ``GPT2LMHeadModel`` whose attention scores are not divided by sqrt(d_head): the logits of that
    mistake."""
    unscaled = copy.deepcopy(model)
    for block in unscaled.transformer.h:
        block.attn.scaling = 1.0      # transformers' GPT2Attention multiplies the scores by this (head_dim ** -0.5)
    return unscaled


def gpt2_with_attention_scale(model, scale: float):
    """A copy of a ``GPT2LMHeadModel`` whose attention scores are multiplied by ``scale`` instead of
    1/sqrt(d_head) (e.g. ``n_embd ** -0.5``, the whole width's root): the logits of that mistake."""
    scaled = copy.deepcopy(model)
    for block in scaled.transformer.h:
        block.attn.scaling = scale
    return scaled


class SwappedTokens(torch.nn.Module):
    """``model`` (the course's GPT interface) with token ids ``a`` and ``b`` swapped in its input and in its logits:
    what the model generated as ``a`` it generates as ``b``. With ``b = 0`` it checks that a loop treats the id 0
    as any other end-of-sequence id (``eos_token_id is not None``, not ``if eos_token_id:``)."""

    def __init__(self, model, a: int, b: int):
        super().__init__()
        self.model, self.config = model, model.config
        order = torch.arange(model.config.vocab_size)
        order[a], order[b] = b, a
        self.register_buffer("order", order, persistent=False)

    def swap(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids`` with ``a`` and ``b`` exchanged (the swap is its own inverse)."""
        return self.order[ids]

    def forward(self, ids, **kwargs):
        logits, loss = self.model(self.order[ids], **kwargs)
        return logits[..., self.order], loss


@torch.no_grad()
def penalised_generated_only(model, prompt: torch.Tensor, max_new_tokens: int, penalty: float) -> torch.Tensor:
    """Greedy decoding of ``prompt (1, T)`` on ``model`` (the course's GPT interface, no cache) with ``transformers``'
    repetition penalty on the generated tokens only, not the prompt: that mistake's output ``(1, T + n)``."""
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    ids = prompt
    for _ in range(max_new_tokens):
        logits = model(ids)[0][:, -1]
        generated = ids[:, prompt.shape[1]:]
        if generated.shape[1]:
            logits = RepetitionPenaltyLogitsProcessor(penalty)(generated, logits.clone())
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)
    return ids
