"""`tfs check` names cells the way a learner finds them in JupyterLab (which shows no cell numbers)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tfs.grader.selfcheck import NOT_RUN, CellRun, build_report, describe_cell, format_report


def notebook():
    return new_notebook(cells=[
        new_markdown_cell("# Chapter\n\n## 2. Demo section\nSome prose."),
        new_code_cell("\n\nratio = 1 / 0   # a demo cell that fails\nprint(ratio)"),
        new_code_cell("def f():\n    return 1", metadata={"nbgrader": {"solution": True, "grade_id": "f_answer"}}),
        new_code_cell("assert f() == 2", metadata={"nbgrader": {"grade": True, "grade_id": "test_f", "points": 1}}),
        new_code_cell("", metadata={}),
        new_code_cell("x" * 100),
    ])


def test_cells_are_named_by_grade_id_or_first_line_and_heading():
    nb = notebook()
    assert describe_cell(nb, 1) == "the cell starting 'ratio = 1 / 0   # a demo cell that fails' (under \"2. Demo section\")"
    assert describe_cell(nb, 3) == "test_f"
    assert describe_cell(nb, 4) == 'an empty cell (under "2. Demo section")'
    assert describe_cell(nb, 5).startswith("the cell starting '" + "x" * 60 + "…'")
    assert describe_cell(new_notebook(cells=[new_code_cell("y = 2")]), 0) == "the cell starting 'y = 2'"


def test_the_report_names_a_failing_demo_cell_without_an_index():
    nb = notebook()
    runs = [CellRun(status="ok"), CellRun(status="error", ename="ZeroDivisionError", evalue="division by zero"),
            CellRun(status="ok"), CellRun(status="error", ename="AssertionError", evalue=""),
            CellRun(status=NOT_RUN, note="the kernel died in " + describe_cell(nb, 1)), CellRun(status="ok")]
    text = format_report(build_report(Path("demo.ipynb"), nb, runs, 1.0))
    assert "the cell starting 'ratio = 1 / 0" in text and '(under "2. Demo section"): ZeroDivisionError' in text
    assert "test_f" in text
    assert "cell 2" not in text and "cell 1:" not in text
