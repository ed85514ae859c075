"""Chapter 11 (the encoder-decoder) judges. Oracles: ``torch.nn.TransformerDecoderLayer`` and
``torch.nn.Transformer`` holding the seeded weights (float64), embeddings and sinusoidal positions
written out here, and greedy decoding and the shift written out by hand.

Inputs and weights are rebuilt from the collector module's seeded generators; each failure names the
likely mistake.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from tfs.grader.collectors import ch11 as c
from tfs.grader.judging import JudgeFailure, check_data, expect, finite, per_run
from tfs.teaching.probes_applications import (blocks_as_mistaken, decoder_layer_by_hand, finish_rows, greedy_by_hand,
                                              one_sublayer_in_other_form, span_mistake)

TOL = 1e-9
BLOCK_NAMES = sorted([f"{attn}.{lin}.{p}" for attn in ("self_attn", "cross_attn") for lin in ("qkv", "out")
                      for p in ("weight", "bias")]
                     + [f"ff.linear{i}.{p}" for i in (1, 2) for p in ("weight", "bias")]
                     + [f"norm{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")])


def _close(received, expected: torch.Tensor, tol: float = TOL, rows: torch.Tensor | None = None) -> bool:
    if not (isinstance(received, torch.Tensor) and received.shape == expected.shape and finite(received)):
        return False
    diff = (received.double() - expected.double()).abs()
    if rows is not None:
        diff = diff[rows]
    return diff.numel() == 0 or diff.max().item() <= tol


def _tensor(value, shape, name: str) -> torch.Tensor:
    expect(isinstance(value, torch.Tensor), name, f"expected a tensor, received {type(value).__name__}.")
    expect(tuple(value.shape) == tuple(shape), name, f"expected shape {tuple(shape)}, received {tuple(value.shape)}.")
    return value


def _torch_name(name: str) -> str:
    """A course parameter name inside a block -> ``nn.TransformerDecoderLayer``/``EncoderLayer``'s."""
    name = name.replace("cross_attn.", "multihead_attn.").replace("attn.qkv.weight", "attn.in_proj_weight")
    name = name.replace("attn.qkv.bias", "attn.in_proj_bias").replace("attn.out.", "attn.out_proj.")
    name = name.replace("ff.linear", "linear")
    return name if not name.startswith("attn.") else "self_" + name


@torch.no_grad()
def _load(module: nn.Module, mapping: dict[str, str], seed: int, alias: dict[str, str] | None = None) -> nn.Module:
    """Write seeded weights into ``module``: ``mapping`` is {torch name: course name}."""
    alias = alias or {}
    params = dict(module.named_parameters())
    expect(set(params) == set(mapping), "grader", "internal error: parameter maps differ.")
    for torch_name, course_name in mapping.items():
        params[torch_name].copy_(c.seeded(alias.get(course_name, course_name), tuple(params[torch_name].shape), seed))
    return module.train()  # dropout is 0; training mode keeps nn.Transformer off its fused fast path


def _decoder_layer(norm_first: bool, seed: int = 0, activation: str = "relu",
                   eps: float = 1e-5) -> nn.TransformerDecoderLayer:
    layer = nn.TransformerDecoderLayer(c.D_MODEL, c.N_HEADS, c.D_FF, dropout=0.0, activation=activation,
                                       layer_norm_eps=eps, batch_first=True, norm_first=norm_first,
                                       dtype=torch.float64)
    return _load(layer, {_torch_name(n): n for n in BLOCK_NAMES}, seed)


def _causal(length: int) -> torch.Tensor:
    return torch.ones(length, length, dtype=torch.bool).triu(1)  # torch.nn's convention: True = blocked


# ------------------------------------------------------------------------------------ the decoder block

def _first_difference(got: torch.Tensor, expected: torch.Tensor) -> str:
    """Where two id tensors of one shape first differ, as ``row r, position p``, without either value."""
    r, p = (int(i) for i in (got.long() != expected).nonzero()[0])
    return f"row {r}, position {p}"


def decoder_block_structure(data) -> None:
    name = "DecoderBlock"
    check_data(data, {"names": None, "shape": None}, name)
    expect(isinstance(data, dict) and data.get("names") == BLOCK_NAMES, name,
           f"parameters named {data.get('names') if isinstance(data, dict) else data}; expected {BLOCK_NAMES}.",
           "self_attn and cross_attn (MultiHeadAttention), ff (FeedForward), norm1, norm2, norm3 (LayerNorm), no others.")
    x, memory, _ = c.block_inputs()
    if data["shape"] == [2, memory.shape[1], c.D_MODEL]:
        raise JudgeFailure(f"✗ {name}: the output has the memory's length {memory.shape[1]}, not the target's "
                           f"{x.shape[1]}: the cross-attention takes its queries from the memory. Queries come from "
                           "the decoder (x), keys and values from the encoder (context=memory).")
    expect(data["shape"] == list(x.shape), name, f"output shape {data['shape']}, expected {list(x.shape)} (x's shape).")


