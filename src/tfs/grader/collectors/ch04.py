"""Chapter 04 (tokenization): collectors of the hidden tests. Inputs come from the functions below.

Each collector calls the learner's functions and returns their results as plain data (lists of ints or
strings, a type name and a short repr for anything else); the judges (``autograder/judges/ch04.py``) rebuild the
inputs with the same functions and compare with the real tokenizers. The hand-written cases are the same in every
run; the text samples (where they start in the corpus) and some random cases are drawn per grading run
(``tfs.grader.judging.run_seed``: run seed 0 gives the samples of earlier versions), so a result of one run is no
answer in another. A function that a later exercise calls (``merge_pair`` in ``bpe_encode``, ``wordpiece`` in
``bert_encode``) is probed too, so a judge can say which exercise a failure really comes from.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

from tfs import data
from tfs.grader.judging import generator, per_run, run_seed, stand_ins

MAX_REPR = 200


def _value(result):
    """``result`` as plain data: lists of ints/strings stay; anything else becomes a short description."""
    if type(result) is list and all(type(x) in (int, str) for x in result):
        return list(result)
    if type(result) is str:
        return result
    try:
        text = repr(result)[:MAX_REPR]
    except Exception:  # a repr that raises
        text = "?"
    return {"type": type(result).__name__, "repr": text}


def _run(function, *args, **kwargs):
    """The learner's result as plain data, or ``{"raised": "<error line>"}`` (one case failing is not a crash)."""
    try:
        return _value(function(*args, **kwargs))
    except Exception as error:  # the learner's bug: reported by the judge with the case that raised it
        from tfs.grader.judging import error_line

        return {"raised": error_line(error)}


def _reference_merge_pair(ids, pair, new_id):
    merged, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


@lru_cache(maxsize=1)
def _bert_backend():
    return data.load_bert_tokenizer().backend_tokenizer


def _reference_wordpiece(word, vocab, unk="[UNK]", max_chars=100):
    return [token.value for token in _bert_backend().model.tokenize(word)]


def _reference_basic_tokenize(text):
    backend = _bert_backend()
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))]


# --- inputs -----------------------------------------------------------------------------------

def _start(tag: int, base: int, span: int) -> int:
    """Where a sample starts: ``base`` at run seed 0, else drawn per run in ``[0, span)``."""
    return base if run_seed() == 0 else int(torch.randint(span, (1,), generator=generator(tag)))


def _random_ids(g: torch.Generator, length: int, high: int) -> list[int]:
    return torch.randint(1, high, (length,), generator=g).tolist()


MERGE_PAIR_BASIC = [([1, 2, 3, 1, 2], (1, 2), 99), ([5, 6], (6, 5), 9), ([2, 1, 2, 1, 2], (1, 2), 7), ([4, 1, 2, 6], (1, 2), 8)]
MERGE_PAIR_EDGES = [([7, 7, 7], (7, 7), 99), ([7, 7, 7, 7], (7, 7), 99), ([], (7, 7), 99), ([7], (7, 7), 99),
                    ([1, 2, 1], (7, 7), 99), ([3, 4] * 1000, (3, 4), 5), ([7, 7, 7, 1, 7, 7], (7, 7), 9)]
TRAIN_BPE_TOY = [("aaabdaaabac", 4), ("ab", 5), ("", 3), ("aaaa", 3)]
BPE_ENCODE_TOY_MERGES = [(97, 97), (97, 98), (256, 257), (97, 99)]
BPE_ENCODE_TOY = [("aaabdaaabac", BPE_ENCODE_TOY_MERGES), ("ab", []), ("é", []), ("", BPE_ENCODE_TOY_MERGES),
                  ("ba ab", [(97, 98), (32, 97)]), ("aa ab", [(32, 97), (97, 97), (97, 98)])]
GPT2_EXAMPLES = ["Hello world", "To be, or not to be: that is the question.", "HAMLET. O, that this too too solid flesh would melt",
                 ""]
