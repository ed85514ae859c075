"""Collectors for chapter 06 (GPT): run the learner's code on seeded inputs, return plain data.

The input generators here are imported by the judges (``autograder/judges/ch06.py``), which rebuild
the inputs themselves; nothing here decides a grade.

Chapter 06's own references (``tfs.models.gpt``, ``tfs.train``, ``tfs.convert.gpt``'s loader) are hidden while it
is graded (:mod:`tfs.grader.references`), so nothing here uses them: the learner's initialisation, parameter groups
and loader act on :func:`gpt_skeleton` (the GPT's parameters by the exercise's names, built from chapter 03's
blocks, with no forward); the judge runs what the loader loaded; the learner's GPT gets :func:`gpt_course_state`
written by name. Each exercise is collected on its own: while the learner's ``GPTBlock`` and ``GPT`` run, the names
``CausalSelfAttention`` and ``GPTBlock`` in their namespace are chapter 02's and 03's modules (:func:`_stand_ins`,
put in place by :func:`judging.stand_ins`).
"""

from __future__ import annotations

import torch
from torch import nn

from tfs.grader import judging

D_MODEL, N_HEADS, LENGTH = 16, 4, 7
GPT_SIZES = {"vocab_size": 61, "block_size": 24, "n_layer": 2, "n_head": 4, "n_embd": 32}


def _gen(seed: int) -> torch.Generator:
    return judging.generator(seed)


def attention_weights(seed: int = 60, d: int = D_MODEL) -> dict[str, torch.Tensor]:
    """Seeded float64 weights for ``qkv`` (3d, d) and ``out`` (d, d), biases included."""
    g = _gen(seed)
    return {"qkv.weight": torch.randn(3 * d, d, generator=g, dtype=torch.float64) / d**0.5,
            "qkv.bias": 0.1 * torch.randn(3 * d, generator=g, dtype=torch.float64),
            "out.weight": torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5,
            "out.bias": 0.1 * torch.randn(d, generator=g, dtype=torch.float64)}


def block_weights(seed: int = 61, d: int = D_MODEL) -> dict[str, torch.Tensor]:
    """Seeded float64 weights of a block: ``norm1``, ``attn.qkv``, ``attn.out``, ``norm2``, ``ff.linear1/2``."""
    g = _gen(seed)
    weights = {f"attn.{k}": v for k, v in attention_weights(seed + 100, d).items()}
    for norm in ("norm1", "norm2"):
        weights[f"{norm}.weight"] = 1 + 0.2 * torch.randn(d, generator=g, dtype=torch.float64)
        weights[f"{norm}.bias"] = 0.2 * torch.randn(d, generator=g, dtype=torch.float64)
    weights["ff.linear1.weight"] = torch.randn(4 * d, d, generator=g, dtype=torch.float64) / d**0.5
    weights["ff.linear1.bias"] = 0.1 * torch.randn(4 * d, generator=g, dtype=torch.float64)
    weights["ff.linear2.weight"] = torch.randn(d, 4 * d, generator=g, dtype=torch.float64) / (4 * d)**0.5
    weights["ff.linear2.bias"] = 0.1 * torch.randn(d, generator=g, dtype=torch.float64)
    return weights


def hidden_input(seed: int = 62, batch: int = 2, length: int = LENGTH, d: int = D_MODEL) -> torch.Tensor:
    return torch.randn(batch, length, d, generator=_gen(seed), dtype=torch.float64)


