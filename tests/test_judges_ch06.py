"""Chapter 06's judges on the data of correct code and of plausible buggy variants (mutants).

Correct code: the package's reference (tfs.models, tfs.train, tfs.convert, tfs.nn). Each mutant must fail
with a message naming its mistake."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from tfs.convert.gpt import load_hf_state_dict
from tfs.grader.judging import JudgeFailure, collect, load_judge
from tfs.models.gpt import GPT, GPTConfig, init_gpt_weights
from tfs.nn import MultiHeadAttention, TransformerBlock
from tfs.nn.attention import causal_mask
from tfs.train import clip_gradients, get_batch, lr_schedule, param_groups

pytest.importorskip("transformers")


def run(test, **objects):
    load_judge(f"ch06.{test}")(collect(f"ch06.{test}", **objects))


def fails(test, message, **objects):
    with pytest.raises(JudgeFailure, match=message):
        run(test, **objects)


# ------------------------------------------------------------------------------------ attention

class MaskedAttention(MultiHeadAttention):
    """Attention with a chosen mask diagonal (0 is right) or none."""

    diagonal: int | None = 0

    def __init__(self, d, h, dropout=0.0):
        super().__init__(d, h, dropout=dropout, causal=False)

    def forward(self, x, mask=None):
        if self.diagonal is not None:
            allowed = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril(self.diagonal)
            mask = allowed if mask is None else mask & allowed
        return super().forward(x, mask=mask)


def attention_with(diagonal):
    return type("Mutant", (MaskedAttention,), {"diagonal": diagonal})


def test_attention_judge():
    run("attention_mask", CausalSelfAttention=functools.partial(MultiHeadAttention, causal=True))
    run("attention_mask", CausalSelfAttention=attention_with(0))
    fails("attention_mask", "no causal mask", CausalSelfAttention=attention_with(None))
    fails("attention_mask", "see the next one", CausalSelfAttention=attention_with(1))
    fails("attention_mask", "hides the token itself", CausalSelfAttention=attention_with(-1))


class ScaledAttention(MaskedAttention):
    """Causal attention whose scores are divided by ``scale(d_head, d_model)``."""

    scale = staticmethod(lambda d_head, d_model: math.sqrt(d_head))
    softmax_dim = -1
    always_dropout = False

    def forward(self, x, mask=None):
        q, k, v = (t.reshape(*x.shape[:2], self.n_heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        allowed = causal_mask(x.shape[1]) if mask is None else causal_mask(x.shape[1]) & mask
        scores = q @ k.transpose(-2, -1) / self.scale(q.shape[-1], x.shape[-1])
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), self.softmax_dim)
        p = 0.5 if self.always_dropout else self.dropout  # the dropout argument (a fixed 0.5 only for that mistake)
        mixed = nn.functional.dropout(weights, p, self.always_dropout or self.training) @ v
        return self.out(mixed.transpose(1, 2).reshape(x.shape)), weights


def attention_variant(**changes):
    return type("Mutant", (ScaledAttention,), changes)


def test_attention_judge_names_scores_and_dropout():
    run("attention_mask", CausalSelfAttention=attention_variant())
    fails("attention_mask", r"not divided by sqrt\(d_head\)", CausalSelfAttention=attention_variant(
        scale=staticmethod(lambda d_head, d_model: 1.0)))
    fails("attention_mask", r"sqrt\(d_model\) instead", CausalSelfAttention=attention_variant(
        scale=staticmethod(lambda d_head, d_model: math.sqrt(d_model))))
    fails("attention_mask", r"over the queries \(dim=-2\)", CausalSelfAttention=attention_variant(softmax_dim=-2))
    fails("attention_mask", "dropout must be off in eval mode", CausalSelfAttention=attention_variant(always_dropout=True))


class ReplacingMask(MaskedAttention):
    def forward(self, x, mask=None):  # the padding mask replaces the causal one
        return MultiHeadAttention.forward(self, x, mask=causal_mask(x.shape[1]) if mask is None else mask)


def test_attention_judge_padding():
    fails("attention_mask", "padding mask replaces the causal mask", CausalSelfAttention=ReplacingMask)


# ---------------------------------------------------------------------------------------- block

def block(**options):
    settings = dict(norm_first=True, activation="gelu_tanh", causal=True) | options
    return lambda d, h: TransformerBlock(d, h, 4 * d, **settings)


def test_block_judge():
    run("gpt_block", GPTBlock=block())
    fails("gpt_block", "post-LN", GPTBlock=block(norm_first=False))
    fails("gpt_block", "exact GELU", GPTBlock=block(activation="gelu"))
    fails("gpt_block", "no causal mask", GPTBlock=block(causal=False))


class SwappedNorms(TransformerBlock):
    def forward(self, x, mask=None):
        self.norm1, self.norm2 = self.norm2, self.norm1
        try:
            return super().forward(x, mask)
        finally:
            self.norm1, self.norm2 = self.norm2, self.norm1


def test_block_judge_swapped_norms():
    fails("gpt_block", "norm1 and norm2 swapped", GPTBlock=lambda d, h: SwappedNorms(
        d, h, 4 * d, norm_first=True, activation="gelu_tanh", causal=True))


# ------------------------------------------------------------------------------------------ GPT

class UntiedGPT(GPT):
    def __init__(self, config):
        super().__init__(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)


class CopiedHeadGPT(GPT):
    def __init__(self, config):
        super().__init__(config)
        self.lm_head.weight = nn.Parameter(self.wte.weight.detach().clone())


class NoPositionsGPT(GPT):
    def forward(self, idx, targets=None):
        with torch.no_grad():
            self.wpe.weight.zero_()
        return super().forward(idx, targets)


class NoFinalNormGPT(GPT):
    def __init__(self, config):
        super().__init__(config)
        self.ln_f.register_forward_hook(lambda module, inputs, output: inputs[0])  # ln_f kept, its output dropped


def test_gpt_judge():
    run("gpt_model", GPT=GPT, GPTConfig=GPTConfig)
    fails("gpt_model", "not the token embedding's weight: tie them", GPT=UntiedGPT, GPTConfig=GPTConfig)
    fails("gpt_model", "holds a copy of the token embedding's values", GPT=CopiedHeadGPT, GPTConfig=GPTConfig)
    fails("gpt_model", "logits match no position embeddings", GPT=NoPositionsGPT, GPTConfig=GPTConfig)
    fails("gpt_model", "logits match no final LayerNorm", GPT=NoFinalNormGPT, GPTConfig=GPTConfig)


def init_without_residual_scaling(model, n_layer, std=0.02, scale_residual=True):
    init_gpt_weights(model, n_layer, std=std, scale_residual=False)  # 0.02 everywhere


def init_scaling_everything(model, n_layer, std=0.02, scale_residual=True):
    init_gpt_weights(model, n_layer, std=std / math.sqrt(2 * n_layer), scale_residual=scale_residual)


def init_ignoring_scale_residual(model, n_layer, std=0.02, scale_residual=True):
    init_gpt_weights(model, n_layer, std)  # scales the residual projections whatever scale_residual says


def init_untying(model, n_layer, std=0.02, scale_residual=True):
    init_gpt_weights(model, n_layer, std, scale_residual)
    model.lm_head.weight = nn.Parameter(model.wte.weight.detach().clone())


def test_init_judge():
    run("init_statistics", init_gpt_weights=init_gpt_weights)
    fails("init_statistics", "residual projections", init_gpt_weights=init_without_residual_scaling)
    fails("init_statistics", "only attn.out and ff.linear2 are scaled down", init_gpt_weights=init_scaling_everything)
    fails("init_statistics", "broke the tie", init_gpt_weights=init_untying)
    fails("init_statistics", "with scale_residual=False", init_gpt_weights=init_ignoring_scale_residual)
    fails("init_statistics", r"0.02 / sqrt\(n_layer\): each block adds two branches",
          init_gpt_weights=lambda model, n_layer, std=0.02, scale_residual=True: init_gpt_weights(
              model, max(1, n_layer // 2), std, scale_residual))


# ------------------------------------------------------------------------- loss and training pieces

def reference_cross_entropy(logits, targets, ignore_index=-100):
    return nn.functional.cross_entropy(logits, targets, ignore_index=ignore_index)


def naive_cross_entropy(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    probs = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    return -(torch.log(probs.gather(-1, targets.clamp(min=0)[:, None])[:, 0]) * keep).sum() / keep.sum()


def one_maximum(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    m = logits.max()
    log_sum_exp = m + torch.log(torch.exp(logits - m).sum(-1))
    return ((log_sum_exp - logits.gather(-1, targets.clamp(min=0)[:, None])[:, 0]) * keep).sum() / keep.sum()


def mean_over_all(logits, targets, ignore_index=-100):
    keep = targets != ignore_index
    log_probs = logits - torch.logsumexp(logits, -1, keepdim=True)
    return -(log_probs.gather(-1, targets.clamp(min=0)[:, None])[:, 0] * keep).sum() / targets.numel()


def not_ignoring(logits, targets, ignore_index=-100):
    log_probs = logits - torch.logsumexp(logits, -1, keepdim=True)
    return -log_probs.gather(-1, targets.clamp(min=0)[:, None])[:, 0].mean()


def test_cross_entropy_judge():
    run("cross_entropy", cross_entropy=reference_cross_entropy)
    fails("cross_entropy", "exp overflowed", cross_entropy=naive_cross_entropy)
    fails("cross_entropy", "each row's own maximum", cross_entropy=one_maximum)
    fails("cross_entropy", "ignored positions are counted in the mean", cross_entropy=mean_over_all)
    fails("cross_entropy", "were not ignored", cross_entropy=not_ignoring)


def unshifted_batch(data, batch_size, block_size, generator=None):
    x, _ = get_batch(data, batch_size, block_size, generator)
    return x, x.clone()


def backward_batch(data, batch_size, block_size, generator=None):
    starts = torch.randint(1, len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[s:s + block_size] for s in starts])
    y = torch.stack([data[s - 1:s - 1 + block_size] for s in starts])
    return x, y


def test_batches_judge():
    run("batches", get_batch=get_batch)
    fails("batches", "y equals x", get_batch=unshifted_batch)
    fails("batches", "shifted the wrong way", get_batch=backward_batch)
    fails("batches", "the generator is ignored",
          get_batch=lambda data, batch_size, block_size, generator=None: get_batch(data, batch_size, block_size))
    fails("batches", "one token short", get_batch=past_the_end_batch)


def past_the_end_batch(data, batch_size, block_size, generator=None):
    """Starts drawn up to len(data) - block_size: the last one leaves a window one token short (held-out mutant)."""
    starts = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)
    windows = torch.stack([data[s:s + block_size + 1] for s in starts.tolist()]).long()
    return windows[:, :-1], windows[:, 1:]


def no_warmup(step, max_lr, warmup_steps, max_steps, min_lr=0.0):
    return lr_schedule(step + warmup_steps, max_lr, warmup_steps, max_steps + warmup_steps, min_lr)


def constant_after_warmup(step, max_lr, warmup_steps, max_steps, min_lr=0.0):
    return lr_schedule(step, max_lr, warmup_steps, max_steps, min_lr) if step < warmup_steps else max_lr


def test_lr_schedule_judge():
    run("lr_schedule", lr_schedule=lr_schedule)
    fails("lr_schedule", "warm-up is missing", lr_schedule=no_warmup)
    fails("lr_schedule", "no decay after the warm-up", lr_schedule=constant_after_warmup)
    fails("lr_schedule", "no floor after max_steps", lr_schedule=no_floor)
    fails("lr_schedule", "progress counted from step 0", lr_schedule=progress_from_zero)


def no_floor(step, max_lr, warmup_steps, max_steps, min_lr=0.0):
    return lr_schedule(min(step, max_steps - 1), max_lr, warmup_steps, max_steps, min_lr) if step < max_steps else (
        min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (step - warmup_steps) / (max_steps - warmup_steps))))


def progress_from_zero(step, max_lr, warmup_steps, max_steps, min_lr=0.0):
    if step < warmup_steps or step >= max_steps:
        return lr_schedule(step, max_lr, warmup_steps, max_steps, min_lr)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * step / max_steps))


def decay_everything(model, weight_decay):
    return [{"params": list(model.parameters()), "weight_decay": weight_decay}, {"params": [], "weight_decay": 0.0}]


def named_twice(model, weight_decay):
    decay = [p for n, p in model.named_parameters(remove_duplicate=False) if p.dim() >= 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]


def decay_all_but_biases(model, weight_decay):
    return [{"params": [p for n, p in model.named_parameters() if not n.endswith("bias")], "weight_decay": weight_decay},
            {"params": [p for n, p in model.named_parameters() if n.endswith("bias")], "weight_decay": 0.0}]


def decay_all_but_gains(model, weight_decay):
    gain = {n for n, p in model.named_parameters() if p.dim() < 2 and not n.endswith("bias")}
    return [{"params": [p for n, p in model.named_parameters() if n not in gain], "weight_decay": weight_decay},
            {"params": [p for n, p in model.named_parameters() if n in gain], "weight_decay": 0.0}]


def test_param_groups_judge():
    run("param_groups", param_groups=param_groups)
    fails("param_groups", "LayerNorm gains must not be decayed", param_groups=decay_everything)
    fails("param_groups", "LayerNorm gains must not be decayed", param_groups=decay_all_but_biases)
    fails("param_groups", "biases must not be decayed", param_groups=decay_all_but_gains)
    fails("param_groups", "listed twice", param_groups=named_twice)


def no_clipping(parameters, max_norm):
    grads = [p.grad for p in parameters]
    return torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))


def per_tensor_clipping(parameters, max_norm):
    parameters = list(parameters)
    total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters]))
    for p in parameters:
        p.grad.mul_(min(1.0, max_norm / p.grad.norm().item()))
    return total


def always_rescale(parameters, max_norm):
    parameters = list(parameters)
    total = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters]))
    for p in parameters:
        p.grad.mul_(max_norm / total)
    return total


def test_clipping_judge():
    run("clipping", clip_gradients=clip_gradients)
    fails("clipping", "clipping is missing", clip_gradients=no_clipping)
    fails("clipping", "clipped on its own", clip_gradients=per_tensor_clipping)
    fails("clipping", "left unchanged", clip_gradients=always_rescale)


# ---------------------------------------------------------------------------------------- loading

def load_untransposed(model, hf_state):
    fixed = dict(hf_state)
    for key, value in hf_state.items():
        if key.endswith("attn.c_proj.weight"):  # square: the shapes fit either way
            fixed[key] = value.t()
    return load_hf_state_dict(model, fixed)


def load_breaking_tie(model, hf_state):
    load_hf_state_dict(model, hf_state)
    model.lm_head.weight = nn.Parameter(model.wte.weight.detach().clone())
    return model


def test_load_weights_judge():
    run("load_weights", load_hf_state_dict=load_hf_state_dict)
    fails("load_weights", r"copied without \.t\(\)", load_hf_state_dict=load_untransposed)
    fails("load_weights", "no longer tied", load_hf_state_dict=load_breaking_tie)


def load_without_shape_check(model, hf_state):
    """Copies without checking shapes: copy_ raises a RuntimeError, not the ValueError asked for."""
    own = model.state_dict()
    with torch.no_grad():
        for key, value in hf_state.items():
            if key == "lm_head.weight":
                continue
            mine = key.replace("transformer.", "")
            for theirs, ours in (("h.", "blocks."), ("ln_1", "norm1"), ("ln_2", "norm2"), ("attn.c_attn", "attn.qkv"),
                                 ("attn.c_proj", "attn.out"), ("mlp.c_fc", "ff.linear1"), ("mlp.c_proj", "ff.linear2")):
                mine = mine.replace(theirs, ours)
            conv1d = key.endswith(".weight") and any(n in key for n in ("c_attn", "c_proj", "c_fc"))
            own[mine].copy_(value.t() if conv1d else value)
    for key in ("transformer.ln_f.bias",):
        hf_state[key]  # a missing key: KeyError naming it
    return model


def load_refusing_conv1d(model, hf_state):
    raise ValueError("transformer.h.0.attn.c_attn.weight: shape (32, 96) does not fit blocks.0.attn.qkv.weight (96, 32)")


def test_load_weights_judge_errors():
    fails("load_weights", "wrongly shaped weight: expected a ValueError, received RuntimeError",
          load_hf_state_dict=load_without_shape_check)
    fails("load_weights", r"raised ValueError .* transposed", load_hf_state_dict=load_refusing_conv1d)


# ------------------------------------------------------------------------------------ accumulation

def accumulate(weight, zero_between=False, report=None):
    """An accumulation that scales micro-batch i's mean loss by ``weight(i, micro_batches)``."""
    def accumulate_gradients(model, micro_batches):
        losses = []
        for i, (x, y) in enumerate(micro_batches):
            if zero_between:
                model.zero_grad(set_to_none=True)
            _, loss = model(x, y)
            (loss * weight(i, micro_batches)).backward()
            losses.append(loss.item())
        return (report or token_weighted_loss)(losses, micro_batches)
    return accumulate_gradients


