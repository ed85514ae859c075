"""Start the labs the way the README says (`make lab`, `make instructor`) on a loopback port, and stop them.

The server is started through make itself, with a PATH that does not hold the venv (nobody activated
it), in its own process group, so that stopping it stops make, JupyterLab and every kernel it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN = "browser-test-token"
# What a shell that never ran `. .venv/bin/activate` has on PATH.
BARE_PATH = os.pathsep.join(p for p in ("/usr/local/bin", "/usr/bin", "/bin") if os.path.isdir(p))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def lab(target: str, log: Path, **variables: str) -> Iterator[str]:
    """``make <target>`` (``lab`` or ``instructor``) serving on 127.0.0.1; yields its base URL; stops it all on exit.

    ``variables`` are make variables (``NOTEBOOKS=``, ``COURSE_ROOT=``). ``-o`` keeps make from reinstalling
    the venv (``make test`` has just set it up); ``BIN=`` is the interpreter running the tests.
    """
    port = free_port()
    lab_args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={TOKEN}"
    if os.getuid() == 0:
        lab_args += " --allow-root"
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "-o", "setup", target, f"BIN={BIN}",
               f"LAB_ARGS={lab_args}", *(f"{k}={v}" for k, v in variables.items())]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "TFS_COURSE_ROOT", "JUPYTER_CONFIG_DIR")}
    env["PATH"] = BARE_PATH
    # a fresh workspace and default settings: nothing a person (or an earlier run) left in lab/<role>/lab/
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(log.parent / f"{log.stem}-workspaces")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(log.parent / f"{log.stem}-settings")
    for folder in ("JUPYTERLAB_WORKSPACES_DIR", "JUPYTERLAB_SETTINGS_DIR"):
        shutil.rmtree(env[folder], ignore_errors=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as output:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5) as response:
                    json.load(response)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"make {target} did not start a server; its log:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the whole process group (make, jupyter, kernels), SIGKILL to what is left after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(server.pid, 0)
            except ProcessLookupError:
                server.poll()
                return
            server.poll()  # reap make so that its pid does not linger as a zombie
            time.sleep(0.2)


def get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are answers, not exceptions."""
    sep = "&" if "?" in url else "?"
    try:
        with urllib.request.urlopen(f"{url}{sep}token={TOKEN}", timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def page_config(html: bytes) -> dict:
    """The ``jupyter-config-data`` JSON a JupyterLab page carries (disabled and locked extensions among it)."""
    text = html.decode()
    start = text.index('id="jupyter-config-data"')
    start = text.index(">", start) + 1
    return json.loads(text[start:text.index("</script>", start)])