def gpt2_state(seed: int = 63, sizes: dict | None = None, dtype=torch.float32) -> dict[str, torch.Tensor]:
    """A seeded ``GPT2LMHeadModel``-layout state dict (Conv1D weights ``(in, out)``), ``lm_head`` tied."""
    s = dict(GPT_SIZES, **(sizes or {}))
    d, g = s["n_embd"], _gen(seed)

    def rand(*shape, scale=0.1):
        return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)

    state = {"transformer.wte.weight": rand(s["vocab_size"], d, scale=0.3),
             "transformer.wpe.weight": rand(s["block_size"], d, scale=0.3)}
    for i in range(s["n_layer"]):
        p = f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            state[p + ln + ".weight"] = (1 + rand(d)).to(dtype)
            state[p + ln + ".bias"] = rand(d)
        for name, (n_in, n_out) in {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d), "mlp.c_fc": (d, 4 * d),
                                    "mlp.c_proj": (4 * d, d)}.items():
            state[p + name + ".weight"] = rand(n_in, n_out, scale=n_in**-0.5)
            state[p + name + ".bias"] = rand(n_out)
    state["transformer.ln_f.weight"] = (1 + rand(d)).to(dtype)
    state["transformer.ln_f.bias"] = rand(d)
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def gpt_skeleton(sizes: dict | None = None) -> nn.Module:
    """Chapter 06's GPT without its code: ``wte``, ``wpe``, pre-LN causal blocks of chapter 03 (``tfs.nn``), ``ln_f``
    and an ``lm_head`` tied to ``wte``, by the exercise's names, in its order; no forward. Not a GPT: what the
    learner's init, parameter groups and loader act on."""
    from tfs.nn import LayerNorm, TransformerBlock

    s = dict(GPT_SIZES, **(sizes or {}))
    d = s["n_embd"]
    model = nn.Module()
    model.wte = nn.Embedding(s["vocab_size"], d)
    model.wpe = nn.Embedding(s["block_size"], d)
    model.blocks = nn.ModuleList(TransformerBlock(d, s["n_head"], 4 * d, norm_first=True, activation="gelu_tanh",
                                                  causal=True) for _ in range(s["n_layer"]))
    model.ln_f = LayerNorm(d)
    model.lm_head = nn.Linear(d, s["vocab_size"], bias=False)
    model.lm_head.weight = model.wte.weight
    return model


def gpt_course_state(seed: int = 63) -> dict[str, torch.Tensor]:
    """Seeded float32 weights of :data:`GPT_SIZES`'s GPT by the exercise's parameter names (``lm_head.weight`` is
    ``wte.weight``), at the scales of :func:`gpt2_state`."""
    g = _gen(seed)
    state = {}
    for name, parameter in gpt_skeleton().named_parameters():
        values = torch.randn(parameter.shape, generator=g, dtype=torch.float64)
        if name.endswith("bias"):
            values = 0.1 * values
        elif "norm" in name or name.startswith("ln_f"):
            values = 1 + 0.1 * values
        elif name in ("wte.weight", "wpe.weight"):
            values = 0.3 * values
        else:
            values = values * parameter.shape[1] ** -0.5
        state[name] = values.float()
    state["lm_head.weight"] = state["wte.weight"]
    return state


def token_ids(seed: int = 64, batch: int = 3, length: int = 20, vocab: int = GPT_SIZES["vocab_size"]):
    """Seeded ids and a tokenizer-style attention mask (rows 1 and 2 right-padded)."""
    ids = torch.randint(vocab, (batch, length), generator=_gen(seed))
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, length - 6:] = 0
    mask[2, 5:] = 0
    return ids, mask


def ce_inputs(seed: int = 65) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits ``(N, V)`` (one row scaled up to overflow a naive exp), targets with some -100."""
    g = _gen(seed)
    logits = torch.randn(12, 9, generator=g, dtype=torch.float64)
    big = logits.clone()
    big[3] = 2000.0 + 1000.0 * big[3]  # exp(>710) overflows float64: only a log-sum-exp survives; one maximum over all
    # the logits would underflow the other rows
    targets = torch.randint(9, (12,), generator=g)
    targets[[1, 6, 7]] = -100
    return logits, big, targets


def stream(seed: int = 66, length: int = 500) -> torch.Tensor:
    """A token stream with distinct values, so a window's position in it can be read off."""
    return torch.randperm(length, generator=_gen(seed)) + 1000