def tokens(micro_batches):
    return [int((y != -100).sum()) for _, y in micro_batches]


def token_share(i, micro_batches):
    return tokens(micro_batches)[i] / sum(tokens(micro_batches))


def token_weighted_loss(losses, micro_batches):
    return sum(loss * token_share(i, micro_batches) for i, loss in enumerate(losses))


def concatenated(model, micro_batches):
    _, loss = model(torch.cat([x for x, _ in micro_batches]), torch.cat([y for _, y in micro_batches]))
    loss.backward()
    return loss.item()


def test_accumulation_judge():
    run("accumulation", accumulate_gradients=accumulate(token_share))
    fails("accumulation", "two micro-batches .* no scaling", accumulate_gradients=accumulate(lambda i, mb: 1.0))
    fails("accumulation", "3, 1 and 2 .* scaled by 1/k", accumulate_gradients=accumulate(lambda i, mb: 1 / len(mb)))
    fails("accumulation", "share of the sequences",
          accumulate_gradients=accumulate(lambda i, mb: len(mb[i][0]) / sum(len(x) for x, _ in mb)))
    fails("accumulation", "sum of the token losses", accumulate_gradients=accumulate(lambda i, mb: tokens(mb)[i]))
    fails("accumulation", "zeroed", accumulate_gradients=accumulate(token_share, zero_between=True))
    fails("accumulation", "run each micro-batch on its own", accumulate_gradients=concatenated)
    fails("accumulation", "returned loss is the mean of the micro-batches' losses",
          accumulate_gradients=accumulate(token_share, report=lambda losses, mb: sum(losses) / len(losses)))
    fails("accumulation", "return the whole batch's loss",
          accumulate_gradients=accumulate(token_share, report=lambda losses, mb: None))


