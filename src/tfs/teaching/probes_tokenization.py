"""Probes and test helpers for chapter 04 (tokenization): what the visible test cells call.

Nothing here is an oracle of an exercise: the real tokenizers (``tokenizers``, ``transformers``) are the
oracles; this module builds their inputs, names the usual wrong answers, and measures speed against a
yardstick timed in the same process (never an absolute wall-clock bound).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from functools import lru_cache

from tfs import data
from tfs.teaching.checks import _fail, call, check_true

__all__ = ["SPEED_FACTOR", "basic_tokenize_mistakes", "bert_wordpieces", "bert_words", "check_batch", "check_ids",
           "check_encode_time", "check_lines", "check_speed", "first_difference", "library_bpe", "merge_pair_mistakes", "non_ascii_reviews",
           "pair_count_seconds"]

# train_bpe(text, M) must take less than SPEED_FACTOR * M one-pass pair counts of the same text, timed in the same
# process: a full recount costs more than M of them (it also merges every chunk), an incremental update far fewer.
SPEED_FACTOR = 0.5


def first_difference(received, expected) -> int:
    """Index of the first position where two sequences differ (the shorter length when one is a prefix)."""
    return next((i for i, (x, y) in enumerate(zip(received, expected)) if x != y), min(len(received), len(expected)))


def merge_pair_mistakes(ids: list[int], pair: tuple[int, int], new_id: int) -> dict[str, list[int]]:
    """Wrong ``merge_pair`` results, computed on purpose so a failure can name them."""
    a, b = pair
    overlapping, dropped, i = [], [], 0
    for i in range(len(ids)):  # every position that starts a pair, even one already used
        overlapping.append(new_id if i + 1 < len(ids) and (ids[i], ids[i + 1]) == (a, b) else ids[i])
    i = 0
    while i < len(ids) - 1:  # the loop stops one short: the last id is lost
        if (ids[i], ids[i + 1]) == (a, b):
            dropped.append(new_id)
            i += 2
        else:
            dropped.append(ids[i])
            i += 1
    first = next((i for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) == (a, b)), None)
    first_only = ids if first is None else ids[:first] + [new_id] + ids[first + 2:]
    return {"overlapping occurrences merged (after a match, skip both ids: i += 2)": overlapping,
            "the last id dropped (the loop must run to the end of the list, not len(ids) - 1)": dropped,
            "only the first occurrence merged: every occurrence, left to right, becomes new_id": first_only}


def check_ids(received, expected, name: str, hint: str | None = None, mistakes: dict | None = None) -> None:
    """Fail unless ``received == expected`` (lists or strings), naming a known mistake when ``received`` equals one."""
    if received == expected:
        return
    for description, wrong in (mistakes or {}).items():
        if received == wrong and wrong != expected:
            _fail(name, f"expected {expected!r}, received {received!r}: {description}.", hint=hint)
    if type(received) is not type(expected):
        _fail(name, f"expected a {type(expected).__name__}, received {type(received).__name__} {str(received)[:80]}.",
              hint=hint)
    at = first_difference(received, expected)
    _fail(name, f"expected {_short(expected)}, received {_short(received)} (first difference at index {at}).", hint=hint)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"


def basic_tokenize_mistakes(text: str) -> dict[str, list[str]]:
    """Wrong ``bert_basic_tokenize`` results: the whole string lower-cased with ``str.lower()`` (Greek final sigma),
    accents kept, punctuation not split off."""
    import unicodedata

    words = bert_words(text)
    final_sigma = bert_words(text.lower()) if "Σ" in text else words
    kept = [w for w, _ in data.load_bert_tokenizer().backend_tokenizer.pre_tokenizer.pre_tokenize_str(
        unicodedata.normalize("NFC", "".join(c.lower() for c in text)))] if not text.isascii() else words
    normalizer = data.load_bert_tokenizer().backend_tokenizer.normalizer
    return {"str.lower() on the whole string turns a final Σ into ς; BERT lower-cases character by character": final_sigma,
            "accents kept: NFD-decompose, then drop the characters of category Mn": kept,
            "punctuation kept inside words: every punctuation character is a word of its own": normalizer.normalize_str(
                text).split()}


def check_batch(received, expected, name: str, hint: str | None = None) -> None:
    """Fail unless ``received`` is ``{"input_ids", "attention_mask"}`` of torch.long tensors equal to ``expected``'s."""
    import torch

    check_true(isinstance(received, dict) and {"input_ids", "attention_mask"} <= set(received), name,
               f"expected a dict with 'input_ids' and 'attention_mask', received {type(received).__name__}.")
    for key in ("input_ids", "attention_mask"):
        value, wanted = received[key], expected[key]
        check_true(isinstance(value, torch.Tensor), f"{name}[{key!r}]", f"expected a tensor, received {type(value).__name__}.",
                   hint="torch.tensor(rows, dtype=torch.long)")
        check_true(value.dtype == torch.long, f"{name}[{key!r}]", f"expected dtype torch.long, received {value.dtype}.",
                   hint="both are torch.long, a 0/1 mask as tokenizers return it (not bool).")
        check_true(tuple(value.shape) == tuple(wanted.shape), f"{name}[{key!r}]",
                   f"expected shape {tuple(wanted.shape)}, received {tuple(value.shape)}.",
                   hint="pad up to the longest sequence after truncation.")
        check_true(torch.equal(value, wanted.long()), f"{name}[{key!r}]", f"expected {wanted.tolist()}, received {value.tolist()}.",
                   hint=hint if key == "input_ids" else "1 on real tokens, 0 on padding.")


