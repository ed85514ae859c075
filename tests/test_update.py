"""``tfs update``: a learner's answers survive an update that changes another cell of the same notebook."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from tfs import update

NOTEBOOK = "course/01-attention/attention.ipynb"


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True)


def answer_cell(grade_id: str, source: str):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": grade_id,
                                 "schema_version": 3}
    return cell


def write_course(folder, intro: str, answer_ids=("softmax", "mask")):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(intro)] + [
        answer_cell(grade_id, "# YOUR CODE HERE\nraise NotImplementedError()") for grade_id in answer_ids])
    (folder / "course" / "01-attention").mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / NOTEBOOK)


@pytest.fixture()
def upstream_and_clone(tmp_path):
    upstream, clone = tmp_path / "upstream", tmp_path / "student"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "config", "user.email", "t@example.org")
    git(upstream, "config", "user.name", "t")
    write_course(upstream, "# Chapter 01, first edition")
    git(upstream, "add", ".")
    git(upstream, "commit", "-q", "-m", "first")
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    return upstream, clone


def answer(clone, grade_id: str, source: str) -> None:
    notebook = nbformat.read(clone / NOTEBOOK, as_version=4)
    update.put_answers(notebook, {grade_id: source})
    nbformat.write(notebook, clone / NOTEBOOK)


def test_answers_survive_an_update_that_changes_another_cell(upstream_and_clone):
    upstream, clone = upstream_and_clone
    answer(clone, "softmax", "def softmax(x):\n    return x.softmax(-1)  # mine")
    write_course(upstream, "# Chapter 01, second edition: a clearer introduction")
    git(upstream, "commit", "-q", "-am", "second")

    report = update.update(clone)

    notebook = nbformat.read(clone / NOTEBOOK, as_version=4)
    assert notebook.cells[0].source == "# Chapter 01, second edition: a clearer introduction"
    assert update.answers(notebook)["softmax"].endswith("# mine")
    assert update.answers(notebook)["mask"].startswith("# YOUR CODE HERE")
    assert report.restored == {NOTEBOOK: ["mask", "softmax"]} and not report.orphaned
    backup = report.backup / "01-attention" / "attention.ipynb"
    assert "# mine" in backup.read_text(), "the notebook as it was before the update is kept"


def test_an_answer_whose_cell_is_gone_upstream_is_reported_and_kept(upstream_and_clone):
    upstream, clone = upstream_and_clone
    answer(clone, "mask", "def causal_mask(n):\n    return 'kept'")
    write_course(upstream, "# Chapter 01", answer_ids=("softmax",))
    git(upstream, "commit", "-q", "-am", "the mask exercise moved away")

    report = update.update(clone)

    assert report.orphaned == {NOTEBOOK: ["mask"]}
    assert "'kept'" in (report.backup / "01-attention" / "attention.ipynb").read_text()


def test_a_pull_that_cannot_fast_forward_changes_nothing(upstream_and_clone):
    upstream, clone = upstream_and_clone
    answer(clone, "softmax", "mine = 1")
    (clone / "notes.txt").write_text("local")
    git(clone, "add", "notes.txt")
    git(clone, "-c", "user.email=s@example.org", "-c", "user.name=s", "commit", "-q", "-m", "my notes")
    answer(clone, "softmax", "mine = 2")
    write_course(upstream, "# Chapter 01, diverged")
    git(upstream, "commit", "-q", "-am", "upstream")

    with pytest.raises(RuntimeError, match="could not fast-forward"):
        update.update(clone)
    assert update.answers(nbformat.read(clone / NOTEBOOK, as_version=4))["softmax"] == "mine = 2"


def test_the_command_line_reports_what_it_kept(upstream_and_clone):
    upstream, clone = upstream_and_clone
    answer(clone, "softmax", "mine = 3")
    write_course(upstream, "# Chapter 01, third")
    git(upstream, "commit", "-q", "-am", "third")
    result = subprocess.run([sys.executable, "-m", "tfs", "update"], cwd=clone, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "course/01-attention/attention.ipynb: 2 answers kept" in result.stdout


def pull(base: str, repo) -> list[dict]:
    """nbgitpuller's API (what its link's page calls): clone or merge ``repo`` into the server's root."""
    import json
    import urllib.parse
    import urllib.request

    from labs import TOKEN

    query = urllib.parse.urlencode({"repo": str(repo), "branch": "main", "token": TOKEN})
    with urllib.request.urlopen(f"{base}/git-pull/api?{query}", timeout=300) as response:
        events = [json.loads(line[6:]) for line in response.read().decode().splitlines() if line.startswith("data: ")]
    assert events and events[-1].get("phase") == "finished", events[-3:]
    return events


@pytest.mark.slow
def test_nbgitpuller_in_the_student_lab_merges_upstream_changes_and_keeps_the_answer(upstream_and_clone, tmp_path):
    """The hub's links: the student lab has nbgitpuller; a second pull after an upstream edit keeps the answer."""
    from labs import REPO, lab

    upstream, _ = upstream_and_clone
    home = tmp_path / "home"
    home.mkdir()
    with lab("lab", REPO / "build" / "nbgitpuller-lab.log", NOTEBOOKS=str(home)) as base:
        pull(base, upstream)
        pulled = home / upstream.name
        answer(pulled, "softmax", "def softmax(x):\n    return x.softmax(-1)  # mine")
        write_course(upstream, "# Chapter 01, second edition")
        git(upstream, "commit", "-q", "-am", "second")
        pull(base, upstream)
    notebook = nbformat.read(pulled / NOTEBOOK, as_version=4)
    assert update.answers(notebook)["softmax"].endswith("# mine"), "nbgitpuller lost the student's answer"
    assert notebook.cells[0].source == "# Chapter 01, second edition", "the upstream edit did not arrive"


def test_hub_links_open_each_chapter_in_the_pulled_course():
    import sys
    from urllib.parse import parse_qs, urlparse

    from labs import REPO

    sys.path.insert(0, str(REPO / "hub"))
    from links import chapters, pull_link

    assert ("01-attention", "attention.ipynb") in chapters() and len(chapters()) >= 12
    link = urlparse(pull_link("https://hub.example.org/", "https://github.com/ORG/tfs.git", "01-attention", "attention.ipynb"))
    assert link.path == "/hub/user-redirect/git-pull"
    assert parse_qs(link.query) == {"repo": ["https://github.com/ORG/tfs.git"], "branch": ["main"],
                                    "urlpath": ["lab/tree/tfs/course/01-attention/attention.ipynb"]}
    bare = parse_qs(urlparse(pull_link("https://h", "https://g/ORG/student-release", "01-attention", "attention.ipynb",
                                       course_dir="")).query)
    assert bare["urlpath"] == ["lab/tree/student-release/01-attention/attention.ipynb"]
