"""Grader v3, the host side: links, devices, FIFOs, oversized files and bad student ids in ``grading/submitted/``.

Before any sandbox exists, nbgrader and the course's hooks read, copy and write a submission with the grader's
rights (:mod:`tfs.grader.intake`). Every attack below is a chapter 00 submission folder, all graded in ONE
``nbgrader autograde`` run between two honest students (``hh-honest-a`` first, ``hh-honest-z`` last): a refused
submission scores 0 with the reason in its notes, nothing planted is read, copied or written through, no other
student's file or grade changes, and the gradebook stays sound. The repair hook's ``.invalid``/``.unreadable``
names are tried without nbgrader too (cheap).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat

import nbformat
import pytest

from course import Course, fill, solution_answers
from tfs.grader import grading, intake

CHAPTER = "00-welcome"
NOTEBOOK = "welcome"
FULL = {"test_standardize": 1.0, "test_batched_scores": 1.0, "test_fit_line": 2.0}
ZERO = dict.fromkeys(FULL, 0.0)
HONEST = ("hh-honest-a", "hh-honest-z")
LEAK = "print(open('gradebook.db', 'rb').read(2000)); print(open('solution.txt').read())\n"
BAD_IDS = ("hh-honest-[z]", "hh-new\nline")


def _link(path, target) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def plant(course: Course, answers: dict, release) -> dict[str, str]:
    """Every attacker's folder, built by hand; returns ``{student: words expected in the refusal note}``."""
    root, grading_dir = course.root, course.root / "grading"
    submitted = grading_dir / "submitted"
    solution = root / "solutions" / CHAPTER / f"{NOTEBOOK}.ipynb"
    full = fill(release, answers)
    leaking = fill(release, answers | {"standardize": LEAK + answers["standardize"]})

    _link(submitted / "hh-link-notebook" / CHAPTER / f"{NOTEBOOK}.ipynb", solution)
    _link(submitted / "hh-link-folder", root / "solutions")  # the student's folder: solutions/00-welcome graded
    _link(submitted / "hh-classmate" / CHAPTER, submitted / HONEST[0] / CHAPTER)

    course.submit("hh-links", CHAPTER, {NOTEBOOK: leaking})
    links = submitted / "hh-links" / CHAPTER
    _link(links / "gradebook.db", grading_dir / "gradebook.db")
    _link(links / "solution.txt", solution)
    _link(links / "timestamp.txt", "/dev/zero")

    course.submit("hh-specials", CHAPTER, {NOTEBOOK: full})
    specials = submitted / "hh-specials" / CHAPTER
    os.mkfifo(specials / "pipe")
    os.link(solution, specials / "solution-copy.txt")  # a hard link: the solution under another name
    with open(specials / "sparse.bin", "wb") as sparse:  # 300 MB that take no disk
        sparse.truncate(300 * intake.MEGABYTE)
    (specials / "data").mkdir()
    (specials / "data" / "timestamp.txt").write_text("not a time")
    if os.geteuid() == 0:
        os.mknod(specials / "zero", stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero under another name

    broken = fill(release, answers)
    next(cell for cell in broken.cells if cell.cell_type == "code").outputs = [
        nbformat.from_dict({"output_type": "display_data", "data": {"text/plain": 5}, "metadata": {}})]
    course.submit("hh-invalid-link", CHAPTER, {NOTEBOOK: broken})  # the repair hook would keep a copy as .invalid
    _link(submitted / "hh-invalid-link" / CHAPTER / f"{NOTEBOOK}.ipynb.invalid", grading_dir / "gradebook.db")

    course.submit("hh-bad-time", CHAPTER, {NOTEBOOK: full})
    (submitted / "hh-bad-time" / CHAPTER / "timestamp.txt").write_text("yesterday, honestly")
    for student in BAD_IDS:
        course.submit(student, CHAPTER, {NOTEBOOK: release})
    return {"hh-link-notebook": f"{NOTEBOOK}.ipynb is a link", "hh-link-folder": "the student's folder is a link",
            "hh-classmate": f"{CHAPTER} is a link", "hh-links": "gradebook.db is a link",
            "hh-specials": "pipe is a FIFO", "hh-invalid-link": f"{NOTEBOOK}.ipynb.invalid is a link",
            "hh-bad-time": "timestamp.txt does not hold a timestamp"}


def digests(*folders) -> dict[str, str]:
    """sha256 of every regular file under ``folders`` (links not followed)."""
    found = {}
    for folder in folders:
        for parent, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(parent, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    found[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return found


@pytest.fixture(scope="module")
def graded(course: Course, timing_report):
    source = course.source(CHAPTER)[NOTEBOOK]
    release = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(source)
    for student in HONEST:
        course.submit(student, CHAPTER, {NOTEBOOK: fill(release, answers)})
    reasons = plant(course, answers, release)
    protected = [course.root / "solutions", *(course.root / "grading" / "submitted" / s for s in HONEST)]
    before = digests(*protected)
    result, seconds = course.autograde(CHAPTER, "hh-*", "--Execute.timeout=30")
    timing_report.append(f"{seconds:7.1f} s  autograde {len(reasons) + 2} host-side hostile chapter-00 submissions")
    return course, reasons, answers, before, digests(*protected), result.stdout + result.stderr


def autograded(course: Course, student: str):
    return nbformat.read(course.root / "grading" / "autograded" / student / CHAPTER / f"{NOTEBOOK}.ipynb", as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("student", HONEST)
def test_honest_students_keep_their_exact_scores(graded, student):
    course = graded[0]
    assert course.grades(CHAPTER, student) == FULL
    assert not course.flagged(CHAPTER, student)


@pytest.mark.slow
def test_every_refused_submission_is_recorded_with_0_and_its_reason(graded):
    course, reasons = graded[:2]
    for student, reason in reasons.items():
        assert course.grades(CHAPTER, student) == ZERO, student
        assert course.flagged(CHAPTER, student), student
        note = autograded(course, student).cells[0].source
        assert "Your submission was not graded" in note and reason in note, (student, note)


@pytest.mark.slow
def test_nothing_planted_was_read_copied_or_leaked(graded):
    course, reasons, answers = graded[:3]
    honest_files = sorted(os.listdir(course.root / "grading" / "autograded" / HONEST[0] / CHAPTER))
    for student in reasons:
        folder = course.root / "grading" / "autograded" / student / CHAPTER
        assert sorted(os.listdir(folder)) == honest_files, student  # no gradebook, solution or device copied in
        assert sum(path.stat().st_size for path in folder.iterdir()) < 5 * intake.MEGABYTE, student
        notebook = autograded(course, student)
        sources = "\n".join(cell.source for cell in notebook.cells)
        outputs = "".join(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=cell.outputs)]))
                          for cell in notebook.cells if cell.cell_type == "code")
        assert answers["fit_line"].strip() not in sources, student  # the solution was not graded as theirs
        for leak in ("SQLite format", "BEGIN HIDDEN", "judge(", "### BEGIN SOLUTION"):
            assert leak not in outputs, (student, leak)


