"""Chapter 04 (tokenization): judges. Oracles: the ``tokenizers`` library (a BPE model built from the same merges,
or trained by the library), GPT-2's and BERT's own tokenizers (``tfs.data.load_gpt2_tokenizer()``,
``load_bert_tokenizer()``), a full recount of pair counts written here, and analytic results; never the solution.
Inputs are rebuilt from the collector module. Each judge re-checks its cell's visible cases too, and a failure names
the likely mistake, found by computing that mistake here, or the earlier exercise the failing one calls."""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

import regex
import torch

from tfs import data
from tfs.grader.collectors import ch04 as inputs
from tfs.grader.judging import JudgeFailure, expect, finite, results

SPEED_FACTOR = 0.5  # train_bpe may take < SPEED_FACTOR * merges one-pass pair counts (a full recount takes > 1 per merge)
ORACLE_PREFIX = 30   # merges of the speed test checked against a full recount (the counts test checks all 60 of its own)


def _fail(name: str, problem: str, hint: str | None = None):
    raise JudgeFailure(f"✗ {name}: {problem}" + (f"\n  Hint: {hint}" if hint else ""))


def _raised(value, name: str, hint: str | None = None) -> None:
    if isinstance(value, dict) and "raised" in value:
        _fail(name, f"your function raised {value['raised']}", hint)


def _show(value) -> str:
    if isinstance(value, dict) and "repr" in value:
        return f"a {value['type']} ({value['repr'][:80]})"
    text = repr(value)
    return text if len(text) <= 160 else text[:160] + "…"


def _first_difference(a, b) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _same(received, expected, name: str, hint: str | None = None, mistakes=None) -> None:
    """Fail unless the lists are equal; name a mistake (``{description: wrong result}``, or a function returning
    that dict) whose result ``received`` equals."""
    _raised(received, name, hint)
    if received == expected:
        return
    if not isinstance(received, list):
        _fail(name, f"expected a list, received {_show(received)}.", hint)
    if callable(mistakes):  # computed only when needed
        mistakes = mistakes()
    for description, wrong in (mistakes or {}).items():
        if wrong != expected and received == wrong:
            _fail(name, f"received {_show(received)}: {description}.", hint)
    at = _first_difference(received, expected)
    where = (f"the first wrong item is at index {at} (received {received[at:at + 3]})" if at < len(expected) else
             f"the result is longer than expected from index {at} on") if at < len(received) else \
        f"the result ends at index {at}, too early"
    _fail(name, f"received {_show(received)}: {where}.", hint)


# --- merge_pair -------------------------------------------------------------------------------

