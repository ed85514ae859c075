"""A class on the course's JupyterHub (hub/jupyterhub_config.py), for real, on loopback only.

The test starts a PostgreSQL server (the gradebook) and JupyterHub with its pinned proxy, creates local system
users (an instructor and three students, with passwords), and then, through JupyterHub's REST API (a service
token) and the users' own servers (running as those users):

- the instructor's Formgrader API generates and releases chapter 01 into the exchange;
- each student's Assignments API fetches it; one student writes the solution into it, one the first exercise
  only, one nothing (contents API); the first two submit;
- the instructor collects (Formgrader API), autogrades as the Kubernetes grading Job would, two batches at once
  (`autograder/grade_batch.py`, the parallel grader on each batch's students), as the instructor's system user,
  every kernel in bubblewrap, generates and releases feedback;
- each student fetches their feedback; the scores in PostgreSQL equal the points the notebooks' metadata give.

A browser (Playwright driving Debian's chromium, as tests/test_browser.py) logs in as a student and sees the
chapter in the Assignments list, and as the instructor and sees Formgrader list it. Everything the test started
is stopped and removed: the hub, the users' servers, PostgreSQL, the users and their homes, the exchange.
Skipped, with the reason, only where PostgreSQL, Node (the proxy), root (user creation) or chromium is missing.
"""

from __future__ import annotations

import contextlib
import concurrent.futures
import html
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from course import COURSE_ID, exercises, fill, points_by_cell, read_notebooks, solution_answers
from labs import free_port
from test_postgres import _server_programs, postgres_database

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROXY = REPO / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHAPTER = "01-attention"
NOTEBOOK = "attention"
BUILD = REPO / "build"
TIMEOUT = 600  # seconds for one server action on a loaded 2-core machine


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "JUPYTERHUB TEST SKIPPED: creating local system users and spawning their servers needs root"
    if not (shutil.which("useradd") and shutil.which("userdel") and shutil.which("chpasswd")):
        return "JUPYTERHUB TEST SKIPPED: useradd/userdel/chpasswd are missing (Debian's passwd package)"
    if _server_programs() is None:
        return "JUPYTERHUB TEST SKIPPED: PostgreSQL server programs are missing (apt-get install -y postgresql)"
    if not shutil.which("node"):
        return "JUPYTERHUB TEST SKIPPED: Node.js is missing (the proxy, configurable-http-proxy, runs on it)"
    if not PROXY.exists():
        return "JUPYTERHUB TEST SKIPPED: configurable-http-proxy is not installed: run `make hub-proxy` (npm ci in hub/)"
    return None


if _skip_reason():
    pytest.skip(_skip_reason(), allow_module_level=True)


# --- PostgreSQL: a server for this module, on a unix socket the instructor's user can reach ---------------------
@pytest.fixture(scope="module")
def gradebook_url():
    with postgres_database("hub_gradebook", 5434, socket_readable_by_all=True) as url:  # the instructor connects
        yield url


# --- local system users, removed afterwards with everything they ran ----------------------------------------------
def _kill_processes_of(uid: int) -> None:
    import psutil

    for process in psutil.process_iter(["uids"]):
        with contextlib.suppress(psutil.Error):
            if process.info["uids"] and process.info["uids"].real == uid:
                process.kill()


def _resident_mb(uid: int) -> float:
    import psutil

    total = 0
    for process in psutil.process_iter(["uids", "memory_info"]):
        if process.info["uids"] and process.info["uids"].real == uid and process.info["memory_info"]:
            total += process.info["memory_info"].rss
    return total / 2**20