def check_lines(encode, lines: list[str], expected: list[list[int]], name: str, hint: str | None = None,
                earlier: str | None = None) -> None:
    """Fail at the first line whose ``call(encode, line)`` differs from ``expected``; say which earlier exercise it uses."""
    bad = 0
    first = None
    for line, ids in zip(lines, expected):
        got = call(encode, line, name=f"{name} on {line[:40]!r}", hint=hint)
        if got != ids:
            bad += 1
            first = first or (line, got, ids)
    if first:
        line, got, ids = first
        at = first_difference(got, ids) if isinstance(got, list) else 0
        problem = (f"{bad} of {len(lines)} lines differ; first {line[:60]!r}: at token {at} expected {ids[at:at + 5]}, "
                   f"received {got[at:at + 5] if isinstance(got, list) else got}.")
        _fail(name, problem + (f" It calls your {earlier}: make its tests pass first." if earlier else ""), hint=hint)


@lru_cache(maxsize=4)
def library_bpe(size: int = 100_000, num_merges: int = 150):
    """``(merges, encode)``: the ``tokenizers`` library's BPE trained on the first ``size`` characters of the train split.

    ``merges`` are in this chapter's format (``(a, b)`` id pairs, merge i creates ``256 + i``); ``encode(text)``
    gives the library's ids translated into the same numbering.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.train_from_iterator([data.load_corpus("train")[:size]], trainer=trainers.BpeTrainer(
        vocab_size=256 + num_merges, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    to_byte = {c: byte for byte, c in data.bytes_to_unicode().items()}
    bytes_to_id = {bytes([i]): i for i in range(256)}
    merges = []
    for merge in json.loads(tokenizer.to_str())["model"]["merges"]:
        a, b = (bytes(to_byte[ch] for ch in part) for part in (merge.split(" ") if isinstance(merge, str) else merge))
        merges.append((bytes_to_id[a], bytes_to_id[b]))
        bytes_to_id[a + b] = 255 + len(merges)
    ids = {token: bytes_to_id[bytes(to_byte[ch] for ch in token)] for token in tokenizer.get_vocab()}

    def encode(text: str) -> list[int]:
        return [ids[token] for token in tokenizer.encode(text).tokens]

    return merges, encode


def bert_words(text: str) -> list[str]:
    """BERT's own basic tokenization of ``text`` (its normalizer, then its pre-tokenizer)."""
    backend = data.load_bert_tokenizer().backend_tokenizer
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]


