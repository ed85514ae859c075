"""Collectors for chapter 07 (generation): run the learner's filters and decoder on seeded inputs.

Inputs come from the generators below; ``autograder/judges/ch07.py`` imports them to rebuild the inputs."""

from __future__ import annotations

import torch

TOP_K_CASES = [(1, 5), (3, 5), (7, 7), (50, 9)]  # (top_k, rows); the last: k larger than the vocabulary
TOP_P_CASES = [0.05, 0.5, 0.8, 0.95, 1.0]
GEN_VOCAB, GEN_BLOCK, GEN_EOS, GEN_PAD = 40, 40, 18, 1  # greedy meets 18 in every row, at steps 9, 6, 12


def filter_logits(seed: int, rows: int = 6, vocab: int = 30) -> torch.Tensor:
    """Seeded logits ``(rows, vocab)`` in float64, with a tie and a row that is nearly one-hot."""
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(rows, vocab, generator=g, dtype=torch.float64)
    logits[0, 1] = logits[0, 2] = logits[0].max() + 1  # a tie at the top
    logits[-1, 4] = 25.0  # nearly all the mass on one token
    return logits


def gen_model():
    """The package GPT with seeded random weights (large enough to give peaked distributions)."""
    from tfs.models.gpt import GPT, GPTConfig

    torch.manual_seed(70)
    model = GPT(GPTConfig(vocab_size=GEN_VOCAB, block_size=GEN_BLOCK, n_layer=2, n_head=2, n_embd=32))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.mul_(8.0)
    return model.eval()


def gen_prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(71)
    return [torch.randint(5, GEN_VOCAB, (n,), generator=g).tolist() for n in (6, 2, 4)]


def _run(function, *args, **kwargs):
    try:
        out = function(*args, **kwargs)
    except Exception as error:  # the judge turns it into a course message
        return {"error": f"{type(error).__name__}: {error}"}
    if not isinstance(out, torch.Tensor):
        return {"error": f"returned {type(out).__name__}, not a tensor"}
    return {"out": out}


def top_k(top_k_filter) -> list:
    results = []
    for seed, (k, rows) in enumerate(TOP_K_CASES):
        logits = filter_logits(seed, rows)
        results.append(_run(top_k_filter, logits.clone(), k))
    return results


def top_p(top_p_filter) -> list:
    return [_run(top_p_filter, filter_logits(10 + i), p) for i, p in enumerate(TOP_P_CASES)]


def generate(generate) -> dict:
    """Greedy continuations: each prompt alone, the left-padded batch, and a batch that meets EOS."""
    from tfs.generate import left_pad

    model = gen_model()
    prompts = gen_prompts()
    data = {"alone": [_run(generate, model, torch.tensor([p]), 12) for p in prompts]}
    ids, mask = left_pad(prompts, GEN_PAD)
    data["batch"] = _run(generate, model, ids, 12, attention_mask=mask)
    data["eos"] = _run(generate, model, ids, 12, attention_mask=mask, eos_token_id=GEN_EOS)
    return data
