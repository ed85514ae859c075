"""Probes for chapter 05 (BERT): the usual wrong answers, computed on purpose so a failure can name them.

Like :mod:`tfs.teaching.probes`, each function returns ``{description: wrong_result}``; nothing here
is an oracle. Some wrong answers are computed with chapter 03's encoder set up wrongly (pre-LN blocks, no mask, tanh
GELU, LayerNorm eps 1e-5).
"""

from __future__ import annotations

import re

import torch
from torch.nn import functional as F

__all__ = ["batch_axis_hint", "bert_model_mistakes", "embedding_dropout_problem", "embedding_mistakes", "fingerprint", "fused_hint",
           "load_error_problems", "load_errors", "load_hint", "misloaded", "misloaded_states", "mlm_head_mistakes",
           "padding_mask_mistakes", "padding_mask_rows", "pooler_mistakes"]


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
        "the positions start at 1; the first token must get position row 0":
            ln(token[input_ids] + position[1:L + 1] + segment[token_type_ids]),
    }


def embedding_dropout_problem(output: torch.Tensor, normalised: torch.Tensor, p: float) -> str | None:
    """What is wrong with ``BertEmbeddings``' ``output`` in training mode with dropout ``p``, given ``normalised``, the
    LayerNorm of the same sum (dropout off); ``None`` when each output is 0 or ``normalised / (1 - p)`` and about a
    share ``p`` of them is 0 (dropout applied last, on LayerNorm's output)."""
    output = output.detach().double()
    kept = normalised.detach().double() / (1 - p)
    zero = output == 0
    scaled = (output - kept).abs() <= 1e-9 * (1 + kept.abs())
    if output.shape == kept.shape and bool(((output - normalised).abs() <= 1e-9 * (1 + kept.abs())).all()):
        return (f"in training mode (dropout={p}) the outputs are LayerNorm's, unchanged: no dropout is applied; apply "
                "the dropout module (nn.Dropout(config.dropout)) to LayerNorm's output in forward.")
    if output.shape != kept.shape or not bool((zero | scaled).all()):
        return (f"in training mode (dropout={p}) some outputs are neither 0 nor LayerNorm's value / (1 - p): dropout "
                "must be the last step, on LayerNorm's output, dropout(norm(token + position + segment)); dropout "
                "before the LayerNorm (or a LayerNorm after it) is another computation.")
    share = zero.double().mean().item()
    if not abs(share - p) < 0.15:
        return (f"in training mode (dropout={p}) {share:.0%} of the outputs are 0, expected about {p:.0%}: apply the "
                "dropout module (nn.Dropout(config.dropout)) to LayerNorm's output in forward.")
    return None


def batch_axis_hint(embeddings, input_ids: torch.Tensor) -> str | None:
    """A hint when ``embeddings`` fails on ``input_ids`` (batch != length) but runs on a batch as long as its
    sequences: the position ids were taken along the batch axis."""
    square = input_ids[torch.arange(input_ids.shape[1]) % input_ids.shape[0]]  # (L, L)
    try:
        embeddings(input_ids)
        return None
    except Exception:
        pass
    try:
        embeddings(square)
    except Exception:
        return None
    return ("it fails for a batch of 3 sequences of 10 tokens but runs for 10 of 10: the position ids follow the "
            "batch axis (input_ids.shape[0]); positions 0..L-1 run along the sequence axis, input_ids.shape[1].")


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

    def run(edit=None, mask=attention_mask, eps=config.eps, types=types):
        embedded = (state_dict["embeddings.token.weight"][input_ids] + state_dict["embeddings.segment.weight"][types]
                    + state_dict["embeddings.position.weight"][: input_ids.shape[1]])  # (B, L, d)
        embedded = F.layer_norm(embedded, (config.d_model,), state_dict["embeddings.norm.weight"],
                                state_dict["embeddings.norm.bias"], eps)
        encoder = Encoder(config.n_layers, config.d_model, config.n_heads, config.d_ff, norm_first=False, eps=eps)
        encoder = encoder.to(dtype).eval()
        encoder.load_state_dict({k: v for k, v in encoder_state.items() if not k.startswith("final_norm.")})
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
        "the segment embeddings ignored (token_type_ids not passed to the embeddings)":
            run(types=torch.zeros_like(input_ids)),
        "the tanh approximation of GELU; BERT uses the exact GELU": run(tanh_gelu),
        "LayerNorm eps=1e-5 instead of config.eps": run(eps=1e-5),
    }


