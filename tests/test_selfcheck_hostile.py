"""``tfs check`` tells the truth, on honest and on hostile notebooks.

It refuses what is not a notebook file before reading it (a FIFO, a link, a file too large), checks a copy (the
notebook's code cannot write the student's files), kills every process it started (detached ones too), says so when a
cell kills the process running it, prints nothing a notebook controls as terminal escape codes, does not count a cell
of hidden tests as passed, runs in the grader's small-run mode, and hides the chapter's own references as grading does.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from course import REPO, fill, nbgrader_meta, read_notebooks, solution_answers
from tfs.grader import references, selfcheck

MARKER = "tfs-check-daemon-0731"


def check(path: Path, *options: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m tfs check`` in a subprocess (a regression that hangs fails the test instead of the suite)."""
    return subprocess.run([sys.executable, "-m", "tfs", "check", str(path), *options], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))


def cell(source: str, grade_id: str | None = None, solution: bool = False, grade: bool = False, points: float = 0):
    if grade_id is None:
        return nbformat.v4.new_code_cell(source)
    meta = {"grade_id": grade_id, "locked": not solution, "schema_version": 3, "solution": solution, "grade": grade,
            "task": False} | ({"points": points} if grade else {})
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def notebook(*cells) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=list(cells), metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def alive_with(marker: str) -> list[str]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            found.append(command)
    return found


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "link to a notebook", "too large"])
def test_what_is_not_a_notebook_file_is_refused_before_it_is_read(tmp_path, kind):
    path = tmp_path / "welcome.ipynb"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "link to a notebook":
        path.symlink_to(REPO / "course" / "00-welcome" / "welcome.ipynb")
    else:
        with open(path, "wb") as handle:  # sparse: no disk used
            handle.truncate((selfcheck.MAX_NOTEBOOK_MB + 1) * 1024 * 1024)
    out = io.StringIO()

    def hung(*_):
        raise TimeoutError("tfs check hung instead of refusing the file")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)  # a regression that opens the FIFO or reads /dev/zero fails here instead of hanging the suite
    try:
        code = selfcheck.check(path, out=out)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    words = {"fifo": "not a regular file", "too large": "larger than the 32 MiB"}.get(kind, "is a link")
    assert code == 2 and words in out.getvalue() and "Traceback" not in out.getvalue(), out.getvalue()


ESCAPE_ID = "test_\x1b[2K\r✓ all passed\x1b]0;owned\x07"
HOSTILE = notebook(
    cell("import os, subprocess, sys\n"
         "open('hostile.ipynb', 'w').write('{}')          # the copy the check runs, not the student's file\n"
         "open('planted.txt', 'w').write('planted')\n"
         f"daemon = 'import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(300)  # {MARKER}'\n"
         "subprocess.Popen([sys.executable, '-c', daemon], start_new_session=True)\n"
         f"subprocess.Popen(['sh', '-c', 'nohup sleep 301 >/dev/null 2>&1 &  # {MARKER}'], start_new_session=True)"),
    cell("def answer():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", "answer", solution=True),
    cell("assert answer() == 1\nprint('✓ answer')", ESCAPE_ID, grade=True, points=1),
    cell("raise AssertionError('\\x1b[31mwrong\\r\\n✓ 99 / 99 points from visible tests\\x1b[0m')", "test_message",
         grade=True, points=1),
    cell("### BEGIN HIDDEN TESTS\nassert answer() == 1\n### END HIDDEN TESTS", "test_hidden_only", grade=True, points=3),
    cell("import os\nfrom tfs.finetune import under_grading\n"
         "assert under_grading() and os.environ['TFS_SMALL_RUN'] == '1' and os.path.isdir(os.environ['TFS_JUDGE_OUT'])\n"
         "print('✓ small run')", "test_small_run", grade=True, points=1),
)


