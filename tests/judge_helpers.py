"""Helpers for the judges' unit tests: the solution's objects, and a judge run on collected data."""

from __future__ import annotations

import re

import nbformat

from course import REPO, solution_answers
from tfs.grader import judging

SETUP = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def solution_namespace(chapter: str, **extra) -> dict:
    """The solution notebook's answers (solution cells only), executed in a fresh namespace."""
    notebook = next((REPO / "solutions" / chapter).glob("*.ipynb"))
    namespace: dict = dict(extra)
    exec(SETUP, namespace)
    for code in solution_answers(nbformat.read(notebook, as_version=4)).values():
        exec(code, namespace)
    return namespace


def mutate(namespace: dict, name: str, old: str, new: str, chapter: str) -> dict:
    """A copy of the namespace where the solution of ``name`` has ``old`` replaced by ``new``."""
    notebook = next((REPO / "solutions" / chapter).glob("*.ipynb"))
    code = solution_answers(nbformat.read(notebook, as_version=4))[name]
    assert old in code, f"mutation {old!r} not found in the solution of {name}"
    mutated = dict(namespace)
    exec(code.replace(old, new), mutated)
    return mutated


def run(test: str, **objects):
    """The verdict as the grader would reach it: collect, save and load, judge. Returns the judge's message."""
    return judging.load_judge(test)(judging.read_data_roundtrip(judging.collect(test, **objects)))


def failure(test: str, **objects) -> str:
    """The judge's failure message for these objects (the test fails when the judge passes them)."""
    try:
        data = judging.read_data_roundtrip(judging.collect(test, **objects))
    except Exception as error:  # the learner's code raised: the grader reports the error line
        return "raised " + judging.error_line(error)
    try:
        judging.load_judge(test)(data)
    except AssertionError as error:
        return str(error)
    raise AssertionError(f"{test}: the judge passed a mutant")


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text)
