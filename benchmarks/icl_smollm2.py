"""GPT-3's in-context learning on a real model: SmolLM2-135M-Instruct's accuracy against the number of shots.

    python benchmarks/icl_smollm2.py                              # the full table, saved for chapter 09
    python benchmarks/icl_smollm2.py --n-test 40 --seeds 2 --shots 1 4 --out /tmp/icl.json   # a quick check

The task is the course's film-review sentiment set (``tfs.data.load_dataset("sentiment")``, Rotten Tomatoes:
*fresh* is written ``positive``, *rotten* ``negative``). Each review is classified by the model's next-token
log-probabilities of the two label words after the prompt (``tfs.prompting``; nothing is sampled):

- **chat, 0 shots**: the instruction and the review as the user's turn of SmolLM2's chat template, the
  assistant's first token scored;
- **plain, k shots** (GPT-3's format, no template): the instruction, ``k`` demonstrations
  ``Review: ... / Sentiment: positive``, then the review; ``k = 0`` is the plain zero-shot instruction.

Demonstrations come from the **train** split, ``k`` of them drawn at random (labels unbalanced, as GPT-3 drew
them) and in a random order, for ``--seeds`` seeds per ``k``; seed ``s``'s ``k``-shot prompt holds the first ``k``
of one random sequence (``tfs.prompting.draw_demonstrations``), so a seed's longer prompts extend its shorter
ones. The evaluation set is a fixed random subset of the **test** split (``--n-test`` reviews; the splits are
disjoint by construction). For ``--order-shots`` shots, seed 0's demonstrations are also run in ``--orders``
other orders: the spread over orders alone.

Each row keeps its per-review margins (log P(positive) - log P(negative)), from which the notebook reads the
predictions. The summary gives, per prompt and shot count: the mean accuracy over seeds, its min and max, a
95 % bootstrap interval over the test reviews (of the mean over seeds), the paired difference to the plain
zero-shot prompt with its interval, the fraction predicted positive and the probability mass on the label words;
and the majority-class baseline. Deterministic from ``--seed`` on one machine (CPU, one thread).

Run at one thread; the wall time and the load average are saved with the results (a busy machine is slower).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tfs import prompting  # noqa: E402
from tfs.data import load_dataset, smollm2_path  # noqa: E402

RESULTS = prompting.RESULTS


def display_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (no machine's folders in the saved results)."""
    root = Path(__file__).resolve().parents[1]
    path = path.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def load_model():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path())
    model = AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=torch.float32).eval()
    return model, tokenizer


def run_prompt(model, tokenizer, prompt, texts, labels, batch_size) -> dict:
    """Accuracy, label balance and per-review margins of one prompt on the test reviews."""
    start = time.perf_counter()
    log_probs = prompting.score_texts(model, tokenizer, prompt, texts, prompting.SENTIMENT_WORDS, batch_size)
    margins = log_probs[:, 1] - log_probs[:, 0]                       # > 0: positive predicted
    predicted = (margins > 0).long()
    return {"accuracy": predicted.eq(labels).float().mean().item(),
            "predicted_positive": predicted.float().mean().item(),
            "label_mass": log_probs.exp().sum(1).mean().item(),
            "prefix_tokens": len(tokenizer.encode(prompt.prefix, add_special_tokens=False)),
            "seconds": round(time.perf_counter() - start, 2),
            "margins": [round(m, 4) for m in margins.tolist()]}


