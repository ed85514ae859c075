"""Chapter 04's judges: the solution passes; plausible mistakes fail with a message naming them."""

from __future__ import annotations

import nbformat
import pytest

from course import REPO
from judge_helpers import failure, mutate, run, solution_namespace
from tfs.grader.collectors import ch04 as collectors

CHAPTER = "04-tokenization"
IMPORTS = ("import json\nimport time\nimport unicodedata\nfrom collections import Counter, defaultdict\nimport regex\n"
           "import torch\nfrom tqdm.auto import tqdm\nfrom tfs import data\n")
GIVEN = ("GPT2_REGEX = regex.compile", "def is_whitespace")  # the notebook's helpers that the exercises call

USES = {"merge_pair_basic": ["merge_pair"], "merge_pair_edges": ["merge_pair"], "train_bpe_toy": ["train_bpe"],
        "train_bpe_counts": ["train_bpe"], "train_bpe_speed": ["train_bpe", "pretokenize"],
        "bpe_encode_toy": ["bpe_encode", "merge_pair"], "bpe_encode_library": ["bpe_encode", "merge_pair"],
        "bpe_decode_roundtrip": ["bpe_decode"], "gpt2_encode_examples": ["gpt2_encode"], "gpt2_encode_tricky": ["gpt2_encode"],
        "gpt2_encode_parity": ["gpt2_encode"], "bert_basic_tokenize": ["bert_basic_tokenize"],
        "wordpiece_examples": ["wordpiece"], "wordpiece_unk": ["wordpiece"],
        "bert_encode_parity": ["bert_encode", "wordpiece", "bert_basic_tokenize"], "pad_batch_right": ["pad_batch"],
        "pad_batch_left": ["pad_batch"]}