GPT2_TRICKY = ["  two  spaces   and\ttabs\t\t", "line one\n\n\nline two\n", "1234567 3.14159 1,000,000 2024",
               "I'm, you're, they'll, we've, she'd, it's, IT'S", "naïve café Straße", "東京タワー 😀👍🏽 Ελληνικά русский",
               "...!!! ?! --- ***", " leading space", "trailing space ", "\u00a0non-breaking\u3000ideographic"]
GPT2_SPECIAL = ["<|endoftext|>", "The end.<|endoftext|>A new story", "a<|endoftext|><|endoftext|> b <|endoftext|>",
                "no special <|endoftext| here", "<|endoftext|>\n\nHAMLET."]
BERT_BASIC = ["Don't stop!", "Héllo, Wörld!", "東京は晴れ", "tab\there\nnewline  x", "price: $5+3=8 <ok> ~fine~",
              "Ａｃｃｅｎｔｓ: çàéîõü", "ΟΔΥΣΣΕΥΣ and ΣΟΦΟΣ, ὈΔΥΣΣΕΎΣ", "a\x00b\ufffdc\u200bd", "", "   ",
              "«quotes» — dash… ¿qué? ¡sí!"]
WORDPIECE_WORDS = ["unaffable", "hello", "tokenization", "shakespeare", "thou", "wherefore", "naive", "12345"]
WORDPIECE_UNK = ["x" * 101, "😀", "a😀", "x" * 100, "a" * 100 + "b"]
PAD_RIGHT = [([[101, 7592, 2088, 102], [101, 102], [101, 2088, 2088, 2088, 2088, 102]], 0, None, "right"), ([[5]], 0, None, "right"),
             ([[1, 2], [3]], 0, 10, "right")]
PAD_LEFT = [([[1, 2, 3, 4, 5], [6, 7]], 0, 3, "left"), ([[101, 7592, 2088, 102], [101, 102]], 0, None, "left"),
            ([[1], [2, 3, 4]], 9, 2, "left")]


def merge_pair_edges_cases() -> list:
    """The hand-written edge cases, then two random lists of few distinct ids (runs of a pair, overlaps)."""
    g = generator(41)
    drawn = [(_random_ids(g, 60, 4), (a, b), 9) for a, b in ((1, 2), (3, 3))]
    return MERGE_PAIR_EDGES + drawn


def pad_cases(side: str) -> list:
    """The hand-written cases of ``side``, then a random batch (lengths, pad id and truncation drawn per run)."""
    g = generator(42 if side == "right" else 43)
    lengths = torch.randint(1, 9, (4,), generator=g).tolist()
    max_length = int(torch.randint(2, 8, (1,), generator=g))
    drawn = ([_random_ids(g, n, 1000) for n in lengths], int(torch.randint(0, 5, (1,), generator=g)), max_length, side)
    return (PAD_RIGHT if side == "right" else PAD_LEFT) + [drawn]


def held_out_lines(count: int) -> list[str]:
    """``count`` consecutive non-empty lines of the validation split (from its first at run seed 0)."""
    lines = [line for line in data.load_corpus("validation").split("\n") if line.strip()]
    start = _start(44, 0, len(lines) - count)
    return lines[start:start + count]


def _validation_slice(tag: int, length: int) -> str:
    valid = data.load_corpus("validation")
    start = _start(tag, 0, len(valid) - length)
    return valid[start:start + length]


def train_bpe_sample() -> str:
    """15 kB of Shakespeare plus a little non-ASCII: the full-recount comparison of ``train_bpe``."""
    text = data.load_corpus()
    start = _start(45, 200_000, len(text) - 15_000)
    return text[start:start + 15_000] + " 東京 東京 😀😀 naïve naïve"


def speed_text() -> str:
    train = data.load_corpus("train")
    start = _start(46, 0, len(train) - 300_000)
    return train[start:start + 300_000]


SPEED_MERGES = 300


def bpe_library_lines() -> list[str]:
    valid = _validation_slice(47, 30_000)
    return ["To be, or not to be: that is the question.", "  Enter   HAMLET,  reading.\n\n", valid[:2000]] + \
        valid[2000:].split("\n")