def summarise(runs: list[dict], labels: torch.Tensor, zero_shot: torch.Tensor) -> list[dict]:
    """One row per (prompt, shots): mean over seeds, min-max, bootstrap intervals, paired difference to zero-shot."""
    rows = []
    for key in dict.fromkeys((r["prompt"], r["shots"]) for r in runs if r["order"] is None):
        group = [r for r in runs if (r["prompt"], r["shots"]) == key and r["order"] is None]
        correct = torch.stack([(torch.tensor(r["margins"]) > 0).long().eq(labels).double() for r in group])  # (S, N)
        per_review = correct.mean(0)                                   # (N,): the mean over the prompts drawn
        accuracies = [r["accuracy"] for r in group]
        rows.append({"prompt": key[0], "shots": key[1], "prompts": len(group),
                     "mean": per_review.mean().item(), "min": min(accuracies), "max": max(accuracies),
                     "interval": prompting.bootstrap_interval(per_review),
                     "minus_plain_zero_shot": (per_review - zero_shot).mean().item(),
                     "minus_plain_zero_shot_interval": prompting.bootstrap_interval(per_review - zero_shot),
                     "predicted_positive": sum(r["predicted_positive"] for r in group) / len(group),
                     "label_mass": sum(r["label_mass"] for r in group) / len(group)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-test", type=int, default=200, help="test reviews (a fixed random subset)")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="shot counts besides 0")
    parser.add_argument("--seeds", type=int, default=5, help="demonstration draws (and orders) per shot count")
    parser.add_argument("--order-shots", type=int, default=8, help="the shot count whose orders are varied alone")
    parser.add_argument("--orders", type=int, default=4, help="extra orders of seed 0's demonstrations")
    parser.add_argument("--seed", type=int, default=0, help="the test subset's seed")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before, start = os.getloadavg()[0], time.perf_counter()

    model, tokenizer = load_model()
    sentiment = load_dataset("sentiment")
    train, test = sentiment["train"], sentiment["test"]
    test_indices = sorted(random.Random(args.seed).sample(range(len(test)), args.n_test))
    texts = [test[i]["text"] for i in test_indices]
    labels = torch.tensor([test[i]["label"] for i in test_indices])
    words = prompting.SENTIMENT_WORDS

    def demonstrations(indices):
        return [(train[i]["text"], words[train[i]["label"]]) for i in indices]

    runs = []

    def record(prompt_name, shots, seed, order, indices, prompt):
        row = {"prompt": prompt_name, "shots": shots, "seed": seed, "order": order, "demonstrations": indices,
               "positive_demonstrations": sum(train[i]["label"] for i in indices),
               **run_prompt(model, tokenizer, prompt, texts, labels, args.batch_size)}
        runs.append(row)
        print(f"{prompt_name:5s} {shots:2d} shots, seed {seed}, order {order}: accuracy {row['accuracy']:.3f}, "
              f"predicted positive {row['predicted_positive']:.2f} ({row['positive_demonstrations']}/{shots} "
              f"positive shots), label mass {row['label_mass']:.2f}  [{row['seconds']:.0f} s]", flush=True)

    record("chat", 0, None, None, [], prompting.chat_prompt(tokenizer))
    record("plain", 0, None, None, [], prompting.few_shot_prompt([]))
    longest = max(args.shots)
    for seed in range(args.seeds):
        sequence = prompting.draw_demonstrations(len(train), longest, seed)
        for shots in args.shots:
            record("plain", shots, seed, None, sequence[:shots], prompting.few_shot_prompt(demonstrations(sequence[:shots])))
    if args.orders and args.order_shots in args.shots:
        drawn = prompting.draw_demonstrations(len(train), longest, 0)[:args.order_shots]
        for order in range(1, args.orders + 1):
            shuffled = random.Random(1000 + order).sample(drawn, len(drawn))
            record("plain", args.order_shots, 0, order, shuffled, prompting.few_shot_prompt(demonstrations(shuffled)))

    zero_shot = next((torch.tensor(r["margins"]) > 0).long().eq(labels).double()
                     for r in runs if (r["prompt"], r["shots"]) == ("plain", 0))
    majority = int(labels.float().mean() >= 0.5)
    result = {
        "model": "SmolLM2-135M-Instruct (tfs.data.smollm2_path(), float32)",
        "task": "sentiment (tfs.data.load_dataset('sentiment')): label 1 fresh = 'positive', label 0 rotten = 'negative'",
        "instruction": prompting.INSTRUCTION, "chat_instruction": prompting.CHAT_INSTRUCTION, "label_words": list(words),
        "command": "python benchmarks/icl_smollm2.py " + " ".join(sys.argv[1:]),
        "args": {k: (display_path(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "test_indices": test_indices, "test_labels": labels.tolist(),
        "majority": {"label": words[majority], "accuracy": labels.eq(majority).float().mean().item()},
        "summary": summarise(runs, labels, zero_shot),
        "runs": runs,
        "seconds": round(time.perf_counter() - start, 1),
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores, {args.threads} thread(s)",
        "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
        "torch": torch.__version__, "date": date.today().isoformat(),
    }
    print(f"\nmajority class ({result['majority']['label']}): {result['majority']['accuracy']:.3f} on {args.n_test} test reviews")
    for row in result["summary"]:
        low, high = row["interval"]
        print(f"{row['prompt']:5s} {row['shots']:2d} shots ({row['prompts']} prompts): mean {row['mean']:.3f} "
              f"[{low:.3f}, {high:.3f}], min {row['min']:.3f}, max {row['max']:.3f}, "
              f"minus plain zero-shot {row['minus_plain_zero_shot']:+.3f}, predicted positive {row['predicted_positive']:.2f}")
    print(f"{result['seconds']:.0f} s; load average {load_before:.2f} before, {result['load_average_after']:.2f} after")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