@pytest.mark.parametrize("forge", [
    lambda d: {**d, "equal": {**d["equal"], "loss": math.nan}},
    lambda d: {**d, "unequal": {**d["unequal"], "grads": {k: torch.full_like(v, math.nan)
                                                          for k, v in d["unequal"]["grads"].items()}}},
    lambda d: {"equal": d["equal"]},
    lambda d: {k: {**v, "grads": dict(list(v["grads"].items())[1:])} for k, v in d.items()},
], ids=["NaN loss", "NaN gradients", "one case left out", "one parameter left out"])
def test_accumulation_judge_refuses_forged_data(forge):
    from tfs.grader.judging import read_data_roundtrip

    honest = read_data_roundtrip(collect("ch06.accumulation", accumulate_gradients=accumulate(token_share)))
    load_judge("ch06.accumulation")(honest)
    with pytest.raises(JudgeFailure):
        load_judge("ch06.accumulation")(forge(honest))


# ---------------------------------------------------------------------------- one exercise at a time

LEARNER_NOTEBOOK = '''
class CausalSelfAttention(MultiHeadAttention):          # exercise 1 wrong: no causal mask
    def __init__(self, d_model, n_heads, dropout=0.0):
        super().__init__(d_model, n_heads, dropout=dropout, causal=False)


class GPTBlock(TransformerBlock):                        # exercise 2 right, on the learner's attention
    def __init__(self, d_model, n_heads, dropout=0.0):
        super().__init__(d_model, n_heads, 4 * d_model, norm_first=True, activation="gelu_tanh", causal=True)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)


class LearnerGPT(GPT):                                   # exercise 3 right, on the learner's blocks
    def __init__(self, config):
        super().__init__(config)
        self.blocks = nn.ModuleList(GPTBlock(config.n_embd, config.n_head) for _ in range(config.n_layer))
'''


