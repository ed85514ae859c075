"""Chapter 10's speed goals on this machine: the course GPT in float32, int8 (by hand and dynamic),
bf16 autocast and (with ``--compile``) ``torch.compile``; hand-written attention against
``F.scaled_dot_product_attention``.

    python benchmarks/compress_speed.py                 # a few seconds: GPT variants and attention
    python benchmarks/compress_speed.py --compile       # adds torch.compile (a cold compile, in a fresh cache folder)
    python benchmarks/compress_speed.py --repeat 5 --threads 1

Each variant runs in ``--repeat`` interleaved rounds, in a new order each round (``tfs.compress.timings``), and
is reported as the median of its rounds with their range; a variant is called faster or slower than float32
only where the two ranges do not overlap. The load average is printed with the table, because numbers taken
on a loaded machine are not valid for a goal. Each GPT variant's perplexity on the same held-out windows is
printed beside its time, so the rows compare equal work. Whether this CPU multiplies bfloat16 natively is
measured (one 1024 x 1024 product in each dtype), not read from a flag. Not a timed test: a table to read.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import os
import shutil
import tempfile
import time
import warnings

import torch
from torch import nn
from torch.nn import functional as F


def cpu_flags(*names: str) -> str:
    try:
        flags = set(open("/proc/cpuinfo").read().split())
    except OSError:
        return "unknown"
    return " ".join(name for name in names if name in flags) or "none of " + ", ".join(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from transformers import AutoTokenizer, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from tfs import compress as cz
    from tfs.convert.gpt import gpt_from_hf
    from tfs.data import gpt_path, load_corpus
    from tfs.nn.attention import causal_mask, scaled_dot_product_attention

    hf_logging.disable_progress_bar()                                      # no "Loading weights" bar
    gpt = gpt_from_hf(GPT2LMHeadModel.from_pretrained(gpt_path())).eval()
    tokenizer = AutoTokenizer.from_pretrained(gpt_path())
    ids = torch.tensor(tokenizer(load_corpus("validation")[:100_000])["input_ids"])
    batch = torch.stack([ids[i * 129:(i + 1) * 129] for i in range(8)])
    x, y = batch[:, :-1], batch[:, 1:]

    variants: dict[str, tuple] = {"float32": (gpt, False)}
    variants["int8 by hand (Int8Linear)"] = (cz.replace_linears(gpt, cz.Int8Linear, skip={"lm_head"}), False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        variants["int8 dynamic (torch.ao)"] = (torch.ao.quantization.quantize_dynamic(copy.deepcopy(gpt), {nn.Linear}, dtype=torch.qint8), False)
    variants["bf16 autocast"] = (gpt, True)
    if args.compile:  # a cold compile, as on a learner's first run: no code cached by an earlier run
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache = tempfile.mkdtemp(prefix="inductor-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
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

    times = cz.timings({name: runner(model, autocast) for name, (model, autocast) in variants.items()}, repeats=args.repeat)
    print(f"load average {os.getloadavg()[0]:.1f}, {args.threads} threads, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"flags: {cpu_flags('avx512_vnni', 'avx_vnni', 'amx_int8', 'avx512_bf16', 'amx_bf16')}")
    print(f"{'GPT variant (8 x 128 tokens)':30s} {'ms, median [range]':>24s}  {'vs float32':30s} {'perplexity':>10s}")
    for name, (model, autocast) in variants.items():
        loss = runner(model, autocast)()[1].float()
        versus = "" if name == "float32" else times[name].versus(times["float32"])
        print(f"{name:30s} {times[name].ms():>24s}  {versus:30s} {torch.exp(loss).item():10.3f}")

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a16, b16 = a.bfloat16(), b.bfloat16()
    matmul = cz.timings({"float32": lambda: a @ b, "bfloat16": lambda: a16 @ b16}, repeats=args.repeat)
    print(f"\n1024 x 1024 matmul: float32 {matmul['float32'].ms()}, bfloat16 {matmul['bfloat16'].ms()}: "
          f"bfloat16 {matmul['bfloat16'].versus(matmul['float32'])}")

    print(f"\n{'attention, causal, 1 x 4 heads x 32':36s} {'yours, ms':>24s} {'fused, ms':>24s}  fused vs yours")
    with torch.no_grad():
        for length in (256, 512, 1024, 2048):
            q, k, v = (torch.randn(1, 4, length, 32) for _ in range(3))
            mask = causal_mask(length)
            timed = cz.timings({"own": lambda: scaled_dot_product_attention(q, k, v, mask),
                                "fused": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)}, repeats=args.repeat)
            print(f"L = {length:<32d} {timed['own'].ms():>24s} {timed['fused'].ms():>24s}  {timed['fused'].versus(timed['own'])}")


if __name__ == "__main__":
    main()
