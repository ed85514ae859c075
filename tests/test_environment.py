"""pip, conda and Binder users get the same pinned packages, and Binder picks up binder/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def pyproject_pins() -> set[str]:
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])


def conda_pip_pins(path: Path) -> tuple[str, set[str]]:
    """(python spec, pins of the pip section) of a conda environment file; options and `-e .` left out."""
    dependencies = yaml.safe_load(path.read_text())["dependencies"]
    python = next(d for d in dependencies if isinstance(d, str) and d.startswith("python"))
    pip_section = next(d["pip"] for d in dependencies if isinstance(d, dict))
    return python, {line for line in pip_section if not line.startswith("-")}


def test_every_dependency_is_pinned_exactly():
    loose = [dep for dep in pyproject_pins() if "==" not in dep]
    assert not loose, f"pin these exactly in pyproject.toml: {loose}"
    assert "torch==2.13.0" in pyproject_pins()


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_conda_environments_mirror_pyproject(path):
    python, pins = conda_pip_pins(REPO / path)
    assert python == "python=3.11"
    assert pins == pyproject_pins(), (
        f"{path} and pyproject.toml disagree: only in {path}: {sorted(pins - pyproject_pins())}; "
        f"only in pyproject.toml: {sorted(pyproject_pins() - pins)}"
    )


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import version

    wrong = {}
    for pin in pyproject_pins():
        name, wanted = pin.split("==")
        installed = version(name).split("+")[0]  # torch reports 2.13.0+cpu
        if installed != wanted:
            wrong[name] = (wanted, installed)
    assert not wrong, f"installed versions differ from the pins (wanted, installed): {wrong}; run make setup"


@pytest.mark.slow
def test_repo2docker_builds_from_binder_folder():
    repo2docker = shutil.which("repo2docker", path=str(Path(sys.executable).parent))
    assert repo2docker, "repo2docker is a test dependency; run make setup"
    result = subprocess.run([repo2docker, "--no-build", "--debug", "--no-run", str(REPO)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    dockerfile = result.stdout + result.stderr
    assert "binder/environment.yml" in dockerfile, "repo2docker did not pick up binder/environment.yml"
    assert "./binder/postBuild" in dockerfile, "repo2docker will not run binder/postBuild"
    assert "${REPO_DIR}/environment.yml" not in dockerfile, "repo2docker used the top-level environment.yml, not binder/"


@pytest.mark.slow
def test_jupyterlab_serves_the_course():
    """What `make lab` starts: a JupyterLab server on course/, answering with the chapters."""
    import json
    import os
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "jupyter"), "lab", "--ServerApp.root_dir=course", "--no-browser",
               f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=test-token"]
    if os.getuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/contents?token=test-token", timeout=5) as response:
                    listing = json.load(response)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "JupyterLab did not start"
                time.sleep(0.5)
        chapters = sorted(item["name"] for item in listing["content"])
        assert chapters == sorted(p.name for p in (REPO / "course").iterdir() if p.is_dir())
        with urllib.request.urlopen(f"{base}/lab?token=test-token", timeout=10) as response:
            assert response.status == 200 and b"JupyterLab" in response.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
