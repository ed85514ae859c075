"""Execute solution notebooks in place, so that self-learners read them with every output.

    python scripts/execute_solutions.py                      # every chapter in solutions/
    python scripts/execute_solutions.py solutions/05-bert    # some chapters (folders or notebooks)

Runs each notebook top to bottom in a fresh kernel (its own folder as working directory), keeps the
widgets' final state in the notebook, and replaces each progress bar's plain-text fallback (what a
viewer without widgets shows, frozen at "0%" when the bar was first drawn) with the bar's final
state, e.g. ``training: 100%|██████████| 400/400 [00:05<00:00, 70.1it/s]``. Prints each notebook's time.
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _model_id(reference: str) -> str:
    return reference.removeprefix("IPY_MODEL_")


def progress_text(model_id: str, state: dict) -> str | None:
    """The text of a tqdm bar (an HBox of HTML, FloatProgress, HTML) in its saved state, else ``None``."""
    box = state.get(model_id, {})
    children = [state.get(_model_id(c), {}) for c in box.get("state", {}).get("children", [])]
    names = [child.get("model_name") for child in children]
    if box.get("model_name") != "HBoxModel" or names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, progress, right = (child["state"] for child in children)
    total, value = progress.get("max") or 0, progress.get("value") or 0
    filled = round(10 * value / total) if total else 10
    text = f"{left.get('value', '')}|{'█' * filled}{' ' * (10 - filled)}|{right.get('value', '')}"
    return html.unescape(text).replace("\u2007", " ")


def finish_progress_bars(notebook: nbformat.NotebookNode) -> int:
    """Set every progress bar's text fallback to its final state; return how many were set."""
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            text = view and progress_text(view["model_id"], state)
            if text:
                output["data"]["text/plain"] = text
                count += 1
    return count


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    finish_progress_bars(notebook)
    nbformat.write(notebook, path)
    return seconds


def main(arguments: list[str]) -> None:
    targets = [Path(a).resolve() for a in arguments] or [REPO / "solutions"]
    notebooks = sorted(p for t in targets for p in ([t] if t.suffix == ".ipynb" else t.rglob("*.ipynb"))
                       if ".ipynb_checkpoints" not in p.parts)
    for path in notebooks:
        print(f"{execute(path):7.1f} s  {path.relative_to(REPO)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
