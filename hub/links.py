"""nbgitpuller links, one per chapter: a student clicks one, JupyterHub pulls the course into their home
(merging, never overwriting what they changed) and opens the chapter.

    .venv/bin/python hub/links.py --hub https://hub.example.org --repo https://github.com/ORG/transformers-from-scratch

prints a Markdown list (for an LMS page or the README of a class). ``--course-dir ''`` for a repository that
holds only the student notebooks (e.g. made with ``git subtree split --prefix course``): the course's own
repository also holds ``solutions/``. The one-machine hub (``jupyterhub_config.py``) lists the same links on
its home page when ``TFS_COURSE_REPO`` is set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[1]


def chapters(root: Path = REPO_ROOT) -> list[tuple[str, str]]:
    """``[(chapter folder, notebook file name)]`` of the student release."""
    return [(folder.name, notebook.name) for folder in sorted((root / "course").iterdir()) if folder.is_dir()
            for notebook in sorted(folder.glob("*.ipynb"))]


def pull_link(hub: str, repo: str, chapter: str, notebook: str, branch: str = "main", course_dir: str = "course") -> str:
    """The nbgitpuller link that clones or updates ``repo`` into the user's home and opens the chapter's notebook."""
    folder = repo.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1]
    path = "/".join(part for part in (folder, course_dir, chapter, notebook) if part)
    query = urlencode({"repo": repo, "branch": branch, "urlpath": f"lab/tree/{path}"})
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hub", required=True, help="the hub's public URL, e.g. https://hub.example.org")
    parser.add_argument("--repo", required=True, help="the course repository's clone URL")
    parser.add_argument("--branch", default="main")
    parser.add_argument("--course-dir", default="course", help="folder of the student notebooks in that repository")
    args = parser.parse_args(argv)
    for chapter, notebook in chapters():
        print(f"- [{chapter}]({pull_link(args.hub, args.repo, chapter, notebook, args.branch, args.course_dir)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
