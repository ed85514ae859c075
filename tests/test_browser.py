"""Both labs in a real browser: Debian's chromium, driven by Playwright (never a browser Playwright downloads).

- student (`make lab`): opens chapter 01, writes an exercise, runs it and sees ✓; writes a wrong answer and
  sees the course message naming the mistake; runs chapter 02's head explorer and changes the head (the
  figure is redrawn); finds no Formgrader, Create Assignment or nbgrader menu;
- instructor (`make instructor`, without an activated venv, on a fresh course root): opens Formgrader from
  the Nbgrader menu and sees every chapter listed.

`make test` installs chromium where it can (root with apt-get); elsewhere these tests are skipped with the
reason. Servers listen on 127.0.0.1 only and are stopped with everything they started. A failing test leaves a
screenshot in build/browser-<test>.png and the server's log beside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from course import fill, read_notebooks, solution_answers
from labs import REPO, TOKEN, lab

pytestmark = pytest.mark.slow

BUILD = REPO / "build"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT_MS = 180_000  # one cell may take a while on a loaded 2-core machine

if CHROMIUM is None:
    pytest.skip("BROWSER TESTS SKIPPED: Debian's chromium is not installed and `make test` could not install it "
                "(it needs root and apt-get: `apt-get install -y chromium`)", allow_module_level=True)

# One-line answers: typed into the browser's editor as they are, with no auto-indentation to fight.
SOFTMAX_RIGHT = ("def softmax_stable(x, dim=-1, temperature=1.0): z = x / temperature; "
                 "e = (z - z.amax(dim=dim, keepdim=True)).exp(); return e / e.sum(dim=dim, keepdim=True)")
SOFTMAX_WRONG_DIM = ("def softmax_stable(x, dim=-1, temperature=1.0): z = x / temperature; "
                     "e = (z - z.amax(dim=0, keepdim=True)).exp(); return e / e.sum(dim=0, keepdim=True)")


@pytest.fixture(scope="module", autouse=True)
def browser_timing(timing_report):
    """The browser tests' run time, servers and chromium included, in the run's timings section."""
    start = time.perf_counter()
    yield
    timing_report.append(f"{time.perf_counter() - start:7.1f} s  browser tests (tests/test_browser.py: two labs, chromium)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.getuid() == 0 else []  # chromium's sandbox refuses to run as root
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def page_for(browser, name: str):
    """A fresh browser page; a screenshot in build/ when the test fails inside."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    except BaseException:
        BUILD.mkdir(exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(BUILD / f"browser-{name}.png"), full_page=True)
        raise
    finally:
        context.close()


class Cells:
    """The cells of the notebook on display, by their index in the notebook (not their place in the DOM)."""

    def __init__(self, page):
        self.page = page

    def nth(self, index: int):
        return self.page.locator(f'.jp-Notebook .jp-Cell[data-windowed-list-index="{index}"]')


def open_notebook(page, base: str, path: str, n_cells: int) -> Cells:
    """Open ``path`` in JupyterLab and wait until its ``n_cells`` cells are attached and its kernel is idle."""
    page.goto(f"{base}/lab/tree/{path}?reset&token={TOKEN}")  # reset: a workspace with this notebook only
    page.wait_for_function("(n) => document.querySelectorAll('.jp-Notebook .jp-Cell').length === n", arg=n_cells)
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\bIdle\b")).first.wait_for()
    return Cells(page)


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def select_cell(cells: Cells, index: int) -> None:
    cells.nth(index).locator(".jp-InputPrompt").click()
    cells.page.wait_for_function(  # the click made it the active cell
        "(i) => document.querySelector('.jp-Notebook .jp-Cell.jp-mod-active')?.dataset.windowedListIndex === String(i)",
        arg=index)


def run_all_above(page, cells, index: int) -> None:
    """Run every cell above ``index`` and wait until each code cell among them has an execution count."""
    select_cell(cells, index)
    menu(page, "Run", "Run All Above Selected Cell")
    page.wait_for_function(
        """(n) => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]
                 .filter(c => Number(c.dataset.windowedListIndex) < n && c.classList.contains('jp-CodeCell'))
                 .every(c => /\\[\\d+\\]/.test(c.querySelector('.jp-InputPrompt').textContent))""",
        arg=index, timeout=TIMEOUT_MS)


def write_cell(page, cells, index: int, code: str) -> None:
    cells.nth(index).locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(code)
    page.keyboard.press("Escape")


def run_cell_and_next(page, cells, index: int) -> str:
    """Shift+Enter on cell ``index`` and on the test cell after it; the test cell's output text."""
    select_cell(cells, index)
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    test_cell = cells.nth(index + 1)
    test_cell.locator(".jp-OutputArea-output").first.wait_for()
    page.wait_for_function(
        "(c) => /\\[\\d+\\]/.test(c.querySelector('.jp-InputPrompt').textContent)",
        arg=test_cell.element_handle(), timeout=TIMEOUT_MS)
    return test_cell.locator(".jp-OutputArea").inner_text()