def mlm_head_mistakes(head, hidden: torch.Tensor, embedding_weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """Wrong MLM logits from the head's own ``dense`` and ``norm`` layers."""
    transformed = head.norm(F.gelu(head.dense(hidden)))
    return {
        "the head's own bias missing from the logits": transformed @ embedding_weight.T,
        "LayerNorm before the GELU; the order is dense, GELU, LayerNorm":
            F.gelu(head.norm(head.dense(hidden))) @ embedding_weight.T + head.bias,
        "no GELU between dense and LayerNorm": head.norm(head.dense(hidden)) @ embedding_weight.T + head.bias,
        "the tanh approximation of GELU; BERT's head uses the exact GELU (F.gelu without approximate)":
            head.norm(F.gelu(head.dense(hidden), approximate="tanh")) @ embedding_weight.T + head.bias,
        "LayerNorm skipped": F.gelu(head.dense(hidden)) @ embedding_weight.T + head.bias,
    }


def fingerprint(value: torch.Tensor) -> torch.Tensor:
    """A small summary of a weight that tells tensors (and the order of their rows) apart: a 1-D tensor itself, a
    matrix's row sums then column sums (float64)."""
    value = value.detach().double()
    return torch.cat([value.sum(1), value.sum(0)]) if value.dim() == 2 else value.flatten()


_LAYER_PARTS = {"attn.out": "attention.output.dense", "norm1": "attention.output.LayerNorm",
                "ff.linear1": "intermediate.dense", "ff.linear2": "output.dense", "norm2": "output.LayerNorm"}
_EMBEDDINGS = {"embeddings.token.weight": "embeddings.word_embeddings.weight",
               "embeddings.position.weight": "embeddings.position_embeddings.weight",
               "embeddings.segment.weight": "embeddings.token_type_embeddings.weight",
               "embeddings.norm.weight": "embeddings.LayerNorm.weight", "embeddings.norm.bias": "embeddings.LayerNorm.bias",
               "pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias"}


def _expected_fingerprints(hf_state: dict) -> dict[str, tuple[str, torch.Tensor]]:
    """``{course key: (the transformers key(s) it comes from, its fingerprint)}`` for a ``BertModel`` state dict."""
    expected = {ours: (theirs, fingerprint(hf_state[theirs])) for ours, theirs in _EMBEDDINGS.items()}
    n_layers = 1 + max(int(k.split(".")[2]) for k in hf_state if k.startswith("encoder.layer."))
    for i in range(n_layers):
        for kind in ("weight", "bias"):
            for ours, theirs in _LAYER_PARTS.items():
                key = f"encoder.layer.{i}.{theirs}.{kind}"
                expected[f"encoder.layers.{i}.{ours}.{kind}"] = (key, fingerprint(hf_state[key]))
            parts = [f"encoder.layer.{i}.attention.self.{name}.{kind}" for name in ("query", "key", "value")]
            expected[f"encoder.layers.{i}.attn.qkv.{kind}"] = (" + ".join(parts),
                                                             fingerprint(torch.cat([hf_state[p] for p in parts])))
    return expected


def misloaded(fingerprints: dict, hf_state: dict, limit: int = 3) -> list[str]:
    """What a model's tensors hold where they differ from ``hf_state`` mapped to the course's names, from their
    :func:`fingerprint` s: query/key/value fused in another order, a tensor holding another key's values."""
    expected = _expected_fingerprints(hf_state)
    same = lambda a, b: a.shape == b.shape and (a - b).abs().max().item() <= 1e-6 * (1 + b.abs().max().item())  # noqa: E731
    wrong = []
    for key, (source, print_) in expected.items():
        got = fingerprints.get(key)
        if not isinstance(got, torch.Tensor) or got.shape != print_.shape or same(got, print_):
            continue
        if ".attn.qkv." in key:  # row sums of query, key, value first (then, for the weight, column sums)
            d = print_.shape[0] // (3 if key.endswith("bias") else 4)
            held = [next((name for j, name in enumerate(("query", "key", "value"))
                          if same(got[i * d:(i + 1) * d], print_[j * d:(j + 1) * d])), "?") for i in range(3)]
            if "?" not in held:
                wrong.append(f"{key} holds ({', '.join(held)}) in that order; the attention splits qkv as "
                             "(query, key, value)")
                continue
        twin = next((k for k, (_, p) in expected.items() if k != key and same(got, p)), None)
        wrong.append(f"{key} holds {expected[twin][0]} (expected {source})" if twin else f"{key} differs from {source}")
    return wrong[:limit] + ([f"and {len(wrong) - limit} more"] if len(wrong) > limit else [])


MISSING_KEY = "encoder.layer.1.output.dense.bias"
UNEXPECTED_KEY = "encoder.layer.2.output.dense.bias"  # a third layer in a two-layer model
OUTSIDE_KEY = "embeddings.LayerNorm.gamma"  # TensorFlow-era name of a LayerNorm weight: outside the layers, unknown
WRONG_SHAPE_KEY = "encoder.layer.0.intermediate.dense.weight"


def misloaded_states(hf_state: dict) -> dict[str, dict]:
    """A two-layer ``BertModel`` state dict with :data:`MISSING_KEY` left out, :data:`UNEXPECTED_KEY` or
    :data:`OUTSIDE_KEY` added, or :data:`WRONG_SHAPE_KEY` one row too long."""
    wrong = hf_state[WRONG_SHAPE_KEY]
    return {"missing": {k: v for k, v in hf_state.items() if k != MISSING_KEY},
            "unexpected": {**hf_state, UNEXPECTED_KEY: hf_state[MISSING_KEY]},
            "unexpected outside": {**hf_state, OUTSIDE_KEY: hf_state["embeddings.LayerNorm.weight"]},
            "wrong shape": {**hf_state, WRONG_SHAPE_KEY: torch.zeros(wrong.shape[0] + 1, *wrong.shape[1:])}}


_CASE_WORDS = {"unexpected outside": "unexpected (an old name outside the layers: no key may be skipped silently)",
               "wrong shape": "of the wrong shape"}


def load_error_problems(raises: dict, d_ff: int) -> list[str]:
    """What is wrong with the errors a loader raised (``{case: "KeyError: ..."}``, cases of :func:`misloaded_states`):
    a KeyError naming the key for a key missing or unexpected, a ValueError naming it and both shapes for a shape."""
    cases = {"missing": ("KeyError", MISSING_KEY, ("output.dense.bias", "ff.linear2.bias")),
             "unexpected": ("KeyError", UNEXPECTED_KEY, ("layer.2.output.dense.bias", "layers.2.ff.linear2.bias")),
             "unexpected outside": ("KeyError", OUTSIDE_KEY, (OUTSIDE_KEY,)),
             "wrong shape": ("ValueError", WRONG_SHAPE_KEY, ("intermediate.dense.weight", "ff.linear1.weight"))}
    problems = []
    for case, (error, key, fragments) in cases.items():
        said = str(raises.get(case, "no error"))[:200]
        if not said.startswith(error):
            problems.append(f"with the key {key} {_CASE_WORDS.get(case, case)}, expected a {error} naming it; your "
                            f"function: {said}.")
        elif not any(fragment in said for fragment in fragments):
            problems.append(f"the {error} for {key} ({case}) must name the key; yours says: {said}.")
        elif case == "wrong shape" and not (str(d_ff) in said and str(d_ff + 1) in said):
            problems.append(f"the ValueError for {key} must give both shapes ({d_ff} and {d_ff + 1} rows); yours "
                            f"says: {said}.")
    return problems


def fused_hint(said: str) -> str | None:
    """A hint when a loader's error ``said`` (its text) names ``qkv`` with the shapes ``(3d, d)`` and ``(d, 3d)``:
    query, key and value concatenated along dim 1 instead of dim 0."""
    shapes = {(int(a), int(b)) for a, b in re.findall(r"(\d+), (\d+)", said)}
    if "qkv" in said and any(rows == 3 * cols and (cols, rows) in shapes for rows, cols in shapes):
        return ("query, key and value were concatenated along dim 1 (a qkv weight of shape (d, 3d)): an nn.Linear "
                "weight is (out, in), so the fused weight stacks their rows, (3d, d); concatenate along dim 0, "
                "torch.cat([query, key, value]), in the order the attention splits qkv.")
    return None


def load_hint(load, make_model, hf_state: dict) -> str | None:
    """:func:`fused_hint` of what ``load(make_model(), hf_state)`` raises (None when it raises nothing)."""
    try:
        load(make_model(), hf_state)
    except Exception as error:
        return fused_hint(f"{type(error).__name__}: {error}")
    return None


def load_errors(load, make_model, hf_state: dict, d_ff: int) -> list[str]:
    """:func:`load_error_problems` of ``load(make_model(), bad_state)`` for each state of :func:`misloaded_states`."""
    raises = {}
    for case, bad in misloaded_states(hf_state).items():
        try:
            load(make_model(), bad)
            raises[case] = "no error"
        except Exception as error:
            raises[case] = f"{type(error).__name__}: {error}"
    return load_error_problems(raises, d_ff)