def _judge_block(data, norm_first: bool) -> None:
    name = f"DecoderBlock(norm_first={norm_first})"
    check_data(data, {"names": None, "out": None, "with_target_mask": None, "gelu": None, "eps": None,
                      "dropout_eval": None}, name)
    expect(isinstance(data, dict) and data.get("names") == BLOCK_NAMES, name,
           f"parameters named {data.get('names') if isinstance(data, dict) else data}; expected {BLOCK_NAMES}.")
    x, memory, mask = c.block_inputs()
    got = data["out"]
    if isinstance(got, torch.Tensor) and got.shape[:2] == (2, memory.shape[1]):
        raise JudgeFailure(f"✗ {name}: output of the memory's length: the cross-attention's queries come from the "
                           "memory; they must come from the decoder, with keys and values from the memory.")
    _tensor(got, x.shape, name)
    layer = _decoder_layer(norm_first)
    pad = mask == 0
    with torch.no_grad():
        expected = layer(x, memory, tgt_mask=_causal(x.shape[1]), memory_key_padding_mask=pad)
        if _close(got, expected):
            return
        other = _decoder_layer(not norm_first)
        gelu = _decoder_layer(norm_first, activation="gelu")
        mistakes = {
            "the feed-forward computed GELU although activation='relu' was given: pass the block's activation to "
            "FeedForward (its default is gelu)": gelu(x, memory, tgt_mask=_causal(x.shape[1]),
                                                       memory_key_padding_mask=pad),
            "the self-attention is not causal: position t sees later target tokens (self_attn needs causal=True or "
            "a causal mask)": layer(x, memory, memory_key_padding_mask=pad),
            "memory_mask is ignored: the cross-attention attends to the source's padding": layer(
                x, memory, tgt_mask=_causal(x.shape[1])),
            "neither mask is applied (no causal mask, no memory_mask)": layer(x, memory),
            ("pre-LN computed where post-LN was asked (norm_first=False: x = LN(x + f(x)))" if not norm_first else
             "post-LN computed where pre-LN was asked (norm_first=True: x = x + f(LN(x)))"): other(
                x, memory, tgt_mask=_causal(x.shape[1]), memory_key_padding_mask=pad),
        }
        if norm_first:
            mistakes["each residual adds the normalised input, LN(x) + f(LN(x)); pre-LN adds the block's input: "
                      "x = x + f(LN(x))"] = decoder_layer_by_hand(layer, x, memory, None, pad, True, residual_normed=True)
        mistakes.update(one_sublayer_in_other_form(layer, x, memory, None, pad, norm_first))
        for order in ((3, 2, 1), (2, 1, 3), (1, 3, 2), (2, 3, 1), (3, 1, 2)):
            mistakes[f"the LayerNorms are applied in the order norm{order[0]}, norm{order[1]}, norm{order[2]}: the "
                     "self-attention's is norm1, the cross-attention's norm2, the feed-forward's norm3"] = \
                decoder_layer_by_hand(layer, x, memory, None, pad, norm_first, norms=order)
    for mistake, wrong in mistakes.items():
        if _close(got, wrong):
            raise JudgeFailure(f"✗ {name}: {mistake}.")
    raise JudgeFailure(f"✗ {name}: the output differs from nn.TransformerDecoderLayer with the same weights (max "
                       f"difference {(got.double() - expected).abs().max().item():.3g}). Order: masked self-attention, "
                       "cross-attention (queries from x, keys/values from memory), feed-forward, each with its residual "
                       "and LayerNorm (norm1, norm2, norm3 in that order).")


def _judge_block_options(data, norm_first: bool) -> None:
    """The block's other inputs: ``tgt_mask`` (combined with the causal mask) and ``activation="gelu"``."""
    name = f"DecoderBlock(norm_first={norm_first})"
    x, memory, mask = c.block_inputs()
    target = c.target_mask()
    layer = _decoder_layer(norm_first)
    with torch.no_grad():
        expected = layer(x, memory, tgt_mask=_causal(x.shape[1]), tgt_key_padding_mask=target == 0,
                         memory_key_padding_mask=mask == 0)
        if not _close(data["with_target_mask"], expected):
            ignored = layer(x, memory, tgt_mask=_causal(x.shape[1]), memory_key_padding_mask=mask == 0)
            raise JudgeFailure(f"✗ {name}(x, memory, tgt_mask, memory_mask): " + (
                "tgt_mask is ignored: a target position that tgt_mask blocks is still attended to. Combine it with the "
                "causal mask in the self-attention (self_attn(h, mask=tgt_mask))." if _close(data["with_target_mask"],
                                                                                            ignored) else
                "with a tgt_mask the output differs from nn.TransformerDecoderLayer: tgt_mask (True = may attend) "
                "goes to the self-attention, combined with the causal mask."))
        gelu = _decoder_layer(norm_first, activation="gelu")(x, memory, tgt_mask=_causal(x.shape[1]),
                                                              memory_key_padding_mask=mask == 0)
    expect(_close(data["gelu"], gelu), f"DecoderBlock(..., norm_first={norm_first}, activation='gelu')",
           "the output differs from nn.TransformerDecoderLayer(activation='gelu'): the feed-forward must use the "
           "activation it is given, FeedForward(d_model, d_ff, activation).")
    with torch.no_grad():
        wide = _decoder_layer(norm_first, eps=c.BLOCK_EPS)(x, memory, tgt_mask=_causal(x.shape[1]),
                                                            memory_key_padding_mask=mask == 0)
    expect(_close(data["eps"], wide), f"DecoderBlock(..., norm_first={norm_first}, eps={c.BLOCK_EPS})",
           "the output differs from nn.TransformerDecoderLayer(layer_norm_eps=" + f"{c.BLOCK_EPS}): "
           + ("the eps given is not used: pass it to each LayerNorm, LayerNorm(d_model, eps)."
              if _close(data["eps"], _decoder_layer(norm_first)(x, memory, tgt_mask=_causal(x.shape[1]),
                                                                memory_key_padding_mask=mask == 0))
              else "each LayerNorm takes the block's eps, LayerNorm(d_model, eps)."))
    expect(_close(data["dropout_eval"], expected_plain(x, memory, mask, norm_first)),
           f"DecoderBlock(..., norm_first={norm_first}, dropout={c.BLOCK_DROPOUT}) in eval()",
           "in evaluation mode a block built with dropout must compute what it computes without: dropout is applied "
           "in training (evaluation) mode only. Use nn.Dropout(p) modules (they follow .train() and .eval()), or "
           "F.dropout(..., training=self.training).")