@pytest.fixture(scope="module")
def users():
    """``{"instructor": name, "students": [names], "homes": Path, "password": str}``; created here, removed after."""
    tag = secrets.token_hex(2)
    names = {"instructor": f"tfs{tag}instr", "students": [f"tfs{tag}s{i}" for i in (1, 2, 3)]}
    everyone = [names["instructor"], *names["students"]]
    homes = Path(tempfile.mkdtemp(prefix="tfs-hub-homes-"))
    os.chmod(homes, 0o755)
    password = secrets.token_urlsafe(12)
    made = []
    try:
        for name in everyone:
            result = subprocess.run(["useradd", "--create-home", "--home-dir", str(homes / name), "--shell", "/bin/bash",
                                     "--user-group", name], capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                pytest.skip(f"JUPYTERHUB TEST SKIPPED: useradd could not create a user here: {result.stderr.strip()}")
            made.append(name)
        subprocess.run(["chpasswd"], input="".join(f"{n}:{password}\n" for n in everyone), text=True, check=True,
                       timeout=60)
        try:
            granted = traverse_granted(_closed_ancestors(), [pwd.getpwnam(n).pw_uid for n in everyone])
            granted.__enter__()
        except OSError as error:
            pytest.skip(f"JUPYTERHUB TEST SKIPPED: the course's environment ({sys.executable}) is in a folder other "
                        f"users cannot enter, and an ACL to let the test's users in could not be set: {error}")
        try:
            yield {**names, "homes": homes, "password": password}
        finally:
            granted.__exit__(None, None, None)
    finally:
        for name in made:
            with contextlib.suppress(KeyError):
                _kill_processes_of(pwd.getpwnam(name).pw_uid)
            subprocess.run(["userdel", name], capture_output=True, timeout=60)
            subprocess.run(["groupdel", name], capture_output=True, timeout=60)  # if userdel left the group
        shutil.rmtree(homes, ignore_errors=True)


# --- the course's environment must be reachable by the users' servers ------------------------------------------------
ACL_XATTR = "system.posix_acl_access"
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20


def _closed_ancestors() -> list[Path]:
    """Folders on the way to the course's Python and environment that other users cannot enter (e.g. /root)."""
    closed = []
    for target in (Path(os.path.realpath(sys.executable)), BIN, REPO):
        for folder in [*reversed(target.parents), target]:
            if folder.is_dir() and not folder.stat().st_mode & 0o001 and folder not in closed:
                closed.append(folder)
    return closed


@contextlib.contextmanager
def traverse_granted(folders: list[Path], uids: list[int]):
    """A POSIX ACL giving ``uids`` search (x) permission on ``folders``, removed afterwards with the mode restored.

    A pyenv Python under /root (mode 700) is what this machine has; a real class installs the course's
    environment where every user can read it (autograder/INSTRUCTORS.md). The ACL is written as the kernel's
    extended attribute (no setfacl needed) and names only the test's users.
    """
    import struct

    saved = {}
    try:
        for folder in folders:
            mode = folder.stat().st_mode & 0o7777
            saved[folder] = mode
            entries = [(ACL_USER_OBJ, (mode >> 6) & 7, 0xFFFFFFFF)] + [(ACL_USER, 1, uid) for uid in sorted(uids)]
            entries += [(ACL_GROUP_OBJ, (mode >> 3) & 7, 0xFFFFFFFF), (ACL_MASK, ((mode >> 3) & 7) | 1, 0xFFFFFFFF),
                        (ACL_OTHER, mode & 7, 0xFFFFFFFF)]
            os.setxattr(folder, ACL_XATTR, struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries))
        yield
    finally:
        for folder, mode in saved.items():
            with contextlib.suppress(OSError):
                os.removexattr(folder, ACL_XATTR)
            os.chmod(folder, mode)


def run_as(name: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """A command run as the local user ``name``, from their home, with their HOME."""
    entry = pwd.getpwnam(name)
    env = {"HOME": entry.pw_dir, "USER": name, "LOGNAME": name, "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
           "LANG": "C.UTF-8", **kwargs.pop("env", {})}
    return subprocess.run(command, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], env=env,
                          cwd=kwargs.pop("cwd", entry.pw_dir), capture_output=True, text=True, **kwargs)


