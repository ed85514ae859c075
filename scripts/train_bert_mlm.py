"""Train the course's own fill-mask checkpoint: a small BERT, masked LM only, on the course's text.

    python scripts/train_bert_mlm.py --overwrite           # rebuilds src/tfs/assets/checkpoints/bert-mlm/
    python scripts/train_bert_mlm.py --steps 200 --out /tmp/bert-mlm-try   # a quick try into a new folder

CPU budget: the shipped run is sized for at most 60 minutes of wall time on ONE thread of a shared
2-core x86-64 CPU (``--threads 1``, the default: 8,000 steps at 0.25 to 0.4 s a step under a load
average of 3 to 6); its model card records the wall time, the CPU model and the load average it ran
under. Deterministic from ``--seed`` (the same data split, data order, masks and initial weights; the
same hardware, thread count and torch version give the same bits). Runs on CPU unless ``--device cuda``.

What it uses from the package: the model (``tfs.models.bert.BertForPreTraining`` without NSP), the
80/10/10 masking (``tfs.models.bert_pretraining.mask_tokens``), the optimizer, schedule and clipping of
``tfs.train`` and the conversion of :mod:`tfs.convert.bert`. It writes ``transformers``'
``BertForMaskedLM`` format with ``save_pretrained``, with a WordPiece tokenizer trained on the same
text beside it, so that offline

    AutoModelForMaskedLM.from_pretrained(folder); AutoTokenizer.from_pretrained(folder)
    pipeline("fill-mask", model=folder)

work. Weights are stored in float16 (``from_pretrained(folder, dtype=torch.float32)`` gives float32).
It also writes ``README.md`` (the model card, every number from this run), ``train_log.json`` and
``SHA256SUMS``, which ``tfs.data.bert_mlm_path()`` verifies.

Validation: held-out rows with masks fixed by the seed. Loss and top-1 accuracy are reported per kind
of chosen position, each against the baseline that needs no context: on ``[MASK]`` positions the
unigram distribution of the training tokens; on positions that show a token (10 % unchanged, 10 %
random) the copy baseline, which gives the visible token the probability that a visible chosen token
is the original one (measured on training masks, about 1/2) and spreads the rest by the unigram.

Why a vocabulary of its own, and why 2,560 tokens: MiniLM's 30,522 WordPiece tokens would make the
embedding table (tied to the decoder) most of the model and of the optimizer's work: 3.9 M parameters
at d = 128. A WordPiece trained on this text (Shakespeare and review snippets, about 2 M tokens) keeps
the common words whole at 2,560 tokens (78 % of the tokens are whole words or word starts, against 84 %
at 4,096 and 91 % at 8,000), so the fill-mask answers are words ("pray", "dead", "madam"). A smaller
table gives every token more training examples in a short run and is cheaper, and it makes top-1
accuracy easier to reach, part of it only because short pieces are easier to guess: a count table of
the two neighbours of each validation token (the most frequent middle token of each left/right pair in
the training stream, else of the left neighbour alone) guesses 0.349 of them at 2,048 tokens, 0.333 at
2,560, 0.320 at 3,072 and 0.308 at 4,096. 2,048 was tried and went too far: it cuts "isabella" into
"is ##abella", and that model's top guess for "the king is [MASK]." was "##abella"; at 2,560 the name
is whole and a word "is" is followed by a continuation piece 1.4 % of the time instead of 2.5 %.

Why most steps use 16-token rows: trial runs of 750 steps of 2,048 tokens (lr 1e-3 with the 6,000-step
schedule, no dropout, one thread, load average 3.5 to 6) ended with a validation ``[MASK]`` loss below
the unigram baseline by 0.08 with 64-token rows (top-1 accuracy 0.060), 0.09 with 32 and 0.43 with 16
(0.117). At 64 tokens these changed little: sinusoidal initial position vectors, pre-LN blocks (300
steps), 30 % masking (0.12 below), lr 5e-4 to 2e-3, 32 or 64 rows per step at equal tokens, dropout 0.1.
A hypothesis for why length matters: with the near-uniform attention of a new model a position sees
the average of its row, in which the neighbours, which say most about a hidden token, weigh 1/L.
Long rows come in after the first ``--long-start`` of the steps (one step in ``--long-every``), so that
every position is trained, as BERT trained its last 10 % of steps at 512 tokens after 128.

Full-length trials before the shipped settings (same data and model): at 4,096 tokens, 5,000 steps at
lr 1e-3 with one 64-token step in five from the start reached a ``[MASK]`` top-1 accuracy of 0.205 on
64-token validation rows (0.208 on 16-token rows; 41.9 min at load 5 to 7); lr 2e-3 left the unigram
plateau later (training loss 5.84 against 5.43 at step 1,500, where it was stopped); 5,800 steps with
16-token rows only for the first 40 % and one 64-token step in three after reached 0.235 (0.236 on
16-token rows; 39.0 min at load 4 to 5). The same schedule for 6,000 steps at 2,048 tokens reached
0.260 (0.265; 24.7 min at load 3 to 5).

``--out`` must be a new or empty folder; a folder that holds files is refused unless ``--overwrite``
is given, and then only the files this script writes are replaced (anything else is left in place).
When stdout is not a terminal, one plain progress line is printed every ``--log-every`` steps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from run_folder import cpu_name  # noqa: E402
DEFAULT_OUT = ROOT / "src" / "tfs" / "assets" / "checkpoints" / "bert-mlm"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VAL_BLOCK = 1024  # validation is drawn as whole blocks of this many tokens of the stream
KINDS = ("mask", "random", "unchanged")  # what a chosen position shows the model
PROMPTS = ["my lord, i [MASK] you.", "the king is [MASK].", "the acting is [MASK]."]


def sentences(every: int = 1) -> list[str]:
    """The course's English text as lines: the Shakespeare corpus (non-empty lines, headers dropped)
    and the review snippets of the sentiment set (all splits: the checkpoint does no classification).
    ``every`` > 1 keeps every ``every``-th line of each source (for quick tries and tests)."""
    from tfs.data import load_corpus, load_dataset

    lines = [line.strip() for line in load_corpus().split("\n")]
    lines = [line for line in lines if line and not line.startswith("===")]
    data = load_dataset("sentiment")
    reviews = [row for split in ("train", "validation", "test") for row in data[split]["text"]]
    return lines[::every] + reviews[::every]


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
                             cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True)


def token_stream(tokenizer, texts: list[str]) -> torch.Tensor:
    """The texts' tokens (no special tokens), concatenated: ``(n_tokens,)`` int64."""
    ids: list[int] = []
    for start in range(0, len(texts), 4096):
        for row in tokenizer(texts[start:start + 4096], add_special_tokens=False)["input_ids"]:
            ids.extend(row)
    return torch.tensor(ids, dtype=torch.int64)


