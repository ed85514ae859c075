"""Teach SmolLM2-135M-Instruct, in the course's LLaMA, to answer a film review with one fixed JSON object: supervised
fine-tuning of LoRA adapters on chats, the loss on the assistant's tokens only, chats packed into rows.

    python scripts/train_sft.py --overwrite                          # the shipped run (replaces its files)
    python scripts/train_sft.py --steps 10 --eval 16 --out /tmp/sft-try          # a short try
    python scripts/train_sft.py --loss-on all --out /tmp/sft-all-tokens          # the loss on every token instead
    python scripts/train_sft.py --device cuda --out /tmp/sft-gpu                 # the same run on a GPU

The task (:mod:`tfs.behaviour_data`): the system message ``Reply in JSON.``, the user message
``Movie: <title>\\nReview: <snippet>`` from the sentiment set's training split, the reply
``{"movie": "<title>", "sentiment": "positive" | "negative"}``. The model never sees the schema in its prompt: it
must learn it, and the label, from the examples.

What it does, deterministic from ``--seed`` on one device and thread count: every training chat becomes an example
(:func:`tfs.align.chat_example`: labels on the assistant's reply and its ``<|im_end|>``), examples are packed in order
into rows of ``--block-size`` tokens (:func:`tfs.align.pack_examples`; a block-diagonal mask keeps each chat to
itself), the rows are shuffled, and each step takes ``--rows`` of them. LoRA adapters of rank ``--r`` (scale
``alpha / r``) on all seven projections of every block (q, k, v, out, gate, up, down) train with AdamW, linear
warm-up then cosine decay to a tenth (:func:`tfs.align.train_sft`); nothing else trains.

Before and after, on ``--eval`` held-out reviews (the test split, a fixed draw): the greedy reply, scored by
:func:`tfs.behaviour_data.score_review` (valid JSON, exact schema, title copied, right sentiment), for the base model
with the same short system message, the base model with the schema spelled out (``SCHEMA_SYSTEM``: prompting
instead of training), and the adapted model; the assistant-token loss on the first 100 of them; and on
:data:`tfs.behaviour_data.GENERAL_QUESTIONS` (SmolLM2's default system message): right answers, replies that are
JSON, and the KL divergence of the adapted model from the base on the base's own answers, token by token. The
adapter is saved in float16 and read back before the "after" measurements, so they describe the shipped file.

CPU budget: the shipped run (the defaults) used 23 minutes of CPU time on one thread (15 of them training, 3.5 s per
step of 512 tokens), which is about its wall time on a quiet 2-core CPU; on the shared machine it was built on (load
average about 5) it took 60 minutes of wall time. The card records both and the load; ``--device cuda`` runs the same
code on a GPU.

Output (``--out``, default ``src/tfs/assets/checkpoints/sft-review-json``, read by ``tfs.data.sft_adapter_path()``):
``adapter_config.json`` and ``adapter_model.safetensors`` (``peft``'s format for ``LlamaForCausalLM``), ``README.md``
(the card), ``eval.json`` (every held-out reply), ``train_log.json`` (loss and seconds per step), ``SHA256SUMS``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from lora_run import (CHECKPOINTS, RUN_FILES, Clock, command_line, common_arguments, general_answers, general_kl,
                      hardware, install, interval, progress, setup, yaml_header)
from run_folder import check_out
from tfs import align
from tfs import behaviour_data as bd
from tfs.convert.lora import load_adapter, load_lora_state, save_adapter
from tfs.data import SMOLLM2_HUB_ID

DEFAULT_OUT = CHECKPOINTS / "sft-review-json"
EVAL_SEED = 0  # the held-out draw never changes with --seed
LOSS_EXAMPLES = 100


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser, DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--rows", type=int, default=2, help="packed rows per step")
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--r", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=8.0)
    parser.add_argument("--eval", type=int, default=250, help="held-out reviews scored before and after")
    parser.add_argument("--loss-on", choices=("assistant", "all"), default="assistant",
                        help="train on the assistant's tokens (the chapter's way) or on every token")
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------ data

def every_token(example: dict) -> dict:
    """The same example with a label at every position (the next token), the prompt's included."""
    labels = torch.full_like(example["input_ids"], align.IGNORE_INDEX)
    labels[:-1] = example["input_ids"][1:]
    return {"input_ids": example["input_ids"], "labels": labels}