# --- JupyterHub -----------------------------------------------------------------------------------------------------
class Hub:
    def __init__(self, url: str, token: str):
        import requests

        self.url, self.session = url, requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, **kwargs):
        response = self.session.request(method, f"{self.url}/hub/api/{path}", timeout=120, **kwargs)
        assert response.status_code < 400, f"{method} /hub/api/{path}: {response.status_code} {response.text[:2000]}"
        return response.json() if response.content else None

    def server(self, user: str, method: str, path: str, **kwargs):
        """A request to ``user``'s own server (as the service, whose token may access every server)."""
        response = self.session.request(method, f"{self.url}/user/{user}/{path}", timeout=TIMEOUT, **kwargs)
        assert response.status_code < 400, f"{method} /user/{user}/{path}: {response.status_code} {response.text[:3000]}"
        return response.json() if response.content else None

    def start(self, names: list[str]) -> None:
        for name in names:
            self.api("POST", f"users/{name}/server")
        deadline = time.monotonic() + TIMEOUT
        waiting = set(names)
        while waiting:
            for name in sorted(waiting):
                server = self.api("GET", f"users/{name}")["servers"].get("")
                if server and server["ready"]:
                    waiting.discard(name)
            assert time.monotonic() < deadline, f"servers not ready after {TIMEOUT} s: {sorted(waiting)}"
            time.sleep(1)