@torch.no_grad()
def expected_plain(x, memory, mask, norm_first: bool) -> torch.Tensor:
    """The seeded block's output with the memory's padding mask only (nn.TransformerDecoderLayer)."""
    return _decoder_layer(norm_first)(x, memory, tgt_mask=_causal(x.shape[1]), memory_key_padding_mask=mask == 0)


def decoder_block_post_ln(data) -> None:
    _judge_block(data, False)
    _judge_block_options(data, False)


def decoder_block_pre_ln(data) -> None:
    _judge_block(data, True)
    _judge_block_options(data, True)


# ------------------------------------------------------------------------------------- the encoder-decoder

def _sinusoids(length: int, d: int) -> torch.Tensor:
    table = torch.zeros(length, d, dtype=torch.float64)
    for p in range(length):
        for i in range(0, d, 2):
            angle = p / 10000 ** (i / d)
            table[p, i], table[p, i + 1] = math.sin(angle), math.cos(angle)
    return table


@per_run
def _transformer(shared: bool, seed: int) -> nn.Transformer:
    kw = c.config_kwargs(shared)
    with warnings.catch_warnings():  # pre-LN: "enable_nested_tensor is True, but ... norm_first was True"
        warnings.simplefilter("ignore", UserWarning)
        transformer = nn.Transformer(c.D_MODEL, c.N_HEADS, kw["n_encoder_layers"], kw["n_decoder_layers"], c.D_FF,
                                     dropout=0.0, activation=kw.get("activation", "relu"),
                                     layer_norm_eps=kw.get("eps", 1e-5),
                                     batch_first=True, norm_first=kw.get("norm_first", False), dtype=torch.float64)
    mapping = {}
    for torch_name, _ in transformer.named_parameters():
        side, rest = torch_name.split(".", 1)  # encoder / decoder
        if rest.startswith("norm."):
            mapping[torch_name] = f"{side}_norm.{rest[5:]}"
            continue
        _, index, inner = rest.split(".", 2)  # layers.i.<name>
        course = {_torch_name(n): n for n in BLOCK_NAMES}
        if side == "encoder":
            course = {"self_attn.in_proj_weight": "attn.qkv.weight", "self_attn.in_proj_bias": "attn.qkv.bias",
                      "self_attn.out_proj.weight": "attn.out.weight", "self_attn.out_proj.bias": "attn.out.bias",
                      "linear1.weight": "ff.linear1.weight", "linear1.bias": "ff.linear1.bias",
                      "linear2.weight": "ff.linear2.weight", "linear2.bias": "ff.linear2.bias",
                      "norm1.weight": "norm1.weight", "norm1.bias": "norm1.bias",
                      "norm2.weight": "norm2.weight", "norm2.bias": "norm2.bias"}
        mapping[torch_name] = f"{side}.{index}.{course[inner]}"
    return _load(transformer, mapping, seed)


@torch.no_grad()
def oracle_logits(shared: bool, seed: int, src, tgt, src_mask=None, tgt_mask=None, *, scale: bool = True,
                  positions: bool = True, memory_padding: bool = True, source_padding: bool = True,
                  encoder_padding: bool = True, target_padding: bool = True, causal: bool = True,
                  encoder_norm: bool = True, decoder_norm: bool = True,
                  float32_positions: bool = False, decoder_post_ln: bool = False, encoder_post_ln: bool = False,
                  default_activations: bool = False, final_norms_default_eps: bool = False) -> torch.Tensor:
    """Logits of the seeded model from nn.Transformer; the keyword switches build the usual mistakes
    (``default_activations``: the blocks' own defaults, GELU in the encoder's TransformerBlock and ReLU in the
    decoder's DecoderBlock, whatever the config says)."""
    alias = c.aliases(shared)
    embed = {side: c.seeded(alias.get(f"{side}_embed.weight", f"{side}_embed.weight"),
                            ((c.TGT_VOCAB if shared or side == "tgt" else c.SRC_VOCAB), c.D_MODEL), seed)
             for side in ("src", "tgt")}
    head = c.seeded(alias.get("head.weight", "head.weight"), (c.TGT_VOCAB, c.D_MODEL), seed)
    pe = _sinusoids(c.MAX_LEN, c.D_MODEL)
    if float32_positions:
        pe = pe.float().double()

    def emb(ids, table):
        x = table[ids] * (math.sqrt(c.D_MODEL) if scale else 1.0)
        return x + pe[:ids.shape[1]] if positions else x

    transformer = _transformer(shared, seed)
    norms = transformer.encoder.norm, transformer.decoder.norm
    transformer.encoder.norm = norms[0] if encoder_norm else None
    transformer.decoder.norm = norms[1] if decoder_norm else None
    layers = list(transformer.encoder.layers) + list(transformer.decoder.layers)
    saved = [(layer.norm_first, layer.activation) for layer in layers]
    eps = [norm.eps for norm in norms]
    blocks_as_mistaken(transformer, decoder_post_ln, encoder_post_ln, default_activations)
    if final_norms_default_eps:
        for norm in norms:
            norm.eps = 1e-5
    src_pad = None if src_mask is None else src_mask == 0
    out = transformer(emb(src, embed["src"]), emb(tgt, embed["tgt"]),
                      tgt_mask=_causal(tgt.shape[1]) if causal else None,
                      src_key_padding_mask=src_pad if (source_padding and encoder_padding) else None,
                      memory_key_padding_mask=src_pad if (memory_padding and source_padding) else None,
                      tgt_key_padding_mask=None if tgt_mask is None or not target_padding else tgt_mask == 0)
    transformer.encoder.norm, transformer.decoder.norm = norms
    for layer, (form, activation) in zip(layers, saved):
        layer.norm_first, layer.activation = form, activation
    for norm, value in zip(norms, eps):
        norm.eps = value
    return out @ head.T


