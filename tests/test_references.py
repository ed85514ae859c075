"""While chapter N is graded or checked, chapter N's own references are out of the kernel's reach.

The registry (:mod:`tfs.grader.references`) against the notebooks and the package; the rewritten modules; and the
grading sandbox's view, attacked from inside bubblewrap: every path to a hidden reference's real code (imports,
re-exports, ``importlib.reload``, ``inspect.getsource``, reading the file, ``sys.path``, the editable install's path,
compiled caches, unmounting the bind) reaches the stub or nothing. The end-to-end attacks (whole submissions made of
imports, graded by nbgrader beside honest students) are in ``tests/test_autograde.py``.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from course import CHAPTERS, REPO, nbgrader_meta, read_notebooks
from tfs.grader import isolation, references
from tfs.grader.references import ReferenceHidden


def solution_exercises(chapter: str) -> set[str]:
    return {nbgrader_meta(cell)["grade_id"] for notebook in read_notebooks(REPO / "solutions" / chapter).values()
            for cell in notebook.cells if nbgrader_meta(cell).get("solution")}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_registry_lists_every_graded_exercise_of_every_chapter(chapter):
    number = references.chapter_of(chapter)
    assert number is not None, f"{chapter} is not in tfs.grader.references.REFERENCES"
    assert set(references.REFERENCES[number]) == solution_exercises(chapter)
    notebook = next(iter(read_notebooks(REPO / "course" / chapter).values()))
    assert references.chapter_of_notebook(notebook) == number, "tfs check would not recognise the chapter"


def test_pending_chapters_are_registered_chapters_with_a_reason():
    for chapter, reason in references.PENDING.items():
        assert chapter in references.REFERENCES and len(reason) > 40
        assert references.hidden(chapter) == [], "a pending chapter must hide nothing (its honest students first)"


def resolve(module: types.ModuleType, qualname: str):
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("chapter", [references.chapter_of(chapter) for chapter in CHAPTERS])
def test_each_hidden_definition_is_replaced_line_for_line_by_a_stub_that_states_the_rule(chapter):
    """Every chapter of the course (a registry entry may come before its chapter, while the chapter is written)."""
    targets = references.registered(chapter)
    sources, missing = references.filtered_sources(chapter, pending_too=True)
    assert missing == [], f"the registry names objects that do not exist: {missing}"
    for path, text in sources.items():
        real = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) == len(real.splitlines()), f"{path.name}: line numbers moved"
        module = types.ModuleType(f"tfs_hidden_{chapter}_{path.stem}")
        module.__file__ = str(path)
        sys.modules[module.__name__] = module  # dataclasses look their module up
        try:
            exec(compile(text, str(path), "exec"), module.__dict__)
        finally:
            del sys.modules[module.__name__]
        for target in targets:
            name, _, qualname = target.partition(":")
            if references.module_file(name) != path:
                continue
            stub = resolve(module, qualname)
            with pytest.raises(ReferenceHidden) as refused:
                stub() if isinstance(stub, type) else stub(None)
            assert str(refused.value) == references.rule(target, chapter)
            assert f"chapter {chapter}'s own reference" in str(refused.value)
            *owners, leaf = qualname.split(".")
            body = ast.parse(text).body
            for owner in owners:
                body = next(node for node in body if isinstance(node, ast.ClassDef) and node.name == owner).body
            assert not [node for node in body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == leaf], \
                f"{target}: its definition is still in the rewritten module"


def test_a_later_chapter_keeps_every_earlier_reference():
    """Chapter 07 registers its own; chapter 02's MultiHeadAttention and 06's GPT (with the cache path) stay usable."""
    assert "tfs.nn.attention:MultiHeadAttention" not in references.registered("07")
    assert "tfs.models.gpt:GPT" not in references.registered("07") and "tfs.models.gpt:GPT" in references.registered("06")
    assert all(target.startswith("tfs.nn.attention:") for target in references.registered("02"))


def test_the_chapter_is_read_from_an_assignment_name_or_from_the_notebook():
    assert references.chapter_of("07-generation") == "07" and references.chapter_of("99-extra") is None
    assert references.chapter_of(None) is None and references.chapter_of("homework") is None
    empty = {"cells": [{"cell_type": "code", "metadata": {"nbgrader": {"solution": True, "grade_id": "other"}}}]}
    assert references.chapter_of_notebook(empty) is None


def test_a_rewritten_module_computes_paths_from_the_real_file(tmp_path, monkeypatch):
    """``tfs.finetune`` finds ``benchmarks/results`` from its ``__file__``: the copy names the real file instead."""
    monkeypatch.delitem(references.PENDING, "08", raising=False)  # the mechanism, whatever chapter 08's state
    folder = references.package_tree("08", tmp_path)
    text = (folder / "tfs" / "finetune.py").read_text()
    assert "__file__" not in text and repr(str(references.module_file("tfs.finetune"))) in text
    assert (folder / "tfs" / "train.py").is_symlink() and (folder / "tfs" / "assets").is_symlink()


CHECK_MODE = r"""
import importlib, inspect, json
import tfs.convert, tfs.nn, tfs.train
from tfs.grader.references import ReferenceHidden
seen = {"path": tfs.__path__[0]}
for label, call in [("import", lambda: tfs.train.lr_schedule(0, 1.0, 1, 2)),
                    ("re-export", lambda: tfs.convert.load_hf_state_dict(None, {})),
                    ("wrapper", lambda: tfs.train.train(tfs.nn.LayerNorm(4), None, None, tfs.train.TrainConfig())),
                    ("reload", lambda: importlib.reload(tfs.train).lr_schedule(0, 1.0, 1, 2))]:
    try:
        call()
        seen[label] = "ran"
    except ReferenceHidden as error:
        seen[label] = str(error)
    except Exception as error:
        seen[label] = f"{type(error).__name__}: {error}"
