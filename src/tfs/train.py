"""The course's training loop for language models (chapter 06), the one its checkpoints are trained with.

Pieces, each a chapter-06 exercise with the same name and signature:

- :func:`get_batch`       random windows ``(x, y)`` of a token stream, ``y`` = ``x`` shifted by one
- :func:`lr_schedule`     linear warm-up, then cosine decay to ``min_lr``
- :func:`param_groups`    AdamW groups: weight decay on matrices (dim >= 2) only, not on biases, LayerNorms
- :func:`clip_gradients`  scale all gradients so their global L2 norm is at most ``max_norm``
- :func:`estimate_loss`   mean loss over fixed random windows of a split, in eval mode, without gradients

and :func:`train`, which puts them together with ``torch.optim.AdamW`` (fused on CPU when this torch
has it, else ``foreach``), periodic validation and a tqdm bar that ends in a final state, and returns
the loss history for plotting. ``train(..., pieces={"get_batch": ..., ...})`` runs the same loop on other versions
of the pieces (a learner's own, in chapter 06, where the package's are hidden while the chapter is graded).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["PIECES", "TrainConfig", "clip_gradients", "estimate_loss", "get_batch", "lr_schedule", "make_optimizer",
           "param_groups", "train"]


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows of ``data`` (1-D token ids): ``x, y`` of shape ``(batch_size, block_size)``,
    ``y[:, t] = x[:, t + 1]`` (the next token of each position)."""
    if data.dim() != 1:
        raise ValueError(f"data must be a 1-D stream of token ids; received shape {tuple(data.shape)}")
    if len(data) <= block_size:
        raise ValueError(f"a stream of {len(data)} tokens has no window of {block_size} + 1 tokens")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    windows = data[starts[:, None] + offsets]  # (batch, block_size + 1)
    return windows[:, :-1].long(), windows[:, 1:].long()


def lr_schedule(step: int, max_lr: float, warmup_steps: int, max_steps: int, min_lr: float = 0.0) -> float:
    """Learning rate at ``step`` (0-based): ``max_lr * (step + 1) / warmup_steps`` during warm-up, then a
    cosine from ``max_lr`` at ``warmup_steps`` down to ``min_lr`` at ``max_steps``, ``min_lr`` after."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: ``[{"params": matrices, "weight_decay": weight_decay}, {"params": the rest, 0.0}]``.

    Matrices (dim >= 2: linear and embedding weights) are decayed; biases and LayerNorm gains are not.
    A tied weight appears once (``model.parameters()`` yields each tensor once)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.95),
                   fused: bool | None = None, grouping: Callable | None = None) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (or ``grouping``, a function of the same signature); ``fused`` (default: when
    this torch supports it) runs one kernel for all parameters, else the ``foreach`` implementation."""
    groups = (grouping or param_groups)(model, weight_decay)
    if fused is None:
        fused = True
    if fused:
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.AdamW(groups, lr=lr, betas=betas, foreach=True)