def test_block_and_gpt_are_graded_on_reference_attention():
    """A wrong attention costs points in exercise 1 only: the block's and the GPT's collectors run them on the
    reference pieces, and put the learner's names back afterwards."""
    notebook = {"MultiHeadAttention": MultiHeadAttention, "TransformerBlock": TransformerBlock, "GPT": GPT, "nn": nn}
    exec(LEARNER_NOTEBOOK, notebook)
    fails("attention_mask", "no causal mask", CausalSelfAttention=notebook["CausalSelfAttention"])
    run("gpt_block", GPTBlock=notebook["GPTBlock"])
    run("gpt_model", GPT=notebook["LearnerGPT"], GPTConfig=GPTConfig)
    assert notebook["GPTBlock"](16, 4).attn.causal is False  # the learner's own names are back


# ------------------------------------------------------------------------ held-out list 3 (2026-12-07)

class BlockIgnoringMask(TransformerBlock):
    def forward(self, x, mask=None):
        return super().forward(x, None)


class TooStrictLengthGPT(GPT):  # refuses T == block_size too
    def forward(self, idx, targets=None):
        if idx.shape[1] >= self.config.block_size:
            raise ValueError(f"sequence of length {idx.shape[1]} is longer than block_size={self.config.block_size}")
        return super().forward(idx, targets)