def training_rows(tokenizer, block_size: int, loss_on: str, seed: int) -> tuple[dict, int]:
    """Every training chat packed into rows (shuffled by ``seed``), and the number of chats."""
    chats = bd.review_chats("train", seed=seed)
    examples = [align.chat_example(tokenizer, chat["messages"]) for chat in chats]
    if loss_on == "all":
        examples = [every_token(e) for e in examples]
    packed = align.pack_examples(examples, block_size, tokenizer.convert_tokens_to_ids("<|im_end|>"))
    order = torch.randperm(len(packed["input_ids"]), generator=torch.Generator().manual_seed(seed))
    return {key: value[order] for key, value in packed.items()}, len(examples)


def step_batches(rows: dict, per_step: int, device: torch.device):
    n_rows = len(rows["input_ids"])

    def batch(step: int) -> dict:
        index = torch.arange(step * per_step, (step + 1) * per_step) % n_rows
        return {key: value[index].to(device) for key, value in rows.items()}
    return batch


# ------------------------------------------------------------------------------------------ measurements

def review_replies(model, tokenizer, rows: list[dict], system: str) -> list[str]:
    return align.replies(model, tokenizer, [bd.review_messages(row, system) for row in rows], max_new_tokens=40)


@torch.no_grad()
def assistant_loss(model, tokenizer, chats: list[dict], device: torch.device) -> float:
    """Mean cross-entropy per assistant token over ``chats`` (batches of 16, padded)."""
    total, count = 0.0, 0
    pad = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for start in range(0, len(chats), 16):
        batch = align.pad_examples([align.chat_example(tokenizer, c["messages"]) for c in chats[start:start + 16]], pad)
        logits, labels = align.labelled_logits(model, {k: v.to(device) for k, v in batch.items()})
        total += torch.nn.functional.cross_entropy(logits.float(), labels, reduction="sum").item()
        count += len(labels)
    return total / count


def review_scores(replies: list[str], rows: list[dict]) -> dict[str, int]:
    scores = [bd.score_review(reply, row) for reply, row in zip(replies, rows)]
    return {key: sum(s[key] for s in scores) for key in ("json", "schema", "movie", "sentiment")}


def general_scores(replies: list[str]) -> dict[str, int]:
    return {"right": sum(bd.score_general(r, k) for r, (_, k) in zip(replies, bd.GENERAL_QUESTIONS)),
            "json": sum(bd.score_review(r, {"movie": "", "label": 0})["json"] for r in replies)}


# ------------------------------------------------------------------------------------------ the run