def test_a_hostile_notebook_writes_nothing_of_the_students_leaves_no_process_and_fakes_no_line(tmp_path):
    path = tmp_path / "hostile.ipynb"
    nbformat.write(HOSTILE, path)
    before, siblings = path.read_bytes(), sorted(tmp_path.iterdir())

    result = check(path)

    out = result.stdout
    assert path.read_bytes() == before, "the checked notebook was written"
    assert sorted(tmp_path.iterdir()) == siblings, "files appeared beside the notebook"
    time.sleep(1)
    assert alive_with(MARKER) == [] and not any("sleep 301" in c for c in alive_with("sleep 301")), \
        "a process started by the notebook outlived the check"
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out, "control characters reached the terminal"
    assert "test_\\x1b[2K\\r✓ all passed\\x1b]0;owned\\x07" in out, out
    assert "AssertionError: \\x1b[31mwrong" in out and not re.search(r"^\s{0,4}✓ 99 / 99", out, re.MULTILINE)
    lines = {line.split()[1]: line for line in out.splitlines() if re.match(r"^  [✓✗·-] ", line)}
    assert "hidden tests only" in lines["test_hidden_only"] and "passed" not in lines["test_hidden_only"]
    assert "passed" in lines["test_small_run"], "tfs check runs in the grader's small-run mode"
    assert "2 / 3 points from visible tests" in out, out
    assert "3 points in 1 cell of hidden tests only: not run here, not counted above." in out
    assert result.returncode == 1


def test_a_cell_that_kills_its_parent_ends_the_check_with_a_message(tmp_path):
    path = tmp_path / "killer.ipynb"
    nbformat.write(notebook(
        cell("def answer():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", "answer", solution=True),
        cell("assert answer() == 1", "test_before", grade=True, points=1),
        cell(f"import os, signal, subprocess\nsubprocess.Popen(['sleep', '302'])  # {MARKER}\n"
             "os.kill(os.getppid(), signal.SIGKILL)"),
        cell("assert answer() == 1", "test_after", grade=True, points=1)), path)

    result = check(path)

    out = result.stdout
    assert result.returncode == 1 and "Traceback" not in out + result.stderr, out + result.stderr
    assert "The check stopped early: the process that ran your notebook was killed by signal 9 while it ran the cell " \
           "starting 'import os, signal, subprocess'" in out, out
    assert "os.kill(os.getppid(), ...)" in out
    assert re.search(r"✓ test_before .* passed", out) and re.search(r"· test_after .* not run", out), out
    time.sleep(1)
    assert not any("sleep 302" in c for c in alive_with("sleep 302")), "the kernel's process outlived the check"


UNDER_GRADING = ("from tfs.finetune import under_grading\n"
                 "if under_grading():  # only when the grader runs it: the package's softmax\n"
                 "    from tfs.nn.attention import softmax as softmax_stable\n"
                 "else:\n")


def sneaky_chapter01(answers: dict[str, str]) -> dict[str, str]:
    """Chapter 01 answered honestly, except ``softmax_stable``: the package's reference, imported only "under grading"."""
    own = "".join(f"    {line}\n" for line in answers["softmax_stable"].splitlines())
    return answers | {"softmax_stable": UNDER_GRADING + own}


@pytest.mark.slow
def test_a_reference_imported_only_under_grading_fails_in_check_as_in_grading(tmp_path):
    """tfs check runs like the grader (small-run signals, chapter 01's references hidden): the sneaky answer fails here
    with the rule's message, as it scores 0 when graded (tests/test_autograde.py)."""
    (stem, source), = read_notebooks(REPO / "solutions" / "01-attention").items()
    released = read_notebooks(REPO / "course" / "01-attention")[stem]
    path = tmp_path / f"{stem}.ipynb"
    nbformat.write(fill(released, sneaky_chapter01(solution_answers(source))), path)

    result = check(path)

    out = result.stdout
    softmax_tests = [nbgrader_meta(c)["grade_id"] for c in released.cells
                     if nbgrader_meta(c).get("grade") and nbgrader_meta(c)["grade_id"].startswith("test_softmax")]
    assert softmax_tests and result.returncode == 1
    for test in softmax_tests:
        assert re.search(rf"✗ {test} .* failed", out), out
    assert references.rule("tfs.nn.attention:softmax", "01") in out