def encoder_decoder_structure(data) -> None:
    name = "EncoderDecoder"
    model = {"names": list, "n_parameters": None, "head_is_tgt_embed": None, "head_shares_tgt_values": None,
             "src_is_tgt_embed": None}
    data = check_data(data, {key: model for key in c.STRUCTURES}, name)
    separate, shared = data["separate"], data["shared"]
    layer_names = [f"{side}.{i}.{n}" for i in (0, 1) for side, names in
                   (("encoder", [n.replace("self_attn", "attn") for n in BLOCK_NAMES if "cross" not in n and "norm3" not in n]),
                    ("decoder", BLOCK_NAMES)) for n in names]
    expected = sorted(layer_names + [f"{s}_norm.{p}" for s in ("encoder", "decoder") for p in ("weight", "bias")]
                      + ["src_embed.weight", "tgt_embed.weight", "head.weight"])
    missing = sorted(set(expected) - set(separate["names"]))
    extra = sorted(set(separate["names"]) - set(expected))
    expect(not missing and not extra, name, f"with separate embeddings the parameters differ from the expected names: "
           f"missing {missing[:6]}, unexpected {extra[:6]}.",
           "src_embed, tgt_embed (nn.Embedding), encoder (nn.ModuleList of TransformerBlock), decoder (nn.ModuleList "
           "of your DecoderBlock), encoder_norm, decoder_norm (LayerNorm), head (nn.Linear without bias).")
    expect(not separate["head_is_tgt_embed"] and not separate["src_is_tgt_embed"], name,
           "with shared_embeddings=False and tie_head=False the tables must be separate parameters.")
    expect(shared["src_is_tgt_embed"], name, "with shared_embeddings=True, src_embed must be the same module as "
           "tgt_embed (one table).")
    if not shared["head_is_tgt_embed"]:
        raise JudgeFailure(f"✗ {name}: with tie_head=True, " + (
            "head.weight holds tgt_embed.weight's values but is another Parameter (a copy, or a new nn.Parameter "
            "around it): two Parameters, each with its own gradient, not one weight trained by both uses. Assign the "
            "Parameter itself: head.weight = tgt_embed.weight." if shared["head_shares_tgt_values"] else
            "the head is not tied: head.weight is a separate Parameter with its own values. With tie_head=True "
            "assign head.weight = tgt_embed.weight (one Parameter that both modules hold)."))
    if not data["separate_tied"]["head_is_tgt_embed"]:
        raise JudgeFailure(f"✗ {name}: with shared_embeddings=False and tie_head=True the head is not tied to "
                           "tgt_embed: tie_head alone decides the tie (head.weight = tgt_embed.weight), whether or not "
                           "the source and target share a table.")
    untied = data["shared_untied"]
    expect(untied["src_is_tgt_embed"], name, "with shared_embeddings=True and tie_head=False, src_embed must still be "
           "the same module as tgt_embed.")
    expect(not untied["head_is_tgt_embed"], name, "with shared_embeddings=True and tie_head=False the head is tied to "
           "the shared table: shared_embeddings shares the source and target tables only; the head is tied only when "
           "tie_head=True.")
    d, v_src, v_tgt = c.D_MODEL, c.SRC_VOCAB, c.TGT_VOCAB
    enc_layer = 4 * d * d + 4 * d + 2 * d * c.D_FF + c.D_FF + d + 4 * d
    dec_layer = 8 * d * d + 8 * d + 2 * d * c.D_FF + c.D_FF + d + 6 * d
    def stacks(shared_: bool) -> int:
        kw = c.config_kwargs(shared_)
        return kw["n_encoder_layers"] * enc_layer + kw["n_decoder_layers"] * dec_layer + 4 * d

    kw = c.config_kwargs(True)
    depths = [(a, b) for a in range(6) for b in range(6)
              if shared["n_parameters"] == a * enc_layer + b * dec_layer + 4 * d + v_tgt * d]
    if depths and depths[0] != (kw["n_encoder_layers"], kw["n_decoder_layers"]):
        raise JudgeFailure(f"✗ {name}: with n_encoder_layers={kw['n_encoder_layers']} and n_decoder_layers="
                           f"{kw['n_decoder_layers']} the parameters are those of {depths[0][0]} encoder and "
                           f"{depths[0][1]} decoder blocks: build the encoder with config.n_encoder_layers blocks and "
                           "the decoder with config.n_decoder_layers.")
    expect(separate["n_parameters"] == stacks(False) + (v_src + 2 * v_tgt) * d, name,
           f"{separate['n_parameters']} parameters with separate tables: count them again (two embedding tables and "
           "an untied head beside the stacks).")
    expect(shared["n_parameters"] == stacks(True) + v_tgt * d, name,
           f"{shared['n_parameters']} parameters with one shared, tied table: the stacks and one table "
           "(model.parameters() counts a shared tensor once).")