def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        check_out(args.out, args.overwrite, RUN_FILES)
    except ValueError as error:
        raise SystemExit(f"train_sft.py: {error}") from None
    device = setup(args)
    clock = Clock()
    model, tokenizer = align.load_smollm2()
    model.to(device)
    rows, n_chats = training_rows(tokenizer, args.block_size, args.loss_on, args.seed)
    print(f"{n_chats} training chats in {len(rows['input_ids'])} rows of {args.block_size}; "
          f"{args.steps * args.rows} rows will be read", flush=True)

    held_out = [chat["row"] for chat in bd.review_chats("test", args.eval, seed=EVAL_SEED)]
    loss_chats = bd.review_chats("test", min(args.eval, LOSS_EXAMPLES), seed=EVAL_SEED)
    before = {"base": review_replies(model, tokenizer, held_out, bd.REVIEW_SYSTEM),
              "schema": review_replies(model, tokenizer, held_out, bd.SCHEMA_SYSTEM),
              "general": general_answers(model, tokenizer),
              "loss": assistant_loss(model, tokenizer, loss_chats, device)}
    print(f"before: {review_scores(before['base'], held_out)} (short prompt), "
          f"{review_scores(before['schema'], held_out)} (schema prompt), general {general_scores(before['general'])}, "
          f"{clock.seconds():.0f} s", flush=True)

    torch.manual_seed(args.seed)
    trainable = align.add_lora_adapters(model, args.r, args.alpha)
    model.to(device)
    eval_seconds = clock.seconds()
    history = align.train_sft(model, step_batches(rows, args.rows, device), args.steps, args.lr, args.warmup,
                              callback=progress("sft", args.log_every, clock, args.steps))
    train_seconds = sum(history["seconds"])

    with tempfile.TemporaryDirectory(prefix="train_sft-") as staging:
        staged = Path(staging)
        save_adapter(align.lora_state_dict(model), staged, args.r, args.alpha, SMOLLM2_HUB_ID)
        load_lora_state(model, {k: v.to(device) for k, v in load_adapter(staged)[0].items()})  # the shipped values
        after = {"sft": review_replies(model, tokenizer, held_out, bd.REVIEW_SYSTEM),
                 "general": general_answers(model, tokenizer),
                 "loss": assistant_loss(model, tokenizer, loss_chats, device),
                 "general_kl": general_kl(model, tokenizer, before["general"], device)}
        result = summarise(args, argv, history, before, after, held_out, n_chats, len(rows["input_ids"]),
                           sum(p.numel() for p in trainable), clock, train_seconds, eval_seconds)
        (staged / "eval.json").write_text(json.dumps(result["eval"], indent=1, ensure_ascii=False) + "\n")
        (staged / "train_log.json").write_text(json.dumps(result["log"], indent=1) + "\n")
        (staged / "README.md").write_text(result["card"])
        try:
            install(staged, args.out, args.overwrite)
        except ValueError as error:
            kept = Path(tempfile.mkdtemp(prefix="train_sft-kept-"))
            for path in staged.iterdir():
                (kept / path.name).write_bytes(path.read_bytes())
            raise SystemExit(f"train_sft.py: {error} The run's files are in {kept}.") from None
    print(json.dumps(result["summary"]), flush=True)
    return result