def split_stream(ids: torch.Tensor, block: int, n_val_blocks: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, validation)`` streams: the stream cut into blocks of ``block`` tokens, ``n_val_blocks`` of
    them drawn at random (by ``seed``) for validation; rows of any length are then cut from each side."""
    blocks = ids[: len(ids) // block * block].view(-1, block)
    order = torch.randperm(len(blocks), generator=torch.Generator().manual_seed(seed))
    return blocks[order[n_val_blocks:].sort().values].flatten(), blocks[order[:n_val_blocks].sort().values].flatten()


def val_blocks(stream: torch.Tensor) -> int:
    """How many blocks of ``VAL_BLOCK`` tokens validation takes: 2 % of them, 4 at least."""
    return max(4, len(stream) // VAL_BLOCK // 50)


def rows_of(ids: torch.Tensor, length: int, cls_id: int, sep_id: int) -> torch.Tensor:
    """``ids`` cut into ``[CLS] <length - 2 tokens> [SEP]`` rows: ``(n, length)``."""
    body = length - 2
    n = len(ids) // body
    table = ids[: n * body].view(n, body)
    return torch.cat([torch.full((n, 1), cls_id), table, torch.full((n, 1), sep_id)], dim=1)


def refuse_to_clobber(out: Path, overwrite: bool) -> str | None:
    """Why ``out`` may not be written to (``None`` when it may): it holds files and ``overwrite`` is off."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder"
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        return (f"--out {out} already holds files; give a new or empty folder, or pass --overwrite to replace "
                "the files this script writes (other files are left in place)")
    return None


