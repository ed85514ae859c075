"""BERT's pretraining data: MLM masking (80/10/10) and NSP sentence pairs (chapter 05's references).

``mask_tokens`` follows Devlin et al. (2019), section 3.1: 15 % of the positions that may be masked
are chosen; of those 80 % become ``[MASK]``, 10 % a random token, 10 % stay unchanged; labels are the
original ids at the chosen positions and -100 (ignored by ``F.cross_entropy``) everywhere else.
"""

from __future__ import annotations

import random
from typing import Iterable, Sequence

import torch

__all__ = ["make_nsp_pairs", "mask_tokens"]


def mask_tokens(input_ids: torch.Tensor, special_ids: Iterable[int], mask_id: int, vocab_size: int,
                mlm_probability: float = 0.15, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked_ids, labels)``, both shaped like ``input_ids`` (int64); ``input_ids`` is not modified.

    Positions holding one of ``special_ids`` (``[CLS]``, ``[SEP]``, ``[PAD]``) are never chosen.
    """
    special = torch.tensor(sorted(set(special_ids)), dtype=input_ids.dtype, device=input_ids.device)
    maskable = ~torch.isin(input_ids, special)
    uniform = lambda: torch.rand(input_ids.shape, generator=generator, device=input_ids.device)  # noqa: E731
    chosen = (uniform() < mlm_probability) & maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    draw = uniform()  # one draw decides [MASK] (< 0.8), random (0.8..0.9) or unchanged (>= 0.9)
    masked = input_ids.clone()
    masked[chosen & (draw < 0.8)] = mask_id
    to_random = chosen & (draw >= 0.8) & (draw < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device,
                               dtype=input_ids.dtype)
    masked[to_random] = random_ids[to_random]
    return masked, labels


def make_nsp_pairs(passages: Sequence[Sequence[Sequence[int]]], cls_id: int, sep_id: int,
                   rng: random.Random) -> list[dict]:
    """One NSP example per sentence that has a next sentence in its passage.

    ``passages``: a list of passages, each a list of sentences, each a list of token ids (two
    passages at least). For sentence A at index i of a passage, with probability 1/2 B is sentence
    i + 1 (label 0, IsNext), otherwise a random sentence of another passage (label 1, NotNext).
    Returns dicts ``{"input_ids": [CLS] A [SEP] B [SEP], "token_type_ids": 0 for [CLS] A [SEP], 1 for
    B [SEP], "next_sentence_label": 0 or 1}`` (lists of ints).
    """
    if len(passages) < 2:
        raise ValueError("make_nsp_pairs needs two passages at least (NotNext takes B from another one)")
    pairs = []
    for index, passage in enumerate(passages):
        for i in range(len(passage) - 1):
            a = list(passage[i])
            if rng.random() < 0.5:
                b, label = list(passage[i + 1]), 0
            else:
                other = rng.choice([j for j in range(len(passages)) if j != index and len(passages[j])])
                b, label = list(rng.choice(passages[other])), 1
            ids = [cls_id, *a, sep_id, *b, sep_id]
            types = [0] * (len(a) + 2) + [1] * (len(b) + 1)
            pairs.append({"input_ids": ids, "token_type_ids": types, "next_sentence_label": label})
    return pairs
