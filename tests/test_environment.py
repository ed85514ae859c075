"""pip, conda and Binder users get the same pinned packages, and Binder picks up binder/."""

from __future__ import annotations

import json
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


# Test extras that conda and Binder users get too: the browser test's driver.
MIRRORED_TEST_EXTRAS = ("playwright",)


def mirrored_pins() -> set[str]:
    """What the conda environments pin: pyproject's dependencies plus the mirrored test extras."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    mirrored = {pin for pin in extras if pin.split("==")[0] in MIRRORED_TEST_EXTRAS}
    assert len(mirrored) == len(MIRRORED_TEST_EXTRAS), f"pin {MIRRORED_TEST_EXTRAS} in pyproject.toml's test extras"
    return pyproject_pins() | mirrored


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
    assert pins == mirrored_pins(), (
        f"{path} and pyproject.toml disagree: only in {path}: {sorted(pins - mirrored_pins())}; "
        f"only in pyproject.toml: {sorted(mirrored_pins() - pins)}"
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


STUDENT_HIDDEN = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                  "@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:menu")


@pytest.mark.slow
def test_student_lab_serves_the_course_without_instructor_tools(tmp_path):
    """What `make lab` starts: JupyterLab on course/, nbgrader's instructor tools disabled and locked."""
    from labs import get, lab, page_config

    with lab("lab", tmp_path / "lab.log") as base:
        status, body = get(f"{base}/api/contents")
        assert status == 200
        chapters = sorted(item["name"] for item in json.loads(body)["content"])
        assert chapters == sorted(p.name for p in (REPO / "course").iterdir() if p.is_dir())
        status, body = get(f"{base}/lab")
        assert status == 200 and b"JupyterLab" in body
        config = page_config(body)
        for plugin in STUDENT_HIDDEN:
            assert plugin in config["disabledExtensions"], f"{plugin} is not disabled in the student lab"
            assert plugin in config["lockedExtensions"], f"{plugin} is disabled but not locked: students can turn it on"
        assert "@jupyter/nbgrader:validate-assignment" not in config["disabledExtensions"], "students keep Validate"
        for url in ("formgrader", "formgrader/api/assignments", "assignments", "courses"):
            assert get(f"{base}/{url}")[0] == 404, f"/{url} answers in the student lab: its server extension is on"


@pytest.mark.slow
def test_instructor_lab_lists_the_chapters_without_activation(tmp_path):
    """What `make instructor` starts, from a shell without the venv on PATH, on a fresh course root (no grading/)."""
    from labs import get, lab, page_config

    shutil.copytree(REPO / "solutions", tmp_path / "root" / "solutions")
    with lab("instructor", tmp_path / "instructor.log", COURSE_ROOT=str(tmp_path / "root")) as base:
        status, body = get(f"{base}/lab")
        assert status == 200 and not [p for p in page_config(body)["disabledExtensions"] if "nbgrader" in p]
        status, body = get(f"{base}/formgrader/api/assignments")
        assert status == 200, f"formgrader answered {status}: {body[-2000:]!r}"
        listed = sorted(a["name"] for a in json.loads(body))
        assert listed == sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    from tfs.grader.gradebook import diagnose

    assert not diagnose(tmp_path / "root" / "grading" / "gradebook.db").half_made


def test_reading_a_notebook_builds_no_grammar():
    """jsonschema 4.25+ imports rfc3987-syntax, which compiles an Earley grammar at import (1.2 s for every nbgrader
    command, Jupyter server and grading run); the pinned 4.24.1 checks the formats nbformat needs without it."""
    code = "import sys, nbformat, jsonschema; print(sorted(m for m in ('rfc3987_syntax', 'lark') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"importing nbformat imported {result.stdout.strip()}"