seen["source"] = inspect.getsource(tfs.train.lr_schedule)
seen["kept"] = [type(tfs.nn.MultiHeadAttention(8, 2)).__name__, type(tfs.nn.TransformerBlock(8, 2, 16)).__name__]
print(json.dumps(seen))
"""


def test_check_mode_puts_the_same_stubs_first_on_the_path(tmp_path, monkeypatch):
    """``tfs check`` has no sandbox: a rewritten copy of the package first on ``PYTHONPATH`` gives the same stubs."""
    monkeypatch.delitem(references.PENDING, "06", raising=False)  # the mechanism, whatever chapter 06's state
    folder = references.package_tree("06", tmp_path)
    result = subprocess.run([sys.executable, "-c", CHECK_MODE], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(folder), OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["path"] == str(folder / "tfs")
    assert seen["import"] == seen["reload"] == references.rule("tfs.train:lr_schedule", "06")
    assert seen["re-export"] == references.rule("tfs.convert.gpt:load_hf_state_dict", "06")
    assert "is chapter 06's own reference" in seen["wrapper"], seen["wrapper"]
    assert "raise ReferenceHidden(message)" in seen["source"] and "math.cos" not in seen["source"]
    assert seen["kept"] == ["MultiHeadAttention", "TransformerBlock"]


# ------------------------------------------------------------------------------- inside the grading sandbox

REASON = isolation.unavailable_reason()
SANDBOX = r"""
import glob, importlib, importlib.machinery, importlib.util, inspect, json, os, subprocess, sys
args = json.loads(sys.argv[1])
real, marker = args["real"], args["marker"]
seen = {}

def attempt(label, function):
    try:
        result = function()
        seen[label] = result if isinstance(result, (str, bool, int, list)) else "ran"
    except BaseException as error:
        seen[label] = f"{type(error).__name__}: {error}"

import tfs.train
attempt("import", lambda: tfs.train.lr_schedule(0, 1.0, 1, 2))
attempt("reload", lambda: importlib.reload(tfs.train).lr_schedule(0, 1.0, 1, 2))
attempt("getsource", lambda: marker in inspect.getsource(tfs.train))
attempt("read", lambda: marker in open(real).read())
attempt("loader", lambda: importlib.machinery.SourceFileLoader("copy", real).load_module().lr_schedule(0, 1.0, 1, 2))
sys.path.insert(0, os.path.dirname(os.path.dirname(real)))
attempt("sys.path", lambda: marker in open(importlib.util.find_spec("tfs.train").origin).read())