def cell_index(notebook: nbformat.NotebookNode, grade_id: str) -> int:
    return next(i for i, c in enumerate(notebook.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


WIDGETS_NOTEBOOK = "widgets.ipynb"  # a student's notebook with a progress bar and a widget, saved and reopened
WIDGET_CELLS = ["from tqdm.auto import tqdm\nfor step in tqdm(range(3), desc='training'):\n    pass",
                "import ipywidgets\nipywidgets.IntSlider(value=7, description='layers')"]


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """`make lab` on a copy of course/ in which chapter 02's exercises are answered (a student who did them)."""
    notebooks = tmp_path_factory.mktemp("student") / "course"
    shutil.copytree(REPO / "course", notebooks)
    chapter = "02-multihead-attention"
    sources = read_notebooks(REPO / "solutions" / chapter)
    for name, released in read_notebooks(notebooks / chapter).items():
        nbformat.write(fill(released, solution_answers(sources[name])), notebooks / chapter / f"{name}.ipynb")
    kernel = {"kernelspec": nbformat.read(notebooks / "01-attention" / "attention.ipynb", as_version=4).metadata.kernelspec}
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in WIDGET_CELLS],
                                            metadata=kernel), notebooks / WIDGETS_NOTEBOOK)
    with lab("lab", BUILD / "browser-student-lab.log", NOTEBOOKS=str(notebooks)) as base:
        yield base


@pytest.fixture(scope="module")
def instructor_lab(tmp_path_factory):
    """`make instructor` on a fresh course root: solutions/ only, no course/, no grading/, no gradebook."""
    root = tmp_path_factory.mktemp("instructor")
    shutil.copytree(REPO / "solutions", root / "solutions")
    with lab("instructor", BUILD / "browser-instructor-lab.log", COURSE_ROOT=str(root)) as base:
        yield base


def test_student_writes_an_exercise_and_sees_check_then_the_course_message(browser, student_lab):
    from playwright.sync_api import expect

    notebook = nbformat.read(REPO / "course" / "01-attention" / "attention.ipynb", as_version=4)
    exercise = cell_index(notebook, "softmax_stable")
    assert notebook.cells[exercise + 1].metadata["nbgrader"]["grade_id"] == "test_softmax_values"
    with page_for(browser, "student-exercise") as page:
        cells = open_notebook(page, student_lab, "01-attention/attention.ipynb", len(notebook.cells))
        cells.nth(exercise).scroll_into_view_if_needed()  # long notebooks render cells as they scroll into view
        expect(cells.nth(exercise)).to_contain_text("def softmax_stable", timeout=TIMEOUT_MS)
        run_all_above(page, cells, exercise)

        write_cell(page, cells, exercise, SOFTMAX_RIGHT)
        output = run_cell_and_next(page, cells, exercise)
        assert "✓ softmax_stable matches torch.softmax" in output, output
        assert "✗" not in output and "Error" not in output, output

        write_cell(page, cells, exercise, SOFTMAX_WRONG_DIM)
        output = run_cell_and_next(page, cells, exercise)
        assert "✗ softmax_stable(x)" in output, output
        assert "softmax over dim=0 instead of dim=1" in output, output  # the mistake, named
        assert "✓ softmax_stable matches" not in output, output


def test_student_runs_the_head_explorer_and_changes_the_head(browser, student_lab):
    notebook = nbformat.read(REPO / "course" / "02-multihead-attention" / "multihead_attention.ipynb", as_version=4)
    explorer = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and "HeadExplorer(" in c.source)
    with page_for(browser, "student-head-explorer") as page:
        cells = open_notebook(page, student_lab, "02-multihead-attention/multihead_attention.ipynb", len(notebook.cells))
        run_all_above(page, cells, explorer)
        select_cell(cells, explorer)
        page.keyboard.press("Shift+Enter")
        widget = cells.nth(explorer).locator(".jp-OutputArea .widget-vbox").first
        head = widget.locator(".widget-dropdown", has_text="Head").locator("select")
        figure = widget.locator(".widget-output img")
        figure.wait_for()
        before_head, before_png = head.input_value(), figure.get_attribute("src")
        options = head.locator("option").evaluate_all("(os) => os.map(o => o.value)")
        assert len(options) > 1, f"the explorer offers {len(options)} head(s)"
        other = next(value for value in options if value != before_head)
        head.select_option(other)
        page.wait_for_function(  # the output widget redraws: a new image replaces the old one
            "([w, old]) => { const i = w.querySelector('.widget-output img'); return i && i.src !== old; }",
            arg=[widget.element_handle(), before_png], timeout=TIMEOUT_MS)
        assert head.input_value() == other
        assert figure.get_attribute("src") != before_png


