"""Judges for chapter 06 (GPT). Oracles: ``torch.nn`` (``MultiheadAttention``, ``TransformerEncoderLayer``),
``torch.nn.functional``, ``transformers.GPT2LMHeadModel``, ``torch.nn.utils.clip_grad_norm_`` and analytic
results; never the solution or ``tfs.models``/``tfs.train``. Inputs are rebuilt from the collectors' seeded
generators; weights written by the exercise's names go to GPT-2's through ``tfs.convert.gpt``'s name map (checked
against ``transformers`` by the tests). Each failure names the likely mistake, found by computing that mistake here."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from tfs.grader.collectors import ch06 as inputs
from tfs.convert import torch_mha_from_state
from tfs.grader.judging import JudgeFailure, check_data, close, off


def _close(a, b, atol):
    return isinstance(a, torch.Tensor) and a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=0,
                                                                                        atol=atol, equal_nan=False))


def _need(data, key, what):
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, torch.Tensor):
        raise JudgeFailure(f"{what}: expected a tensor, received {type(value).__name__}")
    return value


# ------------------------------------------------------------------------------------ attention

def _attention(weights, x, allowed, key_padding=None):
    """nn.MultiheadAttention's output and head-averaged weights; ``allowed`` (L, L) True = may attend."""
    mha = torch_mha_from_state({k: v.double() for k, v in weights.items()}, inputs.N_HEADS)
    with torch.no_grad():
        return mha(x, x, x, attn_mask=None if allowed is None else ~allowed, key_padding_mask=key_padding,
                   average_attn_weights=False)


def _attention_module(weights) -> nn.Module:
    """``qkv``, ``out`` and ``n_heads`` holding ``weights``: what :mod:`tfs.teaching.probes_gpt` computes mistakes with."""
    d = inputs.D_MODEL
    module = nn.Module()
    module.n_heads = inputs.N_HEADS
    module.qkv, module.out = nn.Linear(d, 3 * d, dtype=torch.float64), nn.Linear(d, d, dtype=torch.float64)
    with torch.no_grad():
        for name, value in weights.items():
            module.get_parameter(name).copy_(value)
    return module


def _named_attention_mistake(out, weights, x, padding=None) -> str | None:
    from tfs.teaching.probes_gpt import attention_mask_mistakes

    mistakes = attention_mask_mistakes(_attention_module(weights), x, padding)
    return next((description for description, wrong in mistakes.items() if _close(out, wrong, 1e-6)), None)


def attention_mask(data):
    check_data(data, {"out": None, "out_again": None, "weights": None, "out_padded": None}, "CausalSelfAttention")
    weights, x = inputs.attention_weights(), inputs.hidden_input()
    length = inputs.LENGTH
    ones = torch.ones(length, length, dtype=torch.bool)
    out = _need(data, "out", "CausalSelfAttention(x)")
    if torch.isnan(out).any():
        raise JudgeFailure("CausalSelfAttention: the output has NaN: some query may attend to no key at all. "
                           "Does the mask hide each token from itself (tril(diagonal=-1))? A token must see itself.")
    again = _need(data, "out_again", "CausalSelfAttention(x), called again")
    if not torch.equal(again, out):
        raise JudgeFailure("CausalSelfAttention(d, h, dropout=0.5) in eval mode: two calls on the same input give "
                           "different outputs: dropout must be off in eval mode (F.dropout(..., self.training)).")
    expected, expected_w = _attention(weights, x, ones.tril())
    if not _close(out, expected, 1e-8):
        description = _named_attention_mistake(out, weights, x)
        if description:
            raise JudgeFailure(f"CausalSelfAttention: the output matches {description}.")
        raise JudgeFailure("CausalSelfAttention: the output differs from causal multi-head attention.")
    w = _need(data, "weights", "CausalSelfAttention(x) weights")
    if not _close(w, expected_w, 1e-8):
        raise JudgeFailure("CausalSelfAttention: the output is right but the returned attention weights are not "
                           "(batch, heads, L, L) softmax weights with zeros above the diagonal.")
    padding = torch.tensor([[False] * length, [False] * 4 + [True] * (length - 4)])  # True = blocked, torch's way
    expected_p, _ = _attention(weights, x, ones.tril(), key_padding=padding)
    out_p = _need(data, "out_padded", "CausalSelfAttention(x, mask=padding)")
    if not _close(out_p, expected_p, 1e-8):
        description = _named_attention_mistake(out_p, weights, x, ~padding[:, None, None, :])
        raise JudgeFailure("CausalSelfAttention: with a padding mask (batch, 1, 1, L) the output "
                           + (f"matches {description}." if description else "is wrong: combine it with the causal "
                              "mask (both True = may attend: `&`), do not replace one by the other."))
    train_zero = _need(data, "train_zero", "CausalSelfAttention(d, h, dropout=0.0) in training mode")
    if not _close(train_zero, expected, 1e-8):
        raise JudgeFailure("CausalSelfAttention(d, h, dropout=0.0) in training mode changed the output: the dropout "
                           "probability must be the dropout argument (self.dropout), not a fixed number.")
    if torch.equal(_need(data, "train_half", "CausalSelfAttention(d, h, dropout=0.5) in training mode"), out):
        raise JudgeFailure("CausalSelfAttention(d, h, dropout=0.5) in training mode gave the eval output: dropout "
                           "(with probability self.dropout) is never applied to the attention weights.")


