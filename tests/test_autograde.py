"""Autograding end to end with nbgrader's own commands, scores read from the real gradebook."""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat
import pytest

from course import CHAPTERS, Course, exercises, fill, nbgrader_meta, points_by_cell, solution_answers
from test_references import reference_answers
from test_selfcheck_hostile import sneaky_chapter01
from tfs.grader import references

CH01 = "01-attention"
LOOP_TIMEOUT = 10  # seconds; the configured Execute.timeout (120 s) applies in real grading


def wrong_causal_mask(answers):
    return answers | {"causal_mask": "def causal_mask(size, device=None):\n"
                                     "    return torch.ones(size, size, dtype=torch.bool, device=device).tril(-1)"}


def tampered(release_nb, answers):
    """A wrong softmax, and its first test cell replaced by a print: nbgrader must restore the test."""
    attention = answers["scaled_dot_product_attention"]
    assert "softmax_stable(scores" in attention
    submission = fill(release_nb, answers | {
        "softmax_stable": "def softmax_stable(x, dim=-1, temperature=1.0):\n    return torch.exp(x)",
        "scaled_dot_product_attention": attention.replace("softmax_stable(scores", "torch.softmax(scores"),
    })
    test_cell = next(c for c in submission.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_softmax_values")
    test_cell.source = 'print("all tests pass")'
    return submission


# student -> (build the submission, the test cells that must score 0, the exact total out of 11)
SCENARIOS = {
    "s01-full": (lambda release, answers: fill(release, answers), set(), 11),
    "s01-untouched": (lambda release, answers: release, "all", 0),
    "s01-partial": (lambda release, answers: fill(release, wrong_causal_mask(answers)),  # hidden: causal_mask(1)
                    {"test_causal_mask_values", "test_causal_mask_dtype"}, 9),
    "s01-exception": (
        lambda release, answers: fill(release, answers | {"scaled_dot_product_attention": 'raise RuntimeError("unfinished")'}),
        {"test_attention_shapes", "test_attention_values", "test_attention_masks", "test_attention_gradients"}, 5),
    "s01-loop": (lambda release, answers: fill(release, answers | {"causal_mask": "while True:\n    pass"}),
                 {"test_causal_mask_values", "test_causal_mask_dtype"}, 9),
    "s01-tampered": (tampered, {"test_softmax_values", "test_softmax_large_logits", "test_softmax_temperature"}, 8),
}


@pytest.mark.slow
def test_chapter01_submissions_get_exact_scores(course: Course, timing_report):
    source = course.source(CH01)["attention"]
    release = course.released(CH01)["attention"]
    answers = solution_answers(source)
    points = points_by_cell(source)
    assert sum(points.values()) == 11
    for student, (build, _, _) in SCENARIOS.items():
        course.submit(student, CH01, {"attention": build(release, answers)})

    result, seconds = course.autograde(CH01, "s01-*", f"--Execute.timeout={LOOP_TIMEOUT}")
    timing_report.append(f"{seconds:7.1f} s  autograde {len(SCENARIOS)} chapter-01 submissions "
                         f"(one loops until the {LOOP_TIMEOUT} s timeout)")

    for student, (_, zeros, total) in SCENARIOS.items():
        grades = course.grades(CH01, student)
        zeros = set(points) if zeros == "all" else zeros
        expected = {grade_id: 0.0 if grade_id in zeros else value for grade_id, value in points.items()}
        assert grades == expected, f"{student}: per-cell scores"
        assert sum(grades.values()) == total, f"{student}: total"
    # nbgrader logs a checksum warning for every test cell with hidden tests, so that proves nothing:
    # the course's grader compares with the release, notes the edit for the student and flags it.
    tampered_nb = (course.root / "grading" / "autograded" / "s01-tampered" / CH01 / "attention.ipynb").read_text()
    assert "The read-only cell test_softmax_values was edited" in tampered_nb
    assert course.flagged(CH01, "s01-tampered") and not course.flagged(CH01, "s01-full")
    assert "Timeout waiting for execute reply" in result.stdout + result.stderr, "the loop was not timed out"


def partial_feedback(course: Course) -> Path:
    """The feedback page of chapter 01's partial submission (graded first if the run has not graded it yet)."""
    student = "s01-partial"
    page = course.root / "grading" / "feedback" / student / CH01 / "attention.html"
    if not page.exists():
        if not (course.root / "grading" / "autograded" / student).exists():
            course.submit(student, CH01, {"attention": SCENARIOS[student][0](
                course.released(CH01)["attention"], solution_answers(course.source(CH01)["attention"]))})
            course.autograde(CH01, student)
        course.nbgrader("generate_feedback", CH01, f"--CourseDirectory.student_id={student}", "--force")
    return page


@pytest.mark.slow
def test_feedback_shows_messages_but_not_hidden_tests(course: Course):
    """Feedback for chapter 01's partial submission: the friendly message is there, hidden test code is not;
    it loads no script (math comes as MathML: tfs.grader.feedback), so it renders offline."""
    page = partial_feedback(course).read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page), "the feedback page loads a script (MathJax from a CDN?)"
    assert page.count("<math") > 50, "the chapter's LaTeX was not turned into MathML"
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert not re.search(r"\$[^$\n]{1,60}\$", text), "raw LaTeX left in the page"
    assert "causal_mask(4): values differ from the expected result" in text
    assert "hides the diagonal" in text  # the probe's diagnosis reaches the student
    assert "visible test of this cell failed" in text, "the visible test's message is not quoted in the feedback"
    assert "BEGIN HIDDEN TESTS" not in text and "for n in (1, 2, 7, 64)" not in text
    assert "checks.py" not in text, "the grading kernel showed the check's internals, not the learner's line"
    images = re.findall(r"<img\b[^>]*>", page)
    assert images, "the chapter's figures are missing from the feedback page"
    assert all(re.search(r'\balt="(?!No description)[^"]+"', image) for image in images), \
        "a figure on the feedback page has no text alternative (tfs.teaching.plots.show_figure gives one)"


