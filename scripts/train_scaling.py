"""Chapter 09's scaling experiment: a family of tiny GPTs, same data, same token budget; validation loss vs size.

    python scripts/train_scaling.py                     # every size (CPU, about 5-10 minutes on a busy 2-core machine)
    python scripts/train_scaling.py --only s1 --out -   # one size, printed (what tests/test_scaling.py reruns)
    python scripts/train_scaling.py --add-seeds 1 2     # every size again from other seeds: the table's noise

Each model is the package's GPT (:mod:`tfs.models.gpt`, pre-LN, tied head) with the course's 1,024-token BPE
(``tfs.data.gpt_path()``), trained from seed 0 for the same number of steps on the same batches (so the same
tokens: ``STEPS x BATCH x BLOCK``) of Shakespeare's training split, AdamW at one learning rate with warm-up and
cosine decay, on 1 CPU thread (deterministic on one machine). The validation loss is the mean over fixed
batches of the validation split. Writes ``src/tfs/assets/scaling.json``: one row per size with its parameter
counts (all, and non-embedding as Kaplan et al. 2020 count them: without the token and position tables),
its validation loss, its training loss every 25 steps and its seconds (``--add-seeds`` adds, beside the seed-0
rows, each size's validation loss from other seeds: another initialisation and other batches), with a card (``README.md``) and
``SHA256SUMS`` in ``src/tfs/assets/checkpoints/scaling/`` (read by ``tfs.scaling.load_scaling()``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tfs import data  # noqa: E402
from tfs.models.gpt import GPT, GPTConfig  # noqa: E402

DEFAULT_OUT = REPO / "src" / "tfs" / "assets" / "checkpoints" / "scaling"
SIZES = {  # name: (n_layer, n_embd, n_head)
    "s1": (1, 16, 2), "s2": (2, 24, 2), "s3": (2, 32, 4), "s4": (2, 48, 4), "s5": (3, 64, 4), "s6": (4, 96, 4),
    "s7": (4, 128, 4),
}
STEPS, BATCH, BLOCK, LR, EVAL_BATCHES, CURVE_EVERY = 300, 16, 64, 3e-3, 16, 25
TRAIN_CHARS, VAL_CHARS = 1_500_000, 200_000


def token_streams() -> tuple[torch.Tensor, torch.Tensor]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(data.gpt_path())
    train = torch.tensor(tokenizer(data.load_corpus("train")[:TRAIN_CHARS])["input_ids"])
    val = torch.tensor(tokenizer(data.load_corpus("validation")[:VAL_CHARS])["input_ids"])
    return train, val


def batch(stream: torch.Tensor, generator: torch.Generator, size: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.randint(0, len(stream) - BLOCK - 1, (size,), generator=generator)
    x = torch.stack([stream[s:s + BLOCK] for s in starts.tolist()])
    y = torch.stack([stream[s + 1:s + BLOCK + 1] for s in starts.tolist()])
    return x, y


def train_one(name: str, train: torch.Tensor, val: torch.Tensor, vocab: int, seed: int = 0, stop: int | None = None) -> dict:
    """Train size ``name`` for ``STEPS`` steps (or stop after ``stop``, the schedule unchanged); its row."""
    n_layer, n_embd, n_head = SIZES[name]
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=BLOCK, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                                  lr=LR, betas=(0.9, 0.95))
    warmup = STEPS // 10
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (STEPS - warmup))))
    generator = torch.Generator().manual_seed(seed)  # the same batches for every size
    start = time.perf_counter()
    model.train()
    curve = []
    for step in range(stop or STEPS):
        x, y = batch(train, generator)
        _, loss = model(x, y)
        if (step + 1) % CURVE_EVERY == 0:
            curve.append(round(loss.item(), 5))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - start
    if stop is not None:
        return {"name": name, "train_curve": curve}
    model.eval()
    val_generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        losses = [model(*batch(val, val_generator))[1].item() for _ in range(EVAL_BATCHES)]
    params = model.num_params()
    embedding = model.wte.weight.numel() + model.wpe.weight.numel()
    return {"name": name, "n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "params": params,
            "non_embedding_params": params - embedding, "val_loss": round(sum(losses) / len(losses), 5),
            "train_curve": curve, "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="size names (default: all)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="a folder; '-' only prints the rows")
    parser.add_argument("--add-seeds", nargs="*", type=int, default=None,
                        help="train every size from these seeds and add their validation losses to the shipped table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, val = token_streams()
    vocab = 1024
    if args.add_seeds:
        add_seeds(args.add_seeds, train, val, vocab, Path(args.out))
        return
    rows = []
    for name in args.only or SIZES:
        rows.append(train_one(name, train, val, vocab))
        print(json.dumps(rows[-1]), flush=True)
    if args.out == "-":
        return
    result = {"command": "python scripts/train_scaling.py", "steps": STEPS, "batch": BATCH, "block": BLOCK, "lr": LR,
              "tokens_per_model": STEPS * BATCH * BLOCK, "train_tokens_available": len(train), "val_tokens": len(val),
              "hardware": f"{platform.machine()} CPU, 1 thread, torch {torch.__version__}, {platform.platform()}",
              "rows": rows}
    ship(result, Path(args.out))
    print(f"wrote {args.out}")


def add_seeds(seeds: list[int], train: torch.Tensor, val: torch.Tensor, vocab: int, folder: Path) -> None:
    """Every size of the shipped table retrained from each seed; ``seed_val_losses[seed]`` lists their losses."""
    result = json.loads((folder / "scaling.json").read_text())
    repeats = result.setdefault("seed_val_losses", {})
    for seed in seeds:
        losses = [train_one(row["name"], train, val, vocab, seed=seed)["val_loss"] for row in result["rows"]]
        repeats[str(seed)] = losses
        print(f"seed {seed}: {losses}", flush=True)
    ship(result, folder)
    print(f"wrote {folder}")


def ship(result: dict, folder: Path) -> None:
    """``scaling.json``, a card and ``SHA256SUMS`` in ``folder``."""
    import hashlib

    from tfs.scaling import fit_power_law

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scaling.json").write_text(json.dumps(result, indent=1) + "\n")
    rows = result["rows"]
    alpha, _ = fit_power_law([r["non_embedding_params"] for r in rows], [r["val_loss"] for r in rows])
    table = "\n".join(f"| {r['name']} | {r['n_layer']} | {r['n_embd']} | {r['params']:,} | {r['non_embedding_params']:,} | "
                      f"{r['val_loss']:.4f} | {r['seconds']:.0f} |" for r in rows)
    repeats = "".join(f"\n| seed {seed} | " + " | ".join(f"{v:.4f}" for v in losses) + " |"
                      for seed, losses in result.get("seed_val_losses", {}).items())
    if repeats:
        repeats = ("\n\nThe same sizes from other seeds (`--add-seeds`: another initialisation and other batches), "
                   "validation loss:\n\n| | " + " | ".join(r["name"] for r in rows) + " |\n|---|"
                   + "---|" * len(rows) + repeats)
    (folder / "README.md").write_text(f"""# scaling: chapter 09's family of tiny GPTs

