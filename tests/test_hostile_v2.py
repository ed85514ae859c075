"""Grader v2's hostile corpus: attacks on the in-kernel tests, all graded in ONE nbgrader autograde run.

Each attacker answers standardize correctly (1 point) and returns junk of the right shape for
batched_scores and fit_line (0 points), with the attack run in the batched_scores cell. Judges
outside the kernel decide, so every attacker must score exactly {1, 0, 0}; the honest students in
the same run keep their exact scores, and the gradebook passes ``PRAGMA integrity_check``.

Attacks that need OS isolation to defeat (signals to the parent, reading other students' files or
solutions/ from a subprocess, background processes, ``cp`` into other folders) belong to the
isolation work (issue 10, part 2) and are not here.
"""

from __future__ import annotations

import sqlite3

import nbformat
import pytest

from course import Course, fill, nbgrader_meta, solution_answers
from tfs.grader import isolation

CHAPTER = "00-welcome"
NOTEBOOK = "welcome"
FULL = {"test_standardize": 1.0, "test_batched_scores": 1.0, "test_fit_line": 2.0}
EARNED = {"test_standardize": 1.0, "test_batched_scores": 0.0, "test_fit_line": 0.0}
JUNK_SCORES = "def batched_scores(queries, keys):\n    return torch.zeros(queries.shape[0], queries.shape[1], keys.shape[1])\n"
JUNK_FIT = "def fit_line(x, y, steps=200, lr=0.1):\n    return 0.0, 0.0, [float((y ** 2).mean())] + [0.0] * (steps - 1)\n"

ATTACKS = {
    "v-input-transformer": """
def _drop_tests(lines):
    return [line for line in lines if "check" not in line and "judge" not in line and "collect" not in line]
get_ipython().input_transformers_post.append(_drop_tests)
""",
    "v-ast-transformer": """
import ast
class _EraseCalls(ast.NodeTransformer):
    def visit_Expr(self, node):
        return ast.copy_location(ast.Pass(), node) if isinstance(node.value, ast.Call) else node
get_ipython().ast_transformers.append(_EraseCalls())
""",
    "v-code-swap": """
import tfs.teaching.checks as _checks, tfs.grader.judging as _judging
_checks._fail.__code__ = (lambda *args, **kwargs: None).__code__
_checks.check_true.__code__ = (lambda *args, **kwargs: None).__code__
""",
    "v-tolerances": """
import tfs.teaching.checks as _checks
for _row in _checks.TOLERANCES.values():
    for _dtype in list(_row):
        _row[_dtype] = (1e30, 1e30)
""",
    "v-torch-mode": """
from torch.overrides import TorchFunctionMode
class _Liar(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("sub", "__sub__", "isclose", "allclose", "ne", "__ne__", "gt", "__gt__"):
            result = func(*args, **(kwargs or {}))
            return result.zero_() if hasattr(result, "zero_") else (name == "allclose")
        return func(*args, **(kwargs or {}))
_Liar().__enter__()
""",
    "v-subclass": """
class _Fake(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("sub", "__sub__", "eq", "__eq__", "isclose", "allclose", "abs"):
            return torch.zeros(()) if name != "allclose" else True
        return super().__torch_function__(func, types, args, kwargs)
def batched_scores(queries, keys):
    return torch.zeros(queries.shape[0], queries.shape[1], keys.shape[1]).as_subclass(_Fake)
""",
    "v-gradebook-sqlite": """
import sqlite3
_db = sqlite3.connect({gradebook!r})
_db.execute("UPDATE grade SET manual_score = 99")
_db.commit()
_db.close()
""",
    "v-print-history": """
def _leak_history(result=None):  # after every cell, into that cell's output (kept for ungraded cells)
    shell = get_ipython()
    print("HISTORY-LEAK", repr(shell.user_ns["In"]), repr(list(shell.history_manager.get_range(raw=True))))
get_ipython().events.register("post_run_cell", _leak_history)
""",
    "v-planted-pickle": """
import glob, os, pickle
class _Evil:
    def __reduce__(self):
        return (open, (os.path.join(os.getcwd(), "pwned-by-pickle"), "w"))
def _plant(result=None):
    folders = glob.glob(os.path.join(os.getcwd(), ".tfs-judge-*", "*"))  # beside the notebook (unisolated)
    folders += glob.glob(os.path.join(os.environ.get("TFS_JUDGE_OUT", "/nonexistent"), "*"))  # the sandbox's
    for folder in folders:
        for name in [f"{i:03d}-0" for i in range(60)]:
            with open(os.path.join(folder, name + ".pt"), "wb") as file:
                pickle.dump([_Evil()], file)
get_ipython().events.register("post_run_cell", _plant)
""",
}


def grade_true_on_solution(answers):
    """A solution cell claims to be graded, with points as a string: nbgrader alone recorded no grade."""
    def make(release):
        submission = fill(release, answers)
        for cell in submission.cells:
            if nbgrader_meta(cell).get("grade_id") == "standardize":
                cell.metadata.nbgrader.update(grade=True, points="100")
        return submission
    return make


def invalid_output(answers):
    """An output whose data is not valid for its MIME type: nbgrader alone recorded no grade."""
    def make(release):
        submission = fill(release, answers)
        code = next(cell for cell in submission.cells if cell.cell_type == "code")
        code.outputs = [nbformat.from_dict({"output_type": "display_data", "data": {"text/plain": 5}, "metadata": {}})]
        return submission
    return make


def metadata_list(answers):
    """metadata.nbgrader of a test cell turned into a list: the cell is restored from the release."""
    def make(release):
        submission = fill(release, answers)
        for cell in submission.cells:
            if nbgrader_meta(cell).get("grade_id") == "test_fit_line":
                cell.metadata.nbgrader = ["grade", True]
        return submission
    return make


