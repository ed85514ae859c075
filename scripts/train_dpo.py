"""Teach SmolLM2-135M-Instruct, in the course's LLaMA, to answer general questions briefly: direct preference
optimisation (DPO) of LoRA adapters on preference pairs built offline from the model's own answers by one rule.

    python scripts/train_dpo.py --pairs src/tfs/assets/checkpoints/dpo-brief/pairs.jsonl --overwrite   # the shipped run
    python scripts/train_dpo.py --out /tmp/dpo-anew                  # the same, its answers generated again
    python scripts/train_dpo.py --steps 4 --questions 16 --out /tmp/dpo-try                   # a short try
    python scripts/train_dpo.py --steps 4 --out /tmp/dpo-again --pairs src/tfs/assets/checkpoints/dpo-brief/pairs.jsonl
    python scripts/train_dpo.py --device cuda --out /tmp/dpo-gpu                 # the same run on a GPU

The pairs (:mod:`tfs.behaviour_data`): questions from four templates x 128 topics (103 topics for training, 25
held out); SmolLM2's greedy answer to each (up to 48 new tokens, the default system message) gives one pair by the
rule **chosen = the answer's first sentence, rejected = the whole answer** (at least two complete sentences, a first
sentence of at least five words; :func:`tfs.behaviour_data.preference_pair`). Both are the model's own words: the
pair differs only in where the answer stops. ``--pairs FILE`` reads pairs written by an earlier run instead of
generating them again.

The reference is the base model itself (SmolLM2-Instruct was fine-tuned on chats by its authors already: it plays
the SFT model's part), computed **once** with the adapters off (:func:`tfs.align.reference_logprobs`) and cached;
LoRA adapters of rank ``--r`` on all seven projections of every block train with the DPO loss
(:func:`tfs.align.dpo_loss`, ``--beta``) plus ``--nll-weight`` times the chosen responses' mean negative
log-likelihood per token, AdamW, warm-up then cosine decay (:func:`tfs.align.train_dpo`), each step
``--pairs-per-step`` pairs (chosen and rejected padded in separate rows), deterministic from ``--seed``.

Why the NLL term: DPO alone (``--nll-weight 0``) at a learning rate of 5e-4 collapsed. The margins grew while both
log-probabilities fell (the chosen by 76 nats on average), and the model learned to end every turn at once: empty
answers, 0 of 24 general questions right (its record ships beside the adapter: ``collapsed_run.json``, kept by
``--overwrite``). The rejected responses are the
model's own fluent text, so pushing them down damages fluency everywhere; adding the chosen's likelihood as a second
loss keeps the model writing the first sentence (the "DPO + NLL" of Pang et al. 2024, also used for Llama 3), and the
lower rate keeps the adapter near the reference.

Measured on the held-out pairs (topics never trained on), before and after: the implicit rewards
``beta (log pi - log pi_ref)`` of chosen and rejected, their margin and the preference accuracy (margin > 0); which
of the pair the base model itself finds more likely; the per-token KL(policy || reference) on the chosen responses.
On the held-out questions: the greedy answers' length in words and sentences. On the general questions of
chapter 13 (:data:`tfs.behaviour_data.GENERAL_QUESTIONS`): right answers, and the KL on the base model's answers.
The adapter is saved in float16 and read back before the "after" measurements.

CPU budget, one thread of a shared 2-core CPU (load average about 4): the shipped run read its pairs from
``pairs.jsonl`` and took 14 minutes of wall time, 9.4 minutes of CPU time (7 minutes of wall time training, 75 steps
of 5.4 s); generating the answers again adds about 9 minutes (554 s in the first run, ``collapsed_run.json``). The
card records the times and the load; ``--device cuda`` runs it on a GPU.

Output (``--out``, default ``src/tfs/assets/checkpoints/dpo-brief``, read by ``tfs.data.dpo_adapter_path()``): the
adapter (``peft`` format), ``README.md`` (the card), ``pairs.jsonl`` (every pair and the answer it came from),
``eval.json``, ``train_log.json``, ``SHA256SUMS``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from lora_run import (CHECKPOINTS, RUN_FILES, Clock, command_line, common_arguments, general_answers,
                      general_kl, hardware, install, interval, progress, setup, yaml_header)
from run_folder import check_out
from tfs import align
from tfs import behaviour_data as bd
from tfs.convert.lora import load_adapter, load_lora_state, save_adapter
from tfs.data import SMOLLM2_HUB_ID

DEFAULT_OUT = CHECKPOINTS / "dpo-brief"
OWNED = RUN_FILES + ("pairs.jsonl", "collapsed_run.json")
ANSWER_TOKENS = 48


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    common_arguments(parser, DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=75)
    parser.add_argument("--pairs-per-step", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--nll-weight", type=float, default=1.0,
                        help="weight of the chosen responses' mean NLL added to the DPO loss (0: DPO alone)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--r", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=4.0)
    parser.add_argument("--pairs", type=Path, default=None, help="read the pairs from this pairs.jsonl instead")
    parser.add_argument("--questions", type=int, default=None, help="only the first N questions of each split (a try)")
    parser.add_argument("--general", type=int, default=None,
                        help="only the first N general questions in the before/after measurement (a try)")
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------ pairs

def answer(model, tokenizer, questions: list[str]) -> list[str]:
    return align.replies(model, tokenizer, [bd.general_messages(q) for q in questions], max_new_tokens=ANSWER_TOKENS)


def build_pairs(model, tokenizer, limit: int | None = None) -> list[dict]:
    """Every question of both splits (the first ``limit``), the base model's answer, and the pair the rule makes of it
    (or none)."""
    records = []
    for split in ("train", "test"):
        questions = bd.brevity_prompts(split)[:limit]
        for question, text in zip(questions, answer(model, tokenizer, questions)):
            records.append({"split": split, "prompt": question, "answer": text,
                            "pair": bd.preference_pair(question, text)})
    return records


def pair_batches(tokenizer, pairs: list[dict], device: torch.device) -> tuple[dict, dict]:
    """Chosen and rejected examples of ``pairs`` as two padded batches (one row per response, in order)."""
    pad = tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = []
    for key in ("chosen", "rejected"):
        examples = [align.chat_example(tokenizer, bd.general_messages(p["prompt"]) + [{"role": "assistant",
                                                                                       "content": p[key]}])
                    for p in pairs]
        out.append({k: v.to(device) for k, v in align.pad_examples(examples, pad).items()})
    return out[0], out[1]


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


# ------------------------------------------------------------------------------------------ measurements

@torch.no_grad()
def pair_logprobs(model, batches: list[tuple[dict, dict]]) -> tuple[torch.Tensor, torch.Tensor]:
    chosen = torch.cat([align.batch_logprobs(model, c) for c, _ in batches])
    rejected = torch.cat([align.batch_logprobs(model, r) for _, r in batches])
    return chosen.cpu(), rejected.cpu()


def chosen_kl(model, batches: list[tuple[dict, dict]]) -> float:
    values = torch.cat([align.token_kl(model, c) for c, _ in batches])
    return values.mean().item()


def length_stats(texts: list[str]) -> dict[str, float]:
    words = [len(t.split()) for t in texts]
    sentences = [len(bd.sentence_ends(t.strip())) for t in texts]
    return {"words": sum(words) / len(words), "sentences": sum(sentences) / len(sentences),
            "one_sentence": sum(s <= 1 for s in sentences)}


# ------------------------------------------------------------------------------------------ the run

def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        check_out(args.out, args.overwrite, OWNED)
    except ValueError as error:
        raise SystemExit(f"train_dpo.py: {error}") from None
    device = setup(args)
    clock = Clock()
    model, tokenizer = align.load_smollm2()
    model.to(device)
    if args.pairs is not None:
        records = [json.loads(line) for line in args.pairs.read_text().splitlines() if line]
    else:
        records = build_pairs(model, tokenizer, args.questions)
    pairs_seconds = clock.seconds()
    train_pairs = [r["pair"] for r in records if r["split"] == "train" and r["pair"]]
    test_pairs = [r["pair"] for r in records if r["split"] == "test" and r["pair"]]
    test_questions = [r["prompt"] for r in records if r["split"] == "test"]
    general = bd.GENERAL_QUESTIONS[:args.general]
    print(f"pairs: {len(train_pairs)} train, {len(test_pairs)} held out, from {len(records)} answers "
          f"({pairs_seconds:.0f} s)", flush=True)

    order = torch.randperm(len(train_pairs), generator=torch.Generator().manual_seed(args.seed)).tolist()
    train_batches = [pair_batches(tokenizer, group, device)
                     for group in chunks([train_pairs[i] for i in order], args.pairs_per_step)]
    test_batches = [pair_batches(tokenizer, group, device) for group in chunks(test_pairs, 8)]
    reference = align.reference_logprobs(model, [b for pair in train_batches for b in pair])
    reference = list(zip(reference[0::2], reference[1::2]))             # (chosen, rejected) per training batch
    before = {"test": pair_logprobs(model, test_batches),
              "answers": [r["answer"] for r in records if r["split"] == "test"],
              "general": general_answers(model, tokenizer, general)}
    reference_seconds = clock.seconds() - pairs_seconds
    print(f"reference log-probabilities cached ({reference_seconds:.0f} s)", flush=True)

    torch.manual_seed(args.seed)
    trainable = align.add_lora_adapters(model, args.r, args.alpha)
    model.to(device)

    def step_pairs(step: int):
        index = step % len(train_batches)
        return train_batches[index][0], train_batches[index][1], reference[index]

    history = align.train_dpo(model, step_pairs, args.steps, args.lr, args.beta, args.warmup,
                              nll_weight=args.nll_weight, callback=progress("dpo", args.log_every, clock, args.steps))
    train_seconds = sum(history["seconds"])

    with tempfile.TemporaryDirectory(prefix="train_dpo-") as staging:
        staged = Path(staging)
        save_adapter(align.lora_state_dict(model), staged, args.r, args.alpha, SMOLLM2_HUB_ID)
        load_lora_state(model, {k: v.to(device) for k, v in load_adapter(staged)[0].items()})
        after = {"test": pair_logprobs(model, test_batches), "kl": chosen_kl(model, test_batches),
                 "answers": answer(model, tokenizer, test_questions),
                 "general": general_answers(model, tokenizer, general)}
        after["general_kl"] = general_kl(model, tokenizer, general, before["general"], device)
        result = summarise(args, argv, history, records, test_pairs, test_questions, general, before, after,
                           sum(p.numel() for p in trainable), clock, train_seconds, pairs_seconds, reference_seconds,
                           len(train_pairs))
        (staged / "pairs.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        (staged / "eval.json").write_text(json.dumps(result["eval"], indent=1, ensure_ascii=False) + "\n")
        (staged / "train_log.json").write_text(json.dumps(result["log"], indent=1) + "\n")
        (staged / "README.md").write_text(result["card"])
        try:
            install(staged, args.out, args.overwrite, OWNED)
        except ValueError as error:
            kept = Path(tempfile.mkdtemp(prefix="train_dpo-kept-"))
            for path in staged.iterdir():
                (kept / path.name).write_bytes(path.read_bytes())
            raise SystemExit(f"train_dpo.py: {error} The run's files are in {kept}.") from None
    print(json.dumps(result["summary"]), flush=True)
    return result


def summarise(args, argv, history, records, test_pairs, test_questions, general, before, after, n_trainable, clock,
              train_seconds, pairs_seconds, reference_seconds, n_train) -> dict:
    ref_c, ref_r = before["test"]
    pol_c, pol_r = after["test"]
    margins = args.beta * ((pol_c - ref_c) - (pol_r - ref_r))
    n = len(test_pairs)
    base_prefers = int((ref_c > ref_r).sum())
    lengths = {"before": length_stats(before["answers"]), "after": length_stats(after["answers"])}
    right = {key: sum(bd.score_general(a, k) for a, (_, k) in zip(before_or_after["general"], general, strict=True))
             for key, before_or_after in (("before", before), ("after", after))}
    q, m = len(general), len(test_questions)
    train_cpu = sum(history["cpu_seconds"])
    summary = {"steps": args.steps, "train_seconds": round(train_seconds, 1), "pairs_seconds": round(pairs_seconds, 1),
               "train_cpu_seconds": round(train_cpu, 1), "cpu_seconds": round(clock.cpu_seconds(), 1),
               "reference_seconds": round(reference_seconds, 1), "wall_seconds": round(clock.seconds(), 1),
               "train_pairs": n_train, "test_pairs": n, "accuracy": int((margins > 0).sum()),
               "base_prefers_chosen": base_prefers, "margin": round(margins.mean().item(), 4),
               "chosen_reward": round(args.beta * (pol_c - ref_c).mean().item(), 4),
               "rejected_reward": round(args.beta * (pol_r - ref_r).mean().item(), 4), "kl": round(after["kl"], 5),
               "general_kl": round(after["general_kl"], 5), "lengths": lengths, "general_right": right,
               "trainable": n_trainable, "load": clock.load_summary()}
    eval_data = {"summary": summary,
                 "pairs": [{**pair, "reference_chosen": a, "reference_rejected": b, "policy_chosen": c, "policy_rejected": d}
                           for pair, a, b, c, d in zip(test_pairs, ref_c.tolist(), ref_r.tolist(), pol_c.tolist(),
                                                       pol_r.tolist())],
                 "answers": [{"question": question, "before": b, "after": a}
                             for question, b, a in zip(test_questions, before["answers"], after["answers"])],
                 "general": [{"question": question, "keywords": list(k), "before": b, "after": a}
                             for (question, k), b, a in zip(general, before["general"], after["general"])]}
    log = {key: history[key] for key in ("loss", "nll", "chosen", "rejected", "margin", "accuracy", "seconds",
                                         "cpu_seconds")}
    header = yaml_header({"base_model": SMOLLM2_HUB_ID, "library_name": "peft", "license": "apache-2.0",
                          "pipeline_tag": "text-generation", "language": ["en"],
                          "tags": ["lora", "dpo", "transformers-from-scratch"]})
    n_answers = sum(r["split"] == "train" for r in records)
    answers_note = (f"the answers read from `{args.pairs}` (an earlier run of this script generated them)" if args.pairs
                    else f"{pairs_seconds:.0f} s generating the answers")
    card = f"""{header}