def roundtrip_strings() -> list[str]:
    first = 32 + _start(48, 0, 7)
    return ["To be, or not to be", "東京は晴れ 😀👍🏽", "naïve café, Straße", "  tabs\tand\nnewlines  ", "\x00\x7f\u200b",
            _validation_slice(49, 3000), "ℵ₀ ∑ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010ffff", "".join(chr(c) for c in range(first, 5000, 7))]


@per_run
def gpt2_parity_lines() -> tuple[str, ...]:
    """Validation lines, review snippets (test split, non-ASCII ones included) and 300-character slices."""
    valid = _validation_slice(50, 30_000)
    reviews = list(data.load_dataset("sentiment")["test"]["text"])
    return tuple(held_out_lines(1500) + reviews + [valid[i:i + 300] for i in range(0, 30_000, 300)])


@per_run
def bert_parity_lines() -> tuple[str, ...]:
    reviews = list(data.load_dataset("sentiment")["test"]["text"])
    return tuple(["Hello world"] + held_out_lines(1500) + reviews)


def wordpiece_words() -> list[str]:
    """The visible words, then every distinct word of 20 kB of validation text as BERT's own basic tokenizer cuts it."""
    from tfs.teaching.probes_tokenization import bert_words

    return WORDPIECE_WORDS + sorted(set(bert_words(_validation_slice(51, 20_000))))


# --- collectors -------------------------------------------------------------------------------

def _merge_pair_cases(merge_pair, cases):
    results = []
    for ids, pair, new_id in cases:
        given = list(ids)
        result = _run(merge_pair, given, pair, new_id)
        results.append({"result": result, "input_after": given})
    return results


def merge_pair_basic(merge_pair):
    return _merge_pair_cases(merge_pair, MERGE_PAIR_BASIC)


def merge_pair_edges(merge_pair):
    return _merge_pair_cases(merge_pair, merge_pair_edges_cases())


def _merges(result):
    """``train_bpe``'s list of pairs as a list of two-int lists, or its description."""
    if type(result) is list and all(type(p) in (tuple, list) and len(p) == 2 and all(type(x) is int for x in p) for p in result):
        return [list(p) for p in result]
    return _value(result)


def _run_merges(train_bpe, *args):
    try:
        return _merges(train_bpe(*args))
    except Exception as error:
        from tfs.grader.judging import error_line

        return {"raised": error_line(error)}


def train_bpe_toy(train_bpe):
    with stand_ins(train_bpe, merge_pair=_reference_merge_pair):
        return [_run_merges(train_bpe, text, n) for text, n in TRAIN_BPE_TOY]


def train_bpe_counts(train_bpe):
    with stand_ins(train_bpe, merge_pair=_reference_merge_pair):
        return {"chunks": _run_merges(train_bpe, "ab ab ab ab", 3), "sample": _run_merges(train_bpe, train_bpe_sample(), 60)}


def train_bpe_speed(train_bpe, pretokenize):
    """The learner's merges and time, and the time of one full pair count of the same text, measured here one after
    the other (the judge compares the two: no absolute bound, so a slow or loaded machine does not fail anyone).
    Both are the best of their repeats (the count of 3, the learner's run of 2), so a burst of load during one
    measurement does not move the ratio."""
    from tfs.teaching.probes_tokenization import pair_count_seconds

    text = speed_text()
    one_pass = pair_count_seconds(text, pretokenize)
    runs = []
    with stand_ins(train_bpe, merge_pair=_reference_merge_pair):
        for _ in range(2):
            start = time.perf_counter()
            merges = _run_merges(train_bpe, text, SPEED_MERGES)
            runs.append(time.perf_counter() - start)
    return {"merges": merges, "seconds": min(runs), "one_pass": one_pass}


def _encode_cases(encode, cases):
    return [_run(encode, *case) for case in cases]


def _merge_pair_probe(merge_pair):
    return _merge_pair_cases(merge_pair, MERGE_PAIR_BASIC + MERGE_PAIR_EDGES[:5])