def unigram_log_probs(rows: torch.Tensor, vocab_size: int, special_ids: list[int]) -> torch.Tensor:
    """``(V,)`` log-frequencies of the tokens MLM may choose in ``rows``, add-one smoothed; specials get -inf."""
    counts = torch.bincount(rows.flatten(), minlength=vocab_size).double() + 1.0
    counts[special_ids] = 0.0
    return (counts / counts.sum()).log()


def kinds_of(masked: torch.Tensor, labels: torch.Tensor, mask_id: int) -> dict[str, torch.Tensor]:
    """Each kind of chosen position as a bool tensor, by what the model sees there: ``[MASK]``, a token other
    than the original (random), or the original itself (unchanged; a random draw of the same id counts here)."""
    chosen = labels != -100
    shows_mask = masked == mask_id
    return {"mask": chosen & shows_mask, "random": chosen & ~shows_mask & (masked != labels),
            "unchanged": chosen & ~shows_mask & (masked == labels)}


def copy_share(rows: torch.Tensor, special_ids: list[int], mask_id: int, vocab_size: int, seed: int) -> float:
    """Of the chosen positions that show a token, the share that show the original: measured on ``rows``."""
    from tfs.models.bert_pretraining import mask_tokens

    masked, labels = mask_tokens(rows, special_ids, mask_id, vocab_size, generator=torch.Generator().manual_seed(seed))
    kinds = kinds_of(masked, labels, mask_id)
    unchanged, random_ = kinds["unchanged"].sum().item(), kinds["random"].sum().item()
    return unchanged / (unchanged + random_)


def baseline_log_probs(masked: torch.Tensor, labels: torch.Tensor, kinds: dict[str, torch.Tensor],
                       unigram: torch.Tensor, share: float) -> torch.Tensor:
    """The no-context baselines' log-probability of each label (``(B, L)``; meaningful where chosen):
    unigram on ``[MASK]``; copy (``share`` on the visible token, ``1 - share`` spread by the unigram) elsewhere."""
    safe = labels.clamp(min=0)
    log_p = unigram[safe]
    visible = kinds["random"] | kinds["unchanged"]
    copied = torch.log(share * (masked == safe).double() + (1 - share) * unigram[safe].exp())
    return torch.where(visible, copied, log_p)


@torch.no_grad()
def evaluate(model, rows: torch.Tensor, special_ids: list[int], mask_id: int, unigram: torch.Tensor, share: float,
             seed: int, batch: int = 128) -> dict[str, dict[str, float]]:
    """Loss and top-1 accuracy of ``model`` on ``rows`` (masks fixed by ``seed``) per kind of chosen position
    and for all of them, each with its no-context baseline: ``{kind: {"n", "loss", "loss_se", "accuracy",
    "baseline_loss", "baseline_accuracy"}}``."""
    from tfs.models.bert_pretraining import mask_tokens

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("loss", "correct", "baseline", "baseline_correct", "kind")}
    top_unigram = unigram.argmax()
    for start in range(0, len(rows), batch):
        ids = rows[start:start + batch]
        masked, labels = mask_tokens(ids, special_ids, mask_id, len(unigram), generator=generator)
        kinds = kinds_of(masked, labels, mask_id)
        chosen = labels != -100
        hidden, _ = model.bert(masked.to(device))
        logits = model.mlm(hidden[chosen.to(device)]).float().cpu()  # (n_chosen, V)
        target = labels[chosen]
        parts["loss"].append(torch.nn.functional.cross_entropy(logits, target, reduction="none").double())
        parts["correct"].append((logits.argmax(-1) == target).double())
        parts["baseline"].append(-baseline_log_probs(masked, labels, kinds, unigram, share)[chosen])
        guess = torch.where(kinds["mask"], top_unigram, masked)[chosen]  # the baselines' top-1
        parts["baseline_correct"].append((guess == target).double())
        parts["kind"].append(sum(i * kinds[k][chosen].long() for i, k in enumerate(KINDS)))
    model.train(was_training)
    values = {k: torch.cat(v) for k, v in parts.items()}
    report = {}
    for i, kind in enumerate((*KINDS, "all")):
        keep = values["kind"] == i if kind != "all" else torch.ones_like(values["kind"], dtype=torch.bool)
        loss = values["loss"][keep]
        report[kind] = {"n": int(keep.sum()), "loss": loss.mean().item(),
                        "loss_se": (loss.std() / math.sqrt(len(loss))).item() if len(loss) > 1 else math.nan,
                        "accuracy": values["correct"][keep].mean().item(),
                        "baseline_loss": values["baseline"][keep].mean().item(),
                        "baseline_accuracy": values["baseline_correct"][keep].mean().item()}
    return report