def clip_gradients(parameters, max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``parameters`` in place so that their global L2 norm (all gradients as one
    vector) is at most ``max_norm``; return the norm *before* clipping (as ``clip_grad_norm_`` does)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    torch._foreach_mul_(grads, scale)
    return norm


@torch.no_grad()
def estimate_loss(model: nn.Module, data: torch.Tensor, batch_size: int, block_size: int, eval_steps: int,
                  seed: int = 1234, batches: Callable | None = None) -> float:
    """Mean loss of ``model(x, y)`` over ``eval_steps`` batches of windows drawn with ``seed`` (the same windows
    every call: successive estimates are comparable), in eval mode; the model's mode is restored. ``batches``:
    another function with :func:`get_batch`'s signature."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    losses = []
    for _ in range(eval_steps):
        x, y = (batches or get_batch)(data, batch_size, block_size, generator)
        losses.append(model(x.to(device), y.to(device))[1].item())
    model.train(was_training)
    return sum(losses) / len(losses)


def scheduled_step(step: int, clock: float, warmup_clock: float, config: "TrainConfig") -> float:
    """The step :func:`lr_schedule` is asked about: ``step`` itself, or, with ``config.schedule_seconds``, the
    step reached at the same share of the decay as the clock has run of it (warm-up stays in steps; the decay
    ends at ``max_steps`` when the clock reaches ``schedule_seconds``): a schedule that fits a time budget."""
    if config.schedule_seconds is None or step < config.warmup_steps:
        return step
    share = (clock - warmup_clock) / max(config.schedule_seconds - warmup_clock, 1e-9)
    return config.warmup_steps + min(share, 1.0) * (config.max_steps - config.warmup_steps)


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train` (defaults: nanoGPT's character-level Shakespeare on CPU, shorter)."""

    max_steps: int = 2000
    batch_size: int = 12
    block_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # 0 = no clipping
    eval_interval: int = 250  # validate every this many steps (and after the last)
    eval_steps: int = 20
    eval_times: Sequence[float] = field(default_factory=tuple)  # also validate when the training clock passes these (s)
    time_limit: float | None = None  # stop after this many seconds of training
    schedule_seconds: float | None = None  # decay over this many seconds of the training clock instead of max_steps
    seed: int = 0
    fused: bool | None = None


PIECES = ("get_batch", "lr_schedule", "param_groups", "clip_gradients")


def _pieces(given: dict[str, Callable] | None) -> dict[str, Callable]:
    """The loop's pieces by name: the package's, replaced by those ``given`` (a learner's, of the same signatures)."""
    unknown = sorted(set(given or {}) - set(PIECES))
    if unknown:
        raise ValueError(f"unknown pieces {unknown}: train takes {list(PIECES)}")
    return {"get_batch": get_batch, "lr_schedule": lr_schedule, "param_groups": param_groups,
            "clip_gradients": clip_gradients, **(given or {})}


def train(model: nn.Module, train_data: torch.Tensor, val_data: torch.Tensor | None, config: TrainConfig,
          progress: bool = True, callback: Callable[[int, dict], None] | None = None,
          pieces: dict[str, Callable] | None = None) -> dict[str, list]:
    """Train ``model`` (``model(x, y) -> (logits, loss)``) on random windows of ``train_data``; return the history
    ``{"step", "loss", "lr", "time", "val_step", "val_loss", "val_time"}``.

    The training clock (``time``) leaves validation out. ``callback(step, history)`` runs after each step.
    ``pieces`` replaces any of :data:`PIECES` by name (``{"lr_schedule": my_schedule}``)."""
    piece = _pieces(pieces)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config.lr, config.weight_decay, config.betas, config.fused, piece["param_groups"])
    history: dict[str, list] = {"step": [], "loss": [], "lr": [], "time": [], "val_step": [], "val_loss": [],
                                "val_time": []}
    pending_times = sorted(config.eval_times)

    def validate(step: int, clock: float) -> None:
        if val_data is None:
            return
        history["val_step"].append(step)
        history["val_time"].append(clock)
        history["val_loss"].append(estimate_loss(model, val_data, config.batch_size, config.block_size,
                                                 config.eval_steps, batches=piece["get_batch"]))

    from tqdm.auto import tqdm

    bar = tqdm(total=config.max_steps, desc="training", disable=not progress, mininterval=1.0)
    model.train()
    clock, step, warmup_clock = 0.0, 0, 0.0
    for step in range(config.max_steps):
        started = time.perf_counter()
        lr = piece["lr_schedule"](scheduled_step(step, clock, warmup_clock, config), config.lr, config.warmup_steps,
                                  config.max_steps, config.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = piece["get_batch"](train_data, config.batch_size, config.block_size, generator)
        _, loss = model(x.to(device), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            piece["clip_gradients"](model.parameters(), config.grad_clip)
        optimizer.step()
        loss_value = loss.item()
        clock += time.perf_counter() - started
        history["step"].append(step)
        history["loss"].append(loss_value)
        history["lr"].append(lr)
        history["time"].append(clock)
        if step + 1 == config.warmup_steps:
            warmup_clock = clock
        while pending_times and clock >= pending_times[0]:
            pending_times.pop(0)
            validate(step + 1, clock)
        if config.eval_interval and (step + 1) % config.eval_interval == 0 and step + 1 < config.max_steps:
            validate(step + 1, clock)
        bar.update(1)
        if (step + 1) % 10 == 0:
            postfix = {"loss": f"{loss_value:.3f}"}
            if history["val_loss"]:
                postfix["val"] = f"{history['val_loss'][-1]:.3f}"
            bar.set_postfix(postfix, refresh=False)
        if callback is not None:
            callback(step, history)
        if config.time_limit is not None and clock >= config.time_limit:
            break
    steps_done = len(history["step"])
    if steps_done and (not history["val_step"] or history["val_step"][-1] != steps_done):
        validate(steps_done, clock)
    final = {"loss": f"{history['loss'][-1]:.3f}"} if steps_done else {}
    if history["val_loss"]:
        final["val"] = f"{history['val_loss'][-1]:.3f}"
    bar.set_postfix(final, refresh=False)
    bar.set_description(f"trained {steps_done} steps in {clock:.0f} s")
    bar.close()
    model.eval()
    return history
