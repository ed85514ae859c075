"""Chapter 10's speed goals on this machine: the course GPT in float32, int8 (by hand and dynamic),
bf16 autocast and (with ``--compile``) ``torch.compile``; hand-written attention against
``F.scaled_dot_product_attention``.

    python benchmarks/compress_speed.py                 # a few seconds: GPT variants and attention
    python benchmarks/compress_speed.py --compile       # adds torch.compile (cold compile: minutes on 2 cores)
    python benchmarks/compress_speed.py --repeat 5 --threads 1

Each variant runs in ``--repeat`` interleaved rounds and keeps its fastest round (the least disturbed by
other processes); the load average is printed with the table, because numbers taken on a loaded machine are
not valid for a goal. Each GPT variant's perplexity on the same held-out windows is printed beside its time,
so the rows compare equal work. Not a timed test: a table to read.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings

import torch
from torch import nn
from torch.nn import functional as F


def best_ms(function, repeat: int) -> float:
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from transformers import AutoTokenizer, GPT2LMHeadModel

    from tfs import compress as cz
    from tfs.convert.gpt import gpt_from_hf
    from tfs.data import gpt_path, load_corpus
    from tfs.nn.attention import causal_mask, scaled_dot_product_attention

    gpt = gpt_from_hf(GPT2LMHeadModel.from_pretrained(gpt_path())).eval()
    tokenizer = AutoTokenizer.from_pretrained(gpt_path())
    ids = torch.tensor(tokenizer(load_corpus("validation")[:100_000])["input_ids"])
    batch = torch.stack([ids[i * 129:(i + 1) * 129] for i in range(8)])
    x, y = batch[:, :-1], batch[:, 1:]

    variants: dict[str, tuple] = {"float32": (gpt, False)}
    hand = copy.deepcopy(gpt)
    for name, module in list(hand.named_modules()):
        if isinstance(module, nn.Linear) and name != "lm_head":
            parent, _, child = name.rpartition(".")
            setattr(hand.get_submodule(parent), child, cz.Int8Linear(module))
    variants["int8 by hand (Int8Linear)"] = (hand, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variants["int8 dynamic (torch.ao)"] = (torch.ao.quantization.quantize_dynamic(copy.deepcopy(gpt), {nn.Linear}, dtype=torch.qint8), False)
    variants["bf16 autocast"] = (gpt, True)
    if args.compile:
        start = time.perf_counter()
        compiled = torch.compile(copy.deepcopy(gpt))
        with torch.no_grad():
            compiled(x, y)
        print(f"torch.compile: first call (compile) {time.perf_counter() - start:.1f} s")
        variants["torch.compile"] = (compiled, False)

    def runner(model, autocast):
        def run():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return model(x, y)
        return run

    times = {name: [] for name in variants}
    for _ in range(args.repeat):  # interleaved rounds
        for name, (model, autocast) in variants.items():
            times[name].append(best_ms(runner(model, autocast), 1))
    print(f"load average {os.getloadavg()[0]:.1f}, {args.threads} threads, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, bf16 kernels {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")
    print(f"{'GPT variant (8 x 128 tokens)':30s} {'ms':>8s} {'x speed':>8s} {'perplexity':>11s}")
    base = min(times["float32"])
    for name, (model, autocast) in variants.items():
        loss = runner(model, autocast)()[1].float()
        print(f"{name:30s} {min(times[name]):8.2f} {base / min(times[name]):8.2f} {torch.exp(loss).item():11.3f}")

    print(f"\n{'attention, causal, 1 x 4 heads x 32':36s} {'yours ms':>9s} {'fused ms':>9s} {'x speed':>8s}")
    with torch.no_grad():
        for length in (256, 512, 1024, 2048):
            q, k, v = (torch.randn(1, 4, length, 32) for _ in range(3))
            mask = causal_mask(length)
            own = best_ms(lambda: scaled_dot_product_attention(q, k, v, mask), args.repeat)
            fused = best_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), args.repeat)
            print(f"L = {length:<32d} {own:9.2f} {fused:9.2f} {own / fused:8.2f}")


if __name__ == "__main__":
    main()