def schedule_args() -> dict:
    return {"max_lr": 6e-4, "warmup_steps": 10, "max_steps": 100, "min_lr": 6e-5}


def gradient_tensors(seed: int = 67) -> list[torch.Tensor]:
    g = _gen(seed)
    return [torch.randn(5, 3, generator=g, dtype=torch.float64) * 2.0, torch.randn(7, generator=g, dtype=torch.float64)]


# ---------------------------------------------------------------------------------------- collectors

def _loaded(module: nn.Module, weights: dict[str, torch.Tensor]) -> nn.Module:
    module = module.double()
    state = module.state_dict()
    with torch.no_grad():
        for key, value in weights.items():
            state[key].copy_(value)  # a KeyError here: the learner's names differ from the exercise's
    return module.eval()


def attention_mask(CausalSelfAttention) -> dict:
    """Outputs and weights of the learner's attention (dropout=0.5, in eval mode) with seeded weights, without and
    with padding, and the output of a second call."""
    module = _loaded(CausalSelfAttention(D_MODEL, N_HEADS, dropout=0.5), attention_weights())
    x = hidden_input()
    padding = torch.tensor([[True] * LENGTH, [True] * 4 + [False] * (LENGTH - 4)])[:, None, None, :]
    with torch.no_grad():
        out, weights = module(x)
        out_again = module(x)[0]
        out_padded, weights_padded = module(x, mask=padding)
    # in training mode: dropout=0.0 must change nothing (a fixed probability would), dropout=0.5 must change something
    train_zero = _loaded(CausalSelfAttention(D_MODEL, N_HEADS, dropout=0.0), attention_weights()).train()
    train_half = _loaded(CausalSelfAttention(D_MODEL, N_HEADS, dropout=0.5), attention_weights()).train()
    torch.manual_seed(judging.run_seed() * 1_000_003 + 71)
    with torch.no_grad():
        return {"out": out, "weights": weights, "out_again": out_again, "out_padded": out_padded,
                "weights_padded": weights_padded, "train_zero": train_zero(x)[0], "train_half": train_half(x)[0]}


def _stand_ins() -> dict:
    """The reference pieces the learner's later answers are built on while one is collected: chapter 02's causal
    attention and chapter 03's pre-LN block with the tanh GELU, by the exercise's names and signatures."""
    from tfs.nn import MultiHeadAttention, TransformerBlock

    def attention(d_model, n_heads, dropout=0.0):
        return MultiHeadAttention(d_model, n_heads, dropout=dropout, causal=True)

    def block(d_model, n_heads, dropout=0.0):
        return TransformerBlock(d_model, n_heads, 4 * d_model, norm_first=True, dropout=dropout,
                                activation="gelu_tanh", causal=True)

    return {"CausalSelfAttention": attention, "GPTBlock": block}


LEFT_PADDING = 3  # the second sequence of hidden_input() starts with this many padding positions in "out_padded"


def block_padding() -> torch.Tensor:
    """``(2, 1, 1, LENGTH)`` bool, True = may attend: the second sequence left-padded (its real tokens see the padding
    keys unless the block passes the mask on; with padding on the right, causality alone would hide it)."""
    keep = torch.ones(2, LENGTH, dtype=torch.bool)
    keep[1, :LEFT_PADDING] = False
    return keep[:, None, None, :]


def gpt_block(GPTBlock) -> dict:
    """The learner's block (on the reference attention) with seeded weights on seeded inputs, without and with a
    padding mask."""
    with judging.stand_ins(GPTBlock, **_stand_ins()):
        block = _loaded(GPTBlock(D_MODEL, N_HEADS), block_weights())
        train_zero = _loaded(GPTBlock(D_MODEL, N_HEADS), block_weights()).train()  # dropout's default 0.0: no change
        try:  # is the dropout argument passed on to the attention (the stand-in keeps it as .dropout)?
            attn_dropout = getattr(getattr(GPTBlock(D_MODEL, N_HEADS, 0.3), "attn", None), "dropout", None)
        except Exception:  # noqa: BLE001 - a block without the dropout argument: judged by the cases above
            attn_dropout = None
        with torch.no_grad():
            return {"out": block(hidden_input()), "out_padded": block(hidden_input(), mask=block_padding()),
                    "train_zero": train_zero(hidden_input()),
                    "attn_dropout": attn_dropout if isinstance(attn_dropout, float) else None}


