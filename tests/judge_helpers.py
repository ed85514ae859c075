"""Helpers for the judges' unit tests: the solution's objects, and a judge run on collected data."""

from __future__ import annotations

import re

import nbformat

from course import REPO, solution_answers
from tfs.grader import judging

GIVEN_CLASSES: tuple[str, ...] = ()  # classes a notebook gives as the base of an exercise (none now)
SETUP = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def solution_namespace(chapter: str, replace: tuple[str, str, str] | None = None, **extra) -> dict:
    """The solution notebook's answers (solution cells only), executed in a fresh namespace.

    ``replace=(grade_id, old, new)`` executes that answer with ``old`` replaced by ``new`` (a mutant);
    later answers then use the mutant, as they would in the learner's notebook.
    """
    notebook = next((REPO / "solutions" / chapter).glob("*.ipynb"))
    namespace: dict = dict(extra)
    namespace["__extra__"] = extra
    exec(SETUP, namespace)
    given = [cell.source for cell in nbformat.read(notebook, as_version=4).cells
             if cell.cell_type == "code" and any(cell.source.startswith(f"class {name}") for name in GIVEN_CLASSES)]
    for code in given:  # classes the notebook gives (the exercises' bases)
        exec(code, namespace)
    for grade_id, code in solution_answers(nbformat.read(notebook, as_version=4)).items():
        if replace and replace[0] == grade_id:
            assert replace[1] in code, f"mutation {replace[1]!r} not found in the solution of {grade_id}"
            code = code.replace(replace[1], replace[2])
        exec(code, namespace)
    return namespace


def mutate(namespace: dict, name: str, old: str, new: str, chapter: str) -> dict:
    """A fresh namespace where the solution of ``name`` has ``old`` replaced by ``new``."""
    return solution_namespace(chapter, (name, old, new), **namespace["__extra__"])


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