@pytest.mark.slow
def test_other_students_files_solutions_and_gradebook_are_untouched(graded):
    course, reasons, _, before, after = graded[:5]
    assert before == after
    database = sqlite3.connect(course.root / "grading" / "gradebook.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    students = {row[0] for row in database.execute("SELECT id FROM student WHERE id LIKE 'hh-%'")}
    assert students == set(HONEST) | set(reasons)
    submitted = course.root / "grading" / "submitted"
    kept = [name for name in os.listdir(submitted / "hh-links") if name.startswith(".refused-")]
    assert len(kept) == 1 and os.path.islink(submitted / "hh-links" / kept[0] / "timestamp.txt")  # kept, unread
    assert any(name.startswith(".refused-") and name.endswith("hh-link-folder") for name in os.listdir(submitted))


@pytest.mark.slow
def test_bad_student_ids_are_refused_with_a_message_and_harm_nobody(graded):
    course, *_, log = graded
    for student in BAD_IDS:
        assert f"Refusing the submission of the student id {student!r}" in log
        assert not (course.root / "grading" / "autograded" / student).exists()
    assert course.grades(CHAPTER, HONEST[1]) == FULL  # hh-honest-[z] globbed onto hh-honest-z's notebook before


def test_the_repair_hook_writes_through_no_planted_name(tmp_path, course: Course):
    """The hook's own writes, without the intake in front of them: a repairable notebook with ``.invalid``
    planted as a link to another student's notebook, an unreadable one with ``.unreadable`` planted as a folder.
    The victim is unchanged, the originals are kept under fresh names, and the intake refuses such a folder."""
    folder = tmp_path / "submitted" / "r-student" / CHAPTER
    folder.mkdir(parents=True)
    broken = course.released(CHAPTER)[NOTEBOOK]
    next(cell for cell in broken.cells if cell.cell_type == "code").outputs = [
        nbformat.from_dict({"output_type": "display_data", "data": {"text/plain": 5}, "metadata": {}})]
    victim = tmp_path / "victim.ipynb"
    victim.write_text("another student's notebook")
    nbformat.write(broken, folder / "repaired.ipynb")
    os.symlink(victim, folder / "repaired.ipynb.invalid")
    (folder / f"{NOTEBOOK}.ipynb").write_text("{not json")
    (folder / f"{NOTEBOOK}.ipynb.unreadable").mkdir()
    hook = grading.make_repair_hook(str(course.root / "course"), str(tmp_path / "submitted"))
    hook._repair(CHAPTER, folder / "repaired.ipynb")
    hook._repair(CHAPTER, folder / f"{NOTEBOOK}.ipynb")
    assert victim.read_text() == "another student's notebook"
    assert os.path.islink(folder / "repaired.ipynb.invalid") and not any((folder / f"{NOTEBOOK}.ipynb.unreadable").iterdir())
    kept = [name for name in os.listdir(folder) if name.startswith("repaired.ipynb.invalid-")]
    assert len(kept) == 1 and "display_data" in (folder / kept[0]).read_text()
    assert "was not a valid notebook" in (folder / "repaired.ipynb").read_text()
    assert "could not be read" in (folder / f"{NOTEBOOK}.ipynb").read_text()
    assert [name for name in os.listdir(folder) if name.startswith(f"{NOTEBOOK}.ipynb.unreadable-")]
    assert intake.problems(folder) == ["repaired.ipynb.invalid is a link"]


def test_student_ids():
    for student in ("alice", "b.ob-2", "carol_x@uni.edu", "dave+1"):
        assert intake.valid_student_id(student), student
    for student in ("zz-hones[t]", "a*", "a?", "new\nline", "a b", "a,b", "../x", ".hidden", "", "-x", "a/b"):
        assert not intake.valid_student_id(student), student


EXCHANGE_USERS = {"daemon": 1, "bin": 2, "sys": 3, "sync": 4, "games": 5, "man": 6, "lp": 7, "mail": 8,
                  "ghost-a": 4242, "ghost-b": 4243}  # the ghosts: no account here (a hub with one uid per user)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: exchange folders owned by several system users")
def test_collect_takes_only_a_students_own_plain_folders(tmp_path, course: Course):
    """``nbgrader collect`` from a filesystem exchange whose ``inbound/`` every student can write (the system's users
    stand in for students): a folder named as another student, links, a device, a FIFO, an oversized file, a
    malformed timestamp and a bad id are refused with a message; each honest student's own latest folder is
    collected, byte for byte."""
    inbound = tmp_path / "exchange" / "transformers-from-scratch" / "inbound"
    inbound.mkdir(parents=True)
    solution = course.root / "solutions" / CHAPTER / f"{NOTEBOOK}.ipynb"

    def folder(name: str, owner: str, files: dict[str, str]):
        path = inbound / name
        path.mkdir()
        for file, text in files.items():
            (path / file).write_text(text)
        for entry in [path, *path.iterdir()]:
            os.lchown(entry, EXCHANGE_USERS[owner], EXCHANGE_USERS[owner])
        return path

    own = {"daemon": "daemon's work", "bin": "bin's work", "mail": "mail's work", "ghost-a": "ghost-a's work"}
    for student, text in own.items():
        folder(f"{student}+{CHAPTER}+2026-12-01 10:00:00.000000 UTC+a1", student,
               {f"{NOTEBOOK}.ipynb": text, "timestamp.txt": "2026-12-01 10:00:00.000000 UTC"})
    folder(f"bin+{CHAPTER}+2026-12-02 10:00:00.000000 UTC+b2", "sys", {f"{NOTEBOOK}.ipynb": "sys posing as bin"})
    os.symlink(course.root / "solutions" / CHAPTER, inbound / f"sys+{CHAPTER}+2026-12-01 10:00:00.000000 UTC+c3")
    links = folder(f"sync+{CHAPTER}+2026-12-01 10:00:00.000000 UTC+d4", "sync", {})
    for name, target in ((f"{NOTEBOOK}.ipynb", solution), ("gradebook.db", course.root / "grading" / "gradebook.db"),
                         ("environ", "/proc/self/environ"), ("timestamp.txt", "/dev/zero")):
        os.symlink(target, links / name)
    specials = folder(f"games+{CHAPTER}+2026-12-01 10:00:00.000000 UTC+e5", "games", {f"{NOTEBOOK}.ipynb": "{}"})
    os.mknod(specials / "zero", stat.S_IFCHR | 0o644, os.makedev(1, 5))
    os.mkfifo(specials / "pipe")
    with open(specials / "sparse.bin", "wb") as sparse:
        sparse.truncate(300 * intake.MEGABYTE)
    for entry in specials.iterdir():
        os.lchown(entry, 5, 5)
    folder(f"man+{CHAPTER}+last tuesday+f6", "man", {f"{NOTEBOOK}.ipynb": "{}"})
    folder(f"lp+{CHAPTER}+2026-12-01 10:00:00.000000 UTC+g7", "lp", {f"{NOTEBOOK}.ipynb": "{}", "timestamp.txt": "soon"})
    folder(f"zz-hones[t]+{CHAPTER}+2026-12-01 10:00:00.000000 UTC+h8", "daemon", {f"{NOTEBOOK}.ipynb": "{}"})
    folder(f"ghost-b+{CHAPTER}+2026-12-01 10:00:00.000000 UTC+i9", "ghost-b", {f"{NOTEBOOK}.ipynb": "{}"})

    submitted = tmp_path / "submitted"
    result = course.nbgrader("collect", CHAPTER, f"--Exchange.root={tmp_path / 'exchange'}",
                             f"--CourseDirectory.submitted_directory={submitted}", "--SafeCollect.student_uids=ghost-a=4242")
    log = result.stdout + result.stderr
    assert sorted(os.listdir(submitted)) == sorted(own), log
    for student, text in own.items():
        assert (submitted / student / CHAPTER / f"{NOTEBOOK}.ipynb").read_text() == text
    for words in ("+b2: ", "+c3: ", "+d4: ", "+e5: ", "+f6: ", "+g7: ", "+h8: ", "+i9: "):
        assert "Refusing the submission" in log and words in log, (words, log)
    assert "is not owned by bin" in log and "is a link" in log and "a character device" in log
    assert "there is no user 'ghost-b' on this machine" in log


def test_parallel_grading_lists_no_bad_student_id(tmp_path, capsys):
    from tfs.grader import parallel

    for student in ("alice", *BAD_IDS, ".refused-20261207T000000000000Z-bob", "bob"):
        (tmp_path / student / CHAPTER).mkdir(parents=True)
    assert parallel.submissions(tmp_path, CHAPTER) == ["alice", "bob"]
    assert capsys.readouterr().err.count("Refusing the submission of the student id") == len(BAD_IDS)