def _judge_logits(got, shared: bool, seed: int, inputs, name: str, rows: torch.Tensor | None) -> None:
    src, tgt, src_mask, tgt_mask = inputs
    expected = oracle_logits(shared, seed, src, tgt, src_mask, tgt_mask)
    _tensor(got, expected.shape, name)
    if _close(got, expected, rows=rows):
        return
    mistakes = {"the embeddings are not multiplied by sqrt(d_model)": dict(scale=False),
                "no positional encoding is added to the embeddings": dict(positions=False),
                "the source padding mask is not passed to the cross-attention (memory_mask)": dict(memory_padding=False),
                "the source padding mask is not used at all (neither in the encoder nor in the cross-attention)":
                    dict(source_padding=False),
                "the encoder's blocks do not get the source padding mask (the cross-attention does)":
                    dict(encoder_padding=False),
                "tgt_attention_mask is not passed to the decoder blocks' self-attention: a target position it blocks is "
                "still attended to": dict(target_padding=False),
                "the decoder's self-attention is not causal": dict(causal=False),
                "encoder_norm and decoder_norm are not applied after the stacks":
                    dict(encoder_norm=False, decoder_norm=False),
                "encoder_norm is not applied to the encoder's output: the memory the cross-attention reads is the last "
                "encoder block's output, not encoder_norm of it": dict(encoder_norm=False),
                "decoder_norm is not applied to the decoder's output before the head": dict(decoder_norm=False),
                "the positions are float32 values cast to float64 (off by ~1e-8): compute them in the embeddings' "
                "dtype, sinusoidal_positions(L, d_model, dtype=...)": dict(float32_positions=True),
                "the decoder blocks are post-LN although the config says norm_first=True (the encoder's are pre-LN): "
                "pass config.norm_first (and eps) on to each DecoderBlock": dict(decoder_post_ln=True),
                "the encoder blocks are post-LN although the config says norm_first=True (the decoder's are pre-LN): "
                "pass config.norm_first on to each encoder TransformerBlock": dict(encoder_post_ln=True),
                "the config's activation is not passed on: each block used its own default (GELU in the encoder's "
                "TransformerBlock, ReLU in DecoderBlock); pass activation=config.activation to every block":
                    dict(default_activations=True),
                "encoder_norm and decoder_norm use LayerNorm's default eps 1e-5, not config.eps: "
                "LayerNorm(d_model, config.eps)": dict(final_norms_default_eps=True)}
    for mistake, switches in mistakes.items():
        if _close(got, oracle_logits(shared, seed, src, tgt, src_mask, tgt_mask, **switches), rows=rows):
            raise JudgeFailure(f"✗ {name}: {mistake}.")
    raise JudgeFailure(f"✗ {name}: the logits differ from nn.Transformer with the same weights between your "
                       "embeddings and head (max difference "
                       f"{(got.double() - expected).abs()[rows if rows is not None else ...].max().item():.3g}).")


def encoder_decoder_logits(data) -> None:
    check_data(data, {"separate": {"logits": None}, "shared": {"logits": None}}, "EncoderDecoder")
    for shared in (False, True):
        part = data["shared" if shared else "separate"]
        inputs = c.model_inputs(shared)
        name = f"EncoderDecoder(shared_embeddings={shared}, tie_head={shared})"
        _judge_logits(part.get("logits"), shared, 0, inputs, name, rows=inputs[3].bool())


def encoder_decoder_source_padding(data) -> None:
    name = "EncoderDecoder(src, tgt, src_attention_mask)"
    check_data(data, {"logits": None, "other_pad": None, "no_mask": None}, name)
    src, tgt, src_mask, _ = c.model_inputs()
    _judge_logits(data.get("logits"), False, 0, (src, tgt, src_mask, None), name, rows=None)
    expect(_close(data.get("other_pad"), data["logits"]), name, "changing the tokens under the source's padding "
           "changes the logits: the source padding is attended to.", "build a padding mask from src_attention_mask "
           "and pass it to the encoder's blocks and to every decoder block's cross-attention (memory_mask).")
    expected = oracle_logits(False, 0, src[1:2], tgt[1:2])
    expect(_close(data.get("no_mask"), expected), name, "without src_attention_mask (None) the model must attend to "
           "every source position; it failed or differed.")


# ------------------------------------------------------------------------------------------ shift_right

def shift_right(data) -> None:
    name = "shift_right"
    cases = c.shift_cases()
    check_data(data, {"outputs": [None] * len(cases), "labels_changed": [bool] * len(cases)}, name)
    for got, (labels, bos, pad) in zip(data["outputs"], cases):
        rows = labels.tolist()
        expected = torch.tensor([[bos] + [pad if t == -100 else t for t in row[:-1]] for row in rows])
        call = f"shift_right({rows}, bos_id={bos}, pad_id={pad})"
        _tensor(got, expected.shape, call)
        if torch.equal(got.long(), expected):
            expect(got.dtype == torch.int64, call, f"the ids are right but of dtype {got.dtype}: the decoder input "
                   "feeds an embedding lookup, which needs int64 ids, the labels' dtype (torch.full_like(labels, ...) "
                   "or labels.new_full(...)).")
            continue
        left = torch.tensor([row[1:] + [pad] for row in rows])
        if torch.equal(got.long(), left):
            raise JudgeFailure(f"✗ {call}: shifted left ([y1, ..., pad]); teacher forcing shifts right: [bos, y0, ...].")
        if torch.equal(got.long(), labels):
            raise JudgeFailure(f"✗ {call}: the labels came back unshifted: the decoder would see the token it must predict.")
        own = torch.tensor([[bos] + [pad if t == -100 else t for t in row[1:]] for row in rows])
        if torch.equal(got.long(), own):
            raise JudgeFailure(f"✗ {call}: input position t holds label t, the token it must predict (labels[:, 1:] "
                               "after bos_id): labels[0] is never fed and the decoder copies its answer. Position t "
                               "holds label t - 1: [bos_id, labels[0], ..., labels[-2]].")
        raw = torch.tensor([[bos] + row[:-1] for row in rows])
        if torch.equal(got.long(), raw):
            raise JudgeFailure(f"✗ {call}: -100 is left in the decoder input: replace it with pad_id "
                               "(-100 is an index only the loss understands; an embedding lookup fails on it).")
        if torch.equal(got.long(), raw.masked_fill(raw == -100, 0)):
            raise JudgeFailure(f"✗ {call}: -100 became 0, not pad_id ({pad}).")
        if torch.equal(got[:, 1:].long(), expected[:, 1:]) and (got[:, 0] == pad).all():
            raise JudgeFailure(f"✗ {call}: position 0 holds pad_id: the first step must read the start token (bos_id).")
        raise JudgeFailure(f"✗ {call}: the result differs first at {_first_difference(got, expected)}: each row is "
                           "[bos_id, labels[0], ..., labels[-2]] with -100 replaced by pad_id.")
    for changed, (labels, bos, pad) in zip(data["labels_changed"], cases):
        expect(not changed, f"shift_right({labels.tolist()}, bos_id={bos}, pad_id={pad})", "the labels passed in were "
               "changed in place: the loss reads those labels next, and a -100 turned into pad_id is no longer "
               "skipped. Build the decoder input in a new tensor and leave the labels as they were.")