def given_helpers() -> dict:
    """``pretokenize``, ``is_whitespace``, ... as the notebook defines them (cells that are not exercises)."""
    namespace: dict = {}
    exec(IMPORTS, namespace)
    notebook = nbformat.read(REPO / "solutions" / CHAPTER / "tokenization.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and any(marker in cell.source for marker in GIVEN):
            exec(cell.source, namespace)
    return {key: value for key, value in namespace.items() if not key.startswith("__")}


@pytest.fixture(scope="module")
def solution():
    return solution_namespace(CHAPTER, **given_helpers())


def objects(namespace, test):
    return {name: namespace[name] for name in USES[test]}


@pytest.mark.parametrize("test", list(USES))
def test_solution_passes(solution, test):
    assert run(f"ch04.{test}", **objects(solution, test)).startswith("✓")


MUTANTS = [
    # merge_pair
    ("merge_pair", "i += 2", "i += 1", "merge_pair_edges", "overlapping occurrences merged"),
    ("merge_pair", "while i < len(ids):", "while i < len(ids) - 1:", "merge_pair_basic", "the last id dropped"),
    ("merge_pair", "while i < len(ids):", "while i < len(ids) - 1:", "merge_pair_edges", "the last id dropped"),
    ("merge_pair", "ids[i] == pair[0] and ids[i + 1] == pair[1]", "ids[i] == pair[1] and ids[i + 1] == pair[0]",
     "merge_pair_basic", "wrong order"),
    ("merge_pair", "    merged = []\n", "    merged = ids\n    ids = list(ids)\n    merged.clear()\n", "merge_pair_basic",
     "changed its input list"),
    # train_bpe
    ("train_bpe", "key=lambda p: (pair_counts[p], -p[0], -p[1])", "key=lambda p: pair_counts[p]", "train_bpe_toy",
     "first difference at merge 1"),
    ("train_bpe", "chunk_counts = Counter(pretokenize(text))", "chunk_counts = Counter([text])", "train_bpe_counts",
     "cross pre-tokenization chunks"),
    ("train_bpe", "                pair_counts[pair] -= freq\n", "                pass\n", "train_bpe_counts", "raised KeyError"),
    ("train_bpe", "        if not pair_counts:\n            break\n", "", "train_bpe_toy", "raised ValueError"),
    # bpe_encode
    ("bpe_encode", "for chunk in pretokenize(text):", "for chunk in [text]:", "bpe_encode_library", "merges crossed"),
    ("bpe_encode", "key=lambda p: rank.get(p, float(\"inf\"))", "key=lambda p: -rank.get(p, -1)", "bpe_encode_toy",
     "the LATEST merge applied first"),
    # bpe_decode
    ("bpe_decode", 'return b"".join(table[i] for i in ids).decode("utf-8", errors="replace")',
     'return "".join(table[i].decode("utf-8", errors="replace") for i in ids)', "bpe_decode_roundtrip",
     "decoded on its own"),
    ("bpe_decode", 'errors="replace"', 'errors="strict"', "bpe_decode_roundtrip", "errors='replace'"),
    # gpt2_encode
    ("gpt2_encode", 'for n, piece in enumerate(text.split("<|endoftext|>")):', 'for n, piece in enumerate([text]):',
     "gpt2_encode_tricky", "<|endoftext|> is one special token"),
    ("gpt2_encode", 'parts = [bytes([byte]) for byte in chunk.encode("utf-8")]', 'parts = [ch.encode("utf-8") for ch in chunk]',
     "gpt2_encode_tricky", "only texts with non-ASCII characters fail"),
    ("gpt2_encode", 'parts = [bytes([byte]) for byte in chunk.encode("utf-8")]', 'parts = [ch.encode("utf-8") for ch in chunk]',
     "gpt2_encode_parity", "only texts with non-ASCII characters fail"),
    ("gpt2_encode", "for chunk in pretokenize(piece):", "for chunk in [piece]:", "gpt2_encode_parity", "gpt2_encode("),
    # bert
    ("bert_basic_tokenize", 'lowered = "".join(c.lower() for c in "".join(cleaned))', 'lowered = "".join(cleaned).lower()',
     "bert_basic_tokenize", "final Greek Σ became ς"),
    ("bert_basic_tokenize", 'if unicodedata.category(c) != "Mn"', 'if True', "bert_basic_tokenize", "accents kept"),
    ("wordpiece", 'piece = word[start:end] if start == 0 else "##" + word[start:end]', "piece = word[start:end]",
     "wordpiece_examples", "without '##'"),
    ("wordpiece", "        if end == start:\n            return [unk]\n",
     "        if end == start:\n            pieces.append(unk)\n            start += 1\n            continue\n",
     "wordpiece_unk", "the WHOLE word is [UNK]"),
    ("wordpiece", "    if len(word) > max_chars:\n        return [unk]\n", "", "wordpiece_unk", "the max_chars limit not applied"),
    ("bert_encode", "    ids.append(vocab[\"[SEP]\"])\n", "", "bert_encode_parity", "[SEP] missing"),
    # pad_batch
    ("pad_batch", "attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)",
     "attention_mask = torch.zeros((len(sequences), width), dtype=torch.bool)", "pad_batch_right", "torch.long"),
    ("pad_batch", 'columns = slice(0, n) if padding_side == "right" else slice(width - n, width)', "columns = slice(0, n)",
     "pad_batch_left", "wrong side"),
    ("pad_batch", "sequences = [list(seq[:max_length]) for seq in sequences]",
     "sequences = [list(seq[-max_length:]) for seq in sequences]", "pad_batch_left", "kept the last max_length ids"),
]


@pytest.mark.parametrize("exercise, old, new, test, words", MUTANTS, ids=[f"{m[3]}-{i}" for i, m in enumerate(MUTANTS)])
def test_mutant_fails_with_its_mistake_named(solution, exercise, old, new, test, words):
    mutant = mutate(solution, exercise, old, new, CHAPTER)
    message = failure(f"ch04.{test}", **objects(mutant, test))
    assert words in message, message


@pytest.mark.parametrize("test, broken", [
    ("train_bpe_toy", "merge_pair"), ("train_bpe_counts", "merge_pair"), ("bpe_encode_toy", "merge_pair"),
    ("bpe_encode_library", "merge_pair"), ("bert_encode_parity", "wordpiece"), ("bert_encode_parity", "bert_basic_tokenize"),
])
def test_a_mistake_in_an_earlier_exercise_costs_no_later_points(solution, test, broken):
    """Issue 31 (b): while a later exercise is collected, the earlier functions it calls are references."""
    mutants = {"merge_pair": ("merge_pair", "i += 2", "i += 1"),
               "wordpiece": ("wordpiece", 'piece = word[start:end] if start == 0 else "##" + word[start:end]',
                             "piece = word[start:end]"),
               "bert_basic_tokenize": ("bert_basic_tokenize", "            if is_punctuation(ch):", "            if False:")}
    mutant = mutate(solution, *mutants[broken], CHAPTER)
    assert run(f"ch04.{test}", **objects(mutant, test)).startswith("✓")


def test_the_speed_judge_separates_a_full_recount_from_incremental_counts(solution):
    """A correct but recounting train_bpe passes the other tests and fails this one (a ratio, not a clock bound)."""
    namespace = dict(solution)
    exec('''
def train_bpe_recount(text, num_merges, progress=False):
    chunk_counts = Counter(pretokenize(text))
    chunks = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())
    merges = []
    for step in range(num_merges):
        pair_counts = Counter()
        for ids, freq in zip(chunks, freqs):
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += freq
        if not pair_counts:
            break
        best = max(pair_counts, key=lambda p: (pair_counts[p], -p[0], -p[1]))
        merges.append(best)
        chunks = [merge_pair(ids, best, 256 + step) for ids in chunks]
    return merges
''', namespace)
    recount = namespace["train_bpe_recount"]
    assert run("ch04.train_bpe_counts", train_bpe=recount).startswith("✓")  # right merges
    message = failure("ch04.train_bpe_speed", train_bpe=recount, pretokenize=solution["pretokenize"])
    assert "full pair counts" in message, message


def test_the_speed_judge_reads_a_ratio_so_a_slow_machine_does_not_fail_a_correct_answer():
    """The same incremental run on a machine 20x slower: both timings scale, the verdict does not change."""
    from tfs.grader import judging

    judge = judging.load_judge("ch04.train_bpe_speed")
    expected = [list(p) for p in judge.__globals__["_recount"](collectors.speed_text(), 30)]
    padded = expected + [[0, 0]] * (collectors.SPEED_MERGES - len(expected))
    for scale in (1, 20):
        verdict = judge({"merges": padded, "seconds": 0.6 * scale, "one_pass": 0.012 * scale})
        assert verdict.startswith("✓"), verdict
    with pytest.raises(AssertionError, match="full pair counts"):
        judge({"merges": padded, "seconds": 6.0, "one_pass": 0.012})


# --- the visible tests' probes (tfs.teaching.probes_tokenization) ------------------------------------------------

def visible_failure(check, *args, **kwargs) -> str:
    from tfs.teaching.checks import CheckError

    with pytest.raises(CheckError) as error:
        check(*args, **kwargs)
    return str(error.value)


def test_visible_probes_name_the_usual_mistakes(solution):
    import torch

    from tfs.teaching import probes_tokenization as probes
    from tfs.teaching.checks import call

    dropped = mutate(solution, "merge_pair", "while i < len(ids):", "while i < len(ids) - 1:", CHAPTER)["merge_pair"]
    case = ([4, 1, 2, 6], (1, 2), 8)
    assert "the last id dropped" in visible_failure(probes.check_ids, call(dropped, *case), [4, 8, 6], "merge_pair",
                                                    mistakes=probes.merge_pair_mistakes(*case))
    lower = mutate(solution, "bert_basic_tokenize", 'lowered = "".join(c.lower() for c in "".join(cleaned))',
                   'lowered = "".join(cleaned).lower()', CHAPTER)["bert_basic_tokenize"]
    text = "ΟΔΥΣΣΕΥΣ, ΣΟΦΟΣ"
    assert solution["bert_basic_tokenize"](text) == probes.bert_words(text)
    assert "final Σ" in visible_failure(probes.check_ids, lower(text), probes.bert_words(text), "bert_basic_tokenize",
                                        mistakes=probes.basic_tokenize_mistakes(text))
    raising = lambda s: {}[s]  # noqa: E731  a KeyError inside the learner's code gets the course message and hint
    message = visible_failure(probes.check_lines, raising, ["é"], [[2634]], "gpt2_encode", hint="work on UTF-8 bytes")
    assert "raised KeyError" in message and "work on UTF-8 bytes" in message
    message = visible_failure(probes.check_lines, lambda s: [1], ["a"], [[2]], "bert_encode", earlier="wordpiece (Exercise 7)")
    assert "It calls your wordpiece (Exercise 7): make its tests pass first." in message
    boolean = {"input_ids": torch.tensor([[5, 0]]), "attention_mask": torch.tensor([[True, False]])}
    message = visible_failure(probes.check_batch, boolean, {"input_ids": torch.tensor([[5, 0]]),
                                                            "attention_mask": torch.tensor([[1, 0]])}, "pad_batch")
    assert "torch.long" in message and "not bool" in message and "x.dtype" not in message