def fresh_copy():
    spec = importlib.util.spec_from_file_location("fresh_copy", real)
    module = sys.modules["fresh_copy"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lr_schedule(0, 1.0, 1, 2)

attempt("spec", fresh_copy)
attempt("proc root", lambda: marker in open("/proc/self/root" + real).read())
attempt("pycache", lambda: sorted(os.listdir(os.path.join(os.path.dirname(real), "__pycache__"))))
found = []
for folder in args["folders"]:
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                with open(os.path.join(root, name), "rb") as handle:
                    if marker.encode() in handle.read():
                        found.append(os.path.join(root, name))
            except OSError:
                pass
seen["found"] = found
for label, command in [("umount", ["umount", real]),
                       ("unshare umount", ["unshare", "-Urm", "sh", "-c", f"umount {real} && cat {real}"])]:
    result = subprocess.run(command, capture_output=True, text=True)
    seen[label] = [result.returncode, marker in result.stdout]
from tfs.nn import MultiHeadAttention
seen["kept"] = type(MultiHeadAttention(8, 2)).__name__
print("SEEN " + json.dumps(seen))
"""


@pytest.mark.skipif(REASON is not None, reason=f"SKIPPED LOUDLY: OS-level isolation cannot be tested here: {REASON}")
def test_inside_the_sandbox_no_path_reaches_the_real_code(tmp_path, monkeypatch):
    """bwrap as the grader starts it for chapter 06: the real ``tfs/train.py`` and its compiled copies are out of
    view; every way in reaches the stub; the overlay cannot be unmounted; other references still work."""
    monkeypatch.delitem(references.PENDING, "06", raising=False)  # the mechanism, whatever chapter 06's state
    real = references.module_file("tfs.train")
    marker = "(1.0 + math.cos(math.pi * progress))"  # a line of the real lr_schedule, found nowhere else in the package
    assert marker in real.read_text() and sum(marker in p.read_text() for p in real.parent.rglob("*.py")) == 1
    ipc, judge = tmp_path / "ipc", tmp_path / "judge"
    ipc.mkdir()
    judge.mkdir()
    binds = references.overlay("06", tmp_path / "hidden")
    assert (str(real) in dict((target, source) for source, target in binds))
    settings = json.dumps({"real": str(real), "marker": marker, "folders": [str(real.parent)]})
    arguments = isolation.bwrap_arguments(
        ipc=str(ipc), judge=str(judge), submitted=None, tmp_mb=64, overlay=binds,
        env=isolation.kernel_environment(sys.executable, 1), command=[sys.executable, "-c", SANDBOX, settings],
        uid=1_000_000 + os.getpid() if os.geteuid() == 0 else None)
    result = subprocess.run(["bwrap", *arguments], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("SEEN "))[5:])
    rule = "ReferenceHidden: " + references.rule("tfs.train:lr_schedule", "06")
    assert seen["import"] == seen["reload"] == seen["loader"] == seen["spec"] == rule, seen
    assert seen["getsource"] is False and seen["read"] is False and seen["sys.path"] is False, seen
    assert seen["proc root"] is False and seen["pycache"] == [], seen
    assert seen["found"] == [], f"the real code is readable in the sandbox: {seen['found']}"
    assert seen["umount"][1] is False and seen["unshare umount"][1] is False, seen
    assert seen["kept"] == "MultiHeadAttention"


# ------------------------------------------------------------------------ submissions made of the references

def _defined(code: str) -> list[tuple[str, str]]:
    """``[(name, "class" or "function")]`` that an answer defines at its top level, in order."""
    return [(node.name, "class" if isinstance(node, ast.ClassDef) else "function") for node in ast.parse(code).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))]


def _constants(code: str) -> list[str]:
    """An answer's top-level assignments (constants the exercise also asks for), as written."""
    return [ast.get_source_segment(code, node) for node in ast.parse(code).body if isinstance(node, ast.Assign)]


def reference_answers(chapter: str, answers: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """``(answers, attacked)``: every exercise of ``chapter`` that has a top-level reference answered by it alone, the
    others as the solution answers them. Exercises alternate between the two ways an answer can be the reference:
    ``from tfs... import X as name``, and a wrapper (``def name(*a, **k): return X(*a, **k)``, ``class Name(X)``)."""
    number = references.chapter_of(chapter)
    attacked, result = set(), dict(answers)
    for grade_id, targets in references.REFERENCES[number].items():
        importable = [t for t in targets if "." not in t.partition(":")[2]]
        if not importable or grade_id not in answers:
            continue
        defined = _defined(answers[grade_id])
        leaves = {t.partition(":")[2]: t for t in importable}
        lines = []
        for position, (name, kind) in enumerate(defined):
            target = leaves.get(name) or (importable[0] if position == 0 else None)
            if target is None:
                continue
            module, _, leaf = target.partition(":")
            if len(attacked) % 2 == 0:
                lines.append(f"from {module} import {leaf} as {name}")
            elif kind == "class":
                lines += [f"from {module} import {leaf} as _{name}Reference", f"class {name}(_{name}Reference):",
                          "    pass"]
            else:
                lines += [f"from {module} import {leaf} as _{name}_reference", f"def {name}(*args, **kwargs):",
                          f"    return _{name}_reference(*args, **kwargs)"]
        result[grade_id] = "\n".join(_constants(answers[grade_id]) + lines) + "\n"
        attacked.add(grade_id)
    return result, attacked