@pytest.fixture(scope="module")
def hub(users, gradebook_url, timing_report):
    token = secrets.token_hex(32)
    work = Path(tempfile.mkdtemp(prefix="tfs-hub-"))
    os.chmod(work, 0o755)  # the exchange's parent: every user enters it (the hub's state inside is 0700)
    exchange = work / "exchange"
    course_root = users["homes"] / users["instructor"] / "course"
    shutil.copytree(REPO / "solutions" / CHAPTER, course_root / "solutions" / CHAPTER)
    instructor = pwd.getpwnam(users["instructor"])
    subprocess.run(["chown", "-R", f"{instructor.pw_uid}:{instructor.pw_gid}", str(course_root)], check=True)
    url = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TFS_", "JUPYTER", "VIRTUAL_ENV"))}
    env.update({
        "TFS_HUB_URL": url, "TFS_HUB_INTERNAL_PORT": str(free_port()), "TFS_HUB_PROXY_API_PORT": str(free_port()),
        "TFS_HUB_STATE": str(work / "state"), "TFS_HUB_API_TOKEN": token, "TFS_EXCHANGE_ROOT": str(exchange),
        "TFS_HUB_INSTRUCTOR": users["instructor"], "TFS_HUB_STUDENTS": ",".join(users["students"]),
        "TFS_COURSE_ROOT": str(course_root), "TFS_GRADEBOOK_URL": gradebook_url,
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    })
    BUILD.mkdir(exist_ok=True)
    log = BUILD / "hub.log"
    start = time.perf_counter()
    with open(log, "w") as output:
        process = subprocess.Popen([str(BIN / "jupyterhub"), "-f", str(REPO / "hub" / "jupyterhub_config.py")],
                                   cwd=work, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    hub = Hub(url, token)
    try:
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(Exception):
                if hub.session.get(f"{url}/hub/api/", timeout=5).status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, f"JupyterHub did not start:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        hub.start([users["instructor"], *users["students"]])
        memory = {name: _resident_mb(pwd.getpwnam(name).pw_uid) for name in [users["instructor"], *users["students"]]}
        timing_report.append(f"{time.perf_counter() - start:7.1f} s  JupyterHub up with 4 users' servers (tests/test_hub.py); "
                             "resident memory per user's server: " + ", ".join(f"{m:.0f} MB" for m in memory.values()))
        yield hub, exchange, course_root
    finally:
        with contextlib.suppress(Exception):  # the hub stops the users' servers and its proxy when it stops
            for name in [users["instructor"], *users["students"]]:
                hub.session.delete(f"{url}/hub/api/users/{name}/server", timeout=60)
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
                break
        shutil.rmtree(work, ignore_errors=True)


def _answers() -> tuple[dict[str, str], dict[str, str], float, float]:
    """(full answers, first exercise only, full points, first exercise's points) from the notebooks' metadata."""
    source = read_notebooks(REPO / "solutions" / CHAPTER)[NOTEBOOK]
    points = points_by_cell(source)
    answers = solution_answers(source)
    first, first_tests = exercises(source)[0]
    return answers, {first: answers[first]}, sum(points.values()), sum(points[t] for t in first_tests)


def test_a_term_on_jupyterhub(hub, users, gradebook_url, timing_report):
    from nbgrader.api import Gradebook, MissingEntry

    hub, exchange, course_root = hub
    instructor, (full, partial, none) = users["instructor"], users["students"]
    answers, first_only, full_points, first_points = _answers()
    assert 0 < first_points < full_points
    course = {"course_id": COURSE_ID, "assignment_id": CHAPTER}
    start = time.perf_counter()

    # the instructor: the class roster, then generate and release chapter 01 (Formgrader's API)
    for student in users["students"]:
        hub.server(instructor, "PUT", f"formgrader/api/student/{student}",
                   json={"first_name": student, "last_name": "Student", "email": None, "lms_user_id": None})
    assert hub.server(instructor, "POST", f"formgrader/api/assignment/{CHAPTER}/assign")["success"]
    released = hub.server(instructor, "POST", f"formgrader/api/assignment/{CHAPTER}/release")
    assert released["success"], released
    assert (exchange / COURSE_ID / "outbound" / CHAPTER / f"{NOTEBOOK}.ipynb").exists()

    # students have no instructor tools: their servers do not even serve Formgrader's API
    for path in ("formgrader", "formgrader/api/assignments"):
        assert hub.session.get(f"{hub.url}/user/{none}/{path}", timeout=120).status_code == 404, path

    # the students: fetch, work, submit (their servers, as them)
    for student, typed in ((full, answers), (partial, first_only), (none, {})):
        listed = hub.server(student, "POST", "assignments/fetch", json=course)
        assert any(a["assignment_id"] == CHAPTER and a["status"] == "fetched" for a in listed["value"]), listed
        path = f"api/contents/{CHAPTER}/{NOTEBOOK}.ipynb"
        fetched = nbformat.from_dict(hub.server(student, "GET", path)["content"])
        if typed:
            hub.server(student, "PUT", path, json={"type": "notebook", "format": "json",
                                                   "content": fill(fetched, typed)})
            submitted = hub.server(student, "POST", "assignments/submit", json=course)
            assert "value" in submitted, submitted
        home = Path(pwd.getpwnam(student).pw_dir)
        assert (home / CHAPTER / f"{NOTEBOOK}.ipynb").stat().st_uid == pwd.getpwnam(student).pw_uid

    # the instructor: collect, autograde in parallel (as the instructor's user), feedback
    collected = hub.server(instructor, "POST", f"formgrader/api/assignment/{CHAPTER}/collect")
    assert collected["success"], collected
    # grading as the Kubernetes Job does it (hub/z2jh/grading-job.yaml): two batches of students graded AT ONCE with
    # autograder/grade_batch.py (the parallel grader on each batch's share), both writing to the one PostgreSQL
    # gradebook, as the Job's pods do. (Concurrent graders once undid each other's scores; the guard now
    # leaves the automatic scores of isolated kernels alone: tests/test_concurrent_gradebook.py.)
    def grade_batch(index: int) -> subprocess.CompletedProcess:
        return run_as(instructor, [str(BIN / "python"), "grade_batch.py", CHAPTER, "--batches", "2", "--index",
                                   str(index), "-j", "1", "--db-url", gradebook_url], cwd=REPO / "autograder",
                      timeout=900, env={"TFS_COURSE_ROOT": str(course_root)})

    graded_at = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        batches = list(pool.map(grade_batch, (0, 1)))
    for index, grading in enumerate(batches):
        assert grading.returncode == 0, grading.stdout[-3000:] + grading.stderr[-3000:]
        assert f"batch {index} of 2: 1 submissions of {CHAPTER}" in grading.stdout, grading.stdout
    grading_seconds = time.perf_counter() - graded_at
    assert not (course_root / "grading" / "batches").exists() or not any((course_root / "grading" / "batches").iterdir())
    for action in ("generate_feedback", "release_feedback"):
        done = hub.server(instructor, "POST", f"formgrader/api/assignment/{CHAPTER}/{action}")
        assert done["success"], done

    # the students: feedback
    for student, expected in ((full, full_points), (partial, first_points)):
        hub.server(student, "POST", "assignments/fetch_feedback", json=course)
        [feedback] = (Path(pwd.getpwnam(student).pw_dir) / CHAPTER / "feedback").glob(f"*/{NOTEBOOK}.html")
        text = html.unescape(re.sub(r"<[^>]+>", "", feedback.read_text()))
        (BUILD / f"hub-feedback-{student}.txt").write_text(text)  # for a failure's post-mortem
        total = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)  # the notebook's total comes first
        assert total and (float(total[1]), float(total[2])) == (expected, full_points), (
            student, re.findall(r"Score:.{0,30}", text)[:3], re.findall(r"(?:✗|Notes from the grader|Error).{0,300}", text)[:5],
            [grading.stdout[-1000:] for grading in batches])
        assert "BEGIN HIDDEN TESTS" not in text
    hub.server(none, "POST", "assignments/fetch_feedback", json=course)
    assert not (Path(pwd.getpwnam(none).pw_dir) / CHAPTER / "feedback").exists()

    # the gradebook: PostgreSQL, exact
    with Gradebook(gradebook_url, course_id=COURSE_ID) as gradebook:
        assert gradebook.db.get_bind().dialect.name == "postgresql"
        assert sorted(s.id for s in gradebook.students) == sorted(users["students"])
        assert gradebook.find_submission(CHAPTER, full).score == full_points
        assert gradebook.find_submission(CHAPTER, full).max_score == full_points
        assert gradebook.find_submission(CHAPTER, partial).score == first_points
        with pytest.raises(MissingEntry):
            gradebook.find_submission(CHAPTER, none)
        assert gradebook.find_student(none).score == 0
    assert not (course_root / "grading" / "gradebook.db").exists(), "nbgrader wrote to the SQLite gradebook instead"
    timing_report.append(f"{time.perf_counter() - start:7.1f} s  a term on JupyterHub: release, 3 students, "
                         f"collect, autograde ({grading_seconds:.1f} s for 2 submissions, 2 batches of 1), feedback")


