"""nanoGPT's CPU recipe with the course's GPT and trainer: wall time, tokens/s, share of the fp32 matmul peak.

    python benchmarks/gpt_cpu_recipe.py                 # the recipe: 2000 iterations
    python benchmarks/gpt_cpu_recipe.py --iters 300     # shorter, for a loaded machine

The recipe (nanoGPT, README "I only have a macbook"): character-level Shakespeare, n_layer=4, n_head=4,
n_embd=128, block_size=64, batch_size=12, dropout=0, lr 1e-3 (warm-up 100, cosine to 1e-4 over the run),
2000 iterations, validation on 20 batches. Here the corpus is the course's (``tfs.data.load_corpus``: 5.06 M
characters, 90/10 split) and the model is ``tfs.models.gpt.GPT`` (GPT-2's layout: biases, tied head),
trained by ``tfs.train.train`` (fused AdamW, fused attention). Validation runs off the training clock
when that clock passes 30, 60 and 90 s, and at the end.

The peak is measured here, in this process and thread count: the best of several timed fp32 matmuls of
the model's largest shape class (2048 x 2048). A script, not a test: numbers depend on the machine and its load.
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds of training")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    text = data.load_corpus()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    cut = int(0.9 * len(text))
    ids = torch.tensor([index[c] for c in text], dtype=torch.uint8 if len(chars) < 256 else torch.int16)
    train_ids, val_ids = ids[:cut], ids[cut:]
    config = GPTConfig(vocab_size=len(chars), block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
    model = GPT(config)
    peak_before = matmul_peak()
    load_before = os.getloadavg()
    recipe = TrainConfig(max_steps=args.iters, batch_size=12, block_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=100,
                         weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0, eval_interval=0, eval_steps=20,
                         eval_times=(30.0, 60.0, 90.0), time_limit=args.time_limit, seed=args.seed)
    history = train(model, train_ids, val_ids, recipe, progress=sys.stderr.isatty())
    peak = max(peak_before, matmul_peak())
    seconds = history["time"][-1]
    steps = len(history["step"])
    tokens_per_s = steps * 12 * 64 / seconds
    achieved = model.flops_per_token(64) * tokens_per_s
    result = {
        "threads": torch.get_num_threads(), "vocab": len(chars), "params": model.num_params(),
        "steps": steps, "wall_s": round(seconds, 1), "tokens_per_s": round(tokens_per_s),
        "ms_per_step": round(1000 * seconds / steps, 1), "flops_per_token": model.flops_per_token(64),
        "achieved_gflops": round(achieved / 1e9, 2), "peak_gflops": round(peak / 1e9, 2),
        "share_of_peak": round(achieved / peak, 3),
        "val": [{"step": s, "train_clock_s": round(t, 1), "val_loss": round(v, 4)}
                for s, t, v in zip(history["val_step"], history["val_time"], history["val_loss"])],
        "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__, "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
