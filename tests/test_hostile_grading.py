"""Grader v3: one submission never stops another's grade. Attacks on the grading run itself (what a submission's
outputs, metadata, output volume and running time do to nbgrader), all graded in ONE ``nbgrader autograde`` run between two
honest students, with the course's real configuration.

Each attacker answers every exercise correctly: it scores what its answers earn (everything, or what ran before
its notebook's time limit), with a note where the grader changed anything; ``autograde`` exits 0; the honest
students keep their exact scores; the gradebook stays sound. The feedback of the script-carrying submission
runs no script.
"""

from __future__ import annotations

import ast
import copy
import errno
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import nbformat
import pytest

from course import Course, fill, nbgrader_meta, solution_answers

CHAPTER = "00-welcome"
NOTEBOOK = "welcome"
TIMEOUT = 8  # seconds per cell for this run
NOTEBOOK_TIMEOUT = 30  # seconds per notebook for this run
FULL = {"test_standardize": 1.0, "test_batched_scores": 1.0, "test_fit_line": 2.0}
SWALLOW = "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass\n"


def prefixed(answers, grade_id: str, code: str):
    """The full solution, with ``code`` run first in the solution cell ``grade_id``."""
    return lambda release: fill(release, answers | {grade_id: code + "\n" + answers[grade_id]})


def pasted_test_cell(answers):
    """A test cell copied and pasted further down (JupyterLab keeps its metadata): two cells, one grade_id."""
    def make(release):
        submission = fill(release, answers)
        test = next(cell for cell in submission.cells if nbgrader_meta(cell).get("grade_id") == "test_standardize")
        submission.cells.append(copy.deepcopy(test))
        return submission
    return make


def interrupt_swallowers(answers):
    """A slow first exercise, then cells that ignore the interrupt: each one restarted the kernel and replayed it."""
    def make(release):
        submission = fill(release, answers | {"standardize": "import time\ntime.sleep(2)\n" + answers["standardize"]})
        after = next(i for i, cell in enumerate(submission.cells)
                     if nbgrader_meta(cell).get("grade_id") == "test_standardize") + 1
        submission.cells[after:after] = [nbformat.v4.new_code_cell(SWALLOW) for _ in range(4)]
        return submission
    return make


def scripts(answers):
    """Script in a markdown cell and in an HTML output of the student's own cell."""
    def make(release):
        submission = prefixed(answers, "standardize", (
            "from IPython.display import HTML, Javascript, display\n"
            "display(HTML('<b>bold</b><script>window.tfsOutputScript = 1</script>'"
            "             '<img src=x onerror=\"window.tfsOnerror = 1\">'))\n"
            "display(Javascript('window.tfsJavascript = 1'))"))(release)
        submission.cells.insert(1, nbformat.v4.new_markdown_cell(
            "My notes <script>window.tfsMarkdownScript = 1</script> <a href=\"javascript:alert(1)\">link</a>"))
        return submission
    return make


TOTAL_MEMORY_MB = 1536  # the whole sandbox's memory for this run: an honest chapter-00 kernel needs ~400 MiB
JUDGE_MB = 64  # the judge folder's size for this run
# four children of 500 MiB each (pages touched), under the 6 GiB per-process limit but not under the total
MEMORY_HOGS = """import os, time
children = []
for _ in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(500 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(3)
        os._exit(0)
    children.append(pid)
print("TFS-CHILDREN", [os.waitpid(pid, 0)[1] for pid in children])"""
# 200 MiB into the folder on the grader's disk that the kernel's collectors write to
JUDGE_FILL = """import os
written, error = 0, 0
try:
    for i in range(25):
        with open(os.path.join(os.environ["TFS_JUDGE_OUT"], f"fill-{i}"), "wb") as file:
            file.write(bytes(8 * 1024 * 1024))
        written += 8
except OSError as failure:
    error = failure.errno
print("TFS-JUDGE-FILL", written, error)"""


