"""OS-level isolation of grading kernels (bubblewrap), tried from inside a kernel through real ``nbgrader autograde``.

Every attacker below is a chapter 00 submission whose ``standardize`` cell first runs an attack and
then the honest answer. The attack prints what it saw on one ``ISOLATION-PROBE {json}`` line (read
back here from the graded notebook) and raises when the isolation failed, so an attacker who gets
through also loses that exercise's point. All of them are graded in one ``nbgrader autograde`` run,
between two honest students (``i-a-honest`` first, ``i-z-honest`` last), whose exact scores every
test checks in the gradebook.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import nbformat
import pytest

from course import Course, fill, solution_answers
from tfs.grader import isolation

CHAPTER = "00-welcome"
NOTEBOOK = "welcome"
FULL = {"test_standardize": 1.0, "test_batched_scores": 1.0, "test_fit_line": 2.0}
MAX_PROCESSES = 64  # RLIMIT_NPROC of a grading kernel in this run (the configured default is 256)
HONEST = ("i-a-honest", "i-z-honest")
MARKER = "tfs-isolation-daemon-0451"

REASON = isolation.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None,
                                reason=f"SKIPPED LOUDLY: OS-level isolation cannot be tested here: {REASON}")

PROBE = "import json, os, subprocess, sys\n"  # every attack starts with these, and ends by printing what it saw


def attacks(root, port: int) -> dict[str, str]:
    grading = root / "grading"
    other_submitted = grading / "submitted" / "i-z-honest" / CHAPTER / f"{NOTEBOOK}.ipynb"
    other_autograded = grading / "autograded" / "i-a-honest" / CHAPTER / f"{NOTEBOOK}.ipynb"
    solutions = root / "solutions" / CHAPTER / f"{NOTEBOOK}.ipynb"
    gradebook = grading / "gradebook.db"
    return {
        "i-kill-parent": f"""
import signal
seen = {{"parent": os.getppid(), "killed": []}}
for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
            seen["killed"].append(pid)
        except OSError as error:
            seen[str(pid)] = type(error).__name__
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError as error:
    seen["kill parent"] = type(error).__name__
""",
        "i-proc": """
seen = {"pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "commands": []}
for pid in seen["pids"]:
    try:
        seen["commands"].append(open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[0].decode())
    except OSError:
        pass
assert not any("nbgrader" in command or "pytest" in command for command in seen["commands"]), seen
""",
        "i-read": f"""
seen = {{}}
for name, command in {{"solutions": ["cat", {str(solutions)!r}], "submitted": ["ls", {str(grading / 'submitted')!r}],
                      "gradebook": [sys.executable, "-c", "import sqlite3; db = sqlite3.connect({str(gradebook)!r}); "
                                    "db.execute('UPDATE grade SET manual_score = 100'); db.commit()"],
                      "home": ["ls", os.path.expanduser("~root")], "environ": ["cat", "/proc/1/environ"]}}.items():
    result = subprocess.run(command, capture_output=True, text=True)
    seen[name] = [result.returncode, result.stdout[:200], result.stderr[:200]]
assert all(code != 0 or not out for code, out, _ in seen.values()), seen
""",
        "i-cp": f"""
seen = {{}}
for name, target in {{"submitted": {str(other_submitted)!r}, "autograded": {str(other_autograded)!r}}}.items():
    open("forged.ipynb", "w").write("{{}}")
    result = subprocess.run(["cp", "forged.ipynb", target], capture_output=True, text=True)
    seen[name] = [result.returncode, result.stderr[:200]]
assert all(code != 0 for code, _ in seen.values()), seen
""",
        "i-daemon": f"""
daemon = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(900)  # {MARKER}"
subprocess.Popen([sys.executable, "-c", daemon], start_new_session=True)
subprocess.Popen(["sh", "-c", "nohup sleep 901 >/dev/null 2>&1 &"], start_new_session=True)
seen = {{"started": True}}
""",
        "i-forkbomb": """
import time
children, error = [], None
for _ in range(1000):
    try:
        pid = os.fork()
    except OSError as failure:
        error = repr(failure)
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
seen = {"forked": len(children), "error": error}
assert error is not None and len(children) < 1000, seen
""",
        "i-network": f"""
import socket
attempt = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)"],
                         capture_output=True, text=True)