# SmolLM2-135M-Instruct + LoRA: brief answers by DPO (chapter 13)

A LoRA adapter for SmolLM2-135M-Instruct trained by `scripts/train_dpo.py` with direct preference optimisation
(Rafailov et al., 2023) on pairs built offline from the model's own answers by one rule: **chosen = the answer's first
sentence, rejected = the whole answer**. No reward model and no human labels: the rule is the preference. A teaching
adapter for a 135 M model, trained for minutes on one CPU thread. The chosen responses' likelihood is trained too
(the loss row): DPO alone at a learning rate of 5e-4 collapsed to empty answers (its record: `collapsed_run.json`).

| | |
|---|---|
| base and reference model | SmolLM2-135M-Instruct (offline: `tfs.data.smollm2_path()`; online `{SMOLLM2_HUB_ID}`); the reference is the base itself, its log-probabilities computed once and cached |
| adapter | LoRA rank {args.r}, alpha {args.alpha:g} (scale {args.alpha / args.r:g}) on q, k, v, o, gate, up, down of all 30 blocks: {n_trainable:,} parameters, stored in float16 |
| data | `pairs.jsonl`: SmolLM2's greedy answers (up to {ANSWER_TOKENS} new tokens, default system message) to {n_answers} training and {m} held-out questions (`tfs.behaviour_data.brevity_prompts`; held-out topics never trained on); the rule made {n_train} training and {n} held-out pairs |
| loss | DPO with beta {args.beta:g}{f" + {args.nll_weight:g} x the chosen responses' mean negative log-likelihood per token" if args.nll_weight else " alone"} |
| training | {args.steps} steps of {args.pairs_per_step} pairs ({args.steps * args.pairs_per_step / n_train:.2f} epochs), AdamW (lr {args.lr:g}, {args.warmup} warm-up steps, cosine to a tenth, no weight decay), clipping 1.0, seed {args.seed} |
| hardware | {hardware(args.device, args.threads)}; load average {clock.load_summary()} (a shared machine) |
| wall time | {train_seconds:.0f} s of training ({train_seconds / args.steps:.2f} s/step); {answers_note}, {reference_seconds:.0f} s for the reference and the "before" measurements; {clock.seconds():.0f} s in all |
| CPU time | {train_cpu:.0f} s of training ({train_cpu / args.steps:.2f} s/step), {clock.cpu_seconds():.0f} s in all: what the run costs on a quiet machine |

