"""Links that open each chapter: nbgitpuller links for a JupyterHub, or Google Colab links.

nbgitpuller: a student clicks one, JupyterHub pulls the course into their home (merging, never overwriting what
they changed) and opens the chapter.

    .venv/bin/python hub/links.py --hub https://hub.example.org --repo https://github.com/ORG/transformers-from-scratch

prints a Markdown list (for an LMS page or the README of a class). ``--course-dir ''`` for a repository that
holds only the student notebooks (e.g. made with ``git subtree split --prefix course``): the course's own
repository also holds ``solutions/``. The one-machine hub (``jupyterhub_config.py``) lists the same links on
its home page when ``TFS_COURSE_REPO`` is set.

Colab (a GitHub repository only): ``--colab`` instead of ``--hub`` prints the cell a learner pastes at the top of
a chapter (it clones the course, installs the package and the libraries the notebooks import, and changes into
the chapter's folder), then one Colab link per chapter.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlencode, urlparse

REPO_ROOT = Path(__file__).resolve().parents[1]
# pyproject's pins that serve Jupyter, grading and the hub, not a learner's notebook: Colab runs its own Jupyter
# server and kernel, which the Colab cell leaves alone (tests/test_colab.py: the notebooks' imports need none of them).
SERVER_PACKAGES = frozenset({"jupyterlab", "notebook", "jupyter_server", "jupyterhub", "ipykernel", "nbgrader",
                             "nbclient", "nbconvert", "nbformat", "jsonschema", "latex2mathml", "nbgitpuller",
                             "psycopg2-binary"})


def chapters(root: Path = REPO_ROOT) -> list[tuple[str, str]]:
    """``[(chapter folder, notebook file name)]`` of the student release."""
    return [(folder.name, notebook.name) for folder in sorted((root / "course").iterdir()) if folder.is_dir()
            for notebook in sorted(folder.glob("*.ipynb"))]


def _repo_name(repo: str) -> str:
    return repo.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]


def pull_link(hub: str, repo: str, chapter: str, notebook: str, branch: str = "main", course_dir: str = "course") -> str:
    """The nbgitpuller link that clones or updates ``repo`` into the user's home and opens the chapter's notebook."""
    path = "/".join(part for part in (_repo_name(repo), course_dir, chapter, notebook) if part)
    query = urlencode({"repo": repo, "branch": branch, "urlpath": f"lab/tree/{path}"})
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def notebook_pins(root: Path = REPO_ROOT) -> list[str]:
    """pyproject's pinned dependencies less :data:`SERVER_PACKAGES`: what the notebooks import, at the course's versions."""
    pins = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    return [pin for pin in pins if pin.split("==")[0] not in SERVER_PACKAGES]


def colab_link(repo: str, chapter: str, notebook: str, branch: str = "main", course_dir: str = "course") -> str:
    """The link that opens the chapter's notebook from its GitHub repository in Google Colab."""
    url = urlparse(repo)
    if url.netloc != "github.com":
        raise ValueError(f"Colab opens notebooks from github.com repositories, not {repo}")
    owner = url.path.strip("/").removesuffix(".git")
    path = "/".join(part for part in (course_dir, chapter, notebook) if part)
    return f"https://colab.research.google.com/github/{owner}/blob/{branch}/{path}"


def colab_cell(repo: str, chapter: str, branch: str = "main", course_dir: str = "course",
               root: Path = REPO_ROOT) -> str:
    """The first cell of a chapter on Colab: the course's clone (its assets and recorded runs); the notebooks'
    pinned libraries (not Jupyter's: Colab keeps its own; out go Colab's torchvision and torchaudio, built for its
    torch, which the course does not use); the package from the clone, editable (paths relative to the clone
    hold) and last, without dependencies (so pip lists none of the server packages left out as missing); and the
    chapter's folder as the working directory, as when the notebook runs from the clone."""
    clone = f"/content/{_repo_name(repo)}"
    chapter_dir = "/".join(part for part in (clone, course_dir, chapter) if part)
    return "\n".join([
        "# Colab: run this cell, then Runtime > Restart session, then run it again (seconds) and go on.",
        f"!test -d {clone} || git clone -q --depth 1 --branch {branch} {repo} {clone}",
        "%pip uninstall -q -y torchvision torchaudio",
        f"%pip install -q {' '.join(notebook_pins(root))}",
        f"%pip install -q --no-deps --ignore-requires-python -e {clone}",
        f"%cd {chapter_dir}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--hub", help="the hub's public URL, e.g. https://hub.example.org")
    where.add_argument("--colab", action="store_true", help="Colab links and the first cell of each chapter there")
    parser.add_argument("--repo", required=True, help="the course repository's clone URL")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--course-dir", default="course", help="folder of the student notebooks in that repository")
    args = parser.parse_args(argv)
    if args.colab:
        print_colab(args.repo, args.branch, args.course_dir)
        return 0
    for chapter, notebook in chapters():
        print(f"- [{chapter}]({pull_link(args.hub, args.repo, chapter, notebook, args.branch, args.course_dir)})")
    return 0


def print_colab(repo: str, branch: str, course_dir: str) -> None:
    """Markdown: the first cell (chapter 00's folder; each chapter's ``%cd`` names its own), then the links."""
    try:
        links = [(chapter, colab_link(repo, chapter, notebook, branch, course_dir)) for chapter, notebook in chapters()]
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    first = links[0][0]
    print(f"Paste as the first cell of a chapter (the last line names its folder, here {first}):\n")
    print("```\n" + colab_cell(repo, first, branch, course_dir) + "\n```\n")
    for chapter, link in links:
        print(f"- [{chapter}]({link})")


if __name__ == "__main__":
    sys.exit(main())