@torch.no_grad()
def _write_by_name(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``model``'s tensors of the same names; a KeyError or ValueError names what does not fit."""
    own = model.state_dict()
    for name, value in state.items():
        if name not in own:
            raise KeyError(f"the model has no parameter {name!r} (the exercise's names: wte, wpe, blocks.i.attn.qkv, "
                           "..., ln_f, lm_head)")
        if own[name].shape != value.shape:
            raise ValueError(f"{name} has shape {tuple(own[name].shape)}; the exercise's is {tuple(value.shape)}")
        own[name].copy_(value)


def gpt_model(GPT, GPTConfig) -> dict:
    """Is the head tied, and the logits of the learner's GPT (on the reference blocks) with :func:`gpt_course_state`
    written in by name."""
    ids, _ = token_ids()
    targets = torch.roll(ids, -1, dims=1)
    with judging.stand_ins(GPT, **_stand_ins()):
        model = GPT(GPTConfig(**GPT_SIZES, dropout=0.0))
        tied = model.lm_head.weight is model.wte.weight
        head, table = model.lm_head.weight, model.wte.weight
        copied = not tied and head.shape == table.shape and bool(torch.equal(head, table))
        _write_by_name(model, {k: v for k, v in gpt_course_state().items() if k != "lm_head.weight"})
        model.eval()
        with torch.no_grad():
            logits, loss = model(ids, targets)
            full_length = judging.raised(model, token_ids(length=GPT_SIZES["block_size"])[0])  # T = block_size fits
            train_zero = model.train()(ids)[0]  # config.dropout = 0.0: training mode must change nothing
    return {"tied": tied, "copied": copied, "logits": logits, "loss": None if loss is None else float(loss),
            "full_length": full_length, "train_zero": train_zero}


def init_statistics(init_gpt_weights) -> dict:
    """Weight statistics after the learner's init on a GPT's parameters (:func:`gpt_skeleton`), and the residual
    projections' std after ``scale_residual=False``."""
    torch.manual_seed(68)
    model = gpt_skeleton({"vocab_size": 300, "block_size": 32, "n_layer": 6, "n_head": 4, "n_embd": 64})
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    init_gpt_weights(model, 6)
    stats = {name: [float(p.detach().mean()), float(p.detach().std()) if p.numel() > 1 else 0.0] for name, p in model.named_parameters()}
    unscaled = gpt_skeleton({"vocab_size": 300, "block_size": 32, "n_layer": 6, "n_head": 4, "n_embd": 64})
    with torch.no_grad():
        for p in unscaled.parameters():
            p.fill_(0.5)
    init_gpt_weights(unscaled, 6, scale_residual=False)
    residual = {name: float(p.detach().std()) for name, p in unscaled.named_parameters()
                if name.endswith(("attn.out.weight", "ff.linear2.weight"))}
    other_std = gpt_skeleton({"vocab_size": 300, "block_size": 32, "n_layer": 6, "n_head": 4, "n_embd": 64})
    init_gpt_weights(other_std, 6, std=OTHER_STD)
    stds = {name: float(p.detach().std()) for name, p in other_std.named_parameters() if name in OTHER_STD_NAMES}
    return {"stats": stats, "tied": model.lm_head.weight is model.wte.weight, "unscaled": residual, "other_std": stds}


OTHER_STD = 0.05  # init_gpt_weights(..., std=OTHER_STD): the std argument must be used
OTHER_STD_NAMES = ("wte.weight", "wpe.weight", "blocks.0.attn.qkv.weight", "blocks.5.ff.linear2.weight")


def cross_entropy(cross_entropy) -> dict:
    logits, big, targets = ce_inputs()
    return {"plain": cross_entropy(logits, targets), "large": cross_entropy(big, targets.clamp(min=0)),
            "no_ignored": cross_entropy(logits, targets.clamp(min=0)),
            "ignore_minus_one": cross_entropy(logits, targets.masked_fill(targets == -100, -1), ignore_index=-1),
            "ignore_zero": cross_entropy(logits, ce_zero_targets(), ignore_index=0)}


def ce_zero_targets() -> torch.Tensor:
    """:func:`ce_inputs`' targets with the ignored ones set to 0, a real class id: ``ignore_index=0`` (a padding id)."""
    targets = ce_inputs()[2]
    return targets.masked_fill(targets == -100, 0)


def batches(get_batch) -> dict:
    x, y = get_batch(stream(), 6, 9, generator=_gen(69))
    x_again = get_batch(stream(), 6, 9, generator=_gen(69))[0]
    try:  # data of block_size + 1 tokens: one window only, every start 0
        one_window = list(get_batch(torch.arange(100, 110), 8, 9, generator=_gen(70)))
    except Exception as error:
        one_window = f"{type(error).__name__}: {error}"[:300]
    x32, y32 = get_batch(stream().to(torch.int32), 2, 9, generator=_gen(73))  # the dtype asked for is torch.long
    return {"x": x, "y": y, "x_again": x_again, "one_window": one_window, "dtypes": [str(x32.dtype), str(y32.dtype)]}


def lr_schedule(lr_schedule) -> dict:
    args = schedule_args()
    return {"lr": [float(lr_schedule(step, **args)) for step in range(0, 111)]}


def param_groups(param_groups) -> dict:
    model = gpt_skeleton()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, 0.1)
    other = param_groups(gpt_skeleton(), OTHER_DECAY)
    return {"other_decay": [float(group.get("weight_decay", -1.0)) for group in other], "groups": [{"weight_decay": float(group.get("weight_decay", -1.0)),
                        "params": [names.get(id(p), "<not a parameter of the model>") for p in group["params"]]}
                       for group in groups]}