# ---------------------------------------------------------------------------------------- block

def _torch_block(norm_first=True, activation="tanh", swap_norms=False):
    d = inputs.D_MODEL
    act = (lambda t: F.gelu(t, approximate="tanh")) if activation == "tanh" else F.gelu
    layer = nn.TransformerEncoderLayer(d, inputs.N_HEADS, 4 * d, dropout=0.0, activation=act, batch_first=True,
                                       norm_first=norm_first, dtype=torch.float64)
    w = inputs.block_weights()
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(w["attn.qkv.weight"])
        layer.self_attn.in_proj_bias.copy_(w["attn.qkv.bias"])
        layer.self_attn.out_proj.weight.copy_(w["attn.out.weight"])
        layer.self_attn.out_proj.bias.copy_(w["attn.out.bias"])
        norms = (layer.norm2, layer.norm1) if swap_norms else (layer.norm1, layer.norm2)
        for mine, theirs in (("ff.linear1", layer.linear1), ("ff.linear2", layer.linear2), ("norm1", norms[0]),
                             ("norm2", norms[1])):
            theirs.weight.copy_(w[f"{mine}.weight"])
            theirs.bias.copy_(w[f"{mine}.bias"])
    return layer.eval()


def _padded_block(data, x, causal):
    """With a padding mask (the second sequence left-padded): the real positions must match torch's layer given
    the same key padding."""
    out = _need(data, "out_padded", "GPTBlock(x, mask=padding)")
    keep = inputs.block_padding()[:, 0, 0, :]
    with torch.no_grad():
        expected = _torch_block()(x, src_mask=causal, src_key_padding_mask=~keep)
        unmasked = _torch_block()(x, src_mask=causal)
    if out.shape == expected.shape and _close(out[keep], expected[keep], 1e-8):
        return
    if out.shape == expected.shape and _close(out[keep], unmasked[keep], 1e-8):
        raise JudgeFailure("GPTBlock(x, mask=padding): the real tokens attend to the padding: the block must pass "
                           "its mask on to the attention (self.attn(self.norm1(x), mask=mask)).")
    raise JudgeFailure("GPTBlock(x, mask=padding): the real tokens' outputs differ from a pre-LN causal block given "
                       "the same padding mask.")


def gpt_block(data):
    check_data(data, {"out": None, "out_padded": None}, "GPTBlock")
    out = _need(data, "out", "GPTBlock(x)")
    x = inputs.hidden_input()
    causal = ~torch.ones(inputs.LENGTH, inputs.LENGTH, dtype=torch.bool).tril()  # torch: True = blocked
    with torch.no_grad():
        expected = _torch_block()(x, src_mask=causal)
        if _close(out, expected, 1e-8):
            if not _close(_need(data, "train_zero", "GPTBlock(d, h) in training mode"), expected, 1e-8):
                raise JudgeFailure("GPTBlock(d, h) (dropout=0.0) in training mode changed the output: the residual "
                                   "dropout's probability must be the dropout argument, not a fixed number.")
            if isinstance(data.get("attn_dropout"), float) and data["attn_dropout"] != 0.3:
                raise JudgeFailure("GPTBlock(d, h, dropout=0.3): its attention got dropout "
                                   f"{data.get('attn_dropout')}: pass the dropout argument on, CausalSelfAttention(d_model, "
                                   "n_heads, dropout), so that attention weights are dropped in training too.")
            return _padded_block(data, x, causal)
        wrong = {
            "post-LN (x = LN(x + f(x))): GPT-2 is pre-LN, x = x + f(LN(x))": _torch_block(norm_first=False)(x, src_mask=causal),
            "the exact GELU: GPT-2 uses the tanh approximation (F.gelu(x, approximate='tanh'))":
                _torch_block(activation="exact")(x, src_mask=causal),
            "no causal mask inside the block": _torch_block()(x),
            "norm1 and norm2 swapped (norm1 belongs before the attention, norm2 before the MLP)":
                _torch_block(swap_norms=True)(x, src_mask=causal),
        }
    for description, candidate in wrong.items():
        if _close(out, candidate, 1e-6):
            raise JudgeFailure(f"GPTBlock: the output matches {description}.")
    raise JudgeFailure("GPTBlock: the output differs from a pre-LN causal block with the tanh GELU.")