def test_student_lab_has_no_instructor_tools(browser, student_lab):
    notebook = nbformat.read(REPO / "course" / "01-attention" / "attention.ipynb", as_version=4)
    with page_for(browser, "student-no-instructor-tools") as page:
        open_notebook(page, student_lab, "01-attention/attention.ipynb", len(notebook.cells))
        menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
        assert "Run" in menus, menus  # the menu bar is there...
        assert "Nbgrader" not in menus, menus  # ...without nbgrader's
        for tool in ("Formgrader", "Create Assignment", "Assignment List", "Courses"):
            assert page.get_by_text(tool, exact=True).count() == 0, f"the student lab shows {tool!r}"
        page.keyboard.press("Control+Shift+C")  # the command palette knows no nbgrader command either
        palette = page.locator(".lm-CommandPalette-input")
        palette.fill("formgrader")
        assert page.locator(".lm-CommandPalette-item").count() == 0
        palette.fill("assignment")
        labels = page.locator(".lm-CommandPalette-item").all_inner_texts()
        assert not [label for label in labels if "Create Assignment" in label or "Assignment List" in label], labels


def test_instructor_opens_formgrader_and_sees_the_chapters(browser, instructor_lab):
    chapters = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    with page_for(browser, "instructor-formgrader") as page:
        page.goto(f"{instructor_lab}/lab?token={TOKEN}")
        menu(page, "Nbgrader", "Formgrader")
        frame = page.frame_locator("iframe[src*='formgrader']")
        for chapter in chapters:  # without alembic on PATH the table stays at "Loading, please wait..."
            frame.get_by_text(chapter, exact=True).first.wait_for()
        assert frame.get_by_text("Loading, please wait...").count() == 0


def test_a_saved_notebook_reopens_with_its_widgets_and_no_errors(browser, student_lab):
    """JupyterLab saves widget state in the notebook (lab/overrides.d/tfs-course.json): reopened after its kernel
    is gone, the progress bar and the slider render from it, with no "Error displaying widget: model not found"
    and no console error about widgets."""
    with page_for(browser, "student-reopen-widgets") as page:
        cells = open_notebook(page, student_lab, WIDGETS_NOTEBOOK, len(WIDGET_CELLS))
        menu(page, "Run", "Run All Cells")
        cells.nth(0).locator(".widget-hprogress").wait_for()
        cells.nth(1).locator(".widget-slider").wait_for()
        page.keyboard.press("Control+s")
        page.wait_for_function("() => !document.title.startsWith('*') && !document.querySelector('.jp-mod-dirty')")
        for kernel in page.request.get(f"{student_lab}/api/kernels?token={TOKEN}").json():  # the widgets' models
            page.request.delete(f"{student_lab}/api/kernels/{kernel['id']}?token={TOKEN}")    # die with the kernel
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{student_lab}/lab/tree/{WIDGETS_NOTEBOOK}?token={TOKEN}")
        page.wait_for_function("(n) => document.querySelectorAll('.jp-Notebook .jp-Cell').length === n",
                               arg=len(WIDGET_CELLS))
        cells.nth(0).locator(".widget-hprogress").wait_for()
        cells.nth(1).locator(".widget-slider").wait_for()
        assert re.search(r"training:\s+100%", cells.nth(0).inner_text()), cells.nth(0).inner_text()
        assert page.get_by_text("Error displaying widget").count() == 0
        widget_errors = [e for e in errors if "widget" in e.lower() or "model not found" in e.lower()]
        assert not widget_errors, widget_errors


def test_feedback_renders_offline_with_its_math_typeset_and_no_line_cut(browser, course):
    """nbgrader's feedback page opened from disk with the network off: the formulas are drawn (MathML boxes with a
    size), no request leaves the machine, and no output line runs past the right edge."""
    from test_autograde import partial_feedback

    page_file = partial_feedback(course)
    context = browser.new_context(viewport={"width": 1000, "height": 900}, offline=True)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    try:
        page.goto(page_file.as_uri())
        sizes = page.eval_on_selector_all("math", "ms => ms.map(m => m.getBoundingClientRect().width)")
        assert len(sizes) > 50 and min(sizes) > 0, f"{len(sizes)} formulas, the narrowest {min(sizes, default=0)} px wide"
        overflowing = page.eval_on_selector_all(
            "pre", "ps => ps.filter(p => p.scrollWidth > p.clientWidth + 1).map(p => p.textContent.slice(0, 80))")
        assert not overflowing, overflowing
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
        assert not [url for url in requests if not url.startswith("file:")], requests
    except BaseException:
        BUILD.mkdir(exist_ok=True)
        page.screenshot(path=str(BUILD / "browser-feedback.png"), full_page=True)
        raise
    finally:
        context.close()
