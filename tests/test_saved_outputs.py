"""What a self-learner reads in solutions/: executed notebooks whose progress bars show their final state."""

import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from execute_solutions import WIDGET_STATE, WIDGET_VIEW, progress_text  # noqa: E402

NOTEBOOKS = sorted((REPO / "solutions").rglob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_every_code_cell_was_executed_and_bars_show_their_final_state(path):
    notebook = nbformat.read(path, as_version=4)
    unexecuted = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.source.strip()
                  and c.get("execution_count") is None]
    assert not unexecuted, f"cells {unexecuted} have no outputs: run `python scripts/execute_solutions.py {path.parent}`"
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            final = view and progress_text(view["model_id"], state)
            if final:
                assert output["data"]["text/plain"] == final, "a progress bar's saved text is not its final state"


def test_progress_text_reads_a_tqdm_bar():
    state = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
             "a": {"model_name": "HTMLModel", "state": {"value": "train:\u2007100%"}},
             "b": {"model_name": "FloatProgressModel", "state": {"value": 4.0, "max": 4.0}},
             "c": {"model_name": "HTMLModel", "state": {"value": "\u20074/4\u2007[00:01&lt;00:00]"}}}
    assert progress_text("box", state) == "train: 100%|██████████| 4/4 [00:01<00:00]"
    state["b"]["state"]["value"] = 2.0
    assert progress_text("box", state).startswith("train: 100%|█████     |")
    assert progress_text("a", state) is None