def fill_mask_examples(folder: Path, prompts: list[str]) -> list[tuple[str, list[tuple[str, float]]]]:
    """Top-5 of ``pipeline("fill-mask")`` for each prompt, read back from the saved folder."""
    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(folder), device="cpu")
    return [(text, [(r["token_str"], r["score"]) for r in fill(text, top_k=5)]) for text in prompts]



def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def progress_line(step: int, steps: int, losses: list[float], lr: float, seconds: float, every: int) -> str:
    recent = losses[-every:]
    per_step = seconds / step
    return (f"step {step}/{steps}: train loss {sum(recent) / len(recent):.3f} (mean of last {len(recent)}), "
            f"lr {lr:.2e}, {seconds / 60:.1f} min, {per_step:.2f} s/step, "
            f"~{(steps - step) * per_step / 60:.0f} min left, load {os.getloadavg()[0]:.1f}")


def validation_table(before: dict, after: dict, n_rows: int, length: int, share: float) -> str:
    names = {"mask": "`[MASK]` (80 %)", "random": "random token (10 %)", "unchanged": "unchanged (10 %)",
             "all": "all chosen positions"}
    baselines = {"mask": "unigram", "random": f"copy ({share:.3f})", "unchanged": f"copy ({share:.3f})",
                 "all": "unigram on `[MASK]`, copy elsewhere"}
    lines = ["| positions | n | loss at init | **loss** (± s.e.) | **top-1 accuracy** | no-context baseline | "
             "baseline loss | baseline accuracy |", "|---|---|---|---|---|---|---|---|"]
    for kind in (*KINDS, "all"):
        b, a = before[kind], after[kind]
        lines.append(f"| {names[kind]} | {a['n']:,} | {b['loss']:.3f} | **{a['loss']:.3f}** ± {a['loss_se']:.3f} | "
                     f"**{a['accuracy']:.3f}** | {baselines[kind]} | {a['baseline_loss']:.3f} | "
                     f"{a['baseline_accuracy']:.3f} |")
    return (f"{n_rows:,} held-out rows of {length} tokens (whole blocks of the text that training never saw), "
            "masks fixed by the seed.\n\n" + "\n".join(lines))


def is_long_step(step: int, args: argparse.Namespace) -> bool:
    """Whether ``step`` (0-based) trains on long rows: one step in ``long_every`` after ``long_start`` of the steps."""
    first = int(args.long_start * args.steps)
    return bool(args.long_every) and step >= first and (step - first) % args.long_every == args.long_every - 1


