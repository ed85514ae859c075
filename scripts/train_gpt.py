"""Train the course's GPT checkpoint and write it in GPT2LMHeadModel format.

    python scripts/train_gpt.py                        # CPU, the shipped configuration
    python scripts/train_gpt.py --device cuda --steps 5000 --n-layer 6 --n-embd 384   # a bigger run on a GPU

Deterministic from ``--seed`` (on one device and thread count): a byte-level BPE tokenizer is trained
on the corpus's training split, the text is encoded, and the package's GPT (:mod:`tfs.models.gpt`) is
trained with the package's trainer (:mod:`tfs.train`). The folder (``src/tfs/assets/checkpoints/gpt/``
by default) then holds what ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained``
read offline, a model card (README.md) with the run's numbers, and ``SHA256SUMS`` (checked by
``tfs.data.gpt_path()``).

Why a tokenizer of our own: GPT-2's 50,257-token vocabulary would make the tied embedding alone
50,257 x n_embd parameters (6.4 M at n_embd = 128, 26 MB in float32), most of it rows for tokens that
are rare or absent in Shakespeare; a 1,024-token byte-level BPE trained on the corpus keeps the whole
model under the size budget and spends its parameters on the layers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tfs import data, seed_everything  # noqa: E402
from tfs.convert.gpt import to_hf_model  # noqa: E402
from tfs.models.gpt import GPT, GPTConfig  # noqa: E402
from tfs.train import TrainConfig, estimate_loss, train  # noqa: E402

DEFAULT_OUT = REPO / "src" / "tfs" / "assets" / "checkpoints" / "gpt"
EOT = "<|endoftext|>"


def train_tokenizer(text: str, vocab_size: int):
    """A byte-level BPE (GPT-2's pre-tokenizer and byte alphabet) trained on ``text``, as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=EOT, eos_token=EOT, unk_token=EOT,
                                   model_max_length=None)


def encode(tokenizer, text: str) -> torch.Tensor:
    lines = text.splitlines(keepends=True)
    ids: list[int] = []
    for start in range(0, len(lines), 20_000):  # in chunks: one call on 4.5 MB is slow and memory-hungry
        chunk = "".join(lines[start:start + 20_000])
        ids.extend(tokenizer(chunk, add_special_tokens=False).input_ids)
    return torch.tensor(ids, dtype=torch.int16 if tokenizer.vocab_size < 32768 else torch.int32)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=None, help="stop training after this many seconds")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    started = time.time()
    train_text, val_text = data.load_corpus("train"), data.load_corpus("validation")
    tokenizer = train_tokenizer(train_text, args.vocab_size)
    train_ids, val_ids = encode(tokenizer, train_text), encode(tokenizer, val_text)
    print(f"tokenizer: {len(tokenizer)} tokens; train {len(train_ids):,} tokens "
          f"({len(train_text) / len(train_ids):.2f} characters/token), validation {len(val_ids):,}", flush=True)

    config = GPTConfig(vocab_size=len(tokenizer), block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=0.0)
    seed_everything(args.seed)
    model = GPT(config).to(args.device)
    train_config = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, block_size=args.block_size,
                               lr=args.lr, min_lr=args.lr / 10, warmup_steps=args.warmup, weight_decay=0.1,
                               grad_clip=1.0, eval_interval=500, eval_steps=20, time_limit=args.time_limit,
                               seed=args.seed)
    history = train(model, train_ids, val_ids, train_config, progress=sys.stderr.isatty())
    train_seconds = history["time"][-1]
    steps = len(history["step"])
    val_loss = estimate_loss(model, val_ids, 32, args.block_size, 50, seed=4321)  # a larger final estimate
    val_chars_per_token = len(val_text) / len(val_ids)
    print(f"{steps} steps in {train_seconds:.0f} s; validation loss {val_loss:.4f} "
          f"(perplexity {math.exp(val_loss):.1f} per token)", flush=True)

    prompt = "ROMEO:\n"
    prompt_ids = torch.tensor([tokenizer(prompt).input_ids], device=args.device)
    sample = tokenizer.decode(model.generate(prompt_ids, 120, temperature=0.8, top_k=50,
                                             generator=torch.Generator(args.device).manual_seed(args.seed))[0].tolist())

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        stale.unlink()
    hf_model = to_hf_model(model.cpu().float())
    hf_model.config.bos_token_id = hf_model.config.eos_token_id = tokenizer.convert_tokens_to_ids(EOT)
    hf_model.generation_config.bos_token_id = hf_model.generation_config.eos_token_id = hf_model.config.eos_token_id
    hf_model.generation_config.pad_token_id = hf_model.config.eos_token_id
    hf_model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), {args.threads} threads"
    n_params = model.num_params()
    card = f"""# The course's GPT (chapter 06)

A GPT-2-architecture language model trained from scratch by `scripts/train_gpt.py` on Shakespeare's
complete works (`tfs.data.load_corpus("train")`, the first 90 % of 5.06 M characters). It is small
and was trained for minutes: expect Shakespeare-flavoured text, not sense.

| | |
|---|---|
| format | `GPT2LMHeadModel` (`transformers`), float32 safetensors, LM head tied to the token embedding |
| size | {n_params:,} parameters; n_layer {config.n_layer}, n_head {config.n_head}, n_embd {config.n_embd}, block_size {config.block_size} |
| tokenizer | byte-level BPE trained on the training split, {len(tokenizer):,} tokens (`{EOT}` = {hf_model.config.eos_token_id}); {len(train_text) / len(train_ids):.2f} characters per token |
| data | {len(train_ids):,} training tokens, {len(val_ids):,} validation tokens (`load_corpus("validation")`) |
| training | {steps:,} steps of batch {args.batch_size} x {args.block_size} tokens ({steps * args.batch_size * args.block_size / len(train_ids):.2f} epochs), AdamW (0.9, 0.95), lr {args.lr:g} with {args.warmup} warm-up steps and cosine decay to {args.lr / 10:g}, weight decay 0.1 on matrices, clipping 1.0, dropout 0, seed {args.seed} |
| hardware | {device_name}; shared machine, load average {os.getloadavg()[0]:.1f} at the end |
| wall time | {train_seconds:.0f} s of training ({time.time() - started:.0f} s in all, tokenizer and evaluation included) |
| validation loss | {val_loss:.4f} nats per token (perplexity {math.exp(val_loss):.1f}); {val_loss / val_chars_per_token:.4f} nats per character |

Load it offline:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
from tfs.data import gpt_path
model = AutoModelForCausalLM.from_pretrained(gpt_path())
generate = pipeline("text-generation", model=str(gpt_path()))
```

Sample (prompt `ROMEO:`, temperature 0.8, top-k 50, seed {args.seed}):

```
{sample}
```

Reproduce: `python scripts/train_gpt.py {" ".join(a for a in sys.argv[1:] if not a.startswith("--out"))}` (same device and
thread count; `--time-limit` makes a run depend on the machine's speed, so the shipped run used none).
"""
    (out / "README.md").write_text(card)
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in sorted(out.iterdir()) if p.name != "SHA256SUMS")
    (out / "SHA256SUMS").write_text(sums)
    (out / "train_log.json").unlink(missing_ok=True)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(json.dumps({"steps": steps, "train_seconds": round(train_seconds, 1), "val_loss": round(val_loss, 4),
                      "perplexity": round(math.exp(val_loss), 2), "params": n_params, "bytes": size}), flush=True)
    print(sample)


if __name__ == "__main__":
    main()