# ------------------------------------------------------------------------------------------ greedy decoding

@per_run
def _greedy_rows(max_new: int, position: int, source_mask: bool) -> torch.Tensor:
    """Greedy decoding of the stand-in without EOS, by hand (``position`` and ``source_mask`` build the mistakes of
    reading another position's logits and of calling the model without the source mask)."""
    src, src_mask = c.greedy_inputs()
    return greedy_by_hand(c.greedy_model(), src, src_mask if source_mask else None, c.BOS, max_new, position)


def oracle_greedy(eos: int, max_new: int, *, keep_eos: bool = True, until_first: bool = False, position: int = -1,
                  source_mask: bool = True) -> torch.Tensor:
    """Greedy decoding with EOS: each row's greedy tokens up to and including its first EOS, then the stand-in's
    pad_id; the keywords build the usual mistakes (see :func:`tfs.teaching.probes_applications.finish_rows`)."""
    return finish_rows(_greedy_rows(max_new, position, source_mask), eos, c.GREEDY_PAD, keep_eos, until_first)


GREEDY_MISTAKES = {
    "the arg-max was taken at the first position of the logits, not the last: logits[:, -1] predicts the next token":
        dict(position=0),
    "the model was called without src_attention_mask: the source's padding was read as text":
        dict(source_mask=False),
    "a row's EOS was itself replaced by pad_id: the row keeps its EOS, the padding starts after it":
        dict(keep_eos=False),
    "decoding stopped as soon as one row produced EOS: the other rows go on until every row has finished":
        dict(until_first=True),
}


def _judge_greedy(got, eos: int, max_new: int, call: str) -> None:
    expected = oracle_greedy(eos, max_new)
    expect(isinstance(got, torch.Tensor), call, f"expected a tensor of ids, received {type(got).__name__}.")
    if not (got.shape == expected.shape and torch.equal(got.long(), expected)):
        for mistake, switches in GREEDY_MISTAKES.items():
            wrong = oracle_greedy(eos, max_new, **switches)
            if got.shape == wrong.shape and torch.equal(got.long(), wrong):
                raise JudgeFailure(f"✗ {call}: {mistake}.")
    if got.shape == (expected.shape[0], expected.shape[1] - 1) and torch.equal(got.long(), expected[:, 1:]):
        raise JudgeFailure(f"✗ {call}: the BOS token is missing at the start of each row: return (B, 1 + n) ids "
                           "beginning with bos_id.")
    if got.dim() == 2 and got.shape[0] == expected.shape[0] and got.shape[1] > expected.shape[1]:
        if (got[:, :expected.shape[1]].long() == expected)[expected != c.GREEDY_PAD].all():
            raise JudgeFailure(f"✗ {call}: decoding went on after every row had produced eos_id ({got.shape[1] - 1} "
                               f"new tokens, {expected.shape[1] - 1} needed): stop once all rows are finished.")
    _tensor(got, expected.shape, call)
    if torch.equal(got.long(), expected):
        return
    real = expected != c.GREEDY_PAD
    if (got.long() == expected)[real].all():
        written = sorted(set(got.long()[~real].tolist()))
        raise JudgeFailure(f"✗ {call}: the tokens after a row's EOS must be the model's pad_id (model.config.pad_id, "
                           f"not 0 in the grader's model); received {written} there, first at "
                           f"{_first_difference(got, expected)}" + (": pad_id is read from model.config, not assumed 0."
                                                                    if written == [0] else "."))
    raise JudgeFailure(f"✗ {call}: the ids differ first at {_first_difference(got, expected)}. Each step appends the "
                       "arg-max of the logits at the *last* position of model(src, ids so far, src_attention_mask).")


def greedy_decode(data) -> None:
    check_data(data, {"long": None, "short": None, "other_bos": None, "no_steps": None}, "greedy_decode")
    _judge_greedy(data["short"], 99, 1, "greedy_decode(..., max_new_tokens=1)")
    _judge_greedy(data["long"], 99, 8, "greedy_decode(..., max_new_tokens=8)")
    for key in ("short", "long"):
        expect(data[key].dtype == torch.int64, "greedy_decode", f"returned ids of dtype {data[key].dtype}: token ids "
               "are int64 (build the start column with dtype=torch.long).")
    call = f"greedy_decode(..., bos_id={c.OTHER_BOS}, eos_id=99, max_new_tokens=3)"
    got = data["other_bos"]
    expect(isinstance(got, torch.Tensor) and got.dim() == 2 and got.shape[1] >= 1, call,
           f"expected a (B, 1 + n) tensor of ids, received {got if not isinstance(got, torch.Tensor) else got.shape}.")
    if not (got[:, 0] == c.OTHER_BOS).all():
        raise JudgeFailure(f"✗ {call}: the rows do not start with bos_id ({c.OTHER_BOS}) but with "
                           f"{sorted(set(got[:, 0].tolist()))}: use the bos_id given, not a fixed start token.")
    expected = finish_rows(greedy_by_hand(c.greedy_model(), *c.greedy_inputs(), c.OTHER_BOS, 3), 99, c.GREEDY_PAD)
    expect(got.shape == expected.shape and torch.equal(got.long(), expected), call,
           "the ids differ from greedy decoding started at bos_id: each step appends the arg-max of the logits at the "
           "last position of model(src, ids so far, src_attention_mask).")
    call, got = "greedy_decode(..., max_new_tokens=0)", data["no_steps"]
    expect(isinstance(got, torch.Tensor), call, f"raised or returned no tensor: {got!r}; with max_new_tokens=0 return "
           "the (B, 1) column of bos_id (n = 0 new tokens).")
    expect(tuple(got.shape) == (3, 1), call, f"returned shape {tuple(got.shape)}: with max_new_tokens=0 no token is "
           "generated; return the (B, 1) column of bos_id (n <= max_new_tokens). The loop runs max_new_tokens times, "
           "zero times here.")