def summarise(args, argv, history, before, after, held_out, n_chats, n_rows, n_trainable, clock, train_seconds,
              eval_seconds) -> dict:
    scores = {"base": review_scores(before["base"], held_out), "schema": review_scores(before["schema"], held_out),
              "sft": review_scores(after["sft"], held_out)}
    general = {"base": general_scores(before["general"]), "sft": general_scores(after["general"])}
    tokens, labelled = sum(history["tokens"]), sum(history["labelled"])
    n, q = len(held_out), len(bd.GENERAL_QUESTIONS)
    train_cpu = sum(history["cpu_seconds"])
    summary = {"steps": args.steps, "train_seconds": round(train_seconds, 1), "wall_seconds": round(clock.seconds(), 1),
               "train_cpu_seconds": round(train_cpu, 1), "cpu_seconds": round(clock.cpu_seconds(), 1),
               "tokens_per_second": round(tokens / train_seconds, 1), "held_out": n, "scores": scores,
               "general": general, "loss_before": round(before["loss"], 4), "loss_after": round(after["loss"], 4),
               "general_kl": round(after["general_kl"], 5), "trainable": n_trainable, "load": clock.load_summary(),
               "loss_on": args.loss_on}
    eval_data = {"summary": summary,
                 "reviews": [{"text": row["text"], "movie": row["movie"], "label": row["label"], "base": b, "schema": s,
                              "sft": a} for row, b, s, a in zip(held_out, before["base"], before["schema"], after["sft"])],
                 "general": [{"question": question, "keywords": list(keywords), "base": b, "sft": a}
                             for (question, keywords), b, a in zip(bd.GENERAL_QUESTIONS, before["general"], after["general"])]}
    log = {key: history[key] for key in ("loss", "seconds", "cpu_seconds", "tokens", "labelled")}
    rows = "\n".join(
        f"| {label} | {interval(scores[key]['json'], n)} | {interval(scores[key]['schema'], n)} | "
        f"{interval(scores[key]['movie'], n)} | {interval(scores[key]['sentiment'], n)} |"
        for key, label in (("base", "SmolLM2, `Reply in JSON.`"), ("schema", "SmolLM2, the schema in the prompt"),
                           ("sft", "SmolLM2 + this adapter, `Reply in JSON.`")))
    majority = max(sum(r["label"] for r in held_out), n - sum(r["label"] for r in held_out)) / n
    header = yaml_header({"base_model": SMOLLM2_HUB_ID, "library_name": "peft", "license": "apache-2.0",
                          "pipeline_tag": "text-generation", "language": ["en"],
                          "tags": ["lora", "sft", "transformers-from-scratch", "json"]})
    card = f"""{header}
# SmolLM2-135M-Instruct + LoRA: a film review in, one JSON object out (chapter 13)

A LoRA adapter for SmolLM2-135M-Instruct trained by `scripts/train_sft.py` (supervised fine-tuning on chats, the loss
on the assistant's tokens only). Given the system message `Reply in JSON.` and a user message
`Movie: <title>\\nReview: <snippet>`, the adapted model answers `{{"movie": "<title>", "sentiment": "positive" | "negative"}}`.
A teaching adapter for a 135 M model, trained for minutes on one CPU thread.

| | |
|---|---|
| base model | SmolLM2-135M-Instruct (offline: `tfs.data.smollm2_path()`; online `{SMOLLM2_HUB_ID}`) |
| adapter | LoRA rank {args.r}, alpha {args.alpha:g} (scale {args.alpha / args.r:g}) on q, k, v, o, gate, up, down of all 30 blocks: {n_trainable:,} parameters, stored in float16 |
| data | the sentiment set's training split (`tfs.data.load_dataset("sentiment")`, Rotten Tomatoes snippets): {n_chats:,} chats packed into {n_rows:,} rows of {args.block_size} tokens; {args.steps * args.rows:,} rows read ({args.steps * args.rows / n_rows:.2f} epochs) |
| loss | {"assistant tokens only (each reply and its `<|im_end|>`)" if args.loss_on == "assistant" else "every token, the prompt's included"}; {labelled:,} labelled of {tokens:,} tokens trained on |
| training | {args.steps} steps of {args.rows} rows, AdamW (lr {args.lr:g}, {args.warmup} warm-up steps, cosine to a tenth, no weight decay), clipping 1.0, seed {args.seed} |
| hardware | {hardware(args.device, args.threads)}; load average {clock.load_summary()} (a shared machine) |
| wall time | {train_seconds:.0f} s of training ({train_seconds / args.steps:.2f} s/step, {tokens / train_seconds:.0f} tokens/s), {clock.seconds():.0f} s in all with evaluation |
| CPU time | {train_cpu:.0f} s of training ({train_cpu / args.steps:.2f} s/step, {tokens / train_cpu:.0f} tokens per CPU-second), {clock.cpu_seconds():.0f} s in all: what the run costs on a quiet machine |

## Held-out results

{n} reviews of the test split (a fixed draw), greedy replies; each cell is the share of replies, with Wilson's 95 % interval.
A reply counts for the schema when it is a JSON object with exactly the keys `movie` and `sentiment` and a sentiment
of `positive` or `negative`; "sentiment right" needs the schema too. The majority class is {majority:.3f} of these reviews.

| model, system message | JSON | schema | title copied | sentiment right |
|---|---|---|---|---|
{rows}

Assistant-token loss on the first {min(n, LOSS_EXAMPLES)} of them: {before['loss']:.4f} before, {after['loss']:.4f} after (nats per token).

General questions ({q} short factual questions, SmolLM2's default system message, greedy): right answers
{general['base']['right']}/{q} before, {general['sft']['right']}/{q} after; replies that are JSON {general['base']['json']}/{q} before,
{general['sft']['json']}/{q} after; mean KL(adapted ‖ base) per token on the base model's own answers {after['general_kl']:.4f} nats.

`eval.json` holds every reply; `train_log.json` the loss and seconds of each step.

## Use

```python
from tfs import align
from tfs.convert.lora import load_adapter, load_lora_state
from tfs.data import sft_adapter_path
model, tokenizer = align.load_smollm2()
adapter, config = load_adapter(sft_adapter_path())
align.add_lora_adapters(model, config["r"], config["alpha"])
load_lora_state(model, adapter)     # or align.merge_adapter(plain_model, adapter, config["alpha"])
```

With `peft`: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2_path()), sft_adapter_path())`.

Reproduce: `{command_line("train_sft.py", argv)}` (same device and thread count).
"""
    return {"summary": summary, "eval": eval_data, "log": log, "card": card}


if __name__ == "__main__":
    main()