# ------------------------------------------------------------------------------------------ GPT

def _gpt2(state=None, dtype=torch.float32):
    from transformers import GPT2Config, GPT2LMHeadModel

    s = inputs.GPT_SIZES
    config = GPT2Config(vocab_size=s["vocab_size"], n_positions=s["block_size"], n_embd=s["n_embd"],
                        n_layer=s["n_layer"], n_head=s["n_head"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config).to(dtype).eval()
    model.load_state_dict(inputs.gpt2_state(dtype=dtype) if state is None else state, strict=False)
    model.tie_weights()
    return model


def _course_to_gpt2(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights by the exercise's names -> ``GPT2LMHeadModel``'s names and layouts (Conv1D transposed)."""
    from tfs.convert.gpt import _key_pairs

    hf_state = {theirs: (state[mine].t() if transpose else state[mine]).contiguous()
                for theirs, mine, transpose in _key_pairs(inputs.GPT_SIZES["n_layer"])}
    hf_state["lm_head.weight"] = hf_state["transformer.wte.weight"]
    return hf_state


def gpt_model(data):
    check_data(data, {"tied": None, "logits": None, "loss": None, "full_length": str}, "GPT")
    if data.get("tied") is not True:
        what = "holds a copy of the token embedding's values (a second Parameter)" if data.get("copied") is True else \
            "is not the token embedding's weight"
        raise JudgeFailure(f"GPT: lm_head.weight {what}: tie them (self.lm_head.weight = self.wte.weight), as GPT-2 "
                           "does.")
    logits = _need(data, "logits", "GPT(ids) logits")
    ids, _ = inputs.token_ids()
    reference = _gpt2(_course_to_gpt2(inputs.gpt_course_state()))
    with torch.no_grad():
        expected = reference(ids).logits
    if not _close(logits, expected, 1e-4):
        from tfs.teaching.probes_gpt import gpt_logits_mistakes

        for description, wrong in gpt_logits_mistakes(reference, ids).items():
            if _close(logits, wrong, 1e-4):
                raise JudgeFailure(f"GPT: with GPT-2's weights copied in, the logits match {description}.")
        raise JudgeFailure("GPT: with GPT-2's weights copied in, the logits differ from transformers' GPT2LMHeadModel "
                           "(check the position embeddings (positions 0..T-1), ln_f before the head, and the blocks).")
    if not _close(_need(data, "train_zero", "GPT(config with dropout=0.0) in training mode"), logits, 1e-6):
        raise JudgeFailure("GPT(config with dropout=0.0) in training mode changed the logits: the embeddings' dropout "
                           "must use config.dropout, not a fixed probability.")
    targets = torch.roll(ids, -1, dims=1)
    expected_loss = F.cross_entropy(expected.reshape(-1, expected.shape[-1]), targets.reshape(-1)).item()
    loss = data.get("loss")
    if not close(loss, expected_loss, 1e-4):
        raise JudgeFailure(f"GPT: the loss for given targets should be the mean cross-entropy of the logits over all "
                           f"positions; received {loss}.")
    if data["full_length"] != "no error":
        raise JudgeFailure(f"GPT: a sequence of exactly block_size = {inputs.GPT_SIZES['block_size']} tokens raised "
                           f"{data['full_length'][:200]}: wpe has block_size rows, positions 0..block_size-1, so only a "
                           "sequence longer than block_size is refused (T > block_size, not T >= block_size).")


INIT_SIZES = {"vocab_size": 300, "block_size": 32, "n_layer": 6, "n_head": 4, "n_embd": 64}  # the collector's


def init_statistics(data):
    names = [name for name, _ in inputs.gpt_skeleton(INIT_SIZES).named_parameters()]
    residual_names = [name for name in names if name.endswith(("attn.out.weight", "ff.linear2.weight"))]
    data = check_data(data, {"stats": {name: [float, float] for name in names}, "tied": None,
                             "unscaled": {name: float for name in residual_names},
                             "other_std": {name: float for name in inputs.OTHER_STD_NAMES}}, "init")
    stats = data["stats"]
    if data.get("tied") is not True:
        raise JudgeFailure("init: the initialisation broke the tie between lm_head and wte: initialise the "
                           "existing tensors in place (nn.init.normal_), do not assign new parameters.")
    residual = 0.02 / math.sqrt(2 * 6)
    for name in names:
        mean, std = stats[name]
        if name.endswith("bias"):
            if not (close(mean, 0.0, 1e-12) and close(std, 0.0, 1e-12)):
                raise JudgeFailure(f"init: {name} should be zeros; its mean is {mean:.3g}.")
            continue
        if "norm" in name or name.startswith("ln_f"):
            if not (close(mean, 1.0, 1e-12) and close(std, 0.0, 1e-12)):
                raise JudgeFailure(f"init: LayerNorm weight {name} should be ones.")
            continue
        is_residual = name.endswith("attn.out.weight") or name.endswith("ff.linear2.weight")
        target = residual if is_residual else 0.02
        if not (close(mean, 0.0, 0.25 * target) and close(std, target, 0.12 * target)):
            if is_residual and close(std, 0.02 / math.sqrt(6), 0.12 * residual):
                raise JudgeFailure(f"init: {name} has std {std:.4f}, 0.02 / sqrt(n_layer): each block adds two branches "
                                   f"to the residual stream, so the scale is 0.02 / sqrt(2 * n_layer) = {residual:.4f}.")
            if is_residual and close(std, 0.02, 0.12 * 0.02):
                raise JudgeFailure(f"init: {name} has std {std:.4f}: the residual projections (attn.out, ff.linear2) "
                                   f"get 0.02 / sqrt(2 * n_layer) = {residual:.4f}.")
            if not is_residual and close(std, residual, 0.12 * residual):
                raise JudgeFailure(f"init: {name} has std {std:.4f}: only attn.out and ff.linear2 are scaled down; "
                                   "other weights are N(0, 0.02).")
            raise JudgeFailure(f"init: {name} has mean {mean:.3g} and std {std:.4f}; expected N(0, {target:.4f}).")
    for name in residual_names:
        std = data["unscaled"][name]
        if not close(std, 0.02, 0.12 * 0.02):
            raise JudgeFailure(f"init: with scale_residual=False, {name} has std {std:.4f}; expected 0.0200: "
                               "scale_residual=False leaves every weight at N(0, std), the residual projections too.")
    std = inputs.OTHER_STD
    for name, got in data["other_std"].items():
        target = std / math.sqrt(2 * 6) if name.endswith("ff.linear2.weight") else std
        if not close(got, target, 0.12 * target):
            raise JudgeFailure(f"init: with std={std}, {name} has std {got:.4f}; expected {target:.4f}: use the std "
                               "argument (0.02 is only its default), for the residual projections too "
                               "(std / sqrt(2 * n_layer)).")


def cross_entropy(data):
    check_data(data, {"plain": None, "no_ignored": None, "large": None, "ignore_minus_one": None}, "cross_entropy")
    logits, big, targets = inputs.ce_inputs()
    for key, lg, tg, what in (("plain", logits, targets, "with ignored targets"),
                              ("no_ignored", logits, targets.clamp(min=0), "without ignored targets"),
                              ("large", big, targets.clamp(min=0), "with very large logits")):
        value = data.get(key)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise JudgeFailure(f"cross_entropy: expected a scalar tensor, received {type(value).__name__}")
        expected = F.cross_entropy(lg, tg, ignore_index=-100)
        if value.item() == float("-inf"):
            raise JudgeFailure(f"cross_entropy {what}: the result is -inf: exp underflowed to 0 in some row. Subtract "
                               "each row's own maximum (amax over the last dim), not one maximum over all the logits.")
        if not torch.isfinite(value).all():
            raise JudgeFailure(f"cross_entropy {what}: the result is {value.item()}: exp overflowed. Compute "
                               "log-softmax through the log-sum-exp with the maximum subtracted.")
        if not close(value.item(), expected.item(), 1e-8):
            keep = tg != -100
            per = F.cross_entropy(lg, tg.clamp(min=0), reduction="none")
            if close(value.item(), (per * keep).sum().item() / tg.numel(), 1e-8):
                raise JudgeFailure("cross_entropy: ignored positions are counted in the mean; divide by the number "
                                   "of targets that are not ignore_index.")
            if close(value.item(), per.mean().item(), 1e-8):
                raise JudgeFailure("cross_entropy: targets equal to ignore_index (-100) were not ignored.")
            raise JudgeFailure(f"cross_entropy {what}: the value differs from the mean cross-entropy (log-softmax of "
                               f"the logits at each target, averaged over the targets that are not ignored); received "
                               f"{value.item():.6f}.")
    value = data.get("ignore_minus_one")
    minus_one = targets.masked_fill(targets == -100, -1)
    if not (isinstance(value, torch.Tensor) and value.numel() == 1
            and close(value.item(), F.cross_entropy(logits, minus_one, ignore_index=-1).item(), 1e-8)):
        raise JudgeFailure("cross_entropy(logits, targets, ignore_index=-1) (nanoGPT's convention): the targets equal "
                           "to -1 must be left out; use the ignore_index argument, -100 is only its default.")
    value, zero = data.get("ignore_zero"), inputs.ce_zero_targets()
    if not (isinstance(value, torch.Tensor) and value.numel() == 1
            and close(value.item(), F.cross_entropy(logits, zero, ignore_index=0).item(), 1e-8)):
        counted = F.cross_entropy(logits, zero).item()
        said = (" (class 0 was counted: leave out targets == ignore_index, not only negative targets)"
                if isinstance(value, torch.Tensor) and value.numel() == 1 and close(value.item(), counted, 1e-8) else "")
        raise JudgeFailure("cross_entropy(logits, targets, ignore_index=0) (a padding id that is also a class): the "
                           f"targets equal to 0 must be left out{said}; keep = targets != ignore_index.")


def batches(data):
    check_data(data, {"x": None, "y": None, "x_again": None, "dtypes": [str, str]}, "get_batch")
    x, y = _need(data, "x", "get_batch x"), _need(data, "y", "get_batch y")
    if not (isinstance(data["x_again"], torch.Tensor) and torch.equal(data["x_again"], x)):
        raise JudgeFailure("get_batch: two calls with generators seeded alike drew different windows: the generator "
                           "is ignored (pass generator=generator to torch.randint).")
    if x.shape != (6, 9) or y.shape != (6, 9):
        raise JudgeFailure(f"get_batch(data, 6, 9): x and y should be (6, 9); received {tuple(x.shape)}, {tuple(y.shape)}.")
    stream = inputs.stream()
    position = {int(v): i for i, v in enumerate(stream.tolist())}
    for row in range(6):
        starts = [position.get(int(v)) for v in x[row].tolist()]
        if None in starts or starts != list(range(starts[0], starts[0] + 9)):
            raise JudgeFailure("get_batch: each row of x should be a contiguous window of the data.")
        if torch.equal(y[row], x[row]):
            raise JudgeFailure("get_batch: y equals x: the targets must be the inputs shifted by one (the next token).")
        if starts[0] > 0 and torch.equal(y[row], stream[starts[0] - 1:starts[0] + 8]):
            raise JudgeFailure("get_batch: y is shifted the wrong way (the previous token, not the next).")
        if not torch.equal(y[row], stream[starts[0] + 1:starts[0] + 10]):
            raise JudgeFailure("get_batch: y[:, t] should be the token after x[:, t] in the data.")
    one_window = data.get("one_window")
    window = torch.arange(100, 110)
    if not (type(one_window) is list and len(one_window) == 2
            and all(isinstance(t, torch.Tensor) and t.shape == (8, 9) for t in one_window)
            and torch.equal(one_window[0], window[:-1].expand(8, -1)) and torch.equal(one_window[1], window[1:].expand(8, -1))):
        raise JudgeFailure("get_batch(data of block_size + 1 = 10 tokens, 8, 9): the only full window starts at 0, yet "
                           "your windows differ (or it raised): a start of len(data) - block_size leaves the window one "
                           "token short past the end of data; draw starts with torch.randint(len(data) - block_size, ...).")
    if data["dtypes"] != ["torch.int64", "torch.int64"]:
        raise JudgeFailure(f"get_batch on int32 data: x and y have dtypes {', '.join(data['dtypes'])}; the exercise asks "
                           "for torch.long (int64) whatever the data's dtype (.long()): embeddings and cross_entropy "
                           "take int64 ids.")


SCHEDULE_STEPS = 111  # the collector asks for steps 0 .. 110


def lr_schedule(data):
    a = inputs.schedule_args()
    lrs = check_data(data, {"lr": [float] * SCHEDULE_STEPS}, "lr_schedule")["lr"]
    warm, top, low, total = a["warmup_steps"], a["max_lr"], a["min_lr"], a["max_steps"]
    if close(lrs[0], top, 1e-12):
        raise JudgeFailure("lr_schedule: the learning rate at step 0 is max_lr: the linear warm-up is missing.")
    for step, lr in enumerate(lrs):
        if step < warm:
            expected = top * (step + 1) / warm
        elif step >= total:
            expected = low
        else:
            expected = low + 0.5 * (top - low) * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
        if not close(lr, expected, 1e-9 * top):
            from tfs.teaching.probes_gpt import lr_schedule_mistakes

            received = torch.tensor(lrs, dtype=torch.float64)
            for description, wrong in lr_schedule_mistakes(range(SCHEDULE_STEPS), top, warm, total, low).items():
                if torch.allclose(received, wrong, rtol=0, atol=1e-9 * top):
                    raise JudgeFailure(f"lr_schedule: the rates match {description}.")
            if step < warm:
                raise JudgeFailure(f"lr_schedule: warm-up step {step} gives {lr:.3g}; expected max_lr * (step + 1) / "
                                   "warmup_steps.")
            if step >= total:
                raise JudgeFailure(f"lr_schedule: after max_steps the rate should stay at min_lr; step {step} gives {lr:.3g}.")
            raise JudgeFailure(f"lr_schedule: step {step} gives {lr:.3g}, {off(lr, expected)} the cosine from max_lr "
                               "at warmup_steps to min_lr at max_steps.")



def param_groups(data):
    from transformers import GPT2Config  # noqa: F401  (only to fail early without transformers)

    groups = check_data(data, {"groups": list}, "param_groups")["groups"]
    if len(groups) != 2:
        raise JudgeFailure(f"param_groups: expected two groups (decay, no decay); received {len(groups)}.")
    decay, rest = check_data(groups, [{"weight_decay": float, "params": list}] * 2, "param_groups")
    if not (close(decay["weight_decay"], 0.1, 0.0) and close(rest["weight_decay"], 0.0, 0.0)):
        raise JudgeFailure("param_groups: the first group needs weight_decay=weight_decay, the second 0.0.")
    other = data.get("other_decay")
    if other != [inputs.OTHER_DECAY, 0.0]:
        raise JudgeFailure(f"param_groups(model, {inputs.OTHER_DECAY}): the groups' weight_decay are {other}; the first "
                           "group's must be the weight_decay argument, not a fixed 0.1, the second's 0.0.")
    all_names = decay["params"] + rest["params"]
    if len(all_names) != len(set(all_names)):
        raise JudgeFailure("param_groups: a parameter is listed twice (the tied wte/lm_head weight?): "
                           "iterate over model.parameters(), which yields each tensor once.")
    if "<not a parameter of the model>" in all_names:
        raise JudgeFailure("param_groups: the groups hold tensors that are not the model's parameters.")
    gains = [n for n in decay["params"] if n.endswith("weight") and ("norm" in n or n.startswith("ln_f"))]
    if gains:
        raise JudgeFailure(f"param_groups: LayerNorm gains must not be decayed (decay pulls a gain towards 0, which "
                           f"scales the normalised features towards nothing; its neutral value is 1): {gains[:3]}")
    biases = [n for n in decay["params"] if n.endswith("bias")]
    if biases:
        raise JudgeFailure(f"param_groups: biases must not be decayed (a bias sets one quantity's offset, not how two "
                           f"interact; pulling it to 0 costs fit for nothing): {biases[:3]}")
    missing = [n for n in rest["params"] if n.endswith("weight") and "norm" not in n and not n.startswith("ln_f")]
    if missing:
        raise JudgeFailure(f"param_groups: weight matrices and embeddings must be decayed: {missing[:3]}")
    if set(all_names) != {name for name, _ in inputs.gpt_skeleton().named_parameters()}:
        raise JudgeFailure("param_groups: some parameters of the model are in neither group.")


def clipping(data):
    shapes = [torch.Tensor] * len(inputs.gradient_tensors())
    check_data(data, {**{str(max_norm): {"norm": float, "grads": shapes} for max_norm in (1.0, 100.0)},
                      "generator": {"norm": float, "grads": shapes}}, "clip_gradients")
    for max_norm in (1.0, 100.0):
        result = data[str(max_norm)]
        params = [nn.Parameter(torch.zeros_like(g)) for g in inputs.gradient_tensors()]
        for p, g in zip(params, inputs.gradient_tensors()):
            p.grad = g.clone()
        expected_norm = nn.utils.clip_grad_norm_(params, max_norm).item()
        grads = result["grads"]
        if not close(result["norm"], expected_norm, 0.0, rel=1e-6):
            raise JudgeFailure("clip_gradients: should return the global norm of all the gradients together, before "
                               f"clipping; returned {result['norm']:.4f}.")
        if max_norm == 1.0 and all(torch.equal(g, o) for g, o in zip(grads, inputs.gradient_tensors())):
            raise JudgeFailure("clip_gradients: the gradients were not changed: clipping is missing "
                               f"(their norm {expected_norm:.2f} is above max_norm = 1).")
        for g, p in zip(grads, params):
            if not torch.allclose(g, p.grad, rtol=1e-5, atol=1e-9):
                per_tensor = [o * min(1.0, max_norm / o.norm().item()) for o in inputs.gradient_tensors()]
                if all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, per_tensor)):
                    raise JudgeFailure("clip_gradients: each tensor was clipped on its own; clip by the global norm "
                                       "of all gradients together (one scale factor for all).")
                if max_norm == 100.0:
                    raise JudgeFailure("clip_gradients: gradients whose norm is already below max_norm must be left "
                                       "unchanged (scale = min(1, max_norm / norm)).")
                raise JudgeFailure("clip_gradients: the clipped gradients differ from torch.nn.utils.clip_grad_norm_'s.")
    params = [nn.Parameter(torch.zeros_like(g)) for g in inputs.gradient_tensors()]
    for p, g in zip(params, inputs.gradient_tensors()):
        p.grad = g.clone()
    expected_norm = nn.utils.clip_grad_norm_(params, 1.0).item()
    if not (close(data["generator"]["norm"], expected_norm, 0.0, rel=1e-6) and all(
            torch.allclose(g, p.grad, rtol=1e-5, atol=1e-9) for g, p in zip(data["generator"]["grads"], params))):
        raise JudgeFailure("clip_gradients((p for p in params), 1.0): given a generator, as model.parameters() is, the "
                           "gradients were not clipped: a generator can be iterated once only; make a list of the "
                           "gradients first and use it for the norm and for the scaling.")
    _clipping_with_none(data.get("with_none"))


def _clipping_with_none(result) -> None:
    """Parameters one of which has no gradient (p.grad is None): it is skipped, as clip_grad_norm_ skips it."""
    what = "clip_gradients(params, 1.0) with a parameter whose .grad is None (unused or frozen)"
    if isinstance(result, str):
        raise JudgeFailure(f"{what} raised {result}: skip parameters without a gradient, as "
                           "torch.nn.utils.clip_grad_norm_ does.")
    check_data(result, {"norm": float, "grads": [torch.Tensor] * 2, "untouched": bool}, what)
    params = [nn.Parameter(torch.zeros_like(g)) for g in inputs.gradient_tensors()]
    for p, g in zip(params, inputs.gradient_tensors()):
        p.grad = g.clone()
    expected_norm = nn.utils.clip_grad_norm_(params, 1.0).item()
    if not (result["untouched"] and close(result["norm"], expected_norm, 0.0, rel=1e-6)
            and all(torch.allclose(g, p.grad, rtol=1e-5, atol=1e-9) for g, p in zip(result["grads"], params))):
        raise JudgeFailure(f"{what}: the norm or the clipped gradients differ from torch.nn.utils.clip_grad_norm_'s "
                           "(which skips such a parameter and leaves its .grad None).")


def load_weights(data):
    """What the learner's loader put into a GPT's parameters, against GPT-2's weights under the exercise's names."""
    from tfs.convert.gpt import _key_pairs

    if isinstance(data, dict) and isinstance(data.get("raised"), str):
        raise JudgeFailure(f"load_hf_state_dict raised {data['raised']} on a GPT-2 state dict that fits the model: every "
                           "weight fits once the Conv1D weights (c_attn, c_proj, c_fc), stored (in, out), are transposed "
                           "to nn.Linear's (out, in).")
    check_data(data, {"state": dict, "tied": None, "errors": {"shape": None, "missing": None}}, "load_hf_state_dict")
    state = data.get("state")
    if not isinstance(state, dict):
        raise JudgeFailure("load_hf_state_dict: the grader received no weights from your loader.")
    hf_state = inputs.gpt2_state()
    for theirs, mine, transpose in _key_pairs(inputs.GPT_SIZES["n_layer"]):
        expected = hf_state[theirs].t() if transpose else hf_state[theirs]
        got = state.get(mine)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else None
            raise JudgeFailure(f"load_hf_state_dict: after loading, {mine} has shape {shape}; GPT-2's {theirs} gives "
                               f"{tuple(expected.shape)}{' (transposed)' if transpose else ''}.")
        if _close(got, expected, 1e-6):
            continue
        if transpose and _close(got, hf_state[theirs], 1e-6):
            raise JudgeFailure("load_hf_state_dict: a square Conv1D weight (attn.c_proj) was copied without .t(): "
                               "GPT-2's Conv1D stores (in, out), nn.Linear (out, in).")
        raise JudgeFailure(f"load_hf_state_dict: {mine} differs from GPT-2's {theirs}"
                           f"{' transposed' if transpose else ''}: check the transposes, the fused c_attn and the "
                           "layer names.")
    for case, (error, key) in {"shape": ("ValueError", inputs.MISSHAPED_KEY), "missing": ("KeyError", inputs.MISSING_KEY)
                               }.items():
        raised = data["errors"][case]
        what = "a wrongly shaped weight" if case == "shape" else "a missing key"
        if not (isinstance(raised, list) and len(raised) == 2 and isinstance(raised[0], list) and error in raised[0]):
            got = raised[0][0] if isinstance(raised, list) and raised and isinstance(raised[0], list) and raised[0] else None
            raise JudgeFailure(f"load_hf_state_dict with {what}: expected a {error}, received "
                               f"{got or 'no error'}.")
        if key not in str(raised[1]):
            raise JudgeFailure(f"load_hf_state_dict with {what}: the {error}'s message should name the key ({key}).")
    if data.get("tied") is not True:
        raise JudgeFailure("load_hf_state_dict: the model's lm_head is no longer tied to wte after loading: copy "
                           "into the existing tensors (param.copy_(...)), do not assign new ones.")


def accumulation(data):
    """The accumulated gradients against the whole batch's, computed in one forward and backward here."""
    from tfs.teaching.probes_gpt import accumulation_mistakes

    cases = inputs.accumulation_batches()
    names = [name for name, _ in inputs.TinyLM().named_parameters()]
    data = check_data(data, {case: {"grads": {name: None for name in names}, "loss": None, "largest_batch": int}
                             for case in cases}, "accumulate_gradients")
    for case, micro_batches in cases.items():
        result = data[case]
        grads = [result["grads"][name] for name in names]
        if not all(isinstance(g, torch.Tensor) for g in grads):
            raise JudgeFailure("accumulate_gradients: after the call some parameter has no gradient: call backward "
                               "on each micro-batch's (scaled) loss.")
        if result["largest_batch"] > max(x.shape[0] for x, _ in micro_batches):
            raise JudgeFailure("accumulate_gradients: the model was run on more sequences at once than any "
                               "micro-batch holds: run each micro-batch on its own (only one micro-batch's "
                               "activations are in memory at a time).")
        model = inputs.TinyLM()
        x = torch.cat([x for x, _ in micro_batches])
        y = torch.cat([y for _, y in micro_batches])
        logits = model(x)[0]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        expected = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])
        received = torch.cat([g.reshape(-1) for g in grads]) if all(
            g.shape == p.shape for g, p in zip(grads, model.parameters())) else None
        where = ("two micro-batches with the same number of target tokens" if case == "equal" else
                 "micro-batches of 3, 1 and 2 sequences, some targets -100")
        wrong_grads, wrong_losses = accumulation_mistakes(inputs.TinyLM(), micro_batches)
        if received is None or not _close(received, expected, 1e-10):
            for description, wrong in wrong_grads.items():
                if received is not None and _close(received, wrong, 1e-8):
                    raise JudgeFailure(f"accumulate_gradients ({where}): the gradients match {description}.")
            raise JudgeFailure(f"accumulate_gradients ({where}): the accumulated gradients differ from the gradient of "
                               "the whole batch's loss (the mean over all its target tokens that are not -100).")
        if not close(result["loss"], loss.item(), 1e-10):
            for description, wrong in wrong_losses.items():
                if close(result["loss"], wrong.item(), 1e-10):
                    raise JudgeFailure(f"accumulate_gradients ({where}): the gradients are right; the returned loss "
                                       f"is {description}.")
            raise JudgeFailure(f"accumulate_gradients ({where}): the gradients are right; return the whole batch's "
                               "loss (the mean over all its target tokens), as a number.")
