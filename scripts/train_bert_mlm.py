"""Train the course's own fill-mask checkpoint: a small BERT, masked LM only, on the course's text.

    python scripts/train_bert_mlm.py                       # writes src/tfs/assets/checkpoints/bert-mlm/
    python scripts/train_bert_mlm.py --steps 200 --out /tmp/bert-mlm-test   # a quick try

Deterministic from ``--seed`` (same data order, masks and initial weights; the same hardware and
torch version give the same bits). Runs on CPU unless ``--device cuda``. Uses the package's model
(``tfs.models.bert.BertForPreTraining`` without NSP) and writes ``transformers``' ``BertForMaskedLM``
format through :mod:`tfs.convert.bert` and ``save_pretrained``, with a WordPiece tokenizer trained on
the same text beside it, so that offline

    AutoModelForMaskedLM.from_pretrained(folder); AutoTokenizer.from_pretrained(folder)
    pipeline("fill-mask", model=folder)

work. Weights are stored in float16 (``from_pretrained(folder, dtype=torch.float32)`` gives float32).
Writes ``README.md`` (the model card, numbers from this run) and ``SHA256SUMS``, which
``tfs.data.bert_mlm_path()`` verifies.

Why a vocabulary of its own: MiniLM's 30,522 WordPiece tokens would make the embedding table (tied
to the decoder) most of the model and of the training time: 3.9 M parameters at d = 128; 8,000 tokens
trained on this text keep the model small (1.9 M parameters, 3.9 MB in float16) and fast enough to
train on a shared 2-core CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import random
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "tfs" / "assets" / "checkpoints" / "bert-mlm"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def sentences() -> list[str]:
    """The course's English text as lines: the Shakespeare corpus (non-empty lines, headers dropped)
    and the review snippets of the sentiment set (all splits: the checkpoint does no classification)."""
    from tfs.data import load_corpus, load_dataset

    lines = [line.strip() for line in load_corpus().split("\n")]
    lines = [line for line in lines if line and not line.startswith("===")]
    data = load_dataset("sentiment")
    reviews = [row for split in ("train", "validation", "test") for row in data[split]["text"]]
    return lines + reviews


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True, model_max_length=128)


def chunks(tokenizer, texts: list[str], length: int) -> torch.Tensor:
    """The texts' tokens, concatenated and cut into ``[CLS] <length - 2 tokens> [SEP]`` rows."""
    ids: list[int] = []
    for start in range(0, len(texts), 4096):
        for row in tokenizer(texts[start:start + 4096], add_special_tokens=False)["input_ids"]:
            ids.extend(row)
    body = length - 2
    n = len(ids) // body
    table = torch.tensor(ids[: n * body], dtype=torch.int64).view(n, body)
    cls = torch.full((n, 1), tokenizer.cls_token_id)
    sep = torch.full((n, 1), tokenizer.sep_token_id)
    return torch.cat([cls, table, sep], dim=1)