def ce_ignoring_minus_100_only(logits, targets, ignore_index=-100):  # the argument ignored
    keep = targets != -100
    per = nn.functional.cross_entropy(logits, targets.clamp(min=0), reduction="none")
    return (per * keep).sum() / keep.sum()


def batch_keeping_dtype(data, batch_size, block_size, generator=None):
    x, y = get_batch(data, batch_size, block_size, generator)
    return x.to(data.dtype), y.to(data.dtype)


def clip_iterating_twice(parameters, max_norm):  # the second pass over a generator finds nothing
    norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in parameters if p.grad is not None))
    scale = min(1.0, max_norm / (norm.item() + 1e-6))
    for p in parameters:
        if p.grad is not None:
            p.grad.mul_(scale)
    return norm


def test_held_out_3_mistakes_are_named():
    fails("gpt_block", "must pass its mask on to the attention",
          GPTBlock=lambda d, h: BlockIgnoringMask(d, h, 4 * d, norm_first=True, activation="gelu_tanh", causal=True))
    fails("gpt_model", r"exactly block_size = 24 tokens raised.*T > block_size", GPT=TooStrictLengthGPT,
          GPTConfig=GPTConfig)
    fails("init_statistics", "with std=0.05.*use the std argument",
          init_gpt_weights=lambda model, n_layer, std=0.02, scale_residual=True: init_gpt_weights(
              model, n_layer, 0.02, scale_residual))
    fails("cross_entropy", r"ignore_index=-1.*use the ignore_index argument", cross_entropy=ce_ignoring_minus_100_only)
    fails("batches", "int32 data.*torch.long", get_batch=batch_keeping_dtype)
    fails("clipping", "generator.*iterated once only", clip_gradients=clip_iterating_twice)


