"""Colab: one link per released notebook (hub/links.py --colab), the first cell the README shows is the one
links.py prints, and the libraries it installs are enough for what the notebooks import. No network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hub"))

import links  # noqa: E402

GITHUB = "https://github.com/ORG/transformers-from-scratch"
LINK = re.compile(r"^https://colab\.research\.google\.com/github/ORG/transformers-from-scratch/blob/main/"
                  r"course/(?P<chapter>[0-9]{2}-[a-z-]+)/(?P<notebook>[a-z_]+\.ipynb)$")
# What each server package is imported as, where that differs from its name.
IMPORT_NAMES = {"psycopg2-binary": "psycopg2"}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_colab_prints_one_link_per_released_notebook(capsys):
    assert links.main(["--colab", "--repo", GITHUB + ".git"]) == 0
    printed = re.findall(r"^- \[([^]]+)\]\((.+)\)$", capsys.readouterr().out, flags=re.M)
    released = sorted(REPO.glob("course/*/*.ipynb"))
    assert len(printed) == len(released) > 0
    for (name, url), notebook in zip(printed, released):
        match = LINK.match(url)
        assert match, url
        assert (match["chapter"], match["notebook"]) == (name, notebook.name) == (notebook.parent.name, notebook.name)


def test_colab_link_follows_branch_and_course_dir_and_refuses_other_hosts():
    assert links.colab_link("https://github.com/o/r/", "01-attention", "attention.ipynb", "dev", "") == \
        "https://colab.research.google.com/github/o/r/blob/dev/01-attention/attention.ipynb"
    with pytest.raises(ValueError, match="github.com"):
        links.colab_link("https://gitlab.com/o/r", "01-attention", "attention.ipynb")


def test_hub_output_is_still_nbgitpuller(capsys):
    assert links.main(["--hub", "https://hub.example.org", "--repo", GITHUB]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(links.chapters()) and all("/hub/user-redirect/git-pull?" in line for line in lines)


def test_colab_cell_installs_the_package_and_every_pin_but_the_servers():
    cell = links.colab_cell(GITHUB, "01-attention").splitlines()
    pins = pyproject()["dependencies"]
    names = {pin.split("==")[0] for pin in pins}
    assert links.SERVER_PACKAGES <= names, "a server package left pyproject.toml: update links.SERVER_PACKAGES"
    installed = next(line for line in cell if line.startswith("%pip install -q ") and "==" in line).split()[3:]
    assert installed == [pin for pin in pins if pin.split("==")[0] not in links.SERVER_PACKAGES]
    clone = "/content/transformers-from-scratch"
    assert f"git clone -q --depth 1 --branch main {GITHUB} {clone}" in cell[1]
    # the clone's pyproject.toml is the package the cell installs, editable (src/tfs and benchmarks/ stay side by
    # side), after the pins and without dependencies: pip then reports no left-out pin as missing
    assert cell[-2] == f"%pip install -q --no-deps --ignore-requires-python -e {clone}" and pyproject()["name"] == "tfs"
    assert cell[-1] == f"%cd {clone}/course/01-attention"


def test_readme_shows_the_cell_links_py_prints():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**On Google Colab.**"):]
    section = section[:section.index("\n\n**", 1)]
    assert "```\n" + links.colab_cell(GITHUB, "01-attention") + "\n```" in section, \
        "README's Colab cell differs from hub/links.py's: paste python hub/links.py --colab --repo " + GITHUB
    assert "hub/links.py --colab" in section and f"`{pyproject()['name']}`" in section


def notebook_modules() -> set[str]:
    """Every module a released notebook's code imports (``import a.b`` and ``from a.b import c``: ``a.b``)."""
    statement = re.compile(r"^\s*(?:from\s+([A-Za-z_][\w.]*)\s+import\s|import\s+([A-Za-z_][\w.]*))", re.M)
    modules = set()
    for notebook in REPO.glob("course/*/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code":
                modules |= {a or b for a, b in statement.findall("".join(cell["source"]))}
    return modules - {"__future__"}


def test_what_the_notebooks_import_needs_no_server_package():
    """The Colab cell leaves out Jupyter, nbgrader and the hub's packages: importing every module the released
    notebooks import loads none of them (one process, about 5 s)."""
    modules = sorted(notebook_modules())
    assert {"tfs.data", "tfs.grader.judging", "transformers", "torch"} <= set(modules)
    servers = sorted(IMPORT_NAMES.get(name, name) for name in links.SERVER_PACKAGES)
    code = (f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({servers!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", f"the notebooks' imports load {result.stdout.strip()}"
