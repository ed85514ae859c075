"""Chapter 05 (BERT) judges. Oracles: ``torch.nn.functional``, ``transformers.BertModel``, analytic rules.

Inputs and weights are rebuilt here from the collector module's seeded generators; nothing the
kernel reports is trusted but its outputs. Each failure names the likely mistake.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from tfs.grader.collectors import ch05 as c
from tfs.grader.judging import JudgeFailure, check_data, per_run
from tfs.teaching import probes_bert

F64 = 1e-10


def _tensor(data, key: str, shape: tuple[int, ...] | None = None, what: str = "") -> torch.Tensor:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, torch.Tensor):
        raise JudgeFailure(f"{what or key}: expected a tensor, received {type(value).__name__}.")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise JudgeFailure(f"{what or key}: expected shape {tuple(shape)}, received {tuple(value.shape)}.")
    return value


def _close(received: torch.Tensor, expected: torch.Tensor, tol: float = F64) -> bool:
    return received.shape == expected.shape and (received.double() - expected.double()).abs().max().item() <= tol


def _names(data, expected: set[str], what: str, hint: str) -> None:
    names = set(data.get("shapes", {}))
    if names != expected:
        extra, missing = sorted(names - expected), sorted(expected - names)
        raise JudgeFailure(f"{what}: parameters named {sorted(names)}; expected {sorted(expected)} "
                           f"(missing {missing}, unexpected {extra}). {hint}")


def _w(name: str, shape) -> torch.Tensor:
    return c.seeded_tensor(name, tuple(shape))


# ------------------------------------------------------------------------------------------ embeddings

def _embeddings_oracle(prefix: str, ids: torch.Tensor, types: torch.Tensor, eps: float = 1e-12,
                       first_position: int = 0) -> torch.Tensor:
    cfg = c.TINY
    d = cfg["d_model"]
    token = _w(f"{prefix}token.weight", (cfg["vocab_size"], d))
    position = _w(f"{prefix}position.weight", (cfg["max_position"], d))
    segment = _w(f"{prefix}segment.weight", (cfg["type_vocab_size"], d))
    x = token[ids] + position[first_position: first_position + ids.shape[1]] + segment[types]
    return F.layer_norm(x, (d,), _w(f"{prefix}norm.weight", (d,)), _w(f"{prefix}norm.bias", (d,)), eps)


def embeddings(data) -> None:
    if isinstance(data, dict) and "error" in data:
        check_data(data, {"shapes": dict, "error": str, "square_works": bool}, "BertEmbeddings")
        if data["square_works"]:
            raise JudgeFailure("BertEmbeddings: input_ids of shape (3, 10) raised an error, (10, 10) did not: the "
                               "position ids follow the batch axis (input_ids.shape[0]); positions 0..L-1 run along "
                               f"the sequence axis, input_ids.shape[1]. The error: {data['error']}")
        raise JudgeFailure(f"BertEmbeddings(config)(input_ids, token_type_ids) raised {data['error']}")
    check_data(data, {"shapes": dict, "with_segments": None, "default_segments": None, "training": None},
               "BertEmbeddings")
    _names(data, {"token.weight", "position.weight", "segment.weight", "norm.weight", "norm.bias"},
           "BertEmbeddings", "Use the attributes token, position, segment (nn.Embedding) and norm (LayerNorm).")
    ids, types = c.embedding_inputs()
    got = _tensor(data, "with_segments", (3, 10, c.TINY["d_model"]), "BertEmbeddings(config)(input_ids, token_type_ids)")
    default = _tensor(data, "default_segments", (3, 10, c.TINY["d_model"]), "BertEmbeddings(config)(input_ids)")
    expected = _embeddings_oracle("", ids, types)
    if not _close(got, expected):
        zeros = torch.zeros_like(types)
        if _close(got, _embeddings_oracle("", ids, zeros)):
            raise JudgeFailure("BertEmbeddings: the segment (token-type) embeddings are ignored: sentence B must "
                               "add segment[1], sentence A segment[0].")
        if _close(got, _embeddings_oracle("", ids, 1 - types)):
            raise JudgeFailure("BertEmbeddings: segments swapped: token_type_ids 0 (sentence A) must pick segment row 0.")
        if _close(got, _embeddings_oracle("", ids, types, eps=1e-5)):
            raise JudgeFailure("BertEmbeddings: LayerNorm with eps=1e-5: use config.eps (BERT's is 1e-12).")
        if _close(got, _embeddings_oracle("", ids, types, first_position=1)):
            raise JudgeFailure("BertEmbeddings: the positions start at 1: the first token must get position row 0 "
                               "(positions 0..L-1).")
        cfg, d = c.TINY, c.TINY["d_model"]
        no_norm = (_w("token.weight", (cfg["vocab_size"], d))[ids] + _w("position.weight", (cfg["max_position"], d))[:10]
                   + _w("segment.weight", (2, d))[types])
        if _close(got, no_norm):
            raise JudgeFailure("BertEmbeddings: the sum is not passed through LayerNorm (norm).")
        worst = (got.double() - expected).abs().max().item()
        raise JudgeFailure(f"BertEmbeddings: values differ from LayerNorm(token + position + segment) "
                           f"(max difference {worst:.3g}). Positions 0..L-1, segments from token_type_ids.")
    if not _close(default, _embeddings_oracle("", ids, torch.zeros_like(types))):
        raise JudgeFailure("BertEmbeddings: token_type_ids=None must mean segment 0 for every token.")
    _varied_embeddings(data)
    if isinstance(data["training"], str):
        raise JudgeFailure(f"BertEmbeddings in training mode (dropout={c.DROPOUT}) raised {data['training']}")
    training = _tensor(data, "training", (3, 10, c.TINY["d_model"]), "BertEmbeddings in training mode")
    problem = probes_bert.embedding_dropout_problem(training, expected, c.DROPOUT)
    if problem:
        raise JudgeFailure(f"BertEmbeddings: {problem}")


def _varied_embeddings(data) -> None:
    """The config :data:`c.VARIED`: eps 0.1, three segment types, a sequence as long as max_position."""
    cfg, d = {**c.TINY, **c.VARIED}, c.TINY["d_model"]
    rows = {"token.weight": cfg["vocab_size"], "position.weight": cfg["max_position"],
            "segment.weight": cfg["type_vocab_size"]}
    shapes = data.get("varied_shapes") if isinstance(data.get("varied_shapes"), dict) else {}
    fields = {"token.weight": "vocab_size", "position.weight": "max_position", "segment.weight": "type_vocab_size"}
    for name, count in rows.items():
        if name in shapes and list(shapes[name]) != [count, d]:
            raise JudgeFailure(f"BertEmbeddings: with config.{fields[name]}={count}, {name.split('.')[0]} has shape "
                               f"{tuple(shapes[name])}; it must be nn.Embedding(config.{fields[name]}, config.d_model), "
                               "read from the config, not a fixed number.")
    if isinstance(data.get("varied"), str):
        raise JudgeFailure(f"BertEmbeddings(config with vocab_size=30, max_position=10, type_vocab_size=3, eps=0.1) on "
                           f"input_ids of length 10 (= max_position) raised {data['varied']}")
    got = _tensor(data, "varied", (2, cfg["max_position"], d), "BertEmbeddings(config with eps=0.1, type_vocab_size=3)")
    ids, types = c.varied_inputs()

    def oracle(eps):
        x = (_w("token.weight", (cfg["vocab_size"], d))[ids] + _w("position.weight", (cfg["max_position"], d))
             + _w("segment.weight", (cfg["type_vocab_size"], d))[types])
        return F.layer_norm(x, (d,), _w("norm.weight", (d,)), _w("norm.bias", (d,)), eps)
    if not _close(got, oracle(cfg["eps"])):
        if _close(got, oracle(1e-12)):
            raise JudgeFailure("BertEmbeddings: LayerNorm's eps is fixed at 1e-12: use config.eps (a config with "
                               "eps=0.1 gave the output of eps=1e-12).")
        raise JudgeFailure("BertEmbeddings: with a config of eps=0.1, three segment types and a sequence as long as "
                           "max_position, the values differ from LayerNorm(token + position + segment) with eps=config.eps.")


# ------------------------------------------------------------------------------------------ padding mask

def padding_mask(data) -> None:
    check_data(data, {"mask": None, "bool_input": None}, "padding_mask")
    _, mask, _ = c.model_inputs()
    real = mask.bool()
    scores = (3, 5, 10, 10)  # (batch, heads, L_query, L_key): an odd number of heads, unlike anything in the inputs
    # each real query may attend to exactly the real tokens of its own sequence, in every head; what a padding
    # query's own row holds is the learner's choice (no real token reads its output once padding keys are hidden)
    expected = torch.stack([real[b] for b, _ in real.nonzero().tolist()])[:, None, :].expand(-1, scores[1], -1)
    for key in ("mask", "bool_input"):
        got = data.get(key)
        if not isinstance(got, torch.Tensor):
            raise JudgeFailure(f"padding_mask: expected a tensor, received {type(got).__name__}.")
        if got.dtype != torch.bool:
            raise JudgeFailure(f"padding_mask: expected dtype torch.bool (True = may attend), received {got.dtype}.")
        try:
            broadcast = torch.broadcast_shapes(tuple(got.shape), scores)
        except RuntimeError:
            broadcast = None
        if broadcast != scores:
            raise JudgeFailure(f"padding_mask: a (batch, L) = (3, 10) mask must broadcast to the attention scores "
                               f"(batch, heads, L_query, L_key) = (3, H, 10, 10) for any number of heads H; received "
                               f"shape {tuple(got.shape)}.")
        rows = got.expand(scores).transpose(1, 2)[real]  # (real queries, heads, L_key)
        if torch.equal(rows, expected):
            continue
        if torch.equal(rows, ~expected):
            raise JudgeFailure("padding_mask: the mask is inverted: True must mean 'may attend' (a real token, 1), "
                               "False padding (0).")
        if rows.all():
            raise JudgeFailure("padding_mask: every real query may still attend to the padding: the padding is hidden "
                               "along the query axis (or not at all), so padding changes the real tokens' outputs.")
        raise JudgeFailure("padding_mask: wrong values: a real query of sequence b must be allowed exactly the keys j "
                           "with attention_mask[b, j] == 1, in every head.")


# ------------------------------------------------------------------------------------------ the model

def _course_shapes() -> dict[str, tuple[int, ...]]:
    cfg = c.TINY
    d, ff, shapes = cfg["d_model"], cfg["d_ff"], {}
    shapes.update({"embeddings.token.weight": (cfg["vocab_size"], d), "embeddings.position.weight": (cfg["max_position"], d),
                   "embeddings.segment.weight": (cfg["type_vocab_size"], d), "embeddings.norm.weight": (d,),
                   "embeddings.norm.bias": (d,), "pooler.weight": (d, d), "pooler.bias": (d,)})
    for i in range(cfg["n_layers"]):
        p = f"encoder.layers.{i}."
        shapes.update({p + "attn.qkv.weight": (3 * d, d), p + "attn.qkv.bias": (3 * d,), p + "attn.out.weight": (d, d),
                       p + "attn.out.bias": (d,), p + "ff.linear1.weight": (ff, d), p + "ff.linear1.bias": (ff,),
                       p + "ff.linear2.weight": (d, ff), p + "ff.linear2.bias": (d,)})
        for norm in ("norm1", "norm2"):
            shapes.update({p + norm + ".weight": (d,), p + norm + ".bias": (d,)})
    return shapes


def _transformers_bert(state: dict[str, torch.Tensor], act: str = "gelu", encoder_eps: float | None = None,
                       embeddings_eps: float | None = None):
    """``transformers.BertModel`` (float64, eager) holding the course-named ``state``; ``act`` and ``encoder_eps``
    (the blocks' LayerNorm eps, the embeddings' stays 1e-12) set up known mistakes."""
    from transformers import BertConfig as HFConfig
    from transformers import BertModel as HFBertModel

    cfg = c.TINY
    hf = HFBertModel(HFConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["d_model"], num_hidden_layers=cfg["n_layers"],
                              num_attention_heads=cfg["n_heads"], intermediate_size=cfg["d_ff"], hidden_act=act,
                              max_position_embeddings=cfg["max_position"], type_vocab_size=cfg["type_vocab_size"],
                              layer_norm_eps=encoder_eps or cfg["eps"], hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.0, attn_implementation="eager")).double().eval()
    hf.embeddings.LayerNorm.eps = embeddings_eps or cfg["eps"]
    mapped = {"embeddings.word_embeddings.weight": state["embeddings.token.weight"],
              "embeddings.position_embeddings.weight": state["embeddings.position.weight"],
              "embeddings.token_type_embeddings.weight": state["embeddings.segment.weight"],
              "embeddings.LayerNorm.weight": state["embeddings.norm.weight"],
              "embeddings.LayerNorm.bias": state["embeddings.norm.bias"],
              "pooler.dense.weight": state["pooler.weight"], "pooler.dense.bias": state["pooler.bias"]}
    for i in range(cfg["n_layers"]):
        p, h = f"encoder.layers.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            for name, part in zip(("query", "key", "value"), state[p + f"attn.qkv.{kind}"].chunk(3, dim=0)):
                mapped[h + f"attention.self.{name}.{kind}"] = part
            mapped[h + f"attention.output.dense.{kind}"] = state[p + f"attn.out.{kind}"]
            mapped[h + f"attention.output.LayerNorm.{kind}"] = state[p + f"norm1.{kind}"]
            mapped[h + f"intermediate.dense.{kind}"] = state[p + f"ff.linear1.{kind}"]
            mapped[h + f"output.dense.{kind}"] = state[p + f"ff.linear2.{kind}"]
            mapped[h + f"output.LayerNorm.{kind}"] = state[p + f"norm2.{kind}"]
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing), (missing, unexpected)
    return hf


def _pre_ln_bert(state, ids, mask, types) -> torch.Tensor:
    """The same weights run as a pre-LN stack (a known mistake), written out with torch.nn.functional."""
    cfg = c.TINY
    d, h = cfg["d_model"], cfg["n_heads"]
    x = _embeddings_oracle("embeddings.", ids, types)
    allowed = mask.bool()[:, None, None, :]
    for i in range(cfg["n_layers"]):
        p = f"encoder.layers.{i}."
        ln = lambda t, n: F.layer_norm(t, (d,), state[p + n + ".weight"], state[p + n + ".bias"], cfg["eps"])  # noqa: E731
        q, k, v = F.linear(ln(x, "norm1"), state[p + "attn.qkv.weight"], state[p + "attn.qkv.bias"]).chunk(3, -1)
        split = lambda t: t.view(t.shape[0], t.shape[1], h, d // h).transpose(1, 2)  # noqa: E731
        heads = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=allowed)
        x = x + F.linear(heads.transpose(1, 2).reshape(x.shape), state[p + "attn.out.weight"], state[p + "attn.out.bias"])
        hidden = F.gelu(F.linear(ln(x, "norm2"), state[p + "ff.linear1.weight"], state[p + "ff.linear1.bias"]))
        x = x + F.linear(hidden, state[p + "ff.linear2.weight"], state[p + "ff.linear2.bias"])
    return x


def bert_model(data) -> None:
    check_data(data, {"shapes": dict, "hidden": None, "pooled": None}, "BertModel")
    shapes = _course_shapes()
    if set(data.get("shapes", {})) - set(shapes) == {"encoder.final_norm.weight", "encoder.final_norm.bias"}:
        raise JudgeFailure("BertModel: the encoder has a final LayerNorm (encoder.final_norm), which only a pre-LN stack "
                           "has (norm_first=True, x + f(LN(x))); BERT is post-LN: x = LayerNorm(x + f(x)) after each "
                           "sublayer (norm_first=False).")
    _names(data, set(shapes), "BertModel",
           "Use embeddings (your BertEmbeddings), encoder (tfs.nn.Encoder, or blocks with its names) and pooler (nn.Linear).")
    state = c.seeded_state(shapes)
    ids, mask, types = c.model_inputs()
    d = c.TINY["d_model"]
    hidden = _tensor(data, "hidden", (3, 10, d), "BertModel(...)(input_ids, attention_mask, token_type_ids)[0]")
    pooled = _tensor(data, "pooled", (3, d), "BertModel(...)(...)[1] (pooled)")
    hf = _transformers_bert(state)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()
    if not _close(hidden[real], expected.last_hidden_state[real]):
        if _close(hidden[real], _pre_ln_bert(state, ids, mask, types)[real]):
            raise JudgeFailure("BertModel: this is a pre-LN stack (x + f(LN(x))); BERT is post-LN: "
                               "x = LayerNorm(x + f(x)) after each sublayer (norm_first=False).")
        with torch.no_grad():
            unmasked = hf(input_ids=ids, token_type_ids=types).last_hidden_state
        if _close(hidden[real], unmasked[real]):
            raise JudgeFailure("BertModel: the attention_mask is not used: real tokens attend to padding.")
        with torch.no_grad():
            wrong = {"the segment embeddings are ignored: pass token_type_ids to the embeddings":
                     hf(input_ids=ids, attention_mask=mask).last_hidden_state,
                     "the feed-forward uses the tanh approximation of GELU; BERT's is the exact GELU (activation=\"gelu\")":
                     _transformers_bert(state, act="gelu_new")(input_ids=ids, attention_mask=mask,
                                                                token_type_ids=types).last_hidden_state,
                     "the blocks' LayerNorms use eps=1e-5: pass eps=config.eps (1e-12) to the encoder":
                     _transformers_bert(state, encoder_eps=1e-5)(input_ids=ids, attention_mask=mask,
                                                                  token_type_ids=types).last_hidden_state}
        for what, hidden_wrong in wrong.items():
            if _close(hidden[real], hidden_wrong[real]):
                raise JudgeFailure(f"BertModel: {what}.")
        alone = data.get("alone")
        if isinstance(alone, list) and len(alone) == 3 and all(isinstance(a, torch.Tensor) for a in alone):
            lengths = mask.sum(1).tolist()
            if not all(_close(a, hidden[i, :n]) for i, (a, n) in enumerate(zip(alone, lengths))):
                raise JudgeFailure("BertModel: padding changes the real tokens' outputs: the attention mask is "
                                   "missing or inverted (True = may attend).")
        worst = (hidden[real].double() - expected.last_hidden_state[real]).abs().max().item()
        raise JudgeFailure(f"BertModel: last_hidden_state differs from transformers.BertModel with the same weights "
                           f"(max difference {worst:.3g} on real tokens). Check the exact GELU, eps=config.eps, "
                           "and post-LN blocks.")
    if not _close(pooled, expected.pooler_output):
        w, b = state["pooler.weight"], state["pooler.bias"]
        last = torch.stack([hidden[i, n - 1] for i, n in enumerate(mask.sum(1).tolist())])
        for name, wrong in {"the last real token": last, "the last position": hidden[:, -1],
                            "the mean of the tokens": hidden.mean(1)}.items():
            if _close(pooled, torch.tanh(F.linear(wrong, w, b))):
                raise JudgeFailure(f"BertModel: the pooler reads {name}; it must read [CLS], position 0: "
                                   "tanh(pooler(h[:, 0])).")
        if _close(pooled, F.linear(hidden[:, 0], w, b)):
            raise JudgeFailure("BertModel: the pooler lacks its tanh: tanh(pooler(h[:, 0])).")
        raise JudgeFailure("BertModel: pooled output differs from tanh(W h_[CLS] + b).")
    _bert_model_options(data, state, hf)


def _bert_model_options(data, state, hf) -> None:
    """attention_mask=None and token_type_ids=None; a config with eps=0.1 (the embeddings are a stand-in with it)."""
    ids = c.embedding_inputs()[0]
    d = c.TINY["d_model"]
    if isinstance(data.get("no_mask"), str):
        raise JudgeFailure(f"BertModel(...)(input_ids) with attention_mask=None and token_type_ids=None raised "
                           f"{data['no_mask']}: attention_mask=None means no padding (pass no mask to the encoder).")
    got = _tensor(data, "no_mask", (3, 10, d), "BertModel(...)(input_ids) (attention_mask=None)")
    with torch.no_grad():
        if not _close(got, hf(input_ids=ids).last_hidden_state):
            raise JudgeFailure("BertModel(...)(input_ids): with attention_mask=None and token_type_ids=None the output "
                               "differs from transformers.BertModel's: no mask means every token attends to every "
                               "token, and the segments are all 0.")
    ids, mask, types = c.model_inputs()
    if isinstance(data.get("eps_0.1"), str):
        raise JudgeFailure(f"BertModel(config with eps=0.1)(...) raised {data['eps_0.1']}")
    got = _tensor(data, "eps_0.1", (3, 10, d), "BertModel(config with eps=0.1)(...)[0]")
    real = mask.bool()
    with torch.no_grad():
        expected = _transformers_bert(state, encoder_eps=0.1, embeddings_eps=0.1)(
            input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        if not _close(got[real], expected[real]):
            fixed = _transformers_bert(state, encoder_eps=1e-12, embeddings_eps=0.1)(
                input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            if _close(got[real], fixed[real]):
                raise JudgeFailure("BertModel: the blocks' LayerNorm eps is fixed at 1e-12: pass eps=config.eps to the "
                                   "encoder (a config with eps=0.1 gave the output of eps=1e-12).")
            raise JudgeFailure("BertModel(config with eps=0.1): last_hidden_state differs from transformers.BertModel "
                               "with layer_norm_eps=0.1: every LayerNorm's eps must be config.eps.")


# ------------------------------------------------------------------------------------------ heads

def mlm_head(data) -> None:
    check_data(data, {"names": list, "before": None, "after": None}, "BertMLMHead")
    names = set(data.get("names", []))
    if any(name.startswith("decoder.weight") for name in names) and data.get("copied") is True:
        raise JudgeFailure("BertMLMHead: the decoder's weight is a copy of the embedding (the same values, another "
                           "Parameter): training would update the two apart. Tie them: self.decoder.weight = "
                           "token_embedding.weight.")
    if any(name.startswith("decoder.weight") for name in names):
        raise JudgeFailure("BertMLMHead: untied decoder: the decoder has a weight of its own; it must be the token "
                           "embedding's weight (self.decoder.weight = token_embedding.weight).")
    bias_name = "bias" if "bias" in names else "decoder.bias" if "decoder.bias" in names else None
    expected_names = {"dense.weight", "dense.bias", "norm.weight", "norm.bias"} | ({bias_name} if bias_name else set())
    if bias_name is None or names != expected_names:
        raise JudgeFailure(f"BertMLMHead: parameters {sorted(names)}; expected dense (nn.Linear), norm (LayerNorm), "
                           "a decoder tied to the embedding and its own bias (vocab_size,).")
    cfg = c.TINY
    V, d = cfg["vocab_size"], cfg["d_model"]
    hidden = _w("hidden", (2, 5, d))
    embedding = _w("token_embedding", (V, d))
    transformed = F.layer_norm(F.gelu(F.linear(hidden, _w("dense.weight", (d, d)), _w("dense.bias", (d,)))),
                               (d,), _w("norm.weight", (d,)), _w("norm.bias", (d,)), cfg["eps"])
    bias = _w(bias_name, (V,))
    before = _tensor(data, "before", (2, 5, V), "BertMLMHead(config, embedding)(hidden)")
    after = _tensor(data, "after", (2, 5, V), "BertMLMHead after the embedding changed")
    if not _close(before, transformed @ embedding.T + bias):
        if _close(before, transformed @ embedding.T):
            raise JudgeFailure("BertMLMHead: the head's own bias (vocab_size,) is missing from the logits.")
        dense = F.linear(hidden, _w("dense.weight", (d, d)), _w("dense.bias", (d,)))
        swapped = F.gelu(F.layer_norm(dense, (d,), _w("norm.weight", (d,)), _w("norm.bias", (d,)), cfg["eps"]))
        if _close(before, swapped @ embedding.T + bias):
            raise JudgeFailure("BertMLMHead: LayerNorm comes before the GELU; the order is dense, then GELU, then "
                               "LayerNorm: decoder(LayerNorm(gelu(dense(h)))) + bias.")
        default_eps = F.layer_norm(F.gelu(F.linear(hidden, _w("dense.weight", (d, d)), _w("dense.bias", (d,)))),
                                   (d,), _w("norm.weight", (d,)), _w("norm.bias", (d,)), 1e-5)
        if _close(before, default_eps @ embedding.T + bias):
            raise JudgeFailure("BertMLMHead: LayerNorm's eps is left at its default 1e-5: use config.eps (1e-12).")
        raise JudgeFailure("BertMLMHead: logits differ from decoder(LayerNorm(gelu(dense(h)))) + bias "
                           "(exact GELU, eps=config.eps).")
    if not _close(after, transformed @ (embedding + 1.0).T + bias):
        raise JudgeFailure("BertMLMHead: untied decoder: after the token embedding changed, the logits did not "
                           "follow; the decoder must use the embedding's weight itself, not a copy.")
    if isinstance(data.get("eps_0.1"), str):
        raise JudgeFailure(f"BertMLMHead(config with eps=0.1, embedding)(hidden) raised {data['eps_0.1']}")
    wide = _tensor(data, "eps_0.1", (2, 5, V), "BertMLMHead(config with eps=0.1, embedding)(hidden)")
    dense = F.gelu(F.linear(hidden, _w("dense.weight", (d, d)), _w("dense.bias", (d,))))
    for eps in (0.1, 1e-12):
        normed = F.layer_norm(dense, (d,), _w("norm.weight", (d,)), _w("norm.bias", (d,)), eps)
        if _close(wide, normed @ (embedding + 1.0).T + bias):
            if eps == 0.1:
                break
            raise JudgeFailure("BertMLMHead: LayerNorm's eps is fixed at 1e-12: use config.eps (a config with eps=0.1 "
                               "gave the logits of eps=1e-12).")
    else:
        raise JudgeFailure("BertMLMHead(config with eps=0.1): logits differ from decoder(LayerNorm(gelu(dense(h)))) "
                           "+ bias with LayerNorm's eps = config.eps.")


def nsp_head(data) -> None:
    check_data(data, {"shapes": dict, "logits": None}, "BertNSPHead")
    shapes = data.get("shapes", {})
    weights = [n for n, s in shapes.items() if n.endswith("weight") and list(s) == [2, c.TINY["d_model"]]]
    biases = [n for n, s in shapes.items() if n.endswith("bias") and list(s) == [2]]
    if len(shapes) == 1 and len(weights) == 1:
        raise JudgeFailure(f"BertNSPHead: its nn.Linear(d_model, 2) has no bias (bias=False); BERT's NSP classifier "
                           f"keeps its bias. Parameters {shapes}.")
    if len(shapes) != 2 or len(weights) != 1 or len(biases) != 1:
        raise JudgeFailure(f"BertNSPHead: expected one nn.Linear(d_model, 2); parameters {shapes}.")
    pooled = _w("pooled", (3, c.TINY["d_model"]))
    expected = F.linear(pooled, _w(weights[0], (2, c.TINY["d_model"])), _w(biases[0], (2,)))
    got = _tensor(data, "logits", (3, 2), "BertNSPHead(config)(pooled)")
    if torch.allclose(got.double(), torch.softmax(expected, -1)):
        raise JudgeFailure("BertNSPHead: return logits, not probabilities (no softmax: cross_entropy applies it).")
    if _close(got, torch.tanh(expected)):
        raise JudgeFailure("BertNSPHead: a tanh on the logits: the pooler already applied its tanh; the head is one "
                           "linear layer, logits = linear(pooled).")
    if not _close(got, expected):
        raise JudgeFailure("BertNSPHead: logits differ from linear(pooled).")


# ------------------------------------------------------------------------------------------ MLM masking

def _masking(data, key: str = ""):
    check_data(data, {"masked": None, "labels": None, "input_changed": bool, "again": list, "rate_30": list},
               "mask_tokens")
    ids = c.masking_inputs()
    call = {"again": "a second call", "rate_30": "mask_tokens(..., mlm_probability=0.3)"}.get(key, "mask_tokens(...)")
    source = {"masked": data[key][0], "labels": data[key][1]} if key else data
    if key and len(data[key]) != 2:
        raise JudgeFailure(f"{call}: expected (masked_ids, labels).")
    masked = _tensor(source, "masked", tuple(ids.shape), f"{call}[0] (masked ids)")
    labels = _tensor(source, "labels", tuple(ids.shape), f"{call}[1] (labels)")
    if masked.dtype != torch.int64 or labels.dtype != torch.int64:
        raise JudgeFailure(f"mask_tokens: expected int64 ids and labels, received {masked.dtype} and {labels.dtype}.")
    return ids, masked, labels


def mask_tokens_invariants(data) -> None:
    ids, masked, labels = _masking(data)
    if data.get("input_changed"):
        raise JudgeFailure("mask_tokens: input_ids was modified in place; work on a copy (input_ids.clone()).")
    special = torch.isin(ids, torch.tensor(c.SPECIAL_IDS))
    chosen = labels != -100
    if not chosen.any():
        raise JudgeFailure("mask_tokens: every label is -100: no position was chosen.")
    if chosen.double().mean().item() > 0.5:
        raise JudgeFailure(f"mask_tokens: {chosen.double().mean().item():.0%} of the positions carry a label the loss "
                           "counts: a position that was not chosen must carry F.cross_entropy's ignore_index (-100), "
                           "or the loss also scores the untouched tokens, which the model can copy from its input.")
    if (chosen & special).any():
        raise JudgeFailure("mask_tokens: masking special tokens: [CLS], [SEP] and [PAD] must never be chosen.")
    if not torch.equal(labels[chosen], ids[chosen]):
        raise JudgeFailure("mask_tokens: the label of a chosen position must be its original token id.")
    changed = (masked != ids) & ~chosen
    if changed.any() and (masked[changed] != c.MASK).double().mean() > 0.9 and (masked[chosen] == c.MASK).all():
        raise JudgeFailure("mask_tokens: positions replaced by a random token carry label -100, and only [MASK] "
                           "positions carry labels: every chosen position ([MASK], random or unchanged) must carry its "
                           "original id, or the loss never scores the random and unchanged 10 % + 10 %.")
    if not torch.equal(masked[~chosen], ids[~chosen]):
        hint = " (special tokens were changed)" if (changed & special).any() else ""
        raise JudgeFailure("mask_tokens: positions that were not chosen (label -100) must keep their token" + hint + ".")
    if masked.min() < 0 or masked.max() >= c.MLM_VOCAB:
        raise JudgeFailure(f"mask_tokens: random replacements must be token ids in [0, vocab_size={c.MLM_VOCAB}).")
    again_masked, again_labels = _masking(data, "again")[1:]
    if not (torch.equal(again_masked, masked) and torch.equal(again_labels, labels)):
        raise JudgeFailure("mask_tokens: two calls with generators seeded alike gave different results: draw all "
                           "randomness with generator (torch.rand(..., generator=generator), torch.randint(..., "
                           "generator=generator)), so that a seed reproduces the masking.")


def mask_tokens_proportions(data) -> None:
    ids, masked, labels = _masking(data)
    maskable = ~torch.isin(ids, torch.tensor(c.SPECIAL_IDS))
    chosen = (labels != -100) & maskable
    n = chosen.sum().item()
    rate = n / maskable.sum().item()
    # ~30,000 maskable tokens: a binomial's standard deviation is ~0.002 for the 15 %, ~0.005 for the shares
    if not 0.14 <= rate <= 0.16:
        raise JudgeFailure(f"mask_tokens: {rate:.1%} of the maskable tokens were chosen; expected 15 % "
                           "(each maskable position with probability mlm_probability, specials excluded).")
    to_mask = (masked[chosen] == c.MASK).float().mean().item()
    unchanged = (masked[chosen] == ids[chosen]).float().mean().item()
    replaced = 1.0 - to_mask - unchanged
    shares = f"{to_mask:.1%} [MASK], {replaced:.1%} random, {unchanged:.1%} unchanged; expected 80 / 10 / 10"
    if to_mask > 0.97:
        raise JudgeFailure("mask_tokens: 100 % [MASK]: of the chosen tokens only 80 % become [MASK]; 10 % become a "
                           "random token and 10 % stay unchanged (so the model cannot trust the input blindly).")
    if unchanged < 0.03 and abs(replaced - 0.1) <= 0.03:
        raise JudgeFailure(f"mask_tokens: no chosen token stays unchanged ({shares}): 10 % of the chosen tokens must "
                           "keep their own id (they still carry a label).")
    if abs(to_mask - 0.7) <= 0.03 and abs(replaced - 0.1) <= 0.03 and abs(unchanged - 0.2) <= 0.03:
        raise JudgeFailure(f"mask_tokens: {shares}: the random 10 % overlap the [MASK] 80 % (their ranges of one "
                           "uniform draw overlap, and the later assignment overwrites the earlier): use disjoint "
                           "ranges, e.g. draw < 0.8 for [MASK] and 0.8 <= draw < 0.9 for random.")
    for name, share in (("[MASK]", to_mask), ("a random token", replaced), ("unchanged", unchanged)):
        target = 0.8 if name == "[MASK]" else 0.1
        if abs(share - target) > 0.03:
            raise JudgeFailure(f"mask_tokens: {share:.1%} of the chosen tokens are {name}; expected {target:.0%} "
                               "(80 % [MASK], 10 % random, 10 % unchanged).")
    random_ids = masked[chosen & (masked != c.MASK) & (masked != ids)].double()
    if random_ids.numel() and abs(random_ids.mean().item() / (c.MLM_VOCAB - 1) - 0.5) > 0.1:
        raise JudgeFailure("mask_tokens: the random replacements are not uniform over the vocabulary.")
    _, _, labels_30 = _masking(data, "rate_30")
    rate_30 = ((labels_30 != -100) & maskable).sum().item() / maskable.sum().item()
    if not 0.28 <= rate_30 <= 0.32:
        raise JudgeFailure(f"mask_tokens(..., mlm_probability=0.3): {rate_30:.1%} of the maskable tokens were chosen; "
                           "expected 30 %: choose each position with probability mlm_probability, not a fixed 15 %.")


# ------------------------------------------------------------------------------------------ NSP pairs

def nsp_pairs(data) -> None:
    passages = c.nsp_passages()
    pairs = check_data(data, {"pairs": None, "again": None}, "make_nsp_pairs")["pairs"]
    expected_count = sum(len(p) - 1 for p in passages)
    if not isinstance(pairs, list) or len(pairs) != expected_count:
        count = len(pairs) if isinstance(pairs, list) else type(pairs).__name__
        raise JudgeFailure(f"make_nsp_pairs: expected {expected_count} pairs (one per sentence with a next sentence "
                           f"in its passage), received {count}.")
    labels = []
    check_data(pairs, [{"input_ids": list, "token_type_ids": list, "next_sentence_label": None}] * expected_count,
               "make_nsp_pairs")
    follows = [len(p["input_ids"]) == 9 and p["input_ids"][5:8] == [p["input_ids"][1], p["input_ids"][2] + 1, 7]
               for p in pairs]
    if all((p["next_sentence_label"] == 1) == f for p, f in zip(pairs, follows)):
        raise JudgeFailure("make_nsp_pairs: the labels are swapped: every pair whose B follows A is labelled 1 and every "
                           "other pair 0; IsNext is 0, NotNext is 1.")
    for pair in pairs:
        ids, types, label = pair["input_ids"], pair["token_type_ids"], pair["next_sentence_label"]
        if len(ids) != 9 or ids[0] != c.CLS or ids[4] != c.SEP or ids[8] != c.SEP:
            raise JudgeFailure(f"make_nsp_pairs: expected [CLS] A [SEP] B [SEP]; received {ids}.")
        if types != [0] * 5 + [1] * 4:
            raise JudgeFailure(f"make_nsp_pairs: token_type_ids must be 0 for [CLS] A [SEP] and 1 for B [SEP]; "
                               f"received {types}.")
        a, b = ids[1:4], ids[5:8]
        if label not in (0, 1):
            raise JudgeFailure(f"make_nsp_pairs: next_sentence_label must be 0 (IsNext) or 1 (NotNext); received {label}.")
        if label == 0 and b != [a[0], a[1] + 1, 7]:
            raise JudgeFailure("make_nsp_pairs: an IsNext pair (label 0) must have B = the sentence right after A "
                               "in the same passage.")
        if label == 1 and b == [a[0], a[1] + 1, 7]:
            raise JudgeFailure("make_nsp_pairs: a pair whose B is the sentence right after A is labelled 1 (NotNext); "
                               "IsNext is 0, NotNext is 1.")
        if label == 1 and b[0] == a[0]:
            raise JudgeFailure("make_nsp_pairs: a NotNext pair (label 1) must take B from another passage.")
        labels.append(label)
    share = sum(labels) / len(labels)
    if not 0.38 <= share <= 0.62:  # ~180 pairs: the standard deviation of the share is ~0.037
        raise JudgeFailure(f"make_nsp_pairs: {share:.0%} of the pairs are NotNext; expected half.")
    starts = sorted((p["input_ids"][1], p["input_ids"][2]) for p in pairs)
    if starts != sorted((100 + i, 500 + s) for i, p in enumerate(passages) for s in range(len(p) - 1)):
        raise JudgeFailure("make_nsp_pairs: each sentence that has a next sentence must be A exactly once.")
    _unequal_pairs(data.get("unequal"))
    if data["again"] != pairs:
        raise JudgeFailure("make_nsp_pairs: two calls with random.Random generators seeded alike gave different pairs: "
                           "draw every coin and every NotNext sentence with rng (rng.random(), rng.choice(...)), not "
                           "with the random module's global functions, so that a seed reproduces the pairs.")


def _unequal_pairs(pairs) -> None:
    """Sentences of 1 to 4 tokens (B's length differs from A's), [CLS] = 5, [SEP] = 6, a one-sentence passage."""
    passages, cls, sep = c.unequal_passages(), c.UNEQUAL_CLS, c.UNEQUAL_SEP
    call = f"make_nsp_pairs(passages with sentences of unequal lengths, cls_id={cls}, sep_id={sep}, rng)"
    if isinstance(pairs, str):
        raise JudgeFailure(f"{call} raised {pairs}")
    count = sum(len(p) - 1 for p in passages)
    if not isinstance(pairs, list) or len(pairs) != count:
        raise JudgeFailure(f"{call}: expected {count} pairs (one per sentence with a next sentence in its passage), "
                           f"received {len(pairs) if isinstance(pairs, list) else type(pairs).__name__}.")
    sentences = {tuple(s) for p in passages for s in p}
    for pair in pairs:
        ids, types = pair["input_ids"], pair["token_type_ids"]
        if len(ids) < 3 or ids[0] != cls or ids[-1] != sep or ids.count(sep) != 2 or cls in ids[1:]:
            raise JudgeFailure(f"{call}: expected [CLS] A [SEP] B [SEP] with the ids given (cls_id={cls}, "
                               f"sep_id={sep}); received {ids}.")
        first = ids.index(sep)
        a, b = tuple(ids[1:first]), tuple(ids[first + 1:-1])
        if a not in sentences or b not in sentences:
            raise JudgeFailure(f"{call}: A and B must be whole sentences of the passages; received {ids}.")
        expected = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        if types != expected:
            raise JudgeFailure(f"{call}: token_type_ids must be 0 for [CLS] A [SEP] (len(A) + 2 tokens) and 1 for "
                               f"B [SEP] (len(B) + 1 tokens), each from its own sentence's length; for A of {len(a)} "
                               f"and B of {len(b)} tokens received {types}.")


# ------------------------------------------------------------------------------------------ real weights

@per_run
def _minilm_state() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from tfs.data import bert_path

    return load_file(bert_path() / "model.safetensors")


def _minilm_reference(dtype: torch.dtype):
    from transformers import BertModel as HFBertModel

    from tfs.data import bert_path, load_bert_tokenizer

    batch = load_bert_tokenizer()(c.MINILM_SENTENCES, padding=True, return_tensors="pt")
    hf = HFBertModel.from_pretrained(bert_path(), attn_implementation="eager").to(dtype).eval()
    with torch.no_grad():
        return hf(**batch).last_hidden_state, hf(input_ids=batch["input_ids"]).last_hidden_state, batch["attention_mask"]


def _load_weights(data, dtype: torch.dtype, tolerance: float) -> None:
    name = str(dtype).removeprefix("torch.")
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        said = data["error"]
        if "position_ids" in said:
            raise JudgeFailure("load_bert_weights: your function rejects embeddings.position_ids; it is an int64 buffer "
                               f"(0, 1, 2, ...) that the file holds beside the weights, not a weight: skip it. ({said})")
        hint = probes_bert.fused_hint(said)
        raise JudgeFailure(f"load_bert_weights(model, MiniLM's state dict) raised {said}"
                           + (f"\n  Hint: {hint}" if hint else ""))
    check_data(data, {name: None}, "load_bert_weights")
    expected, unmasked, mask = _minilm_reference(dtype)
    got = _tensor(data, name, tuple(expected.shape), f"your BertModel with MiniLM's weights, in {name}")
    real = mask.bool()
    worst = (got.double() - expected.double())[real].abs().max().item()
    if math.isnan(worst) or worst > tolerance:
        if _close(got[real], unmasked[real], 1e-4):
            raise JudgeFailure(f"load_bert_weights ({name}): the outputs match MiniLM run without its attention mask: "
                               "the padding mask is not applied.")
        prints = data.get("fingerprints")
        misloaded = probes_bert.misloaded(prints, _minilm_state()) if isinstance(prints, dict) else []
        raise JudgeFailure(f"load_bert_weights ({name}): with your loader, a BertModel (the course's names, run as "
                           f"transformers.BertModel) differs from MiniLM by {worst:.3g} > {tolerance:g} on real tokens. "
                           + ("Tensors loaded wrongly: " + "; ".join(misloaded) + "." if misloaded else
                              "Every tensor must be copied to the part that uses it, query/key/value fused in the "
                              "order the attention splits qkv."))


def _load_errors(data) -> None:
    """What the loader raised for a tiny model's state dict with a key missing, a key unexpected, a shape wrong."""
    raises = data.get("raises") if isinstance(data.get("raises"), dict) else {}
    problems = probes_bert.load_error_problems(raises, c.TINY["d_ff"])
    if problems:
        raise JudgeFailure("load_bert_weights: " + problems[0])


def load_weights_float32(data) -> None:
    _load_weights(data, torch.float32, 1e-5)
    if data.get("returned", "the model") != "the model":
        raise JudgeFailure(f"load_bert_weights: returned {data['returned']}; fill the model in place and return it "
                           "(return model): the caller uses what the function returns.")
    _load_errors(data)


def load_weights_float64(data) -> None:
    _load_weights(data, torch.float64, 1e-10)