## Held-out results

{n} held-out pairs; implicit reward `beta (log pi - log pi_ref)` of a response, margin = chosen's minus rejected's.

| | before (policy = reference) | after |
|---|---|---|
| preference accuracy (margin > 0) | ties: every margin is 0 | {interval(int((margins > 0).sum()), n)} |
| mean reward margin | 0 | {margins.mean().item():.3f} (sd {margins.std().item():.3f}) |
| mean reward, chosen / rejected | 0 / 0 | {args.beta * (pol_c - ref_c).mean().item():.3f} / {args.beta * (pol_r - ref_r).mean().item():.3f} |
| the model finds the chosen more likely than the rejected | {interval(base_prefers, n)} | {interval(int((pol_c > pol_r).sum()), n)} |
| KL(policy ‖ reference) per token on the chosen responses | 0 | {after['kl']:.4f} nats |

Greedy answers to the {m} held-out questions: {lengths['before']['words']:.1f} words and {lengths['before']['sentences']:.2f}
sentences on average before, {lengths['after']['words']:.1f} words and {lengths['after']['sentences']:.2f} after; answers of at most one
sentence {lengths['before']['one_sentence']}/{m} before, {lengths['after']['one_sentence']}/{m} after (answers are cut at {ANSWER_TOKENS} tokens).

General questions ({q}, greedy): right answers {right['before']}/{q} before, {right['after']}/{q} after; mean KL(policy ‖ base)
per token on the base model's own answers {after['general_kl']:.4f} nats.

`eval.json` holds every held-out pair's four log-probabilities and every answer; `train_log.json` the loss, rewards and
seconds of each step.

## Use

```python
from tfs import align
from tfs.convert.lora import load_adapter, load_lora_state
from tfs.data import dpo_adapter_path
model, tokenizer = align.load_smollm2()
adapter, config = load_adapter(dpo_adapter_path())
align.add_lora_adapters(model, config["r"], config["alpha"])
load_lora_state(model, adapter)
```

Reproduce: `{command_line("train_dpo.py", argv)}` (same device and thread count).
"""
    return {"summary": summary, "eval": eval_data, "log": log, "card": card}


if __name__ == "__main__":
    main()
