"""Greedy generation with SmolLM2-135M: the package's LLaMA and KV cache against ``LlamaForCausalLM.generate``.

    python benchmarks/llama_generation.py                   # 64-token prompt, 128 new tokens, 3 rounds, 1 thread
    python benchmarks/llama_generation.py --rounds 5 --threads 2 --out benchmarks/results/llama_generation.txt

Both sides hold the same float32 weights (``tfs.convert.llama.llama_from_hf``), run with the same number of threads
in the same process, and must produce the same tokens. The goal (chapter 12's issue): the package's tokens per second
at least those of ``generate`` (ratio >= 1.0). Three measurements, each in interleaved rounds; the table's columns
keep each side's fastest round (the least disturbed by other processes), the ratios pair the runs of each round:

- **end to end**: ``tfs.generate.generate(model, prompt, 128)`` against ``model.generate(..., max_new_tokens=128,
  do_sample=False)``, no end-of-sequence stop; the ratio reported is the median over rounds of each round's
  ratio (the two runs of a round are next to each other in time; their order alternates between rounds);
- **prefill**: one forward pass over the 64-token prompt that fills an empty cache (both models);
- **decode**: the median time of one cached step (one token in, its logits out) over the 128 steps, each side with
  its own cache (``tfs.nn.KVCache`` / ``DynamicCache``).

The cache's memory after 64 + 128 tokens is read from the tensors and compared with the formula. The load average is
printed before and after: numbers taken on a loaded machine are valid as ratios only. Not a timed test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone

import torch


def load(threads: int):
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tfs.convert.llama import llama_from_hf
    from tfs.data import smollm2_path

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    hf = AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=torch.float32).eval()
    return hf, llama_from_hf(hf), AutoTokenizer.from_pretrained(smollm2_path())


def prompt_ids(tokenizer, length: int) -> torch.Tensor:
    """The first ``length`` tokens of the course's Shakespeare validation text."""
    from tfs.data import load_corpus

    return torch.tensor([tokenizer(load_corpus("validation")[:4000])["input_ids"][:length]])


def timed(function):
    start = time.perf_counter()
    out = function()
    return time.perf_counter() - start, out


@torch.no_grad()
def step_times(forward, prompt: torch.Tensor, new_tokens: int) -> tuple[float, list[float], torch.Tensor]:
    """Prefill seconds, each cached step's seconds, and the tokens, for ``forward(ids, state) -> (logits, state)``."""
    prefill, (logits, state) = timed(lambda: forward(prompt, None))
    tokens, steps = [], []
    token = logits[:, -1].argmax(-1, keepdim=True)
    for _ in range(new_tokens):
        tokens.append(token)
        seconds, (logits, state) = timed(lambda: forward(token, state))
        steps.append(seconds)
        token = logits[:, -1].argmax(-1, keepdim=True)
    return prefill, steps, torch.cat(tokens, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also append the table to this file")
    args = parser.parse_args()

    from tfs.generate import generate, kv_cache_bytes
    from tfs.nn import KVCache

    load_before = os.getloadavg()
    hf, model, tokenizer = load(args.threads)
    prompt = prompt_ids(tokenizer, args.prompt)
    ones = torch.ones_like(prompt)

    def ours(ids, cache):
        cache = KVCache() if cache is None else cache
        return model(ids, cache=cache)[0], cache

    def theirs(ids, cache):
        out = hf(input_ids=ids, past_key_values=cache, use_cache=True)
        return out.logits, out.past_key_values

    def end_to_end(name):
        if name == "package":
            return timed(lambda: generate(model, prompt, args.new))
        with torch.no_grad():
            return timed(lambda: hf.generate(input_ids=prompt, attention_mask=ones, max_new_tokens=args.new,
                                             do_sample=False, eos_token_id=None))

    rows = {name: {"total": [], "prefill": [], "decode": []} for name in ("package", "transformers")}
    outputs = {}
    for round_ in range(args.rounds):
        order = ("package", "transformers") if round_ % 2 == 0 else ("transformers", "package")  # neither always first
        for name in order:
            seconds, outputs[name] = end_to_end(name)
            rows[name]["total"].append(seconds)
        for name in order:
            prefill, steps, tokens = step_times(ours if name == "package" else theirs, prompt, args.new)
            rows[name]["prefill"].append(prefill)
            rows[name]["decode"].append(statistics.median(steps))
            outputs[f"{name} steps"] = tokens
    same = (torch.equal(outputs["package"], outputs["transformers"])
            and torch.equal(outputs["package steps"], outputs["transformers steps"])
            and torch.equal(outputs["package"][:, args.prompt:], outputs["package steps"]))

    cache = KVCache()
    with torch.no_grad():
        model(outputs["package"][:, :-1], cache=cache)
        past = hf(input_ids=outputs["package"][:, :-1], use_cache=True).past_key_values
    length = outputs["package"].shape[1] - 1
    c = model.config
    hf_bytes = sum(t.numel() * t.element_size() for layer in past.layers for t in (layer.keys, layer.values))
    formula = kv_cache_bytes(c.n_layer, c.n_kv_head, c.d_head, length)
    load_after = os.getloadavg()

    best = {name: {key: min(values) for key, values in row.items()} for name, row in rows.items()}
    speed = {name: args.new / best[name]["total"] for name in best}

    def paired(key):  # the ratio transformers / package of each round: the two ran next to each other
        ratios = [t / p for t, p in zip(rows["transformers"][key], rows["package"][key])]
        return f"{statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f})"

    lines = [
        f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()} {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {args.threads} thread(s), SmolLM2-135M-Instruct float32, prompt {args.prompt} tokens, "
        f"{args.new} new tokens, greedy, {args.rounds} interleaved rounds (columns: each side's fastest round)",
        f"# command: python benchmarks/llama_generation.py --prompt {args.prompt} --new {args.new} --rounds "
        f"{args.rounds} --threads {args.threads}",
        f"# load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
        f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}",
        f"{'':34}{'tokens/s':>10}{'prefill ms':>12}{'decode ms/token':>17}   end-to-end rounds (s)",
    ]
    for name, label in (("package", "package LLaMA + tfs.generate"), ("transformers", "LlamaForCausalLM.generate")):
        rounds = " ".join(f"{s:.2f}" for s in rows[name]["total"])
        lines.append(f"{label:34}{speed[name]:>10.1f}{1e3 * best[name]['prefill']:>12.0f}"
                     f"{1e3 * best[name]['decode']:>17.1f}   {rounds}")
    lines += [
        f"tokens/s ratio package / generate, median of the rounds' paired ratios: {paired('total')} (goal >= 1.0); "
        f"fastest rounds: {speed['package'] / speed['transformers']:.2f}",
        f"decode (per token) ratio {paired('decode')}; prefill ratio {paired('prefill')}; same tokens: {same}",
        f"KV cache after {length} tokens: package {cache.nbytes():,} bytes, transformers {hf_bytes:,}, formula "
        f"2 x {c.n_layer} layers x {c.n_kv_head} KV heads x {c.d_head} x 4 B x {length} = {formula:,} "
        f"({formula // length:,} bytes per token)",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as file:
            file.write(text + "\n\n")


if __name__ == "__main__":
    main()
