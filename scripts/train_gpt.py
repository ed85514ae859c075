"""Train the course's GPT checkpoint and write it in GPT2LMHeadModel format.

    python scripts/train_gpt.py --overwrite              # the shipped run: replaces the shipped checkpoint's files
    python scripts/train_gpt.py --steps 300 --out /tmp/gpt-try       # a short try in a new folder
    python scripts/train_gpt.py --device cuda --out /tmp/gpt-gpu     # the same run on a GPU

CPU budget: the shipped configuration (the defaults below: 4 layers x 128, 5,000 steps of 16 x 128 tokens) took
38.5 minutes of training (40 in all, with tokenizer, evaluation and samples) on one thread of a 2-core AMD EPYC
shared with other jobs (load average 3.4-6.9, mean 4.7). On a quiet machine expect about 15 minutes: a 25-step
timing of this model at load 1.5 ran 11,500 tokens/s, against 4,400 during the shipped run. One thread is the
default (``--threads``); ``--device cuda`` runs the same code on a GPU.

The size was chosen by measurement: at equal 10-minute budgets on this machine (load average about 6, cosine on
the clock), 4 layers of width 128, 192 and 256 reached 3.744, 3.938 and 3.988 nats per token on sampled validation
windows (1,186, 642 and 468 steps): at the compute a CPU affords here the smallest learns fastest, and a wider
model would also slow every chapter that runs this one. The peak rate was measured at 400 steps on the 256-wide
model (1.5e-3: 4.097, 3e-3: 4.143, 5e-3: 4.539); 3e-3 suits the narrower model, which took it without trouble.

Deterministic from ``--seed`` on one device and thread count: a byte-level BPE tokenizer is trained on the
corpus's training split (``tfs.data.load_corpus("train")``), the text is encoded, and the package's GPT
(:mod:`tfs.models.gpt`) is trained with the package's trainer (:mod:`tfs.train`) for a fixed number of steps:
linear warm-up, then a cosine decay over the steps to a tenth of the peak rate. The peak is high (3e-3), as
chapter 06's benchmark found for a small model (``benchmarks/gpt_cpu_recipe.py``); that benchmark ran the
cosine on the wall clock (``TrainConfig.schedule_seconds``) to fit a time budget, which makes the result depend
on the machine's speed, so this run counts steps instead.

The folder then holds what ``AutoModelForCausalLM.from_pretrained`` and ``AutoTokenizer.from_pretrained`` read
offline (float32 weights), a model card (``README.md``) with the run's
numbers measured on the saved weights: validation loss per token and per character against a bigram count
table on the same tokenizer and split, the loss at each context position (also ``per_position_loss.png``),
greedy and sampled text; ``train_log.json`` with the curves, and ``SHA256SUMS`` (checked by
``tfs.data.gpt_path()``).

``--out`` must be a new or empty folder; an existing folder with files in it is refused unless ``--overwrite``
is given, and even then only when it holds nothing but this script's own files (those are replaced; nothing
else is ever deleted). Both checks run before training, and again before writing.

Why a tokenizer of our own: GPT-2's 50,257-token vocabulary would make the tied embedding alone
50,257 x n_embd parameters (6.4 M at n_embd = 128, seven times the whole model), most of it rows for tokens that are rare or absent in
Shakespeare; a 1,024-token byte-level BPE trained on the corpus keeps the model small and spends its
parameters on the layers. (``scripts/train_scaling.py`` reuses this tokenizer: the same corpus, size and
trainer give the same one.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from run_folder import check_out, cpu_name  # noqa: E402
from tfs import data, seed_everything  # noqa: E402
from tfs.convert.gpt import to_hf_model  # noqa: E402
from tfs.models.gpt import GPT, GPTConfig  # noqa: E402
from tfs.train import TrainConfig, train  # noqa: E402

DEFAULT_OUT = REPO / "src" / "tfs" / "assets" / "checkpoints" / "gpt"
EOT = "<|endoftext|>"
WEIGHTS = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
OUTPUT_FILES = frozenset(WEIGHTS + ("README.md", "per_position_loss.png", "train_log.json", "SHA256SUMS"))
POSITION_BANDS = ((0, 1), (1, 2), (2, 8), (8, 32), (32, None))  # context positions [start, stop) in the card
GREEDY_PROMPTS = ("ROMEO.\n", "Now is the winter of our discontent")
SAMPLE_PROMPT = "JULIET.\n"
SAMPLE_TOKENS = 60
BIGRAM_K = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)  # add-k smoothing candidates of the bigram table


# ------------------------------------------------------------------------------------------ data

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


# ------------------------------------------------------------------------------------------ evaluation

def windows(ids: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stream cut into consecutive windows: ``x, y`` of shape ``(n, block_size)``, ``y`` = ``x`` shifted by one;
    every token after the first is a target once (the last ``< block_size`` tokens are left out)."""
    n = (len(ids) - 1) // block_size
    x = ids[:n * block_size].long().view(n, block_size)
    y = ids[1:n * block_size + 1].long().view(n, block_size)
    return x, y