def greedy_decode_eos(data) -> None:
    check_data(data, {str(eos): None for eos in c.EOS_CASES}, "greedy_decode")
    for eos in c.EOS_CASES:
        _judge_greedy(data.get(str(eos)), eos, 8, f"greedy_decode(..., eos_id={eos}, max_new_tokens=8)")


# ------------------------------------------------------------------------------ Part 2: labels, entities, spans

def align_labels(data) -> None:
    name = "align_labels"
    cases = c.align_cases()
    check_data(data, {"results": [None] * len(cases), "too_few_labels": None, "returned": str}, name)
    for got, (word_ids, labels) in zip(data["results"], cases):
        expected, seen = [], set()
        for w in word_ids:  # by hand: first piece of each word labelled, the rest -100
            expected.append(-100 if w is None or w in seen else labels[w])
            if w is not None:
                seen.add(w)
        call = f"align_labels({word_ids}, {labels})"
        if got == expected:
            continue
        if isinstance(got, str):
            missing = sorted(set(range(len(labels))) - set(word_ids))
            raise JudgeFailure(f"✗ {call}: raised {got}" + (
                f". Words {missing} have no tokens here (cut off by truncation): that is fine; only a token of a word "
                "without a label is a misalignment." if missing else "."))
        every_piece = [-100 if w is None else labels[w] for w in word_ids]
        if got == every_piece:
            raise JudgeFailure(f"✗ {call}: every piece of a word got its label; only the first piece does, the "
                               "continuation pieces get -100.")
        last = [-100 if w is None or w == nxt else labels[w] for w, nxt in zip(word_ids, list(word_ids[1:]) + [None])]
        if got == last:
            raise JudgeFailure(f"✗ {call}: the last piece of each word got its label; a window can cut a word after any "
                               "piece, and the piece it always keeps is the first.")
        specials = [0 if w is None else e for w, e in zip(word_ids, expected)]
        if got == specials or any(g != -100 for g, w in zip(got, word_ids) if w is None):
            raise JudgeFailure(f"✗ {call}: special tokens ([CLS], [SEP], padding: word id None) must get -100.")
        wrong = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e] if isinstance(got, list) else []
        raise JudgeFailure(f"✗ {call}: received {got}" + (f"; the first wrong label is at position {wrong[0]}" if wrong
                           else "; expected one label per token") + ": the first piece of each word gets the word's "
                           "label, continuation pieces and special tokens -100.")
    expect(str(data.get("too_few_labels", "")).startswith("ValueError"), name,
           f"a token of word 2 with only 2 word labels must raise a ValueError (labels and tokens do not align); "
           f"received {data.get('too_few_labels')!r}.")
    expect(data["returned"] == "list of int", name, f"returned a {data['returned']}; expected a list of int, one per "
           "token (a plain Python list: the data collator pads lists of int).")


def _entities(tags, *, typed: bool = True, i_starts: bool = True, close_last: bool = True) -> set:
    """(type, start, end) entities of BIO tags as conlleval reads them (an I- continues only an entity of its own
    type, otherwise it starts one), or with one of its rules broken: ``typed=False`` (an I-X continues an entity of
    any type), ``i_starts=False`` (an I- without an entity to continue is dropped), ``close_last=False`` (an entity
    that runs to the end of the sequence is lost). Here, not in the package: the learner's kernel must not reach it."""
    found, current = set(), None
    for i, tag in enumerate(list(tags) + (["O"] if close_last else [])):
        continues = tag.startswith("I-") and current is not None and (tag[2:] == current[0] or not typed)
        if current is not None and not continues:
            found.add((current[0], current[1], i))
            current = None
        if tag != "O" and current is None and (i_starts or tag.startswith("B-")):
            current = (tag[2:], i)
    return found


def _entity_scores(true_tags, pred_tags, macro: bool = False, arithmetic: bool = False, keyed: bool = True,
                   **reading) -> dict:
    """Micro entity scores by hand; ``macro`` (means of per-sequence scores), ``arithmetic`` (F1 as the mean of P and
    R), ``keyed=False`` (entities without their sequence's index, so one matches another sequence's) and ``reading``
    (see :func:`_entities`) build the usual mistakes."""
    if macro:
        each = [_entity_scores([t], [p], arithmetic=arithmetic, **reading) for t, p in zip(true_tags, pred_tags)]
        return {k: sum(e[k] for e in each) / len(each) for k in ("precision", "recall", "f1")}
    true = {(k, *s)[not keyed:] for k, tags in enumerate(true_tags) for s in _entities(tags, **reading)}
    pred = {(k, *s)[not keyed:] for k, tags in enumerate(pred_tags) for s in _entities(tags, **reading)}
    hit = len(true & pred)
    p, r = (hit / len(pred) if pred else 0.0), (hit / len(true) if true else 0.0)
    return {"precision": p, "recall": r, "f1": (p + r) / 2 if arithmetic else 2 * p * r / (p + r) if p + r else 0.0}