def write_folder(out: Path, write) -> list[str]:
    """Call ``write(folder)`` on a fresh temporary folder beside ``out``, then move its files into ``out``
    (replacing files of the same names, touching no other); return the names written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as scratch:
        write(Path(scratch))
        names = sorted(p.name for p in Path(scratch).iterdir())
        umask = os.umask(0)
        os.umask(umask)
        for name in names:
            os.chmod(Path(scratch) / name, 0o666 & ~umask)  # as a plain write would leave it
            os.replace(Path(scratch) / name, out / name)
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--overwrite", action="store_true", help="replace this script's files in a non-empty --out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--length", type=int, default=16, help="row length ([CLS] and [SEP] included) of most steps")
    parser.add_argument("--batch", type=int, default=128, help="rows per step at --length")
    parser.add_argument("--long-length", type=int, default=64, help="row length of every --long-every-th step")
    parser.add_argument("--long-batch", type=int, default=32, help="rows per step at --long-length")
    parser.add_argument("--long-every", type=int, default=3, help="every N-th step uses long rows (0: never)")
    parser.add_argument("--long-start", type=float, default=0.4, help="share of the steps before the first long one")
    parser.add_argument("--vocab", type=int, default=2560)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--every-line", type=int, default=1, help="keep every N-th line of the text (quick tries)")
    parser.add_argument("--eval-every", type=int, default=1000, help="validate every N steps (0: only at the end)")
    parser.add_argument("--log-every", type=int, default=100, help="plain progress line every N steps (no TTY)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    problem = refuse_to_clobber(args.out, args.overwrite)
    if problem:
        parser.error(problem)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    command = "python scripts/train_bert_mlm.py " + " ".join(sys.argv[1:] if argv is None else argv)

    from tqdm.auto import tqdm
    from transformers import BertForMaskedLM

    from tfs import seed_everything
    from tfs.convert.bert import bert_to_hf
    from tfs.models.bert import BertConfig, BertForPreTraining
    from tfs.models.bert_pretraining import mask_tokens
    from tfs.train import clip_gradients, lr_schedule, make_optimizer

    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_start = os.getloadavg()
    texts = sentences(args.every_line)
    tokenizer = train_tokenizer(texts, args.vocab)
    stream = token_stream(tokenizer, texts)
    tokenizer.model_max_length = args.long_length  # what the position table holds (set after encoding long lines)
    train_ids, val_ids = split_stream(stream, VAL_BLOCK, val_blocks(stream), args.seed)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    train_short, train_long = (rows_of(train_ids, n, cls_id, sep_id) for n in (args.length, args.long_length))
    val_short, val_long = (rows_of(val_ids, n, cls_id, sep_id) for n in (args.length, args.long_length))
    specials, mask_id, vocab = tokenizer.all_special_ids, tokenizer.mask_token_id, len(tokenizer)
    unigram = unigram_log_probs(train_short, vocab, specials)
    share = copy_share(train_short, specials, mask_id, vocab, args.seed + 3)
    print(f"{len(texts):,} lines, vocabulary {vocab:,}, {len(train_ids):,} train / {len(val_ids):,} validation tokens "
          f"({time.perf_counter() - started:.0f} s); visible chosen tokens that are the original: {share:.3f}",
          flush=True)

    config = BertConfig(vocab_size=vocab, max_position=args.long_length, d_model=args.d_model, n_heads=args.heads,
                        n_layers=args.layers, d_ff=4 * args.d_model, dropout=args.dropout, eps=1e-12)
    model = BertForPreTraining(config, nsp=False)
    with torch.no_grad():  # BERT's init: N(0, 0.02) for weights and embeddings, zero biases
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.02)
            elif name.endswith("bias"):
                p.zero_()
    model.to(args.device).train()
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = make_optimizer(model, args.lr, weight_decay=0.01, betas=(0.9, 0.98))

    def validate(rows: torch.Tensor) -> dict:
        return evaluate(model, rows, specials, mask_id, unigram, share, args.seed + 2)

    before = validate(val_long)
    evaluations = [{"step": 0, **before}]
    generator = torch.Generator().manual_seed(args.seed + 1)
    losses: list[float] = []
    load_samples = [os.getloadavg()[0]]
    tty = sys.stdout.isatty()
    bar = tqdm(total=args.steps, desc="MLM pretraining", mininterval=10, file=sys.stdout, disable=not tty)
    train_seconds = 0.0
    for step in range(args.steps):
        tick = time.perf_counter()
        lr = lr_schedule(step, args.lr, args.warmup, args.steps, min_lr=args.lr / 10)
        for group in optimizer.param_groups:
            group["lr"] = lr
        long_step = is_long_step(step, args)
        rows, batch = (train_long, args.long_batch) if long_step else (train_short, args.batch)
        index = torch.randint(len(rows), (batch,), generator=generator)
        masked, labels = mask_tokens(rows[index], specials, mask_id, vocab, generator=generator)
        hidden, _ = model.bert(masked.to(args.device))
        chosen = labels.to(args.device) != -100  # the decoder runs on the ~15 % chosen positions only
        loss = torch.nn.functional.cross_entropy(model.mlm(hidden[chosen]), labels.to(args.device)[chosen])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        train_seconds += time.perf_counter() - tick
        bar.update(1)
        done = step + 1
        if done % args.log_every == 0:
            load_samples.append(os.getloadavg()[0])
            if not tty:
                print(progress_line(done, args.steps, losses, lr, train_seconds, args.log_every), flush=True)
        if args.eval_every and done % args.eval_every == 0 and done < args.steps:
            report = validate(val_long)
            evaluations.append({"step": done, **report})
            print(f"step {done}: validation [MASK] loss {report['mask']['loss']:.3f} (unigram "
                  f"{report['mask']['baseline_loss']:.3f}), accuracy {report['mask']['accuracy']:.3f}", flush=True)
    bar.close()
    after, after_short = validate(val_long), validate(val_short)
    evaluations.append({"step": args.steps, **after})
    for kind in (*KINDS, "all"):
        a = after[kind]
        print(f"validation {kind:9s} n {a['n']:6d}: loss {before[kind]['loss']:.3f} -> {a['loss']:.3f} "
              f"(baseline {a['baseline_loss']:.3f}), accuracy {a['accuracy']:.3f} (baseline "
              f"{a['baseline_accuracy']:.3f})", flush=True)
    print(f"validation on {args.length}-token rows, [MASK]: loss {after_short['mask']['loss']:.3f} (unigram "
          f"{after_short['mask']['baseline_loss']:.3f}), accuracy {after_short['mask']['accuracy']:.3f}", flush=True)

    def write(folder: Path) -> None:
        hf = BertForMaskedLM(config.to_hf(pad_token_id=tokenizer.pad_token_id))
        state = {k: v.detach().cpu() for k, v in bert_to_hf(model.cpu()).items()}
        missing, unexpected = hf.load_state_dict(state, strict=False)
        assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing), \
            (missing, unexpected)
        hf.half().save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        examples = fill_mask_examples(folder, PROMPTS)
        (folder / "README.md").write_text(card(args, command, config, n_params, facts | {"examples": examples}))
        (folder / "train_log.json").write_text(json.dumps(
            {"command": command, "losses": [round(x, 4) for x in losses], "evaluations": evaluations,
             "copy_share": share, "train_seconds": round(train_seconds, 1), "load_average": load_samples,
             "validation_short_rows": after_short, "fill_mask": examples}) + "\n")
        files = sorted(p for p in folder.iterdir() if p.is_file())
        (folder / "SHA256SUMS").write_text("".join(f"{sha256(p)}  {p.name}\n" for p in files))

    short = after_short["mask"]
    facts = {
        "vocab": vocab, "lines": len(texts), "train_tokens": len(train_ids), "val_tokens": len(val_ids),
        "val_table": validation_table(before, after, len(val_long), args.long_length, share),
        "short": f"On the same validation tokens cut into {len(val_short):,} rows of {args.length} (the length of "
                 f"most training steps), `[MASK]` positions: loss {short['loss']:.3f} (unigram "
                 f"{short['baseline_loss']:.3f}), top-1 accuracy {short['accuracy']:.3f} (unigram "
                 f"{short['baseline_accuracy']:.3f}).",
        "hardware": (f"{cpu_name()} ({os.cpu_count()} cores visible), {torch.get_num_threads()} thread(s)"
                     if args.device == "cpu" else torch.cuda.get_device_name()),
        "load": (f"{load_start[0]:.1f} at the start; during training {min(load_samples):.1f} to "
                 f"{max(load_samples):.1f} (mean {sum(load_samples) / len(load_samples):.1f}, sampled every "
                 f"{args.log_every} steps)"),
        "timing": f"{train_seconds / 60:.1f} min training, {(time.perf_counter() - started) / 60:.1f} min in all",
    }
    names = write_folder(args.out, write)
    size = sum((args.out / name).stat().st_size for name in names)
    print(f"wrote {', '.join(names)} to {args.out} ({size / 1e6:.2f} MB) in "
          f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return {"before": before, "after": after, "names": names, "bytes": size}


def card(args, command: str, config, n_params: int, facts: dict) -> str:
    shown = "\n".join(f"| `{text}` | " + ", ".join(f"{token} {score:.2f}" for token, score in top) + " |"
                      for text, top in facts["examples"])
    long_steps = sum(is_long_step(step, args) for step in range(args.steps))
    short_steps = args.steps - long_steps
    tokens_seen = short_steps * args.batch * args.length + long_steps * args.long_batch * args.long_length
    first_long = int(args.long_start * args.steps)
    schedule = f"{args.steps:,} steps of {args.batch} rows × {args.length} tokens"
    if long_steps:
        schedule = (f"{args.steps:,} steps: {short_steps:,} of {args.batch} rows × {args.length} tokens and "
                    f"{long_steps:,} of {args.long_batch} rows × {args.long_length} tokens (one step in "
                    f"{args.long_every} from step {first_long:,} on)")
    return f"""---