@torch.no_grad()
def position_losses(model, ids: torch.Tensor, block_size: int, batch_size: int = 32) -> torch.Tensor:
    """Loss (nats) of every target of :func:`windows`, ``(n, block_size)``: column ``t`` is the prediction made
    with ``t + 1`` tokens of context. ``model`` is a ``transformers`` causal LM (``.logits``)."""
    model.eval()
    device = next(model.parameters()).device
    x, y = windows(ids, block_size)
    rows = []
    for start in range(0, len(x), batch_size):
        logits = model(x[start:start + batch_size].to(device)).logits.float()  # (batch, T, V)
        rows.append(F.cross_entropy(logits.transpose(1, 2), y[start:start + batch_size].to(device),
                                    reduction="none").cpu())  # (batch, T)
    return torch.cat(rows)


def count_baselines(train_ids: torch.Tensor, ids: torch.Tensor, block_size: int, vocab_size: int) -> dict[str, float]:
    """Mean loss (nats per token) on the targets of :func:`windows` of count tables fitted on ``train_ids``: a unigram
    (add-one smoothed) and a bigram that sees the token before each target (as the model does at least), add-k
    smoothed with the k of :data:`BIGRAM_K` that scores best on the last 10 % of ``train_ids`` when fitted on the rest
    (then refitted on all of it). Returns ``{"unigram", "bigram", "bigram_k"}``."""
    train_ids = train_ids.long()
    x, y = windows(ids, block_size)
    previous, target = x.flatten(), y.flatten()
    unigram = torch.bincount(train_ids, minlength=vocab_size).double() + 1
    cut = int(0.9 * len(train_ids))
    held_out = bigram_counts(train_ids[:cut], vocab_size)
    k = min(BIGRAM_K, key=lambda k: bigram_loss(held_out, k, train_ids[cut - 1:-1], train_ids[cut:]))
    return {"unigram": -(unigram[target] / unigram.sum()).log().mean().item(),
            "bigram": bigram_loss(bigram_counts(train_ids, vocab_size), k, previous, target), "bigram_k": k}