OTHER_DECAY = 0.05  # param_groups(model, OTHER_DECAY): the weight_decay argument must be used


def clipping(clip_gradients) -> dict:
    result = {}
    params = [nn.Parameter(torch.zeros_like(g)) for g in gradient_tensors()]
    params.insert(1, nn.Parameter(torch.zeros(4, dtype=torch.float64)))  # no gradient (unused, or frozen): skipped
    for p, g in zip(params[::2], gradient_tensors()):
        p.grad = g.clone()
    try:
        norm = clip_gradients(params, 1.0)
        result["with_none"] = {"norm": float(norm), "grads": [p.grad for p in params[::2]],
                               "untouched": params[1].grad is None}
    except Exception as error:  # noqa: BLE001 - the learner's mistake, named by the judge
        result["with_none"] = judging.error_line(error)
    for max_norm in (1.0, 100.0):
        params = [nn.Parameter(torch.zeros_like(g)) for g in gradient_tensors()]
        for p, g in zip(params, gradient_tensors()):
            p.grad = g.clone()
        norm = clip_gradients(params, max_norm)
        result[str(max_norm)] = {"norm": float(norm), "grads": [p.grad for p in params]}
    params = [nn.Parameter(torch.zeros_like(g)) for g in gradient_tensors()]
    for p, g in zip(params, gradient_tensors()):
        p.grad = g.clone()
    norm = clip_gradients((p for p in params), 1.0)  # a generator, as model.parameters() is: iterable once only
    result["generator"] = {"norm": float(norm), "grads": [p.grad for p in params]}
    return result


MISSHAPED_KEY, MISSING_KEY = "transformer.h.1.mlp.c_fc.weight", "transformer.ln_f.bias"


