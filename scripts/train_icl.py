"""Train chapter 09's in-context-learning model and ship it as a tiny checkpoint.

    python scripts/train_icl.py                 # CPU, the shipped run (about 16 minutes on a busy 2-core machine)
    python scripts/train_icl.py --steps 200 --out /tmp/icl   # a quick check
    python scripts/train_icl.py --card-only      # rewrite the shipped folder's tokenizer, card and sums from its log

A 2-layer, 128-wide GPT-2 (``tfs.incontext.icl_config``) learns key -> value lookups whose mapping is new in
every sequence (``tfs.incontext.training_batch``), so only reading the prompt helps. Deterministic from
``--seed`` on one device and thread count (1 thread). Writes to ``src/tfs/assets/checkpoints/icl/``:
``config.json`` + ``model.safetensors`` in float16 (``GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float32)``), ``train_log.json``
(loss, and accuracy vs shots every ``--eval-every`` steps), the tokenizer (``tfs.incontext.icl_tokenizer``: ``k0`` .. ``k9``,
``v0`` .. ``v9``), a model card ``README.md`` and ``SHA256SUMS``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tfs import incontext as icl  # noqa: E402

DEFAULT_OUT = REPO / "src" / "tfs" / "assets" / "checkpoints" / "icl"
SHOTS = (0, 1, 2, 4, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--card-only", action="store_true",
                        help="no training: rewrite --out's tokenizer, model card and SHA256SUMS from its train_log.json")
    args = parser.parse_args()
    if args.card_only:
        write_card(args.out, json.loads((args.out / "train_log.json").read_text()))
        return

    from transformers import GPT2LMHeadModel

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(icl.icl_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = 100
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) *
                                                 (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))))
    generator = torch.Generator().manual_seed(args.seed)
    log = {"steps": [], "loss": [], "accuracy": []}
    start = time.perf_counter()
    running = []
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            accuracy = icl.accuracy_vs_shots(model, SHOTS, n=256, seed=1000 + step)
            log["steps"].append(step)
            log["accuracy"].append({str(k): round(v, 4) for k, v in accuracy.items()})
            log["loss"].append(round(sum(running) / len(running), 4) if running else None)
            running = []
            print(f"step {step:5d}  loss {log['loss'][-1]}  accuracy {log['accuracy'][-1]}  "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        if step == args.steps:
            break
        model.train()
        ids, labels = icl.training_batch(args.batch, generator)
        loss = model(ids, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        running.append(loss.item())
    seconds = time.perf_counter() - start
    log.update({"seconds": round(seconds, 1), "parameters": sum(p.numel() for p in model.parameters()),
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"},
                "hardware": f"{platform.machine()} CPU, 1 thread, torch {torch.__version__}"})
    ship(model, log, args.out)


def ship(model, log: dict, out: Path) -> None:
    """Save ``model`` in float16 with its log, a model card and ``SHA256SUMS``; the card's accuracies are measured
    on the saved (float16) weights, read back in float32."""
    from transformers import GPT2LMHeadModel

    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out)
    model.float()
    (out / "generation_config.json").unlink(missing_ok=True)
    reloaded = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32)
    final = icl.accuracy_vs_shots(reloaded, SHOTS, n=1024, seed=12345)
    log["final_accuracy"] = {str(k): round(v, 4) for k, v in final.items()}
    (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    write_card(out, log)
    print(f"wrote {out}; final accuracy {final}")


def write_card(out: Path, log: dict) -> None:
    """The tokenizer, the model card (``README.md``, numbers from ``log``) and ``SHA256SUMS`` of a saved model."""
    from transformers import GPT2Config

    icl.icl_tokenizer().save_pretrained(out)
    args, c = log["args"], GPT2Config.from_pretrained(out)
    table = " | ".join(f"{k}: {v:.3f}" for k, v in log["final_accuracy"].items())
    (out / "README.md").write_text(f"""---
license: mit
library_name: transformers
pipeline_tag: text-generation
tags:
- gpt2
- in-context-learning
- induction-head
- teaching
---
# icl: chapter 09's in-context-learning model

Built by `python scripts/train_icl.py` (seed {args['seed']}) for chapter 09 of *Transformers from Scratch*.
A `GPT2LMHeadModel` ({c.n_layer} layers, {c.n_embd} wide, {c.n_head} heads, {c.n_positions} positions, {log['parameters']:,}
parameters, float16 safetensors: load with `dtype=torch.float32`) over {icl.VOCAB} tokens: keys 0-{icl.N_KEYS - 1} and values
{icl.N_KEYS}-{icl.VOCAB - 1} (`tfs.incontext`). Each training sequence holds {icl.N_PAIRS} key/value pairs (keys drawn with
replacement) from a **new random mapping**; the loss is on the values only.

Its tokenizer writes the keys `k0` .. `k{icl.N_KEYS - 1}` and the values `v0` .. `v{icl.N_VALUES - 1}`:
`AutoTokenizer.from_pretrained(folder)("k3 v7 k3")` gives the ids `[3, {icl.N_KEYS + 7}, 3]`; any other word is refused.

| | |
|---|---|
| training | {args['steps']} steps of batch {args['batch']}, AdamW (lr {args['lr']}, 100 warm-up steps, cosine to 10 %), clipping 1.0 |
| hardware | {log['hardware']}, a 2-core machine shared with other jobs |
| wall time | {log['seconds']:.0f} s |
| accuracy vs shots (1,024 fresh prompts each, the query among the shown keys; 0 shots: chance 1/{icl.N_VALUES}) | {table} |

`train_log.json` has the training loss and the accuracy vs shots (256 prompts each) every {args['eval_every']} steps.
""")
    sums = [f"{hashlib.sha256((out / n).read_bytes()).hexdigest()}  {n}"
            for n in sorted(p.name for p in out.iterdir() if p.name != "SHA256SUMS")]
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")


if __name__ == "__main__":
    main()