ENTITY_MISTAKES = {
    "an I- tag continuing an entity of another type (B-PER I-LOC read as one entity): an I-X continues only an "
    "entity of type X": dict(typed=False),
    "an I- tag after O (or after another type) dropped: it starts a new entity": dict(i_starts=False),
    "an entity that runs to the end of its sequence lost: close the open entity after the last tag":
        dict(close_last=False),
    "means of per-sequence scores: pool the counts over all sequences (micro) before dividing": dict(macro=True),
    "F1 as the arithmetic mean of precision and recall: it is their harmonic mean, 2PR / (P + R)":
        dict(arithmetic=True),
    "the entities of all sequences pooled without their sequence's index: an entity then matches one at the same "
    "place in another sequence (or two equal ones count once); key each by (sequence, type, start, end)":
        dict(keyed=False),
}


def _entity_mistake(received, true_tags, pred_tags) -> str | None:
    """Which usual entity-scoring mistake gives the scores ``received`` (a dict), if one does."""
    if not isinstance(received, dict):
        return None
    tokens = [(a, b) for ta, pa in zip(true_tags, pred_tags) for a, b in zip(ta, pa)]
    hit = sum(a == b and a != "O" for a, b in tokens)
    p, r = hit / max(1, sum(b != "O" for _, b in tokens)), hit / max(1, sum(a != "O" for a, _ in tokens))
    candidates = {"scores counted over tokens: an entity counts only when its whole span and type match":
                  {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}}
    candidates.update({mistake: _entity_scores(true_tags, pred_tags, **switches)
                       for mistake, switches in ENTITY_MISTAKES.items()})
    right = _entity_scores(true_tags, pred_tags)
    for mistake, scores in candidates.items():
        if scores != right and all(abs(float(received.get(k, float("nan"))) - v) < 1e-9 for k, v in scores.items()):
            return mistake
    return None


def entity_scores(data) -> None:
    name = "entity_scores"
    cases = c.entity_cases()
    check_data(data, [({"precision": float, "recall": float, "f1": float, "inputs_changed": None}, str)] * len(cases),
               name)
    for got, (true, pred) in zip(data, cases):
        expect(not (isinstance(got, dict) and got["inputs_changed"] is True), f"{name}(true {true}, predicted {pred})",
               "the tag lists passed in were changed (an 'O' appended in place to close the last entity?): read them "
               "without changing them; use list(tags) + ['O'] or close the open entity after the loop.")
    for got, (true, pred) in zip(data, cases):
        expected = _entity_scores(true, pred)  # by hand: conlleval's reading, micro counts
        if isinstance(got, str):
            nothing = ("no predicted entities" if not any(t != "O" for seq in pred for t in seq) else
                       "no true entities" if not any(t != "O" for seq in true for t in seq) else "")
            raise JudgeFailure(f"✗ {name}(true {true}, predicted {pred}): raised {got}" + (
                f"; with {nothing} {'precision' if 'predicted' in nothing else 'recall'} is 0/0, which counts 0 (so "
                "does F1 when P + R = 0)." if nothing else "."))
        expect(isinstance(got, dict), name, f"expected a dict with precision, recall, f1; received {got!r}.")
        if all(abs(got[k] - expected[k]) < 1e-9 for k in expected):
            continue
        mistake = _entity_mistake(got, true, pred)
        if mistake:
            raise JudgeFailure(f"✗ {name}(true {true}, predicted {pred}): {mistake}.")
        wrong = [k for k in expected if not abs(got[k] - expected[k]) < 1e-9]
        raise JudgeFailure(f"✗ {name}: for true {true} and predicted {pred} {' and '.join(wrong)} differ (received "
                           f"{got}). Entities: B- starts one, I- of the same type continues it, an I- after O or another type "
                           "starts a new one; zero divisions count 0.")


def extract_answer(data) -> None:
    name = "extract_answer"
    cases = c.span_cases()
    check_data(data, [None] * len(cases), name)
    for k, (got, case) in enumerate(zip(data, cases)):
        start, end, mask, n = case["start"], case["end"], case["mask"].tolist(), case["max_len"]
        best, where = float("-inf"), None
        for i in range(12):  # brute force over every pair
            for j in range(i, min(12, i + n)):
                if mask[i] and mask[j] and start[i] + end[j] > best:
                    best, where = float(start[i] + end[j]), (i, j)
        expected = None
        if where is not None and not float(start[0] + end[0]) > best:
            expected = [case["offsets"][where[0]][0], case["offsets"][where[1]][1]]
        if got == expected:
            continue
        call = f"extract_answer(case {k}, max_answer_length={n})"
        if expected is None and where is None:
            raise JudgeFailure(f"✗ {call}: no span is allowed (no context token in this window): return None, "
                               f"received {got}.")
        if expected is None:
            raise JudgeFailure(f"✗ {call}: the [CLS] score start[0] + end[0] beats every span: return None (no answer).")
        if got is None and float(start[0] + end[0]) == best:
            raise JudgeFailure(f"✗ {call}: returned None, but the [CLS] score equals the best span's, and equal does "
                               "not beat it: None only when start[0] + end[0] is greater than every allowed span's score.")
        if got is None:
            raise JudgeFailure(f"✗ {call}: returned None, but a context span scores more than [CLS].")
        mistake = span_mistake(got, start, end, case["offsets"], case["mask"], n)
        if mistake:
            raise JudgeFailure(f"✗ {call}: {mistake}.")
        raise JudgeFailure(f"✗ {call}: received characters {got}, not those of the best span: the span must lie in the "
                           "context (context_mask 1), with start <= end < start + max_answer_length; characters "
                           "from offsets[start][0] to offsets[end][1].")