# student -> (build(answers), words in the grader's notes): full answers, broken metadata or outputs
BROKEN = {
    "v-grade-true": (grade_true_on_solution, "points of standardize were changed"),
    "v-invalid-output": (invalid_output, "was not a valid notebook"),
    "v-metadata-list": (metadata_list, "not a dictionary"),
}


def build(answers: dict, attack: str, gradebook: str) -> callable:
    code = attack.replace("{gradebook!r}", repr(gradebook))
    scores = code + ("\n" + JUNK_SCORES if "def batched_scores" not in code else "")
    return lambda release: fill(release, answers | {"batched_scores": scores, "fit_line": JUNK_FIT})


@pytest.fixture(scope="module")
def graded(course: Course, timing_report):
    source = course.source(CHAPTER)[NOTEBOOK]
    release = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(source)
    gradebook = str(course.root / "grading" / "gradebook.db")
    students = {"v-honest-a": lambda r: fill(r, answers), "v-junk": build(answers, "", gradebook)}
    students |= {student: build(answers, attack, gradebook) for student, attack in ATTACKS.items()}
    students |= {student: make(answers) for student, (make, _) in BROKEN.items()}
    students["v-honest-z"] = lambda r: fill(r, answers)  # graded after every attacker
    for student, make in students.items():
        course.submit(student, CHAPTER, {NOTEBOOK: make(release)})
    _, seconds = course.autograde(CHAPTER, "v-*", "--Execute.timeout=30")
    timing_report.append(f"{seconds:7.1f} s  autograde {len(students)} grader-v2 hostile chapter-00 submissions")
    return course


def autograded(course: Course, student: str):
    return nbformat.read(course.root / "grading" / "autograded" / student / CHAPTER / f"{NOTEBOOK}.ipynb", as_version=4)


def notes(course: Course, student: str) -> str:
    """The grader's notes: the markdown cell that opens the graded notebook."""
    first = autograded(course, student).cells[0]
    return first.source if first.source.startswith("**Notes from the grader**") else ""


@pytest.mark.slow
@pytest.mark.parametrize("student", ["v-honest-a", "v-honest-z"])
def test_honest_students_keep_their_exact_scores(graded, student):
    assert graded.grades(CHAPTER, student) == FULL


@pytest.mark.slow
@pytest.mark.parametrize("student", ["v-junk", *ATTACKS])
def test_attacker_scores_what_their_answers_earn(graded, student):
    assert graded.grades(CHAPTER, student) == EARNED


@pytest.mark.slow
@pytest.mark.parametrize("student", list(BROKEN))
def test_broken_metadata_or_outputs_get_a_grade_and_a_note(graded, student):
    assert graded.grades(CHAPTER, student) == FULL
    assert BROKEN[student][1] in notes(graded, student)


@pytest.mark.slow
def test_test_cells_show_the_judges_verdicts_and_no_hidden_code(graded):
    for student in ["v-honest-a", "v-junk", *ATTACKS]:
        notebook = autograded(graded, student)
        for cell in notebook.cells:
            if cell.cell_type != "code":
                continue
            text = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=cell.outputs)]))
            assert "judge(" not in text and "collect_to" not in text and "BEGIN HIDDEN" not in text, student
            if nbgrader_meta(cell).get("grade"):
                assert len(cell.outputs) == 1
                verdict = cell.outputs[0]
                assert (verdict.output_type == "stream" and verdict.text.startswith("✓")) or \
                       (verdict.output_type == "error" and verdict.ename == "GraderVerdict"), student
    junk = {nbgrader_meta(c)["grade_id"]: c.outputs[0] for c in autograded(graded, "v-subclass").cells
            if nbgrader_meta(c).get("grade")}
    assert "not plain data" in junk["test_batched_scores"].evalue


@pytest.mark.slow
def test_the_kernel_never_saw_the_hidden_tests(graded):
    leaks = [output.text for cell in autograded(graded, "v-print-history").cells if cell.cell_type == "code"
             for output in cell.outputs if output.output_type == "stream" and "HISTORY-LEAK" in output.text]
    leak = "".join(leaks)
    assert "batched_scores(" in leak  # the leak worked: it shows the visible test code the kernel ran
    assert "judge(" not in leak and "collect_to" not in leak and "BEGIN HIDDEN" not in leak


@pytest.mark.slow
def test_gradebook_writes_are_undone_and_the_gradebook_is_sound(graded):
    database = sqlite3.connect(graded.root / "grading" / "gradebook.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert database.execute("SELECT COUNT(*) FROM grade WHERE manual_score IS NOT NULL").fetchone() == (0,)
    assert not graded.flagged(CHAPTER, "v-honest-a")
    if isolation.unavailable_reason() is None:  # the sandbox has no gradebook to open: the write fails at once
        attacker = nbformat.writes(autograded(graded, "v-gradebook-sqlite"))
        assert "unable to open database file" in attacker
    else:  # the in-process sandbox: the write happens, and the grader undoes it, notes and flags it
        assert graded.flagged(CHAPTER, "v-gradebook-sqlite")
        assert "changed the gradebook" in notes(graded, "v-gradebook-sqlite")
    assert not list((graded.root / "grading" / "autograded").glob("*/*/.tfs-judge-*")), "scratch folders were left"


@pytest.mark.slow
def test_a_planted_pickle_is_never_unpickled(graded):
    folder = graded.root / "grading" / "autograded" / "v-planted-pickle" / CHAPTER
    assert not (folder / "pwned-by-pickle").exists()
