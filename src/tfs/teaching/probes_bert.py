"""Probes for chapter 05 (BERT): the usual wrong answers, computed on purpose so a failure can name them.

Like :mod:`tfs.teaching.probes`, each function returns ``{description: wrong_result}``; nothing here
is an oracle. Some wrong answers are computed with chapter 03's encoder set up wrongly (pre-LN blocks, no mask, tanh
GELU, LayerNorm eps 1e-5).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["bert_model_mistakes", "embedding_mistakes", "mlm_head_mistakes", "padding_mask_mistakes",
           "padding_mask_rows", "pooler_mistakes"]


def embedding_mistakes(embeddings, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong ``BertEmbeddings`` outputs from the module's own tables (``token``, ``position``, ``segment``, ``norm``)."""
    token, position, segment = embeddings.token.weight, embeddings.position.weight, embeddings.segment.weight
    d = token.shape[1]
    w, b = embeddings.norm.weight, embeddings.norm.bias
    eps = getattr(embeddings.norm, "eps", 1e-12)
    L = input_ids.shape[1]
    ln = lambda x, e=eps: F.layer_norm(x, (d,), w, b, e)  # noqa: E731
    return {
        "the segment (token-type) embeddings ignored": ln(token[input_ids] + position[:L]),
        "segments swapped (sentence A must use segment row 0)": ln(token[input_ids] + position[:L] + segment[1 - token_type_ids]),
        "the position embeddings missing": ln(token[input_ids] + segment[token_type_ids]),
        "the sum not passed through LayerNorm": token[input_ids] + position[:L] + segment[token_type_ids],
        "LayerNorm with eps=1e-5 instead of config.eps=1e-12":
            ln(token[input_ids] + position[:L] + segment[token_type_ids], 1e-5),
    }


def padding_mask_rows(mask: object, attention_mask: torch.Tensor, n_heads: int) -> torch.Tensor | None:
    """What each real query may attend to under ``mask``: ``(real queries, n_heads, L_key)`` bool.

    ``None`` when ``mask`` is not a tensor that broadcasts to the scores ``(batch, n_heads, L, L)``. The rows of
    padding queries are left out: no real token reads their outputs once the padding keys are hidden.
    """
    batch, length = attention_mask.shape
    scores = (batch, n_heads, length, length)
    if not isinstance(mask, torch.Tensor):
        return None
    try:
        if torch.broadcast_shapes(tuple(mask.shape), scores) != scores:
            return None
    except RuntimeError:
        return None
    return mask.expand(scores).transpose(1, 2)[attention_mask.bool()]  # (real queries, heads, L_key)


def padding_mask_mistakes(attention_mask: torch.Tensor, n_heads: int) -> dict[str, torch.Tensor]:
    """Wrong masks for a tokenizer's 0/1 ``attention_mask``, seen as :func:`padding_mask_rows` sees them."""
    real = attention_mask.bool()
    wrong = {"an inverted mask: True must mean 'may attend' (a real token), not 'padding'": ~real[:, None, None, :],
             "the padding hidden along the query axis: it removes the padding's own rows, and every real query "
             "still gives weight to the padding keys": real[:, None, :, None]}
    return {what: padding_mask_rows(mask, attention_mask, n_heads) for what, mask in wrong.items()}


def pooler_mistakes(hidden: torch.Tensor, pooler: torch.nn.Linear, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong pooled outputs ``(B, d)`` from a model's ``hidden`` states and its ``pooler`` layer."""
    last = torch.stack([hidden[i, n - 1] for i, n in enumerate(attention_mask.sum(1).tolist())])
    return {
        "the pooler on the last real token instead of [CLS] (position 0)": torch.tanh(pooler(last)),
        "the pooler on the last position instead of [CLS] (position 0)": torch.tanh(pooler(hidden[:, -1])),
        "the pooler on the mean of the tokens instead of [CLS]": torch.tanh(pooler(hidden.mean(1))),
        "the pooler without its tanh": pooler(hidden[:, 0]),
    }


@torch.no_grad()
def bert_model_mistakes(state_dict: dict, config, input_ids, attention_mask, token_type_ids) -> dict[str, torch.Tensor]:
    """Wrong ``last_hidden_state`` s: the same weights through chapter 03's ``tfs.nn.Encoder``, set up wrongly
    (built from earlier chapters' pieces: chapter 05's own ``BertModel`` is what the learner writes)."""
    from tfs.nn import Encoder

    dtype = next(iter(state_dict.values())).dtype
    types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
    encoder_state = {k.removeprefix("encoder."): v for k, v in state_dict.items() if k.startswith("encoder.")}

    def run(edit=None, mask=attention_mask, eps=config.eps):
        embedded = (state_dict["embeddings.token.weight"][input_ids] + state_dict["embeddings.segment.weight"][types]
                    + state_dict["embeddings.position.weight"][: input_ids.shape[1]])  # (B, L, d)
        embedded = F.layer_norm(embedded, (config.d_model,), state_dict["embeddings.norm.weight"],
                                state_dict["embeddings.norm.bias"], eps)
        encoder = Encoder(config.n_layers, config.d_model, config.n_heads, config.d_ff, norm_first=False, eps=eps)
        encoder = encoder.to(dtype).eval()
        encoder.load_state_dict(encoder_state)
        if edit:
            edit(encoder)
        return encoder(embedded, None if mask is None else mask.bool()[:, None, None, :])

    def pre_ln(encoder):
        for block in encoder.layers:
            block.norm_first = True

    def tanh_gelu(encoder):
        for block in encoder.layers:
            block.ff.activation = "gelu_tanh"

    return {
        "pre-LN blocks (x + f(LN(x))); BERT is post-LN: x = LayerNorm(x + f(x))": run(pre_ln),
        "the attention mask not applied (padding attended to)": run(mask=None),
        "the tanh approximation of GELU; BERT uses the exact GELU": run(tanh_gelu),
        "LayerNorm eps=1e-5 instead of config.eps": run(eps=1e-5),
    }


def mlm_head_mistakes(head, hidden: torch.Tensor, embedding_weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong MLM logits from the head's own ``dense`` and ``norm`` layers."""
    transformed = head.norm(F.gelu(head.dense(hidden)))
    return {
        "the head's own bias missing from the logits": transformed @ embedding_weight.T,
        "no GELU between dense and LayerNorm": head.norm(head.dense(hidden)) @ embedding_weight.T + head.bias,
        "LayerNorm skipped": F.gelu(head.dense(hidden)) @ embedding_weight.T + head.bias,
    }
