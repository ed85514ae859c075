"""nanoGPT's CPU recipe with the course's GPT and trainer, then the course's schedule for the same wall time.

    python benchmarks/gpt_cpu_recipe.py                      # both runs: the recipe, then the budget schedule
    python benchmarks/gpt_cpu_recipe.py --runs recipe        # one of them
    python benchmarks/gpt_cpu_recipe.py --iters 300          # the recipe, shorter, for a loaded machine
    python benchmarks/gpt_cpu_recipe.py --runs budget --compile   # through torch.compile, compiling on the clock

**recipe** (nanoGPT, README "I only have a macbook"): character-level Shakespeare, n_layer=4, n_head=4,
n_embd=128, block_size=64, batch_size=12, dropout=0, lr 1e-3 (warm-up 100, cosine to 1e-4 over the run),
2000 iterations, validation on 20 batches. Here the corpus is the course's (``tfs.data.load_corpus``: 5.06 M
characters, 90/10 split) and the model is ``tfs.models.gpt.GPT`` (GPT-2's layout: biases, tied head),
trained by ``tfs.train.train`` (fused AdamW, fused attention).

**budget**: the same model, batch, data, optimizer and seed, with a schedule made for a wall-clock budget of
``--budget`` seconds (84, the point at which nanoGPT's recipe was measured at 1.87 on this corpus): peak lr
``--lr`` (5e-3; a 0.8 M-parameter model tolerates a larger step than 1e-3), warm-up 50 steps, and the cosine
decay run on the training clock (``TrainConfig.schedule_seconds``) so that it reaches its floor when the budget
ends, wherever the step count lands on this machine. It stops at the budget.

Validation runs off the training clock when that clock passes 30, 60, 84 and 90 s, and at the end. The peak is
measured here, in this process and thread count: the best of several timed fp32 matmuls of 2048 x 2048.
A script, not a test: numbers depend on the machine and its load, which is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tfs import data, seed_everything  # noqa: E402
from tfs.models.gpt import GPT, GPTConfig  # noqa: E402
from tfs.train import TrainConfig, train  # noqa: E402


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Best fp32 FLOP/s of ``(size, size) @ (size, size)`` over ``repeats`` runs, after a warm-up."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def char_stream() -> tuple[torch.Tensor, torch.Tensor, int]:
    """The corpus as character ids: the 90 % training stream, the 10 % validation stream, the vocabulary size."""
    text = data.load_corpus()
    index = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = torch.tensor([index[c] for c in text], dtype=torch.uint8 if len(index) < 256 else torch.int16)
    cut = int(0.9 * len(text))
    return ids[:cut], ids[cut:], len(index)


def run(name: str, recipe: TrainConfig, vocab: int, streams: tuple[torch.Tensor, torch.Tensor], seed: int,
        compile_model: bool = False) -> dict:
    """Train a fresh model of nanoGPT's CPU configuration with ``recipe``; its speed and validation losses.
    ``compile_model``: train it through ``torch.compile``, whose compiling happens in the first steps, on the clock."""
    seed_everything(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0))
    peak_before, load_before = matmul_peak(), os.getloadavg()
    history = train(torch.compile(model) if compile_model else model, *streams, recipe, progress=sys.stderr.isatty())
    peak = max(peak_before, matmul_peak())
    seconds, steps = history["time"][-1], len(history["step"])
    tokens_per_s = steps * recipe.batch_size * recipe.block_size / seconds
    flops_per_token = model.flops_per_token(recipe.block_size)
    achieved = flops_per_token * tokens_per_s
    return {
        "run": name + (" +compile" if compile_model else ""), "lr": recipe.lr, "warmup_steps": recipe.warmup_steps,
        "schedule_seconds": recipe.schedule_seconds,
        "threads": torch.get_num_threads(), "vocab": vocab, "params": model.num_params(),
        "steps": steps, "wall_s": round(seconds, 1), "tokens_per_s": round(tokens_per_s),
        "ms_per_step": round(1000 * seconds / steps, 1), "flops_per_token": flops_per_token,
        "achieved_gflops": round(achieved / 1e9, 2), "peak_gflops": round(peak / 1e9, 2),
        "share_of_peak": round(achieved / peak, 3),
        "val": [{"step": s, "train_clock_s": round(t, 1), "val_loss": round(v, 4)}
                for s, t, v in zip(history["val_step"], history["val_time"], history["val_loss"])],
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__, "cpus": os.cpu_count(),
    }


def val_at(result: dict, seconds: float) -> str:
    """The validation loss taken when the training clock passed ``seconds`` ("-" if the run ended before)."""
    losses = [v["val_loss"] for v in result["val"] if v["train_clock_s"] >= seconds]
    return f"{losses[0]:.3f}" if losses else "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", choices=["both", "recipe", "budget"], default="both")
    parser.add_argument("--iters", type=int, default=2000, help="the recipe's iterations")
    parser.add_argument("--budget", type=float, default=84.0, help="the budget run's seconds of training")
    parser.add_argument("--lr", type=float, default=5e-3, help="the budget run's peak learning rate")
    parser.add_argument("--compile", action="store_true", help="train through torch.compile (compiling on the clock)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_ids, val_ids, vocab = char_stream()
    shared = dict(batch_size=12, block_size=64, min_lr=1e-4, weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0,
                  eval_interval=0, eval_steps=20, eval_times=(30.0, 60.0, 84.0, 90.0), seed=args.seed)
    recipes = {
        "recipe": TrainConfig(max_steps=args.iters, lr=1e-3, warmup_steps=100, **shared),
        "budget": TrainConfig(max_steps=100_000, lr=args.lr, warmup_steps=50, time_limit=args.budget,
                              schedule_seconds=args.budget, **shared),
    }
    names = list(recipes) if args.runs == "both" else [args.runs]
    results = [run(name, recipes[name], vocab, (train_ids, val_ids), args.seed, args.compile) for name in names]
    print(json.dumps(results, indent=1))
    print(f"{'run':17s}{'steps':>7s}{'wall s':>8s}{'tokens/s':>10s}{'ms/step':>9s}{'of peak':>9s}"
          f"{'val@30':>8s}{'val@60':>8s}{'val@84':>8s}{'val@90':>8s}{'final':>7s}  load before/after")
    for r in results:
        print(f"{r['run']:17s}{r['steps']:7d}{r['wall_s']:8.1f}{r['tokens_per_s']:10d}{r['ms_per_step']:9.1f}"
              f"{r['share_of_peak']:9.1%}" + "".join(f"{val_at(r, t):>8s}" for t in (30, 60, 84, 90))
              + f"{r['val'][-1]['val_loss']:7.3f}  {r['load_before'][0]:.2f}/{r['load_after'][0]:.2f}")


if __name__ == "__main__":
    main()
