"""What ``train_sft.py`` and ``train_dpo.py`` share: the command line common to both, the output folder's checks,
the machine's description, the load average while training, and the files written beside a LoRA adapter
(``SHA256SUMS``, the card's YAML header). Not a course module: scripts only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from run_folder import check_out  # noqa: E402
from train_gpt import hardware  # noqa: E402  (the CPU's name, cores and threads, or the GPU's name)

CHECKPOINTS = REPO / "src" / "tfs" / "assets" / "checkpoints"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
RUN_FILES = ADAPTER_FILES + ("README.md", "SHA256SUMS", "eval.json", "train_log.json")


def common_arguments(parser: argparse.ArgumentParser, default_out: Path) -> None:
    parser.add_argument("--out", type=Path, default=default_out, help="output folder (default: the shipped one)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run of this script")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the shipped runs used 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--log-every", type=int, default=10)


def install(staged: Path, out: Path, overwrite: bool, owned: tuple[str, ...] = RUN_FILES) -> None:
    """Copy the staged files into ``out`` (checked again: it may have changed while training), then ``SHA256SUMS``
    (of the owned files an earlier run left there too)."""
    check_out(out, overwrite, owned)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(staged.iterdir()):
        shutil.copyfile(path, out / path.name)
    write_sums(out, owned)


def write_sums(out: Path, owned: tuple[str, ...] = RUN_FILES) -> None:
    """``SHA256SUMS`` of every file of ``out`` this script owns (those written now and those it keeps)."""
    names = sorted(p.name for p in out.iterdir() if p.name in owned and p.name != "SHA256SUMS")
    sums = [f"{hashlib.sha256((out / name).read_bytes()).hexdigest()}  {name}" for name in names]
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n")


def setup(args: argparse.Namespace) -> torch.device:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return torch.device(args.device)


def command_line(script: str, argv: list[str]) -> str:
    return " ".join(["python", f"scripts/{script}", *map(shlex.quote, argv)])


class Clock:
    """Wall time since the start, and the 1-minute load average sampled at each :meth:`sample`."""

    def __init__(self):
        self.started, self.cpu_started = time.time(), time.process_time()
        self.loads: list[float] = []

    def sample(self) -> float:
        load = os.getloadavg()[0]
        self.loads.append(load)
        return load

    def seconds(self) -> float:
        return time.time() - self.started

    def cpu_seconds(self) -> float:
        """CPU time of this process (all its threads): what the run costs, whatever else the machine runs."""
        return time.process_time() - self.cpu_started

    def load_summary(self) -> str:
        if not self.loads:
            return "not sampled"
        return f"{min(self.loads):.1f} to {max(self.loads):.1f} (mean {sum(self.loads) / len(self.loads):.1f})"


def progress(name: str, every: int, clock: Clock, steps: int):
    """A training callback printing one line every ``every`` steps: step, mean of the last losses, s/step, load."""
    def callback(step: int, history: dict) -> None:
        if (step + 1) % every and step + 1 != steps:
            return
        recent = history["loss"][-every:]
        print(f"{name} step {step + 1}/{steps}: loss {sum(recent) / len(recent):.4f}, "
              f"{sum(history['seconds'][-every:]) / len(recent):.2f} s/step "
              f"({sum(history['cpu_seconds'][-every:]) / len(recent):.2f} CPU s/step), {clock.seconds():.0f} s, "
              f"load {clock.sample():.1f}", flush=True)
    return callback


def yaml_header(fields: dict) -> str:
    """A model card's YAML metadata block (the Hugging Face Hub reads it): scalars and lists of strings."""
    lines = ["---"]
    for key, value in fields.items():
        if isinstance(value, (list, tuple)):
            lines.append(f"{key}:")
            lines += [f"- {json.dumps(item)}" for item in value]
        else:
            lines.append(f"{key}: {json.dumps(value) if isinstance(value, str) else value}")
    return "\n".join(lines + ["---", ""])


def interval(successes: int, n: int) -> str:
    """``0.733 [0.680, 0.780]`` (Wilson's 95 % interval)."""
    from tfs.align import wilson_interval

    low, high = wilson_interval(successes, n)
    return f"{successes / n:.3f} [{low:.3f}, {high:.3f}]"


def general_answers(model, tokenizer, questions: list[tuple[str, tuple]]) -> list[str]:
    """Greedy answers to ``questions`` (chapter 13's general questions, :data:`tfs.behaviour_data.GENERAL_QUESTIONS`,
    or the first of them) with SmolLM2's default system message, up to 48 new tokens."""
    from tfs import align
    from tfs import behaviour_data as bd

    return align.replies(model, tokenizer, [bd.general_messages(q) for q, _ in questions], max_new_tokens=48)


def general_kl(model, tokenizer, questions: list[tuple[str, tuple]], answers: list[str], device) -> float:
    """Mean per-token KL(adapted || base) over ``answers`` (the base model's own) to the general ``questions``."""
    from tfs import align
    from tfs import behaviour_data as bd

    chats = [bd.general_messages(q) + [{"role": "assistant", "content": a}]
             for (q, _), a in zip(questions, answers, strict=True)]
    batch = align.pad_examples([align.chat_example(tokenizer, c) for c in chats],
                               tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return align.token_kl(model, {k: v.to(device) for k, v in batch.items()}).mean().item()