def merge_oracle(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Non-overlapping, left to right: ``str.replace`` on the ids written as ``<id>`` tokens does exactly that."""
    text = "".join(f"<{i}>" for i in ids).replace(f"<{pair[0]}><{pair[1]}>", f"<{new_id}>")
    return [int(i) for i in regex.findall(r"<(\d+)>", text)]


def merge_mistakes(ids, pair, new_id) -> dict:
    from tfs.teaching.probes_tokenization import merge_pair_mistakes

    return {**merge_pair_mistakes(ids, pair, new_id),
            "the pair merged in the wrong order: (a, b) is ids[i] == a and ids[i + 1] == b":
                merge_oracle(ids, (pair[1], pair[0]), new_id),
            "nothing merged": list(ids)}


def _merge_pair(data, cases, name_suffix: str) -> None:
    data = results(data, len(cases), "merge_pair")
    for (ids, pair, new_id), got in zip(cases, data):
        shown = f"merge_pair({ids if len(ids) < 12 else f'[{ids[0]}, {ids[1]}, ...] ({len(ids)} ids)'}, {pair}, {new_id})"
        expect(isinstance(got, dict) and "result" in got, "merge_pair", "no result.")
        _same(got["result"], merge_oracle(ids, pair, new_id), shown, mistakes=merge_mistakes(ids, pair, new_id),
              hint="walk with an index i; on a match append new_id and jump by 2, else append ids[i] and step by 1.")
        expect(got["input_after"] == ids, shown, "changed its input list.", hint="build and return a new list.")


def merge_pair_basic(data):
    _merge_pair(data, inputs.MERGE_PAIR_BASIC, "basic")
    return "✓ merge_pair: the grader's tests pass (every occurrence, the order of a pair, the input unchanged)"


def merge_pair_edges(data):
    _merge_pair(data, inputs.merge_pair_edges_cases(), "edges")
    return "✓ merge_pair: the grader's tests pass (overlaps, empty, short and long lists)"


def _merge_pair_earlier(probe, exercise: str) -> str:
    """A sentence naming merge_pair when the probe of the learner's merge_pair (called by ``exercise``) fails."""
    cases = inputs.MERGE_PAIR_BASIC + inputs.MERGE_PAIR_EDGES[:5]
    if not isinstance(probe, list) or len(probe) != len(cases):
        return ""
    for (ids, pair, new_id), got in zip(cases, probe):
        if not isinstance(got, dict) or got.get("result") != merge_oracle(ids, pair, new_id):
            return (f" {exercise} calls your merge_pair, which is wrong on merge_pair({ids}, {pair}, {new_id}): "
                    "make Exercise 1's tests pass first.")
    return ""


# --- train_bpe --------------------------------------------------------------------------------

_CHUNKS = regex.compile(data.GPT2_PATTERN)


def recount_merges(text: str, num_merges: int) -> list[list[int]]:
    """The oracle: count every pair again after every merge (slow and obviously right); ties go to the smallest pair."""
    words = Counter(_CHUNKS.findall(text))
    sequences = {word: [bytes([b]) for b in word.encode("utf-8")] for word in words}
    ids = {bytes([i]): i for i in range(256)}
    merges = []
    for step in range(num_merges):
        counts = Counter()
        for word, parts in sequences.items():
            for left, right in zip(parts, parts[1:]):
                counts[(ids[left], ids[right])] += words[word]
        if not counts:
            break
        top = max(counts.values())
        best = min(pair for pair, count in counts.items() if count == top)
        merges.append(list(best))
        by_id = {v: k for k, v in ids.items()}
        joined = by_id[best[0]] + by_id[best[1]]
        ids[joined] = 256 + step
        for word, parts in sequences.items():
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (ids[parts[i]], ids[parts[i + 1]]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            sequences[word] = out
    return merges


@lru_cache(maxsize=8)
def _recount(text: str, num_merges: int) -> tuple:
    return tuple(map(tuple, recount_merges(text, num_merges)))


def _merges(got, text: str, num_merges: int, name: str, hint: str) -> None:
    _raised(got, name, hint)
    expected = [list(p) for p in _recount(text, num_merges)]
    if got == expected:
        return
    if not isinstance(got, list):
        _fail(name, f"expected a list of (a, b) pairs, received {_show(got)}.", hint)
    if got == [list(p) for p in _recount_without_chunks(text, num_merges)] and got != expected:
        _fail(name, "your merges cross pre-tokenization chunks (e.g. 'b' + ' '): count pairs inside each chunk of "
                    "pretokenize(text) only.", hint)
    at = _first_difference(got, expected)
    where = (f"first difference at merge {at} (received {tuple(got[at]) if isinstance(got[at], list) else got[at]})"
             if at < min(len(got), len(expected)) else f"expected {len(expected)} merges, received {len(got)}")
    _fail(name, f"{where}.", hint)


@lru_cache(maxsize=8)
def _recount_without_chunks(text: str, num_merges: int) -> tuple:
    """The mistake: the whole text as one chunk."""
    return tuple(map(tuple, recount_merges_whole(text, num_merges)))


def recount_merges_whole(text: str, num_merges: int) -> list[list[int]]:
    parts, merges = list(text.encode("utf-8")), []
    for step in range(num_merges):
        counts = Counter(zip(parts, parts[1:]))
        if not counts:
            break
        top = max(counts.values())
        best = min(pair for pair, count in counts.items() if count == top)
        merges.append(list(best))
        parts = merge_oracle(parts, best, 256 + step)
    return merges


TRAIN_HINT = ("count overlapping pairs (aaa holds aa twice) weighted by each chunk's frequency, merge the best with id "
              "256 + step; ties: the smallest pair; stop when no pair is left.")


def train_bpe_toy(data):
    data = results(data, len(inputs.TRAIN_BPE_TOY), "train_bpe")
    for (text, n), got in zip(inputs.TRAIN_BPE_TOY, data):
        _merges(got, text, n, f"train_bpe({text!r}, {n})", TRAIN_HINT)
    return "✓ train_bpe: the grader's tests pass (the textbook merges, ties, stopping when no pair is left)"


def train_bpe_counts(data):
    expect(isinstance(data, dict) and {"chunks", "sample"} <= set(data), "train_bpe", "no result.")
    _merges(data["chunks"], "ab ab ab ab", 3, "train_bpe('ab ab ab ab', 3)",
            "count pairs inside each chunk of pretokenize(text), weighted by how often the chunk occurs.")
    _merges(data["sample"], inputs.train_bpe_sample(), 60, "train_bpe(15 kB of Shakespeare and some non-ASCII, 60)",
            "after a merge, subtract the old pairs of every affected chunk and add its new pairs; drop pairs whose count is 0.")
    return "✓ train_bpe: the grader's tests pass (pairs inside chunks, 60 merges identical to a full recount)"


def train_bpe_speed(data):
    expect(isinstance(data, dict) and {"merges", "seconds", "one_pass"} <= set(data), "train_bpe", "no result.")
    name = f"train_bpe(300 kB, {inputs.SPEED_MERGES})"
    got = data["merges"]
    _raised(got, name)
    expect(isinstance(got, list) and len(got) == inputs.SPEED_MERGES, name,
           f"expected {inputs.SPEED_MERGES} merges, received {_show(got) if not isinstance(got, list) else len(got)}.")
    _merges(got[:ORACLE_PREFIX], inputs.speed_text(), ORACLE_PREFIX, name, TRAIN_HINT)
    seconds, one_pass = data["seconds"], data["one_pass"]
    expect(all(type(v) is float and finite(v) and v > 0 for v in (seconds, one_pass)), name,
           "the timing could not be read.")
    passes = seconds / one_pass
    expect(passes < SPEED_FACTOR * inputs.SPEED_MERGES, name,
           f"took {seconds:.2f} s, as long as {passes:.0f} full pair counts of the text; a full recount after each of "
           f"the {inputs.SPEED_MERGES} merges takes about {inputs.SPEED_MERGES}, an incremental update well under "
           f"{SPEED_FACTOR * inputs.SPEED_MERGES:.0f}.",
           hint="after a merge, update the counts of the chunks in where[best] only; count distinct chunks, not positions.")
    return f"✓ train_bpe: the grader's tests pass (fast: {passes:.0f} pair counts' time for {inputs.SPEED_MERGES} merges)"


# --- bpe_encode / bpe_decode ------------------------------------------------------------------

def _byte_table(merges) -> dict[int, bytes]:
    table = {i: bytes([i]) for i in range(256)}
    for i, (a, b) in enumerate(merges):
        table[256 + i] = table[a] + table[b]
    return table


def library_encoder(merges, pre_tokenize: bool = True):
    """The ``tokenizers`` library's BPE model built from ``merges`` (id pairs), with GPT-2's byte-level pre-tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    to_char = data.bytes_to_unicode()
    table = _byte_table(merges)
    text = {i: "".join(to_char[b] for b in raw) for i, raw in table.items()}
    vocab = {token: i for i, token in text.items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[(text[a], text[b]) for a, b in merges]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre_tokenize)
    return lambda s: [vocab[token] for token in tokenizer.encode(s).tokens] if s else []


ENCODE_HINT = "pre-tokenize; in each chunk merge the adjacent pair with the lowest index in merges, until none is left."


def _replay(text: str, merges, latest_first: bool) -> list[int]:
    """Encode chunk by chunk, merging the pair learned latest (a mistake) or earliest first."""
    rank = {tuple(pair): i for i, pair in enumerate(merges)}
    out = []
    for chunk in _CHUNKS.findall(text):
        ids = list(chunk.encode("utf-8"))
        while True:
            known = [p for p in zip(ids, ids[1:]) if p in rank]
            if not known:
                break
            pair = (max if latest_first else min)(known, key=rank.get)
            ids = merge_oracle(ids, pair, 256 + rank[pair])
        out.extend(ids)
    return out


def _encode_mistakes(line: str, merges) -> dict:
    return {"merges crossed pre-tokenization chunks: encode each chunk of pretokenize(text) on its own":
            library_encoder(merges, pre_tokenize=False)(line),
            "the LATEST merge applied first: merge the pair with the LOWEST index in merges": _replay(line, merges, True)}


def bpe_encode_toy(data):
    expect(isinstance(data, dict) and {"results", "merge_pair"} <= set(data), "bpe_encode", "no result.")
    got = results(data["results"], len(inputs.BPE_ENCODE_TOY), "bpe_encode")
    earlier = _merge_pair_earlier(data["merge_pair"], "bpe_encode")
    for (text, merges), received in zip(inputs.BPE_ENCODE_TOY, got):
        _same(received, library_encoder(merges)(text), f"bpe_encode({text!r}, {merges})", ENCODE_HINT + earlier,
              mistakes=lambda: _encode_mistakes(text, merges))
    return "✓ bpe_encode: the grader's tests pass (merge order, bytes, empty text, the earliest merge wins)"


def bpe_encode_library(data):
    from tfs.teaching.probes_tokenization import library_bpe

    expect(isinstance(data, dict) and {"results", "merge_pair"} <= set(data), "bpe_encode", "no result.")
    lines = inputs.bpe_library_lines()
    got = results(data["results"], len(lines), "bpe_encode")
    merges, encode = library_bpe()
    earlier = _merge_pair_earlier(data["merge_pair"], "bpe_encode")
    for line, received in zip(lines, got):
        _same(received, encode(line), f"bpe_encode({line[:40]!r}, the library's 150 merges) vs the tokenizers library",
              ENCODE_HINT + earlier, mistakes=lambda: _encode_mistakes(line, merges))
    return f"✓ bpe_encode: the grader's tests pass ({len(lines)} lines identical to the tokenizers library)"


def bpe_decode_roundtrip(data):
    from tfs.teaching.probes_tokenization import library_bpe

    expect(isinstance(data, dict) and {"toy", "half", "empty", "roundtrip"} <= set(data), "bpe_decode", "no result.")
    hint = "the bytes of id 256 + i are the bytes of its two parts, joined; join all bytes, then decode once."
    for key, expected, shown in [("toy", "aaabdaaabac", "bpe_decode([258, 100, 258, 259])"),
                                 ("half", "\ufffd", "bpe_decode([195], [])"), ("empty", "", "bpe_decode([], merges)")]:
        _raised(data[key], shown, hint + (" Decode with errors='replace'." if key == "half" else ""))
        expect(data[key] == expected, shown, f"received {_show(data[key])}, not the text of these ids.",
               hint="bytes.decode('utf-8', errors='replace')." if key == "half" else hint)
    strings = inputs.roundtrip_strings()
    got = results(data["roundtrip"], len(strings), "bpe_decode")
    merges, encode = library_bpe()
    table = _byte_table(merges)
    for s, received in zip(strings, got):
        shown = f"bpe_decode(ids of {s[:30]!r})"
        _raised(received, shown, hint)
        if received != s:
            separately = "".join(table[i].decode("utf-8", errors="replace") for i in encode(s))
            if received == separately:
                _fail(shown, "each token was decoded on its own, which breaks characters split across tokens.", hint)
            _fail(shown, f"expected {s[:40]!r}, received {_show(received)}.", hint)
    return "✓ bpe_decode: the grader's tests pass (invalid UTF-8 replaced, exact round trips of any Unicode)"


# --- gpt2_encode ------------------------------------------------------------------------------

GPT2_HINT = "pre-tokenize, start from single bytes, merge the adjacent pair whose concatenation has the lowest rank."


@lru_cache(maxsize=1)
def _gpt2():
    return data.load_gpt2_tokenizer()


def _gpt2_ids(texts) -> list[list[int]]:
    return _gpt2()(list(texts), verbose=False).input_ids if texts else []


def _gpt2_lines(got, texts, name: str) -> None:
    got = results(got, len(texts), "gpt2_encode")
    expected = _gpt2_ids(texts)
    bad = [(t, g, e) for t, g, e in zip(texts, got, expected) if g != e]
    if not bad:
        return
    text, received, wanted = bad[0]
    shown = f"gpt2_encode({text[:50]!r})"
    count = f" ({len(bad)} of {len(texts)} texts differ)" if len(bad) > 1 else ""
    ascii_fine = all(t.isascii() is False for t, _, _ in bad) and any(t.isascii() for t in texts)
    hint = GPT2_HINT
    if ascii_fine:
        hint = ("only texts with non-ASCII characters fail: start from the UTF-8 bytes of each chunk "
                "([bytes([b]) for b in chunk.encode('utf-8')]), never from its characters.")
    if "<|endoftext|>" in text:
        hint = ("<|endoftext|> is one special token, id 50256, never split: cut the text at it first, encode the pieces "
                "between, and put 50256 in its place.")
    _raised(received, shown + count, hint)
    _same(received, wanted, shown + count, hint)


def gpt2_encode_examples(data):
    _gpt2_lines(data, inputs.GPT2_EXAMPLES, "examples")
    return "✓ gpt2_encode: the grader's tests pass (GPT-2's ids on plain English, empty text)"


def gpt2_encode_tricky(data):
    expect(isinstance(data, dict) and {"tricky", "special"} <= set(data), "gpt2_encode", "no result.")
    _gpt2_lines(data["tricky"], inputs.GPT2_TRICKY, "tricky")
    _gpt2_lines(data["special"], inputs.GPT2_SPECIAL, "special")
    return "✓ gpt2_encode: the grader's tests pass (whitespace, digits, contractions, non-ASCII, <|endoftext|> = 50256)"


def gpt2_encode_parity(data):
    lines = inputs.gpt2_parity_lines()
    _gpt2_lines(data, lines, "parity")
    return f"✓ gpt2_encode: the grader's tests pass ({len(lines):,} held-out lines and review snippets identical to GPT-2's)"


# --- BERT -------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _bert():
    return data.load_bert_tokenizer()


def _bert_words(text: str) -> list[str]:
    backend = _bert().backend_tokenizer
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]


def _basic_mistake(received, expected) -> str | None:
    if not isinstance(received, list) or not all(isinstance(w, str) for w in received):
        return None
    if [w.replace("ς", "σ") for w in received] == expected:
        return ("a final Greek Σ became ς: Python's str.lower() on a whole string applies the final-sigma rule, BERT "
                "lower-cases character by character (''.join(c.lower() for c in text))")
    stripped = ["".join(c for c in unicodedata.normalize("NFD", w) if unicodedata.category(c) != "Mn") for w in received]
    if stripped == expected:
        return "accents kept: NFD-decompose, then drop the characters of category Mn"
    if "".join(received) == "".join(expected) and len(received) < len(expected):
        return "some punctuation or CJK characters were not split off as words of their own"
    return None


def bert_basic_tokenize(data):
    texts = inputs.bert_basic_texts()
    got = results(data, len(texts), "bert_basic_tokenize")
    for text, received in zip(texts, got):
        shown = f"bert_basic_tokenize({text[:30]!r})"
        expected = _bert_words(text)
        _raised(received, shown)
        if received != expected:
            mistake = _basic_mistake(received, expected)
            if mistake:
                _fail(shown, f"received {_show(received)}: {mistake}.")
            _same(received, expected, shown, "clean, put spaces around CJK, lower-case character by character, "
                                             "strip accents (NFD, drop Mn), split whitespace, split punctuation off.")
    return "✓ bert_basic_tokenize: the grader's tests pass (BERT's normalizer and pre-tokenizer, final sigma, controls, CJK)"


def _wordpiece_variant(word: str, vocab, continuation: str = "##", longest: bool = True, fallback: bool = False,
                       limit: int | None = 100):
    """A wrong WordPiece, computed on purpose: no '##', shortest match first, skipping a character instead of [UNK],
    or no length limit."""
    if limit is not None and len(word) > limit:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        ends = range(len(word), start, -1) if longest else range(start + 1, len(word) + 1)
        piece = next((p for end in ends for p in [word[start:end] if start == 0 else continuation + word[start:end]]
                      if p in vocab), None)
        if piece is None:
            if not fallback:
                return ["[UNK]"]
            pieces.append("[UNK]")
            start += 1
            continue
        pieces.append(piece)
        start += len(piece) - (len(continuation) if start > 0 else 0)
    return pieces


def _wordpiece_check(words, got, hint: str) -> None:
    vocab = data.bert_vocab()
    model = _bert().backend_tokenizer.model
    for word, received in zip(words, got):
        shown = f"wordpiece({word[:30]!r})"
        _raised(received, shown, hint)
        expected = [token.value for token in model.tokenize(word)]
        _same(received, expected, shown, hint, mistakes=lambda: {
            "continuation pieces looked up without '##' in front": _wordpiece_variant(word, vocab, continuation=""),
            "the shortest match taken first: take the LONGEST prefix in the vocabulary": _wordpiece_variant(word, vocab, longest=False),
            "an unknown character skipped: when nothing matches, the WHOLE word is [UNK]":
                _wordpiece_variant(word, vocab, fallback=True),
            "the max_chars limit not applied: words over 100 characters are [UNK]" if len(word) > 100 else "-":
                _wordpiece_variant(word, vocab, limit=None) if len(word) > 100 else None,
        })


def wordpiece_examples(data):
    words = inputs.wordpiece_words()
    got = results(data, len(words), "wordpiece")
    _wordpiece_check(words, got, "longest prefix first; continuation pieces are looked up with '##' in front.")
    return f"✓ wordpiece: the grader's tests pass ({len(words):,} words identical to BERT's WordPiece)"


def wordpiece_unk(data):
    got = results(data, len(inputs.WORDPIECE_UNK), "wordpiece")
    _wordpiece_check(inputs.WORDPIECE_UNK, got, "a word over 100 characters, or one with a position nothing covers, is ['[UNK]'].")
    return "✓ wordpiece: the grader's tests pass ([UNK] for the whole word, 100 characters allowed, 101 not)"


def bert_encode_parity(data):
    expect(isinstance(data, dict) and {"results", "wordpiece", "basic"} <= set(data), "bert_encode", "no result.")
    lines = inputs.bert_parity_lines()
    got = results(data["results"], len(lines), "bert_encode")
    expected = _bert()(list(lines)).input_ids
    bad = [(t, g, e) for t, g, e in zip(lines, got, expected) if g != e]
    if not bad:
        return f"✓ bert_encode: the grader's tests pass ({len(lines):,} held-out lines and review snippets identical to BERT's)"
    earlier = ""
    words = inputs.WORDPIECE_WORDS + inputs.WORDPIECE_UNK[:3]
    model = _bert().backend_tokenizer.model
    if data["wordpiece"] != [[t.value for t in model.tokenize(w)] for w in words]:
        earlier = " It calls your wordpiece, which fails its own tests: make Exercise 7's tests pass first."
    elif data["basic"] != [_bert_words(t) for t in inputs.BERT_BASIC]:
        earlier = " It calls your bert_basic_tokenize, which fails its own tests: make Exercise 6's tests pass first."
    text, received, wanted = bad[0]
    shown = f"bert_encode({text[:50]!r})" + (f" ({len(bad)} of {len(lines)} lines differ)" if len(bad) > 1 else "")
    hint = "[CLS] first, then every word's WordPiece ids in order, then [SEP]." + earlier
    cls, sep = wanted[0], wanted[-1]
    _same(received, wanted, shown, hint, mistakes={"[CLS] and [SEP] missing": wanted[1:-1], "[CLS] missing": wanted[1:],
                                                   "[SEP] missing": wanted[:-1], "[CLS] and [SEP] swapped": [sep] + wanted[1:-1] + [cls]})
    return "unreachable"


# --- pad_batch --------------------------------------------------------------------------------

def _pad_oracle(sequences, pad_id, max_length, side):
    if max_length is not None:
        sequences = [s[:max_length] for s in sequences]
    if pad_id == _bert().pad_token_id:
        batch = _bert().pad({"input_ids": sequences}, padding=True, padding_side=side, return_tensors="pt")
        return batch["input_ids"].long(), batch["attention_mask"].long()
    width = max(len(s) for s in sequences)
    ids = torch.tensor([([pad_id] * (width - len(s)) + s) if side == "left" else (s + [pad_id] * (width - len(s)))
                        for s in sequences])
    mask = torch.tensor([([0] * (width - len(s)) + [1] * len(s)) if side == "left" else ([1] * len(s) + [0] * (width - len(s)))
                         for s in sequences])
    return ids, mask


def _pad(data, cases) -> None:
    got = results(data, len(cases), "pad_batch")
    for (sequences, pad_id, max_length, side), received in zip(cases, got):
        shown = f"pad_batch({sequences}, {pad_id}, max_length={max_length}, padding_side={side!r})"
        _raised(received, shown)
        expect(isinstance(received, dict) and {"input_ids", "attention_mask"} <= set(received), shown,
               f"expected a dict with 'input_ids' and 'attention_mask', received {_show(received)}.")
        ids, mask = _pad_oracle(sequences, pad_id, max_length, side)
        for key, expected in (("input_ids", ids), ("attention_mask", mask)):
            value = received[key]
            expect(isinstance(value, torch.Tensor), f"{shown}[{key!r}]", f"expected a tensor, received {_show(value)}.",
                   hint="torch.tensor(rows, dtype=torch.long).")
            expect(value.dtype == torch.long, f"{shown}[{key!r}]", f"expected dtype torch.long, received {value.dtype}.",
                   hint="both tensors are torch.long (a 0/1 mask as tokenizers return it, not bool): "
                        "torch.zeros(..., dtype=torch.long).")
            expect(tuple(value.shape) == tuple(expected.shape), f"{shown}[{key!r}]",
                   f"expected shape {tuple(expected.shape)}, received {tuple(value.shape)}.",
                   hint="pad to the longest sequence after truncation (max_length truncates; it does not pad up to it).")
            if not torch.equal(value, expected):
                if torch.equal(value, expected.flip(-1)) or (side == "left" and torch.equal(value, _pad_oracle(
                        sequences, pad_id, max_length, "right")[0 if key == "input_ids" else 1])):
                    _fail(f"{shown}[{key!r}]", f"padding on the wrong side: received {value.tolist()}.",
                          hint="padding_side='left' puts the pads first.")
                if max_length is not None and torch.equal(value, _pad_oracle([s[-max_length:] for s in sequences], pad_id,
                                                                              None, side)[0 if key == "input_ids" else 1]):
                    _fail(f"{shown}[{key!r}]", "kept the last max_length ids; keep the first.")
                row, column = (int(i) for i in (value != expected).nonzero()[0])
                _fail(f"{shown}[{key!r}]", f"received {value.tolist()}: the first wrong value is at [{row}, {column}].",
                      hint="1 on real tokens, 0 on padding." if key == "attention_mask" else "pad with pad_id.")


def pad_batch_right(data):
    _pad(data, inputs.pad_cases("right"))
    return "✓ pad_batch: the grader's tests pass (right padding like the tokenizer, one row, max_length longer than every row)"


def pad_batch_left(data):
    _pad(data, inputs.pad_cases("left"))
    return "✓ pad_batch: the grader's tests pass (truncation keeps the first ids, left padding like the tokenizer)"
