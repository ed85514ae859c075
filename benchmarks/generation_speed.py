"""Tokens per second of greedy decoding: KV cache vs no cache, the package's loop vs ``model.generate``.

    python benchmarks/generation_speed.py                       # 6 layers, 384 wide, 256 new tokens
    python benchmarks/generation_speed.py --layers 4 --width 192 --new 128

Random weights (speed does not depend on training), one thread (``torch.set_num_threads(1)``: one-token
steps are too small to share between threads; see ../shared/STACK-NOTES.md). Each variant checks it produced
the same tokens as the others, so the numbers compare equal work. Prints a table; not a timed test.
"""

from __future__ import annotations

import argparse
import time

import torch

from tfs.convert.gpt import to_hf_model
from tfs.generate import generate
from tfs.models.gpt import GPT, GPTConfig


def no_cache_loop(model, ids, new_tokens):
    """The simplest loop: the whole sequence through the model at every step."""
    for _ in range(new_tokens):
        with torch.no_grad():
            token = model(ids)[0][:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, token], dim=1)
    return ids


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=args.vocab, block_size=args.prompt + args.new, n_layer=args.layers,
                       n_head=args.heads, n_embd=args.width)
    model = GPT(config).eval()
    hf = to_hf_model(model)
    prompt = torch.randint(args.vocab, (1, args.prompt), generator=torch.Generator().manual_seed(1))
    runs = {
        "package generate, no cache": lambda: generate(model, prompt, args.new, use_cache=False),
        "simplest loop, no cache": lambda: no_cache_loop(model, prompt, args.new),
        "package generate, KV cache": lambda: generate(model, prompt, args.new),
        "model.generate, KV cache": lambda: hf.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                                        do_sample=False, max_new_tokens=args.new, pad_token_id=0),
    }
    generate(model, prompt, 4)  # warm-up
    results, outputs = {}, {}
    for name, run in runs.items():
        outputs[name], results[name] = timed(run)
    reference = outputs["package generate, KV cache"]
    same = all(torch.equal(out, reference) for out in outputs.values())
    print(f"{args.layers} layers, width {args.width}, {args.new} new tokens after {args.prompt}, "
          f"{args.threads} thread(s); all variants produced the same tokens: {same}")
    print(f"{'variant':32}{'tokens/s':>10}{'seconds':>10}")
    for name, seconds in results.items():
        print(f"{name:32}{args.new / seconds:10.1f}{seconds:10.2f}")
    print(f"cache speed-up (package): {results['package generate, no cache'] / results['package generate, KV cache']:.1f}x; "
          f"package / model.generate with cache: {results['model.generate, KV cache'] / results['package generate, KV cache']:.2f}x")


if __name__ == "__main__":
    main()
