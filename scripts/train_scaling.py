"""Chapter 09's scaling experiment: a family of tiny GPTs, same data, same token budget; validation loss vs size.

    python scripts/train_scaling.py                     # every size (CPU, about 5-10 minutes on a busy 2-core machine)
    python scripts/train_scaling.py --only s1 --out -   # one size, printed (what tests/test_scaling.py reruns)

Each model is the package's GPT (:mod:`tfs.models.gpt`, pre-LN, tied head) with the course's 1,024-token BPE
(``tfs.data.gpt_path()``), trained from seed 0 for the same number of steps on the same batches (so the same
tokens: ``STEPS x BATCH x BLOCK``) of Shakespeare's training split, AdamW at one learning rate with warm-up and
cosine decay, on 1 CPU thread (deterministic on one machine). The validation loss is the mean over fixed
batches of the validation split. Writes ``src/tfs/assets/scaling.json``: one row per size with its parameter
counts (all, and non-embedding as Kaplan et al. 2020 count them: without the token and position tables),
its validation loss and its seconds.
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

DEFAULT_OUT = REPO / "src" / "tfs" / "assets" / "scaling.json"
SIZES = {  # name: (n_layer, n_embd, n_head)
    "s1": (1, 16, 2), "s2": (2, 24, 2), "s3": (2, 32, 4), "s4": (2, 48, 4), "s5": (3, 64, 4), "s6": (4, 96, 4),
    "s7": (4, 128, 4),
}
STEPS, BATCH, BLOCK, LR, EVAL_BATCHES = 300, 16, 64, 3e-3, 16
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


def train_one(name: str, train: torch.Tensor, val: torch.Tensor, vocab: int, seed: int = 0) -> dict:
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
    for _ in range(STEPS):
        x, y = batch(train, generator)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    seconds = time.perf_counter() - start
    model.eval()
    val_generator = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        losses = [model(*batch(val, val_generator))[1].item() for _ in range(EVAL_BATCHES)]
    params = model.num_params()
    embedding = model.wte.weight.numel() + model.wpe.weight.numel()
    return {"name": name, "n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "params": params,
            "non_embedding_params": params - embedding, "val_loss": round(sum(losses) / len(losses), 5),
            "train_loss_last": round(loss.item(), 5), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="size names (default: all)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="'-' prints the rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, val = token_streams()
    vocab = 1024
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
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