def bigram_counts(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``(vocab, vocab)`` counts of (token, next token) pairs in the stream ``ids``."""
    pairs = ids[:-1] * vocab_size + ids[1:]
    return torch.bincount(pairs, minlength=vocab_size ** 2).view(vocab_size, vocab_size).double()


def bigram_loss(counts: torch.Tensor, k: float, previous: torch.Tensor, target: torch.Tensor) -> float:
    """Mean ``-log p(target | previous)`` under ``counts`` smoothed by adding ``k`` to every cell."""
    probs = (counts[previous, target] + k) / (counts[previous].sum(1) + k * counts.shape[1])
    return -probs.log().mean().item()


def band_means(per_position: torch.Tensor) -> dict[str, float]:
    """Mean of ``per_position`` (a loss per context position) over :data:`POSITION_BANDS`, keyed ``"2-7"``..."""
    means = {}
    for start, stop in POSITION_BANDS:
        stop = len(per_position) if stop is None else min(stop, len(per_position))
        if start >= stop:
            continue
        key = str(start) if stop == start + 1 else f"{start}-{stop - 1}"
        means[key] = per_position[start:stop].mean().item()
    return means


def plot_per_position(per_position: torch.Tensor, baselines: dict[str, float], history: dict, path: Path) -> None:
    """Two small panels: the validation loss at each context position against the count tables, and the loss
    during training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
    left.plot(range(1, len(per_position) + 1), per_position.tolist(), label="model")
    for name, style in (("bigram", "--"), ("unigram", ":")):
        left.axhline(baselines[name], color="grey", linestyle=style, label=f"{name} table")
    left.set(xscale="log", xlabel="tokens seen (context position t + 1)", ylabel="validation loss (nats/token)",
             title="loss by context position")
    left.legend(fontsize=8)
    steps = history["step"]
    smooth = max(1, len(steps) // 100)
    train_curve = torch.tensor(history["loss"][:len(steps) // smooth * smooth]).view(-1, smooth).mean(1)
    right.plot([steps[i * smooth + smooth - 1] + 1 for i in range(len(train_curve))], train_curve.tolist(),
               label=f"training (mean of {smooth} steps)")
    right.plot(history["val_step"], history["val_loss"], "o-", markersize=3, label="validation (sampled windows)")
    right.axhline(baselines["bigram"], color="grey", linestyle="--", label="bigram table")
    right.set(xlabel="step", title="training")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ output folder

def install(staged: Path, out: Path, overwrite: bool) -> None:
    """Copy the staged files into ``out`` (checked again: it may have changed during training)."""
    check_out(out, overwrite, OUTPUT_FILES)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(staged.iterdir()):
        shutil.copyfile(path, out / path.name)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_hf(model: GPT, tokenizer, folder: Path) -> None:
    """``GPT2LMHeadModel`` weights (float32) with ``<|endoftext|>`` as its BOS/EOS/padding id, and the tokenizer."""
    hf_model = to_hf_model(model.cpu().float())
    eot = tokenizer.convert_tokens_to_ids(EOT)
    hf_model.config.bos_token_id = hf_model.config.eos_token_id = eot
    hf_model.generation_config.bos_token_id = hf_model.generation_config.eos_token_id = eot
    hf_model.generation_config.pad_token_id = eot
    hf_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# ------------------------------------------------------------------------------------------ hardware


def hardware(device: str, threads: int) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name()} (CUDA)"
    return f"{cpu_name()} CPU, {os.cpu_count()} cores, {threads} thread{'s' if threads > 1 else ''}"


class Progress:
    """The trainer's callback: one plain line every ``every`` steps (step, mean loss, lr, elapsed s, load
    average) when ``show`` is set, and the 1-minute load average sampled at each of those steps."""

    def __init__(self, every: int, total: int, show: bool):
        self.every, self.total, self.show = every, total, show
        self.loads: list[float] = []

    def __call__(self, step: int, history: dict) -> None:
        if (step + 1) % self.every and step + 1 != self.total:
            return
        self.loads.append(os.getloadavg()[0])
        if self.show:
            recent = history["loss"][-self.every:]
            print(f"step {step + 1:5d}/{self.total}  loss {sum(recent) / len(recent):.3f}  lr {history['lr'][-1]:.2e}  "
                  f"{history['time'][-1]:6.0f} s  load {self.loads[-1]:.1f}", flush=True)


# ------------------------------------------------------------------------------------------ the run

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="a new or empty folder (default: the shipped one)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier run in --out (refused if it holds any other file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (cosine to a tenth of it)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-interval", type=int, default=250, help="validate on sampled windows every N steps")
    parser.add_argument("--log-every", type=int, default=50, help="a progress line every N steps when not on a terminal")
    return parser.parse_args(argv)


@dataclass
class Corpus:
    """The tokenizer and the two splits, as text and as token ids."""

    tokenizer: object
    train_text: str
    val_text: str
    train_ids: torch.Tensor
    val_ids: torch.Tensor

    @property
    def val_chars_per_token(self) -> float:
        return len(self.val_text) / len(self.val_ids)


def load_data(vocab_size: int) -> Corpus:
    """Train the tokenizer on the training split and encode both splits."""
    train_text, val_text = data.load_corpus("train"), data.load_corpus("validation")
    tokenizer = train_tokenizer(train_text, vocab_size)
    return Corpus(tokenizer, train_text, val_text, encode(tokenizer, train_text), encode(tokenizer, val_text))


def train_model(args: argparse.Namespace, corpus: Corpus, callback=None, progress: bool = False) -> tuple[GPT, dict]:
    """The package's GPT, seeded, trained by :func:`tfs.train.train` as ``args`` say; returns it and the history."""
    config = GPTConfig(vocab_size=len(corpus.tokenizer), block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=0.0)
    seed_everything(args.seed)
    model = GPT(config).to(args.device)
    train_config = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, block_size=args.block_size,
                               lr=args.lr, min_lr=args.lr / 10, warmup_steps=args.warmup, weight_decay=0.1,
                               grad_clip=1.0, eval_interval=args.eval_interval, eval_steps=10, seed=args.seed)
    history = train(model, corpus.train_ids, corpus.val_ids, train_config, progress=progress, callback=callback)
    return model, history


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        check_out(args.out, args.overwrite, OUTPUT_FILES)
    except ValueError as error:
        raise SystemExit(f"train_gpt.py: {error}") from None
    torch.set_num_threads(args.threads)
    started = time.time()
    corpus = load_data(args.vocab_size)
    print(f"tokenizer: {len(corpus.tokenizer)} tokens; train {len(corpus.train_ids):,} tokens "
          f"({len(corpus.train_text) / len(corpus.train_ids):.2f} characters/token), "
          f"validation {len(corpus.val_ids):,}", flush=True)
    on_terminal = sys.stdout.isatty()
    progress = Progress(args.log_every, args.steps, show=not on_terminal)
    model, history = train_model(args, corpus, callback=progress, progress=on_terminal)
    with tempfile.TemporaryDirectory(prefix="train_gpt-") as staging:
        staged = Path(staging)
        save_hf(model, corpus.tokenizer, staged)
        result = evaluate_and_describe(staged, Run(args, argv, history, progress.loads, started), corpus)
        try:
            install(staged, args.out, args.overwrite)
        except ValueError as error:  # --out changed during training: keep the run
            kept = Path(tempfile.mkdtemp(prefix="train_gpt-kept-"))
            shutil.copytree(staged, kept, dirs_exist_ok=True)
            raise SystemExit(f"train_gpt.py: {error} The trained checkpoint is in {kept}.") from None
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(json.dumps({**result["summary"], "bytes": size, "out": str(args.out)}), flush=True)
    return result


@dataclass
class Run:
    """What the card says about the run: its arguments, command line, history, load samples, start time."""

    args: argparse.Namespace
    argv: list[str]
    history: dict
    loads: list[float]
    started: float


def evaluate_and_describe(folder: Path, run: Run, corpus: Corpus) -> dict:
    """Measure the saved weights (read back) and write the card, the figure, the log and the sums."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    args, history = run.args, run.history
    model = AutoModelForCausalLM.from_pretrained(folder).to(args.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    losses = position_losses(model, corpus.val_ids, args.block_size)  # (windows, block_size)
    per_position = losses.mean(0)
    val_loss = losses.mean().item()
    baselines = count_baselines(corpus.train_ids, corpus.val_ids, args.block_size, len(tokenizer))
    chars_per_token = corpus.val_chars_per_token
    bands = band_means(per_position)
    samples = generate_samples(model, tokenizer, args.seed)
    plot_per_position(per_position, baselines, history, folder / "per_position_loss.png")
    steps = len(history["step"])
    summary = {"steps": steps, "train_seconds": round(history["time"][-1], 1), "params": model.num_parameters(),
               "val_nats_per_token": round(val_loss, 4), "val_nats_per_char": round(val_loss / chars_per_token, 4),
               "perplexity": round(math.exp(val_loss), 2),
               "bigram_nats_per_token": round(baselines["bigram"], 4),
               "bigram_nats_per_char": round(baselines["bigram"] / chars_per_token, 4)}
    log = {"args": {k: v for k, v in vars(args).items() if k not in ("out", "overwrite")}, "argv": run.argv,
           "summary": summary, "baselines_nats_per_token": {k: round(v, 4) for k, v in baselines.items()},
           "per_position_nats": [round(v, 4) for v in per_position.tolist()],
           "position_bands_nats": {k: round(v, 4) for k, v in bands.items()},
           "val_step": history["val_step"], "val_loss": [round(v, 4) for v in history["val_loss"]],
           "train_loss_every_10": [round(sum(history["loss"][i:i + 10]) / len(history["loss"][i:i + 10]), 4)
                                   for i in range(0, steps, 10)],
           "load_average_1min": [round(v, 2) for v in run.loads], "samples": samples}
    (folder / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
    card = model_card(run, model.config, model.num_parameters(), corpus, val_loss, baselines, bands, samples)
    (folder / "README.md").write_text(card)
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in sorted(folder.iterdir()) if p.name != "SHA256SUMS")
    (folder / "SHA256SUMS").write_text(sums)
    print(f"{steps} steps in {summary['train_seconds']:.0f} s; validation {val_loss:.4f} nats/token "
          f"({val_loss / chars_per_token:.4f} nats/char, perplexity {math.exp(val_loss):.1f}); bigram table "
          f"{baselines['bigram']:.4f} ({baselines['bigram'] / chars_per_token:.4f} nats/char)", flush=True)
    return {"summary": summary, "per_position": per_position, "samples": samples}


def generate_samples(model, tokenizer, seed: int, new_tokens: int = SAMPLE_TOKENS) -> list[dict]:
    """Two greedy continuations and one sampled (temperature 0.8, top-k 50, seeded) with ``transformers``'
    ``generate``."""
    device = next(model.parameters()).device
    runs = [(prompt, {"do_sample": False}) for prompt in GREEDY_PROMPTS]
    runs.append((SAMPLE_PROMPT, {"do_sample": True, "temperature": 0.8, "top_k": 50}))
    samples = []
    for prompt, options in runs:
        torch.manual_seed(seed)
        context = model.config.n_positions  # transformers' GPT-2 does not crop: prompt and new tokens must fit
        prompt_ids = tokenizer(prompt, return_tensors="pt").input_ids[:, -(context // 2):].to(device)
        out = model.generate(prompt_ids, attention_mask=torch.ones_like(prompt_ids), pad_token_id=tokenizer.eos_token_id,
                             max_new_tokens=min(new_tokens, context - prompt_ids.shape[1]), **options)
        samples.append({"prompt": prompt, "options": options, "text": tokenizer.decode(out[0].tolist())})
    return samples


def describe_samples(samples: list[dict], seed: int) -> str:
    parts = []
    for sample in samples:
        how = ("greedy" if not sample["options"]["do_sample"] else
               f"sampled, temperature {sample['options']['temperature']}, top-k {sample['options']['top_k']}, "
               f"`torch.manual_seed({seed})`")
        parts.append(f"Prompt `{sample['prompt']!r}` ({how}):\n\n```\n{sample['text']}\n```\n")
    return "\n".join(parts)


def model_card(run: Run, hf_config, n_params: int, corpus: Corpus, val_loss: float, baselines: dict, bands: dict,
               samples: list[dict]) -> str:
    args, history, loads = run.args, run.history, run.loads
    steps = len(history["step"])
    tokens_per_step = args.batch_size * args.block_size
    train_seconds = history["time"][-1]
    total_seconds = time.time() - run.started
    chars_per_token = corpus.val_chars_per_token
    train_ids, val_ids = corpus.train_ids, corpus.val_ids
    per_char = {k: v / chars_per_token for k, v in baselines.items() if k != "bigram_k"}
    band_row = " | ".join(f"{v:.3f}" for v in bands.values())
    load_text = (f"1-minute load average {min(loads):.1f} to {max(loads):.1f} (mean {sum(loads) / len(loads):.1f}) "
                 "during training, on a 2-core machine shared with other jobs" if loads else "load not recorded")
    command = shlex.join(["python", "scripts/train_gpt.py", *run.argv])
    return f"""---
license: mit
language:
- en
library_name: transformers
pipeline_tag: text-generation
tags:
- gpt2
- causal-lm
- shakespeare
- teaching
# datasets: none from the Hub. The text is Shakespeare's complete works (Project Gutenberg, public domain),
# shipped with the course: tfs.data.load_corpus("train") to train, load_corpus("validation") to evaluate.
---
# The course's GPT (chapter 06)

A GPT-2-architecture language model trained from scratch by `scripts/train_gpt.py` (seed {args.seed}) for
*Transformers from Scratch*, on Shakespeare's complete works (`tfs.data.load_corpus("train")`, the first 90 %
of 5.06 M characters). Small, and trained for {train_seconds / 60:.0f} minutes (hardware below): it writes
Shakespeare-shaped text (speaker names, verse lines, common phrases), not sense.