@torch.no_grad()
def evaluate(model, rows: torch.Tensor, tokenizer, seed: int, batch: int = 128) -> tuple[float, float]:
    """MLM loss and accuracy on masked positions of ``rows``, masks fixed by ``seed``."""
    from tfs.models.bert_pretraining import mask_tokens

    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total_loss, correct, count = 0.0, 0, 0
    for start in range(0, len(rows), batch):
        ids = rows[start:start + batch]
        masked, labels = mask_tokens(ids, tokenizer.all_special_ids, tokenizer.mask_token_id, len(tokenizer),
                                     generator=generator)
        logits, _ = model(masked.to(next(model.parameters()).device))
        logits = logits.float().cpu()
        chosen = labels != -100
        total_loss += torch.nn.functional.cross_entropy(logits[chosen], labels[chosen], reduction="sum").item()
        correct += (logits[chosen].argmax(-1) == labels[chosen]).sum().item()
        count += chosen.sum().item()
    model.train()
    return total_loss / count, correct / count


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    from tqdm.auto import tqdm
    from transformers import BertForMaskedLM

    from tfs import seed_everything
    from tfs.convert.bert import bert_to_hf
    from tfs.models.bert import BertConfig, BertForPreTraining
    from tfs.models.bert_pretraining import mask_tokens

    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    texts = sentences()
    tokenizer = train_tokenizer(texts, args.vocab)
    rows = chunks(tokenizer, texts, args.length)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(args.seed))
    n_val = max(256, len(rows) // 50)
    val_rows, train_rows = rows[order[:n_val]], rows[order[n_val:]]
    print(f"{len(texts):,} lines, vocabulary {len(tokenizer):,}, {len(train_rows):,} train / {len(val_rows):,} "
          f"validation rows of {args.length} tokens ({time.perf_counter() - started:.0f} s)", flush=True)

    config = BertConfig(vocab_size=len(tokenizer), max_position=128, d_model=args.d_model, n_heads=args.heads,
                        n_layers=args.layers, d_ff=4 * args.d_model, dropout=0.1, eps=1e-12)
    model = BertForPreTraining(config, nsp=False)
    with torch.no_grad():  # BERT's init: N(0, 0.02) for weights and embeddings, zero biases
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
            elif name.endswith("bias"):
                p.zero_()
    model.to(args.device).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.98))
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))))
    generator = torch.Generator().manual_seed(args.seed + 1)
    val_before = evaluate(model, val_rows, tokenizer, args.seed + 2)
    losses = []
    train_started = time.perf_counter()
    for step in tqdm(range(args.steps), desc="MLM pretraining", mininterval=10, file=sys.stdout):
        index = torch.randint(len(train_rows), (args.batch,), generator=generator)
        masked, labels = mask_tokens(train_rows[index], tokenizer.all_special_ids, tokenizer.mask_token_id,
                                     len(tokenizer), generator=generator)
        hidden, _ = model.bert(masked.to(args.device))
        chosen = labels.to(args.device) != -100  # the decoder runs on the ~15 % chosen positions only
        loss = torch.nn.functional.cross_entropy(model.mlm(hidden[chosen]), labels.to(args.device)[chosen])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: train loss (mean of last 100) {sum(losses[-100:]) / 100:.3f}", flush=True)
    train_seconds = time.perf_counter() - train_started
    val_loss, val_acc = evaluate(model, val_rows, tokenizer, args.seed + 2)
    print(f"validation MLM loss {val_before[0]:.3f} -> {val_loss:.3f}, accuracy {val_before[1]:.3f} -> {val_acc:.3f}")

    # transformers' BertForMaskedLM format, weights in float16
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    hf = BertForMaskedLM(config.to_hf(pad_token_id=tokenizer.pad_token_id))
    missing, unexpected = hf.load_state_dict({k: v.detach().cpu() for k, v in bert_to_hf(model.cpu()).items()},
                                             strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing), (missing, unexpected)
    hf.half().save_pretrained(out)
    tokenizer.save_pretrained(out)
    hardware = f"{platform.machine()} {args.device}" + (f", {torch.get_num_threads()} thread(s)" if args.device == "cpu" else "")
    card = f"""---
language: en
library_name: transformers
pipeline_tag: fill-mask
---
# bert-mlm: the course's own small fill-mask BERT

Built by `python scripts/train_bert_mlm.py` (seed {args.seed}) for chapter 05 of *Transformers from Scratch*.
A `BertForMaskedLM` (post-LN BERT, exact GELU, decoder tied to the token embeddings) trained with
masked-language modelling only (15 % of tokens; 80 % [MASK], 10 % random, 10 % unchanged; no NSP).

| | |
|---|---|
| data | the course's English text: Shakespeare's complete works (`tfs.data.load_corpus()`) and the Rotten Tomatoes review snippets (`tfs.data.load_dataset("sentiment")`), {len(texts):,} lines |
| tokenizer | uncased WordPiece trained on the same text, {len(tokenizer):,} tokens |
| model | {config.n_layers} layers, d_model {config.d_model}, {config.n_heads} heads, d_ff {config.d_ff}, {config.max_position} positions, {sum(p.numel() for p in model.parameters()):,} parameters |
| training | {args.steps:,} steps of {args.batch} × {args.length} tokens, AdamW (lr {args.lr}, warm-up {warmup} steps, cosine decay), gradient clipping 1.0 |
| hardware | {hardware} ({platform.processor() or platform.platform()}), torch {torch.__version__} |
| wall time | {train_seconds / 60:.1f} min training, {(time.perf_counter() - started) / 60:.1f} min in all |
| validation | {len(val_rows):,} held-out rows: MLM loss {val_before[0]:.3f} at initialisation → **{val_loss:.3f}**, masked-token accuracy {val_before[1]:.3f} → **{val_acc:.3f}** (uniform guess: ln {len(tokenizer)} = {math.log(len(tokenizer)):.2f}) |
| storage | float16 safetensors; load with `dtype=torch.float32` for float32 |

A teaching model: tiny and trained for minutes on a busy CPU; with {val_acc:.0%} masked-token accuracy it mostly
guesses frequent words, not facts. Rerun the script with more `--steps` (or `--device cuda`) for a better one. Online, `"bert-base-uncased"` is the real thing.

```python
from transformers import pipeline
fill = pipeline("fill-mask", model=tfs.data.bert_mlm_path())   # online: model="bert-base-uncased"
fill("to be or not to [MASK]")
```
"""
    (out / "README.md").write_text(card)
    (out / "train_log.json").write_text(json.dumps({"losses": [round(x, 4) for x in losses],
                                                     "val_before": val_before, "val_after": [val_loss, val_acc],
                                                     "train_seconds": round(train_seconds, 1)}) + "\n")
    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != "SHA256SUMS")
    (out / "SHA256SUMS").write_text("".join(f"{sha256(p)}  {p.name}\n" for p in files))
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB) in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