# --- a browser logs in ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("BROWSER STEP SKIPPED: Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@contextlib.contextmanager
def logged_in(browser, hub, name: str, password: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        page.goto(f"{hub.url}/hub/login")
        page.fill("#username_input", name)
        page.fill("#password_input", password)
        page.click("#login_submit")
        page.wait_for_url(re.compile(rf"/user/{name}/lab"))
        page.locator("#jp-main-dock-panel").wait_for()
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(BUILD / f"hub-{name}.png"), full_page=True)
        raise
    finally:
        context.close()


def test_browser_student_sees_the_assignment_list_and_instructor_formgrader(browser, hub, users):
    hub, _, _ = hub
    student, instructor = users["students"][0], users["instructor"]
    with logged_in(browser, hub, student, users["password"]) as page:
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).click()
        items = page.locator(".lm-Menu-itemLabel")
        items.first.wait_for()
        assert [t for t in items.all_inner_texts() if t.strip()] == ["Assignment List"], items.all_inner_texts()
        items.filter(has_text=re.compile("^Assignment List$")).click()
        panel = page.locator("#nbgrader-assignment-list")
        panel.get_by_text(CHAPTER).first.wait_for()
    with logged_in(browser, hub, instructor, users["password"]) as page:
        page.goto(f"{hub.url}/hub/home")  # the hub's home page says where Formgrader opens
        assert "in its own browser tab" in page.locator("body").inner_text()
        page.goto(f"{hub.url}/user/{instructor}/formgrader")  # its own tab: JupyterHub forbids embedding it
        page.get_by_text(CHAPTER).first.wait_for()
        assert "Manage Assignments" in page.content()