| | |
|---|---|
| format | `GPT2LMHeadModel` (`transformers`), LM head tied to the token embedding; float32 safetensors (float16 would halve the file; at this size the course keeps the exact weights) |
| size | {n_params:,} parameters; n_layer {hf_config.n_layer}, n_head {hf_config.n_head}, n_embd {hf_config.n_embd}, context (n_positions) {hf_config.n_positions} tokens |
| tokenizer | byte-level BPE (GPT-2's pre-tokenizer and byte alphabet) trained on the training split, {hf_config.vocab_size:,} tokens (`{EOT}` = {hf_config.eos_token_id}); {len(corpus.train_text) / len(train_ids):.2f} characters per token on the training split, {chars_per_token:.2f} on validation |
| data | {len(train_ids):,} training tokens; validation: `load_corpus("validation")` (the last 10 %), {len(val_ids):,} tokens |
| training | {steps:,} steps of batch {args.batch_size} x {args.block_size} tokens ({tokens_per_step:,} tokens a step, {steps * tokens_per_step / len(train_ids):.2f} epochs), random windows; AdamW (0.9, 0.95), peak lr {args.lr:g}, {args.warmup} linear warm-up steps, then cosine decay over the steps to {args.lr / 10:g}; weight decay 0.1 on matrices, gradient clipping 1.0, dropout 0; float32 |
| hardware | {hardware(args.device, args.threads)}, torch {torch.__version__}; {load_text} |
| wall time | {train_seconds / 60:.1f} min of training ({train_seconds / steps:.2f} s a step, {steps * tokens_per_step / train_seconds:,.0f} tokens/s), {total_seconds / 60:.1f} min in all (tokenizer, evaluation and samples included) |

## Validation

Measured on the saved weights (read back with `from_pretrained`), over every token of the validation split: the
stream cut into consecutive windows of {args.block_size} tokens, each token after the first a target once. Nats per
character = nats per token / {chars_per_token:.3f} characters per token (the validation split's ratio). The count tables
are fitted on the training tokens and scored on the same targets: the unigram add-one smoothed, the bigram add-k with
k = {baselines['bigram_k']:g} (the best of {", ".join(f"{k:g}" for k in BIGRAM_K)} on the last tenth of the training tokens,
fitted on the rest). The bigram table sees the previous token, as the model does at position 0.

| | nats / token | nats / character | perplexity (per token) |
|---|---|---|---|
| **this model** | **{val_loss:.4f}** | **{val_loss / chars_per_token:.4f}** | **{math.exp(val_loss):.1f}** |
| bigram count table | {baselines['bigram']:.4f} | {per_char['bigram']:.4f} | {math.exp(baselines['bigram']):.1f} |
| unigram count table | {baselines['unigram']:.4f} | {per_char['unigram']:.4f} | {math.exp(baselines['unigram']):.1f} |

Loss at context position t (the prediction made after t + 1 tokens), averaged over the validation windows
(nats per token; the bigram table's level is {baselines['bigram']:.3f} at every position):

| position | {" | ".join(bands)} |
|---|{"---|" * len(bands)}
| loss | {band_row} |

![validation loss by context position, and the training curve](per_position_loss.png)

`per_position_loss.png`: left, the loss at each position against the count tables; right, the training loss and
the validation loss on sampled windows during training. `train_log.json` holds these curves and the per-position
numbers.

## Samples

`model.generate`, {SAMPLE_TOKENS} new tokens after the prompt.

{describe_samples(samples, args.seed)}
## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline
from tfs.data import gpt_path
model = AutoModelForCausalLM.from_pretrained(gpt_path())          # online: "gpt2"
tokenizer = AutoTokenizer.from_pretrained(gpt_path())
generate = pipeline("text-generation", model=str(gpt_path()))
```

## Reproduce

`{command}` (device {args.device}, {args.threads} thread{'s' if args.threads > 1 else ''}; the same device and thread
count give the same weights). Budget: about {train_seconds / 60:.0f} minutes of training on this machine.
`--device cuda --out DIR` runs it on a GPU. The script refuses an `--out` folder that is not empty, except with
`--overwrite` onto a folder that holds only its own files.
"""


if __name__ == "__main__":
    main()