Built by `{result['command']}` (seed 0) for chapter 09 of *Transformers from Scratch*: {len(rows)} GPTs (the package's
`tfs.models.gpt.GPT`, pre-LN, tied head, the course's 1,024-token BPE), each trained for {result['steps']} steps of
{result['batch']} x {result['block']} tokens ({result['tokens_per_model']:,} tokens, the same batches for every size) on the
first {TRAIN_CHARS:,} characters of Shakespeare's training split, AdamW (lr {result['lr']}, warm-up 10 %, cosine to 10 %,
weight decay 0.1 on matrices, clipping 1.0). Validation loss: the mean over {EVAL_BATCHES} fixed batches of the first
{VAL_CHARS:,} characters of the validation split ({result['val_tokens']:,} tokens).

Hardware: {result['hardware']}, a 2-core machine shared with other jobs (the seconds below are wall time under that load).

| size | layers | width | parameters | non-embedding | val loss (nats/token) | seconds |
|---|---|---|---|---|---|---|
{table}{repeats}

Power law fitted to val loss vs non-embedding parameters (least squares in log-log): exponent alpha_N = {alpha:.3f}
(Kaplan et al. 2020 report 0.076 for models trained to convergence on far more data; see chapter 09).
No weights are shipped: only this table.
""")
    sums = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}" for n in ("README.md", "scaling.json")]
    (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")


if __name__ == "__main__":
    main()