def _raised(load_hf_state_dict, hf_state: dict) -> list | None:
    """``[the exception's class names (its MRO), its message]`` when loading ``hf_state`` raises, else None."""
    try:
        load_hf_state_dict(gpt_skeleton(), hf_state)
    except Exception as error:
        return [[cls.__name__ for cls in type(error).__mro__], str(error)[:500]]
    return None


def load_weights(load_hf_state_dict) -> dict:
    """What the learner's loader put into a GPT's parameters (:func:`gpt_skeleton`), by name (the judge runs it), or
    the error it raised; and the errors it raises for a wrongly shaped weight and a missing key."""
    torch.manual_seed(70)
    model = gpt_skeleton()
    state = gpt2_state()
    state_without_head = {k: v for k, v in state.items() if k != "lm_head.weight"}
    try:
        loaded = load_hf_state_dict(model, state_without_head)
    except Exception as error:
        return {"raised": f"{type(error).__name__} ({str(error)[:300]})"}
    model = loaded if isinstance(loaded, nn.Module) else model
    errors = {"shape": _raised(load_hf_state_dict, state_without_head | {MISSHAPED_KEY: torch.zeros(3, 3)}),
              "missing": _raised(load_hf_state_dict, {k: v for k, v in state_without_head.items() if k != MISSING_KEY})}
    return {"state": dict(model.state_dict()), "tied": model.lm_head.weight is model.wte.weight, "errors": errors}


class TinyLM(nn.Module):
    """A small float64 language model with the interface of the chapter's GPT: ``model(idx, targets)`` returns
    ``(logits, loss)``, the loss the mean cross-entropy over the targets that are not -100. It notes the largest
    batch it was given (``largest_batch``)."""

    def __init__(self, seed: int = 71, vocab: int = 11, d: int = 8, length: int = 6):
        super().__init__()
        g = _gen(seed)
        self.wte = nn.Parameter(torch.randn(vocab, d, generator=g, dtype=torch.float64))
        self.wpe = nn.Parameter(0.5 * torch.randn(length, d, generator=g, dtype=torch.float64))
        self.head = nn.Parameter(torch.randn(vocab, d, generator=g, dtype=torch.float64) / d**0.5)
        self.largest_batch = 0

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        self.largest_batch = max(self.largest_batch, idx.shape[0])
        logits = torch.tanh(self.wte[idx] + self.wpe[: idx.shape[1]]) @ self.head.T  # (batch, T, vocab)
        if targets is None:
            return logits, None
        return logits, nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def accumulation_batches(seed: int = 72) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Micro-batches for :class:`TinyLM`: ``"equal"`` (two of 2 sequences, every target kept) and ``"unequal"`` (3, 1
    and 2 sequences, some targets -100: 13, 6 and 7 target tokens)."""
    windows = torch.randint(11, (6, 7), generator=_gen(seed))
    x, y = windows[:, :-1], windows[:, 1:].clone()
    equal = list(zip(x[:4].split(2), y[:4].clone().split(2)))
    y[0, 2:] = -100
    y[2, 5] = -100
    y[5, 1:] = -100
    return {"equal": equal, "unequal": list(zip(x.split([3, 1, 2]), y.split([3, 1, 2])))}


def accumulation(accumulate_gradients) -> dict:
    """Each parameter's gradient after the learner's accumulation over each case of :func:`accumulation_batches`,
    the loss it returned, and the largest batch the model saw."""
    result = {}
    for case, micro_batches in accumulation_batches().items():
        model = TinyLM()
        returned = accumulate_gradients(model, micro_batches)
        number = isinstance(returned, (int, float, torch.Tensor)) and torch.as_tensor(returned).numel() == 1
        result[case] = {"grads": {name: None if p.grad is None else p.grad.detach().clone()
                                  for name, p in model.named_parameters()},
                        "loss": float(returned) if number else None, "largest_batch": model.largest_batch}
    return result