def bert_wordpieces(word: str) -> list[str]:
    """BERT's own WordPiece split of one word."""
    return [token.value for token in data.load_bert_tokenizer().backend_tokenizer.model.tokenize(word)]


@lru_cache(maxsize=1)
def non_ascii_reviews(count: int = 40) -> tuple[str, ...]:
    """The first ``count`` review snippets of the sentiment set's validation split that hold non-ASCII characters."""
    texts = data.load_dataset("sentiment")["validation"]["text"]
    return tuple([t for t in texts if not t.isascii()][:count])


def pair_count_seconds(text: str, pretokenize, passes: int = 10, repeats: int = 3) -> float:
    """Seconds of ONE count of every adjacent byte pair over the distinct chunks of ``text`` (best of ``repeats``
    rounds of ``passes`` counts; pre-tokenization is done once, outside the clock).

    A full recount after every merge does this count (at least) once per merge: it is the speed test's yardstick.
    """
    chunk_counts = Counter(pretokenize(text))
    chunks = [(list(chunk.encode("utf-8")), freq) for chunk, freq in chunk_counts.items()]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(passes):
            counts: Counter = Counter()
            for ids, freq in chunks:
                for pair in zip(ids, ids[1:]):
                    counts[pair] += freq
        best = min(best, (time.perf_counter() - start) / passes)
    return best


def check_encode_time(bpe_encode, merges, text: str, pretokenize, sample: int = 5000, limit: float = 300) -> None:
    """Before a long demo: fail fast when ``bpe_encode`` is far slower than it should be (instead of hanging for minutes).

    It times ``bpe_encode`` on the first ``sample`` characters against pre-tokenizing them (both here, so the ratio does
    not depend on the machine): encoding chunk by chunk costs some tens of times that, a whole-text loop thousands.
    """
    part = text[:sample]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        [list(chunk.encode("utf-8")) for chunk in pretokenize(part)]
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    call(bpe_encode, part, merges, name=f"bpe_encode({len(part):,} characters)")
    seconds = time.perf_counter() - start
    ratio = seconds / max(best, 1e-6)
    check_true(ratio < limit, "bpe_encode", f"took {ratio:.0f} times as long as pre-tokenizing the same text; the cells "
               f"below would run for about {seconds * len(text) / len(part):.0f} s.",
               hint="encode each chunk of pretokenize(text) on its own: merging over the whole text costs far more.")


def check_speed(train_bpe, text: str, num_merges: int, pretokenize) -> tuple[float, float]:
    """Fail unless ``train_bpe(text, num_merges)`` beats a full recount; returns (its seconds, one pass's seconds).

    Both are timed here, one after the other, so the bound scales with the machine's speed and load.
    """
    one_pass = pair_count_seconds(text, pretokenize)
    start = time.perf_counter()
    merges = call(train_bpe, text, num_merges, name=f"train_bpe({len(text):,} characters, {num_merges})")
    seconds = time.perf_counter() - start
    check_true(isinstance(merges, list) and len(merges) == num_merges, f"train_bpe({len(text):,} characters, {num_merges})",
               f"expected {num_merges} merges, received {len(merges) if isinstance(merges, list) else type(merges).__name__}.")
    budget = SPEED_FACTOR * num_merges * one_pass
    check_true(seconds < budget, f"train_bpe({len(text):,} characters, {num_merges})",
               f"took {seconds:.2f} s, as long as {seconds / one_pass:.0f} full pair counts of the text (one takes "
               f"{one_pass:.3f} s here); an incremental update needs well under {SPEED_FACTOR * num_merges:.0f}.",
               hint="after a merge, update the counts of the chunks in where[best] only; count distinct chunks "
                    "(Counter(pretokenize(text))), not positions.")
    return seconds, one_pass
