"""Chapter 04's plausible mistakes (see tests/mutants/__init__.py)."""

from mutants import Mutant

BEST_PAIR = '''            pair = min(zip(ids, ids[1:]), key=lambda p: rank.get(p, float("inf")))
            if pair not in rank:
                break
'''
GPT2_BEST = '''                for i in range(len(parts) - 1):
                    rank = ranks.get(parts[i] + parts[i + 1])
                    if rank is not None and (best is None or rank < best[0]):
                        best = (rank, i)
'''

MUTANTS = [
    # merge_pair
    Mutant("merge-overlapping", "merge_pair", "            merged.append(new_id)\n            i += 2",
           "            merged.append(new_id)\n            i += 1", r"overlap"),
    Mutant("merge-first-only", "merge_pair", "            merged.append(new_id)\n            i += 2",
           "            merged.append(new_id)\n            return merged + ids[i + 2:]",
           r"first occurrence|every occurrence|only once|all occurrences", "rare"),
    # train_bpe
    Mutant("bpe-ties-largest", "train_bpe", "(pair_counts[p], -p[0], -p[1])", "(pair_counts[p], p[0], p[1])",
           r"tie|smallest"),
    Mutant("bpe-unweighted", "train_bpe",
           "        for pair in zip(ids, ids[1:]):\n            pair_counts[pair] += freq\n            where",
           "        for pair in zip(ids, ids[1:]):\n            pair_counts[pair] += 1\n            where",
           r"weight|how often|frequen|occurs"),
    # bpe_encode
    Mutant("encode-latest-merge-first", "bpe_encode", BEST_PAIR,
           "            pair = max(zip(ids, ids[1:]), key=lambda p: rank.get(p, -1))\n"
           "            if pair not in rank:\n                break\n",
           r"lowest|earliest|order (they were|of the) learned|first learned"),
    Mutant("encode-no-pretokenize", "bpe_encode", "for chunk in pretokenize(text):", "for chunk in [text]:",
           r"pre-?tokeni|across chunks|chunk"),
    # bpe_decode
    Mutant("decode-token-by-token", "bpe_decode", 'b"".join(table[i] for i in ids).decode("utf-8", errors="replace")',
           '"".join(table[i].decode("utf-8", errors="replace") for i in ids)',
           r"join the bytes|span two tokens|one token at a time|each token separately|then decode once"),
    Mutant("decode-strict", "bpe_decode", 'decode("utf-8", errors="replace")', 'decode("utf-8")',
           r"replace|ufffd|half a character"),
    # gpt2_encode
    Mutant("gpt2-special-split", "gpt2_encode", 'enumerate(text.split("<|endoftext|>"))', "enumerate([text])",
           r"endoftext|50256|special"),
    Mutant("gpt2-leftmost-pair", "gpt2_encode", GPT2_BEST,
           "                for i in range(len(parts) - 1):\n"
           "                    rank = ranks.get(parts[i] + parts[i + 1])\n"
           "                    if rank is not None:\n                        best = (rank, i)\n"
           "                        break\n", r"lowest rank|lowest-rank|leftmost"),
    Mutant("gpt2-rightmost-on-ties", "gpt2_encode", "(best is None or rank < best[0])", "(best is None or rank <= best[0])",
           r"leftmost|first occurrence|left to right|ties", "rare"),
    # bert_basic_tokenize
    Mutant("basic-whole-string-lower", "bert_basic_tokenize", 'lowered = "".join(c.lower() for c in "".join(cleaned))',
           'lowered = "".join(cleaned).lower()', r"sigma|Σ|ς|character by character"),
    Mutant("basic-punctuation-kept", "bert_basic_tokenize", "            if is_punctuation(ch):",
           "            if False:", r"punctuation"),
    Mutant("basic-controls-kept", "bert_basic_tokenize", 'if ch in ("\\x00", "\\ufffd") or is_control(ch):',
           'if ch in ("\\x00", "\\ufffd"):', r"control", "rare"),
    # wordpiece
    Mutant("wordpiece-no-continuation-prefix", "wordpiece",
           'piece = word[start:end] if start == 0 else "##" + word[start:end]', "piece = word[start:end]",
           r"##|continuation"),
    Mutant("wordpiece-max-chars-off-by-one", "wordpiece", "len(word) > max_chars", "len(word) >= max_chars",
           r"100|max_chars|more than", "rare"),
    # bert_encode
    Mutant("encode-no-cls-sep", "bert_encode", 'ids = [vocab["[CLS]"]]', "ids = []", r"CLS"),
    Mutant("encode-whitespace-words", "bert_encode", "for word in bert_basic_tokenize(text):",
           "for word in text.split():", r"bert_basic_tokenize|basic tokeni"),
    # pad_batch
    Mutant("pad-mask-inverted", "pad_batch", "attention_mask = torch.zeros(", "attention_mask = torch.ones(",
           r"1 = real|mask|inverted"),
    Mutant("pad-left-ignored", "pad_batch", 'columns = slice(0, n) if padding_side == "right" else slice(width - n, width)',
           "columns = slice(0, n)", r"left|padding_side"),
    Mutant("pad-empty-batch", "pad_batch", "max((len(seq) for seq in sequences), default=0)",
           "max(len(seq) for seq in sequences)", r"empty", "rare"),
]
