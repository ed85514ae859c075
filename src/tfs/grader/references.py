"""Each chapter's own reference implementations, and the filtered package that hides them.

The course package holds a reference version of almost every exercise (``tfs.nn``, ``tfs.models``,
``tfs.generate``, ``tfs.finetune``, ...): later chapters stand on earlier chapters' references, so a learner who
struggled in chapter 03 can still build GPT in chapter 06. The rule that keeps that design and still makes every
answer the learner's own:

    **while chapter N is graded or self-checked, chapter N's references are out of the kernel's reach
    (earlier and later chapters' references stay).**

:data:`REFERENCES` is the one list of them: for every chapter, every graded exercise (the ``grade_id`` of its
answer cell) and the package objects that implement the same thing, as ``"module:qualname"`` (a method is
``"module:Class.method"``). An object that only *calls* a hidden one (``tfs.train.train`` calls
``lr_schedule``) needs no entry: it reaches the stub and fails with the same message. An object that
*re-implements* a hidden one (``GPT.generate`` samples with its own top-k) is listed beside it.

**How they are hidden.** :func:`filtered_sources` rewrites the source of every module that holds a hidden object:
the object's definition (decorators, signature, docstring, body) is replaced, line for line, by a stub
(:func:`stub`) that raises :class:`ReferenceHidden` with the rule's message, e.g. ``tfs.generate.top_k_filter is
chapter 07's own reference: while chapter 07 is graded or checked, write your own``. Everything else in the file
is unchanged, line numbers included. Then

- the grading sandbox (:mod:`tfs.grader.isolation`) binds each rewritten file over the real one and an empty
  folder over that folder's ``__pycache__`` (:func:`overlay`): the real source and its compiled copies do not
  exist in the kernel's view, so no import, ``importlib.reload``, ``inspect.getsource``, ``sys.path`` entry,
  path finder or file read can reach them; the mounts cannot be undone from inside (no capability, locked mounts);
- ``tfs check`` (no sandbox) puts the same rewritten package first on the kernel's ``PYTHONPATH``
  (:func:`package_tree`): the same stubs, the same messages, so an honest notebook gets the same verdicts.

:class:`ReferenceHidden` derives from ``BaseException``, so that no ``except Exception`` of a collector, a
check or a learner's fallback turns it into another message: the grader reports it as it is
(:func:`tfs.grader.judging.collect_to`).

What this does not stop: an answer copied from elsewhere (a web page, a classmate, ``torch`` and ``transformers``,
which the kernel must import: ``F.scaled_dot_product_attention``, ``nn.RMSNorm``, ``LlamaForCausalLM``); the
oracles of the visible tests in :mod:`tfs.teaching` (:data:`VISIBLE_ORACLES`), which run in the kernel by design.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tokenize
from pathlib import Path

__all__ = ["PENDING", "REFERENCES", "VISIBLE_ORACLES", "ReferenceHidden", "chapter_of", "chapter_of_notebook",
           "filtered_sources", "hidden", "overlay", "package_tree", "registered", "rule", "stub"]

#: chapter -> {exercise grade_id: the package objects that implement it ("module:qualname")}
REFERENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "00": {"standardize": (), "batched_scores": (), "fit_line": ()},
    "01": {"softmax_stable": ("tfs.nn.attention:softmax",),
           "causal_mask": ("tfs.nn.attention:causal_mask",),
           "scaled_dot_product_attention": ("tfs.nn.attention:scaled_dot_product_attention",)},
    "02": {"split_heads": ("tfs.nn.attention:split_heads",),
           "merge_heads": ("tfs.nn.attention:merge_heads",),
           "multi_head_attention": ("tfs.nn.attention:MultiHeadAttention",)},
    "03": {"apply_rope": ("tfs.nn.layers:apply_rope", "tfs.nn.layers:rope_tables", "tfs.nn.layers:rotate_pairs",
                          "tfs.nn.modern:rope"),
           "layer_norm": ("tfs.nn.layers:LayerNorm",),
           "feed_forward": ("tfs.nn.layers:FeedForward",),
           "dropout": (),
           "transformer_block": ("tfs.nn.blocks:TransformerBlock",),
           "encoder": ("tfs.nn.blocks:Encoder",),
           "encoder_parameters": ()},
    "04": {"merge_pair": (), "train_bpe": (), "bpe_encode": (), "bpe_decode": (), "gpt2_encode": (),
           "bert_basic_tokenize": (), "wordpiece": (), "bert_encode": (), "pad_batch": ()},
    "05": {"bert_embeddings": ("tfs.models.bert:BertEmbeddings",),
           "padding_mask": ("tfs.nn.attention:padding_mask",),
           "bert_model": ("tfs.models.bert:BertModel", "tfs.models.bert:BertForPreTraining"),
           "bert_mlm_head": ("tfs.models.bert:BertMLMHead",),
           "bert_nsp_head": ("tfs.models.bert:BertNSPHead",),
           "mask_tokens": ("tfs.models.bert_pretraining:mask_tokens",),
           "make_nsp_pairs": ("tfs.models.bert_pretraining:make_nsp_pairs",),
           "load_bert_weights": ("tfs.convert.bert:load_hf_bert", "tfs.convert.bert:hf_to_course_state_dict",
                                 "tfs.convert.bert:bert_from_hf")},
    "06": {"causal_self_attention": (),  # chapter 02's MultiHeadAttention(causal=True) stays: an earlier chapter's
           "gpt_block": (),  # chapter 03's TransformerBlock stays, for the same reason
           "gpt_model": ("tfs.models.gpt:GPT",),
           "init_gpt_weights": ("tfs.models.gpt:init_gpt_weights",),
           "cross_entropy": (),
           "get_batch": ("tfs.train:get_batch",),
           "lr_schedule": ("tfs.train:lr_schedule",),
           "param_groups": ("tfs.train:param_groups",),
           "clip_gradients": ("tfs.train:clip_gradients",),
           "accumulate_gradients": (),
           "load_hf_state_dict": ("tfs.convert.gpt:load_hf_state_dict", "tfs.convert.gpt:from_hf_state_dict",
                                  "tfs.convert.gpt:gpt_from_hf")},
    "07": {"top_k_filter": ("tfs.generate:top_k_filter",),
           "top_p_filter": ("tfs.generate:top_p_filter",),
           "apply_repetition_penalty": ("tfs.generate:apply_repetition_penalty",),
           "generate": ("tfs.generate:generate", "tfs.generate:position_ids_from_mask", "tfs.models.gpt:GPT.generate"),
           "beam_search": ("tfs.generate:beam_search", "tfs.generate:_beam_search_one"),
           "kv_cache": ("tfs.nn.attention:KVCache",),
           # the cached path of tfs.nn.MultiHeadAttention stays: the package's GPT, which grading and the chapter's
           # demonstrations decode with, runs on it (see INSTRUCTORS.md, "What the grader guarantees")
           "multi_head_attention": (),
           "online_attention": ()},
    "08": {"classification_head": ("tfs.finetune:ClassificationHead", "tfs.finetune:mean_pool"),
           "collate": ("tfs.finetune:collate",),
           "confusion_matrix": ("tfs.finetune:confusion_matrix",),
           "classification_metrics": ("tfs.finetune:classification_metrics",),
           "parameter_groups": ("tfs.finetune:parameter_groups",),
           "linear_warmup_decay": ("tfs.finetune:linear_warmup_decay",),
           "early_stopping": ("tfs.finetune:EarlyStopping",)},
    "09": {"perplexity": ("tfs.lm:perplexity", "tfs.lm:window_spans"),
           "prepare_lm_blocks": ("tfs.lm:prepare_lm_blocks",),
           "causal_lm_batch": ("tfs.lm:causal_lm_batch",),
           "fit_scaling_law": ("tfs.scaling:fit_scaling_law", "tfs.scaling:fit_power_law")},
    "10": {"quantize_per_channel": ("tfs.compress:quantize_per_channel",),
           "dequantize": ("tfs.compress:dequantize",),
           "magnitude_masks": ("tfs.compress:magnitude_masks",),
           "distillation_loss": ("tfs.compress:distillation_loss",),
           "LoRALinear": ("tfs.compress:LoRALinear",)},
    "11": {"decoder_block": ("tfs.models.seq2seq:DecoderBlock",),
           "encoder_decoder": ("tfs.models.seq2seq:EncoderDecoder",),
           "shift_right": ("tfs.models.seq2seq:shift_right",),
           "greedy_decode": ("tfs.models.seq2seq:greedy_decode", "tfs.models.seq2seq:beam_decode",
                             "tfs.models.seq2seq:_DecoderLM"),
           "align_labels": ("tfs.tasks:align_labels",),
           "entity_scores": ("tfs.tasks:entity_scores", "tfs.tasks:entities"),
           "extract_answer": ("tfs.tasks:extract_answer",)},
    "12": {"rmsnorm": ("tfs.nn.modern:RMSNorm",),
           "rope": ("tfs.nn.modern:rope",),
           "swiglu_hidden": ("tfs.nn.modern:swiglu_hidden",),
           "swiglu": ("tfs.nn.modern:SwiGLU",),
           "repeat_kv": ("tfs.nn.modern:repeat_kv",),
           "grouped_query_attention": ("tfs.nn.modern:GroupedQueryAttention",),
           "llama_block": ("tfs.models.llama:LLaMABlock",),
           "llama_model": ("tfs.models.llama:LLaMA", "tfs.models.llama:position_ids_for"),
           "chat_prompt": ("tfs.chat:chat_prompt",),
           "reply": ("tfs.chat:reply",)},
    "13": {"chat_example": ("tfs.align:chat_example", "tfs.align:assistant_spans"),
           "pack_examples": ("tfs.align:pack_examples", "tfs.align:packing_mask"),
           "sft_loss": ("tfs.align:sft_loss",),
           "add_lora_adapters": ("tfs.align:add_lora_adapters", "tfs.align:sft_step",
                                 "tfs.compress:add_lora"),  # chapter 10's helper that add_lora_adapters wraps
           "merge_adapter": ("tfs.align:merge_adapter",),
           "sequence_logprobs": ("tfs.align:sequence_logprobs",),
           "dpo_loss": ("tfs.align:dpo_loss",)},
}

#: chapter -> {exercise: the tfs.teaching object that a visible test of that exercise uses as its oracle}. They stay
#: reachable (a visible test runs in the kernel); each wraps torch, transformers or tokenizers, not the course's code.
VISIBLE_ORACLES: dict[str, dict[str, str]] = {
    "03": {"apply_rope": "tfs.teaching.probes_rope:rope_by_complex_numbers (RoPE written with torch's complex numbers)"},
    "04": {"bert_basic_tokenize": "tfs.teaching.probes_tokenization:bert_words (BertTokenizerFast's pre-tokenizer)",
           "wordpiece": "tfs.teaching.probes_tokenization:bert_wordpieces (BertTokenizerFast's WordPiece model)"},
    "07": {"generate": "tfs.teaching.probes_generation:TransformersCache (transformers' DynamicCache behind the course's "
                       "cache interface: the learner's generate decodes with it until the learner's KVCache is defined)",
           "beam_search": "tfs.teaching.probes_generation:_beam_search (the visible beam test's model of the usual "
                          "mistakes: with every switch off it is a correct beam search without a cache)",
           "online_attention": "tfs.teaching.probes_generation:_blockwise_attention (the visible test's model of the "
                               "usual mistakes: with every switch on it is correct online attention)"},
}

#: chapter -> why its references are not hidden yet: its own collectors or demonstrations still call them, so hiding
#: them would cost honest students points. Hiding starts for a chapter when its entry goes (its tests then hold).
PENDING: dict[str, str] = {
}

CHAPTER = re.compile(r"^(\d\d)(?:-|$)")


class ReferenceHidden(BaseException):
    """Raised by a hidden reference: the chapter being graded or checked asks for the learner's own version.

    A ``BaseException``, so that no ``except Exception`` (a collector's, a check's, a learner's fallback) turns
    it into another message."""


def rule(target: str, chapter: str) -> str:
    """The rule's message for the hidden ``target`` (``"tfs.generate:top_k_filter"``), one line."""
    name = target.replace(":", ".")
    return (f"{name} is chapter {chapter}'s own reference: while chapter {chapter} is graded or checked, "
            f"write your own (earlier chapters' references stay available)")


def stub(target: str, chapter: str, kind: str):
    """What stands in the filtered package for ``target``: a function or class that raises :class:`ReferenceHidden`."""
    module, _, qualname = target.partition(":")
    message = rule(target, chapter)

    def refuse(*args, **kwargs):
        raise ReferenceHidden(message)

    name = qualname.rpartition(".")[2]
    if kind == "class":
        return type(name, (), {"__init__": refuse, "__doc__": message, "__module__": module, "__qualname__": qualname,
                               "__tfs_hidden__": message})
    refuse.__name__, refuse.__qualname__, refuse.__module__, refuse.__doc__ = name, qualname, module, message
    refuse.__tfs_hidden__ = message
    return refuse


def chapter_of(assignment: str | None) -> str | None:
    """``"07"`` for the assignment ``"07-generation"``; None for a name that is not a course chapter."""
    match = CHAPTER.match(assignment or "")
    return match.group(1) if match and match.group(1) in REFERENCES else None


def chapter_of_notebook(notebook) -> str | None:
    """The chapter whose exercises (answer cells' ``grade_id``) the notebook holds; None when none or several fit.

    ``tfs check`` reads it from the notebook itself, which a learner may have renamed or moved."""
    ids = set()
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if isinstance(meta, dict) and meta.get("solution") and isinstance(meta.get("grade_id"), str):
            ids.add(meta["grade_id"])
    scores = {chapter: len(ids & set(exercises)) / len(set(exercises) | ids)
              for chapter, exercises in REFERENCES.items() if exercises}
    best = max(scores.values(), default=0.0)
    chapters = [chapter for chapter, score in scores.items() if score == best]
    return chapters[0] if best >= 0.5 and len(chapters) == 1 else None


def registered(chapter: str | None) -> list[str]:
    """Every ``"module:qualname"`` registered for ``chapter``, in registry order."""
    return [target for targets in REFERENCES.get(chapter or "", {}).values() for target in targets]


def hidden(chapter: str | None) -> list[str]:
    """What is hidden while ``chapter`` is graded or checked: its registered references, none while it is
    :data:`PENDING`."""
    return [] if chapter in PENDING else registered(chapter)


def package_root() -> Path:
    """The folder of the real ``tfs`` package (this file's grandparent, links resolved)."""
    return Path(__file__).resolve().parents[1]


def module_file(module: str, root: Path | None = None) -> Path:
    """``tfs.nn.attention`` -> ``<root>/nn/attention.py`` (or ``.../__init__.py`` for a package)."""
    root = root or package_root()
    parts = module.split(".")
    if parts[0] != "tfs":
        raise ValueError(f"{module} is not a module of the tfs package")
    base = root.joinpath(*parts[1:])
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _definition(body: list, name: str):
    import ast

    found = [node for node in body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
             and node.name == name]
    return found[-1] if found else None


def _span(source: str, qualname: str) -> tuple[int, int, int, str] | None:
    """``(first line, last line, indent, kind)`` of ``qualname``'s definition in ``source`` (decorators included)."""
    import ast

    body = ast.parse(source).body
    node = None
    for part in qualname.split("."):
        node = _definition(body, part)
        if node is None:
            return None
        body = node.body
    first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
    kind = "class" if isinstance(node, ast.ClassDef) else "function"
    return first, node.end_lineno, node.col_offset, kind


def _real_file_names(source: str, path: Path) -> str:
    """``source`` with every ``__file__`` name replaced by the real file's path (a string literal, same line)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    lines = source.splitlines(keepends=True)
    for token in reversed(tokens):
        if token.type == tokenize.NAME and token.string == "__file__":
            row, start = token.start
            _, end = token.end
            line = lines[row - 1]
            lines[row - 1] = line[:start] + repr(str(path)) + line[end:]
    return "".join(lines)


def filtered_sources(chapter: str | None, root: Path | None = None, pending_too: bool = False
                     ) -> tuple[dict[Path, str], list[str]]:
    """``({real module file: its rewritten source}, [targets not found])`` for ``chapter``'s hidden references.

    Each hidden definition becomes one line, ``name = <stub>``, followed by blank lines, so every other line keeps
    its number. Targets that no longer exist are returned (the registry's test fails on them; grading goes on)."""
    root = root or package_root()
    by_file: dict[Path, list[str]] = {}
    for target in registered(chapter) if pending_too else hidden(chapter):
        by_file.setdefault(module_file(target.partition(":")[0], root), []).append(target)
    sources, missing = {}, []
    for path, targets in by_file.items():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for target in targets:
            span = _span("".join(lines), target.partition(":")[2])
            if span is None:
                missing.append(target)
                continue
            first, last, indent, kind = span
            name = target.partition(":")[2].rpartition(".")[2]
            replacement = (" " * indent + f"{name} = __import__('tfs.grader.references', fromlist=['stub']).stub("
                           f"{target!r}, {chapter!r}, {kind!r})\n")
            lines[first - 1:last] = [replacement] + ["\n"] * (last - first)
        sources[path] = "".join(lines)
    return sources, missing


def overlay(chapter: str | None, folder: Path) -> list[tuple[str, str]]:
    """``[(source, target), ...]`` read-only binds that hide ``chapter``'s references in the grading sandbox.

    The rewritten modules are written into ``folder`` (the kernel's scratch, outside its view) and bound over the
    real files; an empty folder is bound over each ``__pycache__`` beside them (made first where it is missing,
    so that no compiled copy of the real module can appear there later)."""
    sources, _ = filtered_sources(chapter)
    if not sources:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty"
    empty.mkdir(exist_ok=True)
    binds, caches = [], []
    for number, (real, text) in enumerate(sorted(sources.items())):
        rewritten = folder / f"{number:02d}-{real.name}"
        rewritten.write_text(text, encoding="utf-8")
        os.chmod(rewritten, 0o644)
        binds.append((str(rewritten), str(real)))
        cache = real.parent / "__pycache__"
        try:
            cache.mkdir(exist_ok=True)
        except OSError:  # a read-only installation: nothing can write a compiled copy there either
            continue
        if str(cache) not in caches:
            caches.append(str(cache))
    os.chmod(empty, 0o755)
    return binds + [(str(empty), cache) for cache in caches]


def package_tree(chapter: str | None, folder: Path) -> Path:
    """A copy of the package in ``folder/tfs`` with ``chapter``'s references hidden; returns ``folder``.

    For ``tfs check``, which puts ``folder`` first on the kernel's ``PYTHONPATH``: rewritten modules are files
    (their ``__file__`` names the real file, so paths computed from it are the same); every other module, and
    every folder without Python files (the assets), is a link to the real one."""
    root = package_root()
    sources, _ = filtered_sources(chapter, root)
    target = folder / "tfs"

    def copy(source: Path, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        for entry in sorted(source.iterdir()):
            if entry.name == "__pycache__":
                continue
            if entry.is_dir() and not entry.is_symlink() and any(entry.rglob("*.py")):
                copy(entry, destination / entry.name)
            elif entry in sources:
                (destination / entry.name).write_text(_real_file_names(sources[entry], entry), encoding="utf-8")
            else:
                os.symlink(entry, destination / entry.name)

    if target.exists():
        shutil.rmtree(target)
    copy(root, target)
    return folder
