"""The mutant campaign's tool (tests/mutant_campaign.py) and lists (tests/mutants/chNN.py), without grading."""

from __future__ import annotations

import ast
import importlib
import pkgutil

import nbformat
import pytest

import mutants
from course import REPO, read_notebooks, solution_answers
from mutant_campaign import cell_messages, chapter_mutants, judge_naming
from tfs.grader.judged import VISIBLE_FAILED, with_visible_failure

LISTS = sorted(m.name for m in pkgutil.iter_modules(mutants.__path__) if m.name.startswith("ch"))


def chapter_folder(module: str):
    return next((REPO / "solutions").glob(f"{module[2:]}-*"))


@pytest.mark.parametrize("module", LISTS)
def test_every_mutant_applies_to_the_solution_and_parses(module):
    listed = importlib.import_module(f"mutants.{module}").MUTANTS
    assert len({m.name for m in listed}) == len(listed), "mutant names must be unique"
    answers = {}
    for notebook in read_notebooks(chapter_folder(module)).values():
        answers |= solution_answers(notebook)
    for mutant in listed:
        assert mutant.answer in answers, f"{mutant.name}: no answer cell {mutant.answer}"
        assert mutant.kind in ("common", "rare")
        code = mutant.apply(answers[mutant.answer])
        assert code != answers[mutant.answer], f"{mutant.name} changes nothing"
        ast.parse(code)  # a mutant is a plausible notebook, not a syntax error


def test_a_list_kept_outside_the_repository_is_read_from_its_file(tmp_path):
    held_out = tmp_path / "ch06-held-out.py"
    held_out.write_text('from mutants import Mutant\nMUTANTS = [Mutant("x", "a", "b", "c", r"d", "rare")]\n')
    assert chapter_mutants("06-gpt", held_out) == [mutants.Mutant("x", "a", "b", "c", r"d", "rare")]
    assert chapter_mutants("06-gpt") == importlib.import_module("mutants.ch06").MUTANTS


def graded_cell(grade_id: str, text: str, error: bool) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("judge(...)")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 1, "solution": False}
    cell.outputs = [nbformat.v4.new_output("error", ename="GraderVerdict", evalue=text, traceback=[]) if error
                    else nbformat.v4.new_output("stream", name="stdout", text=text)]
    return cell


def test_cell_messages_separate_the_visible_part_from_the_judges():
    visible = "    ✗ scores: the keys were not transposed"
    notebook = nbformat.v4.new_notebook(cells=[
        graded_cell("test_a", with_visible_failure("✗ ch00.a: values differ", visible, passed=False), error=True),
        graded_cell("test_b", "✗ ch00.b: values differ", error=True),
        graded_cell("test_c", with_visible_failure("✓ ch00.c", visible, passed=True), error=False),
        graded_cell("test_d", "✓ ch00.d", error=False),
    ])
    found = cell_messages(notebook)
    assert set(found) == {"test_a", "test_b", "test_c"}
    assert found["test_a"][1].strip() == visible.strip() and VISIBLE_FAILED not in found["test_a"][1]
    assert found["test_b"][1] == "" and found["test_c"][1].startswith("\n" + visible)


def result(name, answer, names, visible, judge=""):
    return {"mutant": name, "answer": answer, "names": names, "visible": visible, "messages": {"t": judge}}


def test_a_line_shown_for_two_mutants_of_one_answer_names_neither():
    generic = "Hint: per column: dim=0; population variance: correction=0"
    results = [result("sample-std", "standardize", r"population|correction=1", f"values differ\n{generic}"),
               result("rows", "standardize", r"dim=0|column", f"values differ\n{generic}"),
               result("scale", "attention", r"sqrt", "Hint: divide the scores by sqrt(d_k)", "✗ values differ"),
               result("scale-judge", "other", r"sqrt", "", "✗ the scores were not divided by sqrt(d_k)")]
    judge_naming(results)
    assert [bool(r["named"]) for r in results] == [False, False, True, False]
    assert [bool(r["named_in_feedback"]) for r in results] == [False, False, True, True]