def bpe_encode_toy(bpe_encode, merge_pair):
    with stand_ins(bpe_encode, merge_pair=_reference_merge_pair):
        results = _encode_cases(bpe_encode, BPE_ENCODE_TOY)
    return {"results": results, "merge_pair": _merge_pair_probe(merge_pair)}


def bpe_encode_library(bpe_encode, merge_pair):
    from tfs.teaching.probes_tokenization import library_bpe

    merges, _ = library_bpe()
    with stand_ins(bpe_encode, merge_pair=_reference_merge_pair):
        results = [_run(bpe_encode, line, merges) for line in bpe_library_lines()]
    return {"results": results, "merge_pair": _merge_pair_probe(merge_pair)}


def bpe_decode_roundtrip(bpe_decode):
    """Decoding ids made by the ``tokenizers`` library (not by the learner's encoder) back to the text."""
    from tfs.teaching.probes_tokenization import library_bpe

    merges, encode = library_bpe()
    return {"toy": _run(bpe_decode, [258, 100, 258, 259], BPE_ENCODE_TOY_MERGES), "half": _run(bpe_decode, [195], []),
            "empty": _run(bpe_decode, [], merges), "roundtrip": [_run(bpe_decode, encode(s), merges) for s in roundtrip_strings()]}


def _gpt2(gpt2_encode, texts):
    ranks = data.gpt2_ranks()
    return [_run(gpt2_encode, text, ranks) for text in texts]


def gpt2_encode_examples(gpt2_encode):
    return _gpt2(gpt2_encode, GPT2_EXAMPLES)


def gpt2_encode_tricky(gpt2_encode):
    return {"tricky": _gpt2(gpt2_encode, GPT2_TRICKY), "special": _gpt2(gpt2_encode, GPT2_SPECIAL)}


def gpt2_encode_parity(gpt2_encode):
    return _gpt2(gpt2_encode, gpt2_parity_lines())


def bert_basic_texts() -> list[str]:
    return BERT_BASIC + [_validation_slice(52, 3000)]


def bert_basic_tokenize(bert_basic_tokenize):
    return [_run(bert_basic_tokenize, text) for text in bert_basic_texts()]


def wordpiece_examples(wordpiece):
    vocab = data.bert_vocab()
    return [_run(wordpiece, word, vocab) for word in wordpiece_words()]


def wordpiece_unk(wordpiece):
    vocab = data.bert_vocab()
    return [_run(wordpiece, word, vocab) for word in WORDPIECE_UNK]


def bert_encode_parity(bert_encode, wordpiece, bert_basic_tokenize):
    vocab = data.bert_vocab()
    lines = bert_parity_lines()
    with stand_ins(bert_encode, wordpiece=_reference_wordpiece,
                   bert_basic_tokenize=_reference_basic_tokenize):
        results = [_run(bert_encode, line, vocab) for line in lines]
    return {"results": results,
            "wordpiece": [_run(wordpiece, word, vocab) for word in WORDPIECE_WORDS + WORDPIECE_UNK[:3]],
            "basic": [_run(bert_basic_tokenize, text) for text in BERT_BASIC]}


def _batch(result):
    """``pad_batch``'s dict of two tensors, as plain data."""
    import torch

    if type(result) is not dict:
        return _value(result)
    out = {}
    for key in ("input_ids", "attention_mask"):
        value = result.get(key)
        out[key] = value.detach().cpu().clone() if type(value) is torch.Tensor else _value(value)
    return out


def _pad(pad_batch, cases):
    results = []
    for sequences, pad_id, max_length, side in cases:
        try:
            results.append(_batch(pad_batch([list(s) for s in sequences], pad_id, max_length=max_length, padding_side=side)))
        except Exception as error:
            from tfs.grader.judging import error_line

            results.append({"raised": error_line(error)})
    return results


def pad_batch_right(pad_batch):
    return _pad(pad_batch, pad_cases("right"))


def pad_batch_left(pad_batch):
    return _pad(pad_batch, pad_cases("left"))