# ------------------------------------------------------------------ sweep (issue 31): arguments moved off their one value

def _fixed_dropout_attention(d_model, n_heads, dropout=0.0):
    return MultiHeadAttention(d_model, n_heads, dropout=0.1, causal=True)


def _ce_ignoring_negatives(logits, targets, ignore_index=-100):
    keep = targets >= 0
    per = nn.functional.cross_entropy(logits, targets.clamp(min=0), reduction="none")
    return (per * keep).sum() / keep.sum()


def _groups_fixed_decay(model, weight_decay):
    return param_groups(model, 0.1)


def _clip_every_parameter(parameters, max_norm):
    parameters = list(parameters)
    norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in parameters))
    for p in parameters:
        p.grad.mul_(min(1.0, max_norm / (norm.item() + 1e-6)))
    return norm


@pytest.mark.parametrize("test, message, objects", [
    ("attention_mask", r"dropout=0.0\) in training mode changed", {"CausalSelfAttention": _fixed_dropout_attention}),
    ("cross_entropy", r"ignore_index=0.*class 0 was counted", {"cross_entropy": _ce_ignoring_negatives}),
    ("param_groups", r"param_groups\(model, 0.05\).*not a fixed 0.1", {"param_groups": _groups_fixed_decay}),
    ("clipping", r"\.grad is None.*raised", {"clip_gradients": _clip_every_parameter}),
])
def test_arguments_off_their_default_are_named(test, message, objects):
    fails(test, message, **objects)