# student -> (build(answers), expected grades, words in the grader's notes)
CASES = {
    "g-honest-a": (lambda answers: lambda release: fill(release, answers), FULL, None),
    # display outputs whose payloads are not strings: nbgrader failed validating the executed notebook
    "g-mime": (lambda answers: prefixed(answers, "standardize", (
        "from IPython.display import publish_display_data\n"
        "publish_display_data({'text/plain': ['a'], 'image/png': 5})\n"
        "publish_display_data({'text/plain': 'x', 'text/html': {'a': 1}})")), FULL, "not a valid output"),
    "g-pasted-test": (pasted_test_cell, FULL, "copied grade_id"),
    # 300 MB printed in 1 MB pieces, then one 80 MB message: the grader kept all of it in memory
    "g-flood": (lambda answers: prefixed(answers, "batched_scores", (
        "for _ in range(300):\n    print('x' * 1_000_000)\nprint('y' * 80_000_000)")), FULL, None),
    "g-swallow": (interrupt_swallowers, FULL | {"test_batched_scores": 0.0, "test_fit_line": 0.0},
                  "time limit of the whole notebook"),
    "g-script": (scripts, FULL, None),
    "g-memory-hogs": (lambda answers: prefixed(answers, "standardize", MEMORY_HOGS), FULL, None),
    # its own results no longer fit in its judge folder: nothing of it can be judged
    "g-judge-fill": (lambda answers: prefixed(answers, "standardize", JUDGE_FILL), dict.fromkeys(FULL, 0.0), None),
    "g-honest-z": (lambda answers: lambda release: fill(release, answers), FULL, None),
}


def autograded(course: Course, student: str):
    return nbformat.read(course.root / "grading" / "autograded" / student / CHAPTER / f"{NOTEBOOK}.ipynb", as_version=4)


def notes(course: Course, student: str) -> str:
    """The grader's notes: the markdown cell that opens the graded notebook."""
    first = autograded(course, student).cells[0]
    return first.source if first.source.startswith("**Notes from the grader**") else ""