license: mit
language: en
library_name: transformers
pipeline_tag: fill-mask
tags:
- bert
- fill-mask
- masked-language-modeling
- teaching
---
# bert-mlm: the course's own small fill-mask BERT

Built by `scripts/train_bert_mlm.py` (seed {args.seed}) for chapter 05 of *Transformers from Scratch*.
A `BertForMaskedLM` (post-LN BERT, exact GELU, decoder tied to the token embeddings) trained with
masked-language modelling only (15 % of tokens chosen; 80 % shown as `[MASK]`, 10 % as a random token,
10 % unchanged; no next-sentence prediction).

| | |
|---|---|
| data | the course's English text: Shakespeare's complete works (`tfs.data.load_corpus()`, non-empty lines) and the Rotten Tomatoes review snippets (`tfs.data.load_dataset("sentiment")`, all splits), {facts["lines"]:,} lines, tokenized and concatenated: {facts["train_tokens"]:,} training tokens; {facts["val_tokens"]:,} validation tokens held out as whole blocks of {VAL_BLOCK} |
| tokenizer | uncased WordPiece trained on the same text, {facts["vocab"]:,} tokens (why not MiniLM's 30,522 or more: see the script's docstring) |
| model | {config.n_layers} layers, d_model {config.d_model}, {config.n_heads} heads, d_ff {config.d_ff}, {config.max_position} positions, dropout {config.dropout}, {n_params:,} parameters |
| training | {schedule}: {tokens_seen / 1e6:.1f} M tokens ({tokens_seen / facts["train_tokens"]:.1f} passes over the training tokens), rows `[CLS]` … `[SEP]` cut from the stream; AdamW (β = 0.9, 0.98; weight decay 0.01 on matrices), lr {args.lr:g}: linear warm-up over {args.warmup} steps, cosine decay to {args.lr / 10:g}; gradient clipping 1.0; the loss on the chosen positions only |
| hardware | {facts["hardware"]}, torch {torch.__version__}; the CPU budget of the shipped run: at most 60 min of wall time on one thread |
| load average | {facts["load"]} |
| wall time | {facts["timing"]} |
| storage | float16 safetensors; `from_pretrained(folder, dtype=torch.float32)` for float32 |

