"""Chapter 09, Part 2: in-context learning on synthetic key -> value lookups.

Every sequence draws a **new random mapping** from ``N_KEYS`` key tokens to ``N_VALUES`` value tokens, then
shows pairs ``k1 v1 k2 v2 ...``; predicting ``v_i`` right after ``k_i`` is a few-shot query whose "shots"
are the ``i - 1`` earlier pairs. Nothing about a mapping can be memorised in the weights (it changes with
every sequence): a model that beats chance has learned to *read its prompt*, the ability GPT-3 called
in-context learning. The circuit that does it in small models is the induction head: at ``k_i`` it
attends to the token right after an earlier copy of ``k_i``, the value, and copies it.

Token ids: keys ``0 .. N_KEYS-1``, values ``N_KEYS .. N_KEYS+N_VALUES-1``. Used by ``scripts/train_icl.py``
(training) and the chapter's notebook (evaluation, attention pattern).
"""

from __future__ import annotations

import torch

__all__ = ["N_KEYS", "N_PAIRS", "N_VALUES", "VOCAB", "accuracy_vs_shots", "few_shot_batch", "icl_config", "icl_path",
           "icl_tokenizer", "training_batch"]

N_KEYS, N_VALUES, N_PAIRS = 10, 10, 9
VOCAB = N_KEYS + N_VALUES


def icl_path(verify: bool = True):
    """The shipped in-context model, built by ``scripts/train_icl.py``; float16 weights:
    ``GPT2LMHeadModel.from_pretrained(icl_path(), dtype=torch.float32)``."""
    from tfs.data import _checkpoint

    return _checkpoint("icl", "python scripts/train_icl.py", verify)


def icl_config():
    """The in-context model: a 2-layer, 128-wide GPT-2 (4 heads per layer) over the 20 key/value tokens.

    (A 64-wide one stayed on the plateau of "copy any value seen so far" for 5,000 steps; 128 wide left it
    after about 750 steps.)"""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=VOCAB, n_positions=2 * N_PAIRS, n_embd=128, n_layer=2, n_head=4, n_inner=512,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)


def icl_tokenizer():
    """The in-context model's tokenizer: its 20 tokens written ``k0`` .. ``k9`` (keys, ids 0-9) and ``v0`` .. ``v9``
    (values, ids 10-19), split at spaces, so ``tokenizer("k3 v7 k3")`` gives the ids the model reads and ``decode``
    writes them back. Any other word is refused (there is no unknown token: the model has none)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"k{i}": i for i in range(N_KEYS)} | {f"v{i}": N_KEYS + i for i in range(N_VALUES)}
    tokenizer = Tokenizer(models.WordLevel(vocab))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=2 * N_PAIRS)


def training_batch(batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids (B, 2 N_PAIRS), labels (B, 2 N_PAIRS))``: keys drawn with replacement, a fresh mapping per row;
    labels hold the values (-100 on key positions: a key is random, only a value can be inferred)."""
    mapping = torch.randint(N_KEYS, N_KEYS + N_VALUES, (batch_size, N_KEYS), generator=generator)
    keys = torch.randint(0, N_KEYS, (batch_size, N_PAIRS), generator=generator)
    values = mapping.gather(1, keys)
    ids = torch.stack([keys, values], dim=2).reshape(batch_size, 2 * N_PAIRS)
    labels = ids.clone()
    labels[:, 0::2] = -100
    return ids, labels


def few_shot_batch(n_shots: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prompts (B, 2 n_shots + 1), answers (B,))``: ``n_shots`` pairs with distinct keys, then a query key.

    With ``n_shots >= 1`` the query is one of the shown keys (the answer is in the prompt, among
    ``n_shots - 1`` distractors); with 0 shots no prompt can help and chance is ``1 / N_VALUES``.
    """
    mapping = torch.randint(N_KEYS, N_KEYS + N_VALUES, (batch_size, N_KEYS), generator=generator)
    keys = torch.stack([torch.randperm(N_KEYS, generator=generator)[:max(n_shots, 1)] for _ in range(batch_size)])
    if n_shots == 0:
        query = keys[:, 0]
        return query[:, None], mapping.gather(1, query[:, None])[:, 0]
    values = mapping.gather(1, keys)
    pick = torch.randint(0, n_shots, (batch_size,), generator=generator)
    query = keys.gather(1, pick[:, None])[:, 0]
    prompts = torch.cat([torch.stack([keys, values], 2).reshape(batch_size, 2 * n_shots), query[:, None]], 1)
    return prompts, mapping.gather(1, query[:, None])[:, 0]


@torch.no_grad()
def accuracy_vs_shots(model, shots=(0, 1, 2, 4, 8), n: int = 512, seed: int = 0) -> dict[int, float]:
    """``{n_shots: accuracy}`` of the next-token argmax (over value tokens) on ``n`` fresh prompts each."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for k in shots:
        prompts, answers = few_shot_batch(k, n, generator)
        logits = model(prompts).logits[:, -1, N_KEYS:]
        out[k] = (logits.argmax(-1) + N_KEYS).eq(answers).float().mean().item()
    return out