@pytest.mark.slow
@pytest.mark.spread
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_grades_solution_full_release_zero_first_exercise_exactly(course: Course, chapter, timing_report):
    sources = course.source(chapter)
    releases = course.released(chapter)
    submissions = {
        f"c{chapter}-solution": {name: fill(releases[name], solution_answers(src)) for name, src in sources.items()},
        f"c{chapter}-release": releases,
        f"c{chapter}-first": {name: fill(releases[name], dict([next(iter(solution_answers(src).items()))]))
                              for name, src in sources.items()},
    }
    number = references.chapter_of(chapter)
    attacked = {}  # the chapter's own references as answers (tfs.grader.references), graded beside honest students
    if number not in references.PENDING and references.hidden(number):
        # in the untouched release's place (the suite keeps its time): the first student's other exercises and
        # chapter 01's "untouched" scenario still grade unanswered cells
        del submissions[f"c{chapter}-release"]
        for name, src in sources.items():
            answers, attacked[name] = reference_answers(chapter, solution_answers(src))
            if chapter == "01-attention":  # softmax imported only "under grading" (tests/test_selfcheck_hostile.py)
                answers = sneaky_chapter01(answers)
            submissions.setdefault(f"c{chapter}-references", {})[name] = fill(releases[name], answers)
    for student, notebooks in submissions.items():
        course.submit(student, chapter, notebooks)
    _, seconds = course.autograde(chapter, f"c{chapter}-*")
    timing_report.append(f"{seconds / len(submissions):7.1f} s  autograde one {chapter} submission "
                         f"({len(submissions)} took {seconds:.1f} s)")

    points = {}
    first_tests = set()
    for source in sources.values():
        points |= points_by_cell(source)
        first_tests |= set(exercises(source)[0][1])
    assert sum(course.grades(chapter, f"c{chapter}-solution").values()) == sum(points.values()) > 0
    if f"c{chapter}-release" in submissions:
        assert sum(course.grades(chapter, f"c{chapter}-release").values()) == 0
    assert sum(course.grades(chapter, f"c{chapter}-first").values()) == sum(points[g] for g in first_tests) > 0
    for name, source in sources.items():
        assert_runs_until_the_first_unanswered_exercise(course, chapter, name, source)
    if number in references.PENDING:
        pytest.xfail(f"pending: chapter {number}'s own references are not hidden yet: {references.PENDING[number]}")
    if any(attacked.values()):
        assert_references_score_nothing(course, chapter, sources, attacked, points)


def first_failure(notebook) -> tuple[int, str]:
    """(index, error text) of the first cell with an error output; (-1, "") when none failed."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, f"{output.get('ename')}: {output.get('evalue')}"
    return -1, ""


def assert_runs_until_the_first_unanswered_exercise(course: Course, chapter: str, name: str, source) -> None:
    """The release runs as a student finds it until the first exercise they have not answered: graded with only
    its first exercise answered, no cell fails before the second exercise, and the first failure there is its
    NotImplementedError (in its own cell or in its first test, whose verdict quotes it). Every cell before it
    ran in this grading, so a release cell that needs a solution, a missing import or data fails here."""
    graded = nbformat.read(course.root / "grading" / "autograded" / f"c{chapter}-first" / chapter / f"{name}.ipynb", 4)
    index, error = first_failure(graded)
    unanswered = [(answer, tests) for answer, tests in exercises(source)[1:] if tests]
    where = f"{chapter}/{name}.ipynb graded with its first exercise answered"
    if not unanswered:
        assert index == -1, f"{where}: cell {index} failed ({error[:200]}); nothing was left unanswered"
        return
    answer, tests = unanswered[0]
    grade_id = nbgrader_meta(graded.cells[index]).get("grade_id") if index >= 0 else None
    assert grade_id in {answer, tests[0]} and "NotImplementedError" in error, (
        f"{where}: expected the first failure in {answer} or {tests[0]} with NotImplementedError, got cell {index} "
        f"({grade_id or 'not graded'}) with {error[:200] or 'no error at all'}")


def assert_references_score_nothing(course: Course, chapter: str, sources, attacked: dict, points: dict) -> None:
    """The exercises answered by the chapter's own references score 0, with the rule's message in the graded
    notebook; every other exercise of that submission keeps its points."""
    student, number = f"c{chapter}-references", references.chapter_of(chapter)
    grades = course.grades(chapter, student)
    for name, source in sources.items():
        graded = nbformat.read(course.root / "grading" / "autograded" / student / chapter / f"{name}.ipynb", 4)
        outputs = {cell.metadata.get("nbgrader", {}).get("grade_id"): str(cell.get("outputs", "")) for cell in graded.cells}
        for exercise, tests in exercises(source):
            if exercise in attacked[name]:
                assert {test: grades[test] for test in tests} == dict.fromkeys(tests, 0.0), f"{exercise} scored"
                assert any(f"is chapter {number}'s own reference" in outputs.get(test, "") for test in tests), \
                    f"{exercise}: the graded notebook does not state the rule"
            else:
                assert {test: grades[test] for test in tests} == {test: points[test] for test in tests}, exercise


def test_the_course_configuration_serializes_for_formgrader():
    """Formgrader shows the configuration as JSON and warned "not serializable" for the repair hook (a function)."""
    import json

    from traitlets.config.loader import PyFileConfigLoader

    from course import REPO

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO / "autograder")).load_config()
    json.dumps(config)
    assert callable(config.Autograde.pre_convert_hook)
