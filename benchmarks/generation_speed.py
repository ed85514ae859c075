"""Tokens per second of greedy decoding: KV cache vs no cache, the package's loop vs ``model.generate``.

    python benchmarks/generation_speed.py                       # 6 layers, 384 wide, 256 new tokens, 3 rounds
    python benchmarks/generation_speed.py --layers 4 --width 192 --new 128 --repeat 1
    python benchmarks/generation_speed.py --course --repeat 5   # the course GPT's shape, 120 new tokens

Random weights (speed does not depend on training), one thread (``torch.set_num_threads(1)``: one-token
steps are too small to share between threads; see ../shared/STACK-NOTES.md). Each variant checks it produced
the same tokens as the others, so the numbers compare equal work. The variants run in ``--repeat``
interleaved rounds and each keeps its fastest round (the least disturbed by other processes); the load
average is printed with the table, because numbers taken on a loaded machine are not valid for a goal.

``learner-style loop`` is chapter 07's solution ``generate`` (the attention mask and the position ids passed
at every step, the ids grown with ``torch.cat``), the loop the chapter compares with ``model.generate``.
Besides the plain variants, two rows measure one suspected cost of a cached step:
``fused LayerNorm`` runs the same generation with the package's ``LayerNorm.forward`` (mean, var, subtract,
sqrt, divide, scale, shift: 7 operations) swapped for ``F.layer_norm`` (1 operation) during that run only,
to show how much of a cached step the per-operation overhead of 13 small LayerNorms costs.
Not a timed test: a table to read. Rounds differ by up to ~30 % under load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import torch
from torch.nn import functional as F

from tfs.convert.gpt import to_hf_model
from tfs.generate import generate
from tfs.models.gpt import GPT, GPTConfig
from tfs.nn import KVCache, layers


def learner_loop(model, ids, new_tokens):
    """Chapter 07's solution ``generate`` (greedy): the mask and the position ids passed at every step."""
    mask, new, cache = torch.ones_like(ids), ids, KVCache()
    for _ in range(new_tokens):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -new.shape[1]:]
        with torch.no_grad():
            logits = model(new, attention_mask=mask, cache=cache, position_ids=positions)[0][:, -1, :]
        token = logits.argmax(-1)
        ids = torch.cat([ids, token[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        new = token[:, None]
    return ids


def no_cache_loop(model, ids, new_tokens):
    """The simplest loop: the whole sequence through the model at every step."""
    for _ in range(new_tokens):
        with torch.no_grad():
            token = model(ids)[0][:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, token], dim=1)
    return ids


@contextlib.contextmanager
def fused_layer_norm():
    """Run the package's LayerNorm as one ``F.layer_norm`` call (same result to float32 rounding)."""
    original = layers.LayerNorm.forward

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)

    layers.LayerNorm.forward = forward
    try:
        yield
    finally:
        layers.LayerNorm.forward = original


def timed(function):
    start = time.perf_counter()
    out = function()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--vocab", type=int, default=85)
    parser.add_argument("--new", type=int, default=256)
    parser.add_argument("--prompt", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; each variant keeps its fastest")
    parser.add_argument("--course", action="store_true",
                        help="the course GPT's shape (4 layers, 128 wide, 4 heads, vocabulary 1024, 128 positions): "
                             "120 new tokens after 8")
    args = parser.parse_args()
    if args.course:
        args.layers, args.width, args.heads, args.vocab, args.new, args.prompt = 4, 128, 4, 1024, 120, 8
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=args.vocab, block_size=args.prompt + args.new, n_layer=args.layers,
                       n_head=args.heads, n_embd=args.width)
    model = GPT(config).eval()
    hf = to_hf_model(model)
    prompt = torch.randint(args.vocab, (1, args.prompt), generator=torch.Generator().manual_seed(1))

    def with_fused(run):
        def wrapped():
            with fused_layer_norm():
                return run()
        return wrapped

    runs = {
        "package generate, no cache": lambda: generate(model, prompt, args.new, use_cache=False),
        "simplest loop, no cache": lambda: no_cache_loop(model, prompt, args.new),
        "package generate, KV cache": lambda: generate(model, prompt, args.new),
        "learner-style loop, KV cache": lambda: learner_loop(model, prompt, args.new),
        "model.generate, KV cache": lambda: hf.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                                        do_sample=False, max_new_tokens=args.new, pad_token_id=0),
        "no cache, fused LayerNorm": with_fused(lambda: generate(model, prompt, args.new, use_cache=False)),
        "KV cache, fused LayerNorm": with_fused(lambda: generate(model, prompt, args.new)),
    }
    generate(model, prompt, 4)  # warm-up
    hf.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=4,
                pad_token_id=0)
    load_before = os.getloadavg()[0]
    results, outputs = {}, {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            outputs[name], seconds = timed(run)
            results[name] = min(results.get(name, float("inf")), seconds)
    load_after = os.getloadavg()[0]
    reference = outputs["package generate, KV cache"]
    same = all(torch.equal(out, reference) for out in outputs.values())
    print(f"{args.layers} layers, width {args.width}, {args.new} new tokens after {args.prompt}, "
          f"{args.threads} thread(s), best of {args.repeat} interleaved round(s); load average (1 min) "
          f"{load_before:.2f} before, {load_after:.2f} after; all variants produced the same tokens: {same}")
    print(f"{'variant':32}{'tokens/s':>10}{'seconds':>10}")
    for name, seconds in results.items():
        print(f"{name:32}{args.new / seconds:10.1f}{seconds:10.2f}")
    r = results
    print(f"cache speed-up (package): {r['package generate, no cache'] / r['package generate, KV cache']:.1f}x; "
          f"package / model.generate with cache: {r['model.generate, KV cache'] / r['package generate, KV cache']:.2f}x; "
          f"learner-style / model.generate: {r['model.generate, KV cache'] / r['learner-style loop, KV cache']:.2f}x")
    print(f"with a fused LayerNorm: cache speed-up {r['no cache, fused LayerNorm'] / r['KV cache, fused LayerNorm']:.1f}x; "
          f"package / model.generate {r['model.generate, KV cache'] / r['KV cache, fused LayerNorm']:.2f}x")


if __name__ == "__main__":
    main()