outside = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=5)"],
                         capture_output=True, text=True)
seen = {{"loopback": [attempt.returncode, attempt.stderr[-200:]], "outside": [outside.returncode, outside.stderr[-200:]],
        "interfaces": [name for _, name in socket.if_nameindex()]}}
assert attempt.returncode != 0 and outside.returncode != 0, seen
""",
    }


def probe_output(course: Course, student: str) -> dict:
    path = course.root / "grading" / "autograded" / student / CHAPTER / f"{NOTEBOOK}.ipynb"
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith("ISOLATION-PROBE "):
                    return json.loads(line[len("ISOLATION-PROBE "):])
    raise AssertionError(f"{student}: the probe printed nothing (see {path})")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, timing_report):
    root = tmp_path_factory.mktemp("isolation")
    course = Course(root / "course")
    course.release([CHAPTER])
    scratch = root / "scratch"
    scratch.mkdir()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    connections: list = []
    done = threading.Event()

    def accept():
        while not done.is_set():
            try:
                connections.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    release = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(course.source(CHAPTER)[NOTEBOOK])
    submissions = {student: fill(release, answers) for student in HONEST}
    for student, attack in attacks(course.root, listener.getsockname()[1]).items():
        code = PROBE + attack + '\nprint("ISOLATION-PROBE " + json.dumps(seen, default=str))\n'
        submissions[student] = fill(release, answers | {"standardize": code + answers["standardize"]})
    for student, notebook in submissions.items():
        course.submit(student, CHAPTER, {NOTEBOOK: notebook})
    originals = {student: (course.root / "grading" / "submitted" / student / CHAPTER / f"{NOTEBOOK}.ipynb").read_bytes()
                 for student in HONEST}

    try:
        result, seconds = course.autograde(CHAPTER, "i-*", "--Execute.timeout=60",
                                           f"--SandboxKernelManager.max_processes={MAX_PROCESSES}",
                                           f"--SandboxKernelManager.scratch_root={scratch}")
    finally:
        done.set()
        thread.join()
        listener.close()
    timing_report.append(f"{seconds:7.1f} s  autograde {len(submissions)} chapter-00 submissions in bubblewrap")
    return {"course": course, "result": result, "scratch": scratch, "connections": connections,
            "originals": originals, "students": sorted(submissions)}


def assert_honest_unharmed(state) -> None:
    course = state["course"]
    for student in HONEST:
        assert course.grades(CHAPTER, student) == FULL, f"{student} lost points"
        submitted = course.root / "grading" / "submitted" / student / CHAPTER / f"{NOTEBOOK}.ipynb"
        assert submitted.read_bytes() == state["originals"][student], f"{student}'s submitted notebook was changed"
    database = sqlite3.connect(course.root / "grading" / "gradebook.db")
    assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert database.execute("SELECT COUNT(*) FROM grade WHERE manual_score IS NOT NULL").fetchone() == (0,)


@pytest.mark.slow
def test_killing_the_parent_does_not_stop_grading_of_the_next_students(graded):
    course = graded["course"]
    seen = probe_output(course, "i-kill-parent")
    assert seen["killed"] == [], f"the kernel could kill processes it sees: {seen}"
    assert seen["parent"] == 1, "the kernel's parent should be its sandbox's init"
    assert seen["kill parent"] == "PermissionError", seen
    assert graded["result"].returncode == 0
    for student in graded["students"]:  # everybody after the attacker was graded
        assert set(course.grades(CHAPTER, student)) == set(FULL)
    assert course.grades(CHAPTER, "i-kill-parent") == FULL
    assert_honest_unharmed(graded)


@pytest.mark.slow
def test_proc_shows_only_the_kernels_own_processes(graded):
    seen = probe_output(graded["course"], "i-proc")
    assert 1 in seen["pids"] and len(seen["pids"]) <= 4, seen
    assert all("bwrap" in command or "python" in command for command in seen["commands"]), seen
    assert graded["course"].grades(CHAPTER, "i-proc") == FULL
    assert_honest_unharmed(graded)


@pytest.mark.slow
def test_solutions_submissions_gradebook_and_home_are_unreadable(graded):
    seen = probe_output(graded["course"], "i-read")
    for name, (code, out, err) in seen.items():
        assert code != 0 or not out, f"{name} was readable from the kernel: {out!r}"
    assert "No such file" in seen["solutions"][2] and "No such file" in seen["submitted"][2], seen
    assert graded["course"].grades(CHAPTER, "i-read") == FULL
    assert_honest_unharmed(graded)


@pytest.mark.slow
def test_a_subprocess_cp_cannot_touch_another_students_folders(graded):
    course = graded["course"]
    seen = probe_output(course, "i-cp")
    assert all(code != 0 and "No such file or directory" in error for code, error in seen.values()), seen
    autograded = course.root / "grading" / "autograded" / "i-a-honest" / CHAPTER / f"{NOTEBOOK}.ipynb"
    nbformat.validate(nbformat.read(autograded, as_version=4))
    assert course.grades(CHAPTER, "i-cp") == FULL
    assert_honest_unharmed(graded)


@pytest.mark.slow
def test_a_detached_background_process_does_not_outlive_the_kernel(graded):
    assert probe_output(graded["course"], "i-daemon") == {"started": True}
    survivors = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if MARKER in command or "sleep 901" in command:
            survivors.append(command)
    assert survivors == [], f"processes started by a submission outlived its kernel: {survivors}"
    assert graded["course"].grades(CHAPTER, "i-daemon") == FULL
    assert_honest_unharmed(graded)


@pytest.mark.slow
def test_a_fork_bomb_hits_the_process_limit(graded):
    seen = probe_output(graded["course"], "i-forkbomb")
    assert seen["error"] and "Resource temporarily unavailable" in seen["error"], seen
    assert seen["forked"] < MAX_PROCESSES, seen
    assert graded["course"].grades(CHAPTER, "i-forkbomb") == FULL
    assert_honest_unharmed(graded)


@pytest.mark.slow
def test_the_network_is_unreachable_even_the_graders_loopback(graded):
    seen = probe_output(graded["course"], "i-network")
    assert seen["loopback"][0] != 0 and seen["outside"][0] != 0, seen
    assert seen["interfaces"] == ["lo"], seen
    assert graded["connections"] == [], "a kernel connected to a server on the grader's loopback"
    assert graded["course"].grades(CHAPTER, "i-network") == FULL
    assert_honest_unharmed(graded)


@pytest.mark.slow
def test_scratch_folders_are_removed(graded):
    assert list(graded["scratch"].iterdir()) == [], "kernels' scratch folders were left behind"
    assert_honest_unharmed(graded)


def course_with_one_honest_student(tmp_path) -> Course:
    """A course root with the chapter released and one correct submission, u-honest."""
    course = Course(tmp_path / "course")
    course.release([CHAPTER])
    release = course.released(CHAPTER)[NOTEBOOK]
    answers = solution_answers(course.source(CHAPTER)[NOTEBOOK])
    course.submit("u-honest", CHAPTER, {NOTEBOOK: fill(release, answers)})
    return course


@pytest.mark.slow
def test_grading_refuses_without_isolation_unless_the_instructor_allows_it(tmp_path):
    course = course_with_one_honest_student(tmp_path)
    missing = "--SandboxKernelManager.bwrap=/nonexistent/bwrap"
    refused = course.nbgrader("autograde", CHAPTER, "--CourseDirectory.student_id=u-*", "--force", missing, check=False)
    assert "refusing to run an untrusted submission without OS-level isolation" in refused.stdout + refused.stderr
    assert "allow_unisolated" in refused.stdout + refused.stderr
    allowed = course.nbgrader("autograde", CHAPTER, "--CourseDirectory.student_id=u-*", "--force", missing,
                              "--SandboxKernelManager.allow_unisolated=True", check=False)
    assert "WITHOUT OS-level isolation" in allowed.stdout + allowed.stderr
    assert course.grades(CHAPTER, "u-honest") == FULL


def test_a_scratch_folder_too_deep_for_the_kernels_sockets_is_named():
    assert isolation.scratch_root_problem("/tmp") is None
    deep = "/tmp/" + "d" * 80
    problem = isolation.scratch_root_problem(deep)
    assert problem is not None and deep in problem and "107" in problem and "scratch_root" in problem


@pytest.mark.skipif(REASON is not None, reason=str(REASON))
def test_grading_under_a_scratch_folder_too_deep_refuses_with_the_reason(tmp_path):
    """Found by a fresh-clone run: under a deep scratch folder every kernel died with "ZMQError: File name too long"."""
    course = course_with_one_honest_student(tmp_path)
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    refused = course.nbgrader("autograde", CHAPTER, "--CourseDirectory.student_id=u-*", "--force",
                              f"--SandboxKernelManager.scratch_root={deep}", check=False)
    output = refused.stdout + refused.stderr
    assert "too deep for the kernel's sockets" in output and "File name too long" not in output, output[-3000:]
    assert list(deep.iterdir()) == [], "a scratch folder was made before the refusal"


def test_a_sandboxed_command_sees_no_course_folder_no_grader_environment_and_its_own_files(tmp_path):
    """bwrap directly, no nbgrader: the view, the environment and the copy of the student's folder."""
    own = tmp_path / "student"
    own.mkdir()
    (own / "data.txt").write_text("mine")
    ipc, judge = tmp_path / "ipc", tmp_path / "judge"
    ipc.mkdir()
    judge.mkdir()
    os.environ["TFS_SECRET_FOR_TEST"] = "grader-only"
    try:
        script = ("import json, os; print(json.dumps({'cwd': os.getcwd(), 'files': sorted(os.listdir('.')), "
                  "'data': open('data.txt').read(), 'env': sorted(os.environ), 'root': sorted(os.listdir('/')), "
                  f"'course': sorted(os.listdir({str(own.parent)!r})), 'uid': os.getuid()}}))")
        arguments = isolation.bwrap_arguments(
            ipc=str(ipc), judge=str(judge), submitted=str(own), tmp_mb=16,
            env=isolation.kernel_environment(sys.executable, 1), command=[sys.executable, "-c", script],
            uid=1_000_000 + os.getpid() if os.geteuid() == 0 else None)
        result = subprocess.run(["bwrap", *arguments], capture_output=True, text=True, timeout=120)
    finally:
        del os.environ["TFS_SECRET_FOR_TEST"]
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["cwd"] == isolation.SUBMISSION and seen["files"] == ["data.txt"] and seen["data"] == "mine"
    assert "TFS_SECRET_FOR_TEST" not in seen["env"] and "TFS_JUDGE_OUT" in seen["env"]
    assert "TFS_SMALL_RUN" in seen["env"], "the small-run signal tfs check sets too (tfs.grader.isolation.small_run_environment)"
    assert seen["course"] == ["ipc"], "only the kernel's ipc folder may be visible from the grader's folders"
    assert "submission" in seen["root"] and "home" not in seen["root"]
    if os.geteuid() == 0:
        assert seen["uid"] != 0, "the kernel must not run as root"


def test_folders_above_bound_ones_are_made_traversable():
    assert isolation._ancestors(["/root/.pyenv/versions/3.11", "/work/repo/.venv", "/work/repo/src/tfs"]) == [
        "/root", "/root/.pyenv", "/root/.pyenv/versions", "/work", "/work/repo", "/work/repo/src"]
    assert isolation._ancestors(["/usr", "/usr/lib/python3"]) == []


def test_a_kernel_runs_the_threads_it_is_given_else_the_graders_own(monkeypatch):
    """threads > 0 sets the kernel's OMP_NUM_THREADS; 0 keeps the grader's own setting (make test's one thread per
    process), and torch's default where the grader sets none or something that is not a count."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert isolation.kernel_environment(sys.executable, 0)["OMP_NUM_THREADS"] == "1"
    assert isolation.kernel_environment(sys.executable, 3)["MKL_NUM_THREADS"] == "3"
    for unset in ("", "0", "many; rm -rf /"):
        monkeypatch.setenv("OMP_NUM_THREADS", unset)
        assert "OMP_NUM_THREADS" not in isolation.kernel_environment(sys.executable, 0)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" not in isolation.kernel_environment(sys.executable, 0)