@pytest.fixture(scope="module")
def graded(course: Course, timing_report, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("hostile-grading-scratch")  # this batch's kernels' folders, and nobody else's
    source = course.source(CHAPTER)[NOTEBOOK]
    release = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(source)
    for student, (make, _, _) in CASES.items():
        course.submit(student, CHAPTER, {NOTEBOOK: make(answers)(release)})
    start = time.perf_counter()
    result = course.nbgrader("autograde", CHAPTER, "--CourseDirectory.student_id=g-*", "--force",
                             f"--Execute.timeout={TIMEOUT}", f"--ResilientExecute.notebook_timeout={NOTEBOOK_TIMEOUT}",
                             f"--SandboxKernelManager.total_memory_mb={TOTAL_MEMORY_MB}",
                             f"--SandboxKernelManager.judge_mb={JUDGE_MB}",
                             f"--SandboxKernelManager.scratch_root={scratch}", check=False)
    seconds = time.perf_counter() - start
    timing_report.append(f"{seconds:7.1f} s  autograde {len(CASES)} grading-attack chapter-00 submissions")
    return course, result, scratch


@pytest.mark.slow
def test_autograde_succeeds_for_everyone(graded):
    _, result, _ = graded
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("student", list(CASES))
def test_each_submission_is_graded_with_its_note(graded, student):
    course, _, _ = graded
    _, expected, words = CASES[student]
    assert course.grades(CHAPTER, student) == expected
    if words:
        assert words in notes(course, student)


@pytest.mark.slow
def test_graded_notebooks_are_valid_and_small(graded):
    course, _, _ = graded
    for student in CASES:
        nbformat.validate(autograded(course, student))
    flood = course.root / "grading" / "autograded" / "g-flood" / CHAPTER / f"{NOTEBOOK}.ipynb"
    assert flood.stat().st_size < 2_000_000
    assert "dropped by the grader" in flood.read_text()


@pytest.mark.slow
def test_feedback_runs_no_script(graded):
    course, _, _ = graded
    course.nbgrader("generate_feedback", CHAPTER, "--CourseDirectory.student_id=g-script", "--force")
    page = (course.root / "grading" / "feedback" / "g-script" / CHAPTER / f"{NOTEBOOK}.html").read_text()
    assert "My notes" in page and "<b>bold</b>" in page  # the student's text and harmless HTML stay
    tags = re.findall(r"<[a-zA-Z][^>]*>", page)  # the student's code is on the page too, escaped: only tags count
    assert not [tag for tag in tags if tag.lower().startswith("<script")]
    assert not [tag for tag in tags if re.search(r"\son\w+\s*=", tag, re.IGNORECASE)]
    assert not [tag for tag in tags if "javascript:" in tag.lower()]


@pytest.mark.slow
def test_gradebook_is_sound(graded):
    course, _, _ = graded
    database = sqlite3.connect(course.root / "grading" / "gradebook.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    recorded = database.execute("SELECT COUNT(*) FROM submitted_notebook JOIN submitted_assignment ON "
                                "submitted_notebook.assignment_id = submitted_assignment.id "
                                "WHERE submitted_assignment.student_id LIKE 'g-%'").fetchone()
    assert recorded == (len(CASES),)


def printed(course: Course, student: str, marker: str) -> str:
    """The line the submission printed after ``marker``."""
    for cell in autograded(course, student).cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(marker + " "):
                    return line[len(marker) + 1:]
    raise AssertionError(f"{student} printed no {marker} line")


@pytest.mark.slow
def test_the_sandbox_has_one_memory_limit_for_all_its_processes(graded):
    """Four 500 MiB children, each under the per-process limit: together over the sandbox's 1.5 GiB, so the kernel's
    OOM killer ends some of them inside the sandbox; the grader, the judge and the other students go on."""
    from tfs.grader import isolation

    parent, why = isolation.memory_cgroup_parent()
    if parent is None:
        pytest.skip(f"no memory cgroup here: {why}")
    course, _, scratch = graded
    statuses = ast.literal_eval(printed(course, "g-memory-hogs", "TFS-CHILDREN"))  # wait statuses, printed by repr
    killed = [status for status in statuses if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL]
    assert killed, f"every child held its 500 MiB at once: {statuses}"
    names = [f"tfs-{folder.name}" for folder in scratch.iterdir()]
    assert names == [], f"kernels' folders were left behind: {names}"
    # kernels graded beside this batch have cgroups of their own, with processes; a leftover one is empty and old
    left = [group.name for group in parent.glob("tfs-tfs-kernel-*")
            if not (group / "cgroup.procs").read_text().strip() and time.time() - group.stat().st_mtime > 60]
    assert left == [], f"kernels' cgroups were left behind: {left}"


@pytest.mark.slow
def test_the_judge_folder_is_size_limited(graded):
    if os.geteuid() != 0:
        pytest.skip("the judge folder is a size-limited tmpfs only where the grader is root (it mounts it)")
    course, _, scratch = graded
    written, error = map(int, printed(course, "g-judge-fill", "TFS-JUDGE-FILL").split())
    assert written <= JUDGE_MB and error == errno.ENOSPC, (written, error)
    mounted = [line for line in Path("/proc/self/mounts").read_text().splitlines() if str(scratch) in line]
    assert mounted == [], f"judge folders stayed mounted: {mounted}"


@pytest.mark.slow
def test_a_grader_ended_by_sigterm_leaves_nothing_on_the_host(course: Course, tmp_path_factory):
    """``kill`` (SIGTERM) of ``grade_parallel.py`` while a kernel runs a cell: it stops its ``nbgrader autograde``
    worker, which stops its kernel and removes the kernel's scratch folder, judge tmpfs and memory cgroup."""
    import subprocess
    import sys

    from course import REPO
    from tfs.grader import isolation

    running = "import os, time\nopen(os.path.join(os.environ['TFS_JUDGE_OUT'], 'running'), 'w').close()\ntime.sleep(300)"
    source, released = course.source(CHAPTER)[NOTEBOOK], course.released(CHAPTER)[NOTEBOOK]
    course.submit("t-terminated", CHAPTER, {NOTEBOOK: prefixed(solution_answers(source), "standardize", running)(released)})
    # a short folder: the kernel's IPC socket lives in it, and a socket's path has at most 107 characters
    scratch, log = tmp_path_factory.mktemp("sigterm"), tmp_path_factory.mktemp("sigterm-log") / "grade_parallel.log"
    with open(log, "w") as output:
        grader = subprocess.Popen(
            [sys.executable, str(REPO / "autograder" / "grade_parallel.py"), CHAPTER, "-j", "1", "--no-progress",
             "--students", "t-terminated", "--", "--Execute.timeout=600", f"--SandboxKernelManager.scratch_root={scratch}"],
            env={**os.environ, "TFS_COURSE_ROOT": str(course.root)}, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 180
        while not list(scratch.glob("*/judge/running")) and grader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        kernels = list(scratch.iterdir())
        assert list(scratch.glob("*/judge/running")), "the cell never ran:\n" + log.read_text()[-3000:]
        grader.terminate()
        assert grader.wait(90) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    finally:
        grader.kill()
    assert list(scratch.iterdir()) == [], "the kernel's scratch folder was left behind"
    assert list((course.root / "grading").glob("tfs-grade-*")) == [], "the workers' folder was left behind"
    running = subprocess.run(["pgrep", "-f", f"{scratch}|{course.root}/grading/tfs-grade"], capture_output=True,
                             text=True).stdout.split()
    assert running == [], f"the worker or its kernel outlived the grader: {running}"
    mounted = [line for line in Path("/proc/self/mounts").read_text().splitlines() if str(scratch) in line]
    assert mounted == [], f"the judge tmpfs stayed mounted: {mounted}"
    parent, _ = isolation.memory_cgroup_parent()
    if parent is not None:
        left = [f"tfs-{kernel.name}" for kernel in kernels if (parent / f"tfs-{kernel.name}").exists()]
        assert left == [], f"the kernel's memory cgroup was left behind: {left}"