Why most steps use short rows: in trial runs (see the script's docstring) a model trained on
{args.length}-token rows left the unigram plateau within the steps in which models on 32- or 64-token rows
had barely moved. A hypothesis for why: with the near-uniform attention of a new model a position sees
the average of its row, in which its neighbours, which say most about a hidden token, weigh more when
the row is short. The {args.long_length}-token steps, mixed in after the first {args.long_start * 100:.0f} % of
the steps, train all {config.max_position} positions, as BERT trained 90 % of its steps at 128 tokens
and the last 10 % at 512.

## Validation

{facts["val_table"]}

{facts["short"]}

The baselines read no context. On `[MASK]` positions: the unigram frequencies of the training tokens
(its top-1 is always the most frequent token). On positions that show a token: the copy baseline, which
gives the visible token the probability that a visible chosen token is the original one (measured on
training masks) and spreads the rest by the unigram; it is always right on unchanged positions and
always wrong on random ones. A model beats them only by reading the rest of the row.

## Fill-mask, three prompts

Top-5 of `pipeline("fill-mask", model=folder)`:

| prompt | top-5 (probability) |
|---|---|
{shown}

A teaching model: small, trained for under an hour on one CPU thread. It fills slots with words that fit
the neighbouring words, often not the right one; it knows no facts. Online, `"bert-base-uncased"` is the
real thing.

```python
from transformers import pipeline
import tfs.data
fill = pipeline("fill-mask", model=str(tfs.data.bert_mlm_path()))   # online: model="bert-base-uncased"
fill("to be or not to [MASK].")
```

Reproduce (same hardware, thread count and torch version give the same weights):

    {command}
"""


if __name__ == "__main__":
    main()
