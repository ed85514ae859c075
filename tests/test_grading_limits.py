"""The grader's limits on what one submission's run may produce, without nbgrader: output caps while streaming,
invalid outputs dropped, feedback HTML cleaned. (The same attacks through nbgrader: tests/test_hostile_grading.py.)"""

from __future__ import annotations

import nbformat

from tfs.grader.feedback import safe_html
from tfs.grader.grading import DROPPED, MEGABYTE, RecordIntegrity, ResilientExecute, _text_size


def stream_message(text) -> dict:
    return {"msg_type": "stream", "header": {"msg_type": "stream"}, "parent_header": {"msg_id": "m"},
            "content": {"name": "stdout", "text": text}}


def executor(cell_mb: int = 1, notebook_mb: int = 3) -> ResilientExecute:
    execute = ResilientExecute(max_cell_output_mb=cell_mb, max_output_mb=notebook_mb)
    execute._output_chars = {}
    execute.clear_before_next_output = False  # what nbclient sets before each cell
    return execute


def test_a_cell_keeps_its_cap_of_output_and_says_the_rest_was_dropped():
    execute, outs = executor(), []
    for _ in range(300):  # 300 pieces of 100 kB: 30 MB sent, 1 MB kept
        execute.output(outs, stream_message("x" * 100_000), None, 0)
    kept = sum(len(out.text) for out in outs if DROPPED not in out.text)
    assert kept <= MEGABYTE
    assert [out for out in outs if DROPPED in out.text] == outs[-1:]  # one line at the end, not one per message


def test_the_notebook_cap_holds_across_cells():
    execute = executor(cell_mb=1, notebook_mb=2)
    cells = [[] for _ in range(5)]
    for index, outs in enumerate(cells):
        execute._output_chars[index] = 0
        for _ in range(20):
            execute.output(outs, stream_message("y" * 100_000), None, index)
    assert sum(execute._output_chars.values()) <= 2 * MEGABYTE
    assert all(DROPPED in outs[-1].text for outs in cells[2:])


def test_message_sizes_count_nested_payloads():
    assert _text_size({"data": {"text/plain": ["ab", "cd"]}}) == len("data") + len("text/plain") + 4
    deep = current = []
    for _ in range(1000):
        current.append([])
        current = current[0]
    assert _text_size(deep) >= MEGABYTE  # counted as huge, not a RecursionError


def test_invalid_outputs_are_replaced_by_a_line_and_a_note():
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.from_dict({"output_type": "display_data", "data": {"text/plain": ["a"], "image/png": 5}, "metadata": {}}),
        nbformat.from_dict({"output_type": "display_data", "data": {"text/html": {"a": 1}}, "metadata": {}}),
        nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    cell.execution_count = "seven"
    notebook.cells.append(cell)
    RecordIntegrity._drop_invalid_outputs(notebook, 0, cell)
    nbformat.validate(notebook)
    assert [out.get("text") for out in cell.outputs][-1] == "kept\n"
    assert len(notebook.metadata["tfs_grader_notes"]) == 2


def test_feedback_html_keeps_text_math_and_tables_and_drops_scripts():
    page = safe_html('<p>ok <b>bold</b></p><script>steal()</script><img src="x.png" onerror="steal()">'
                     '<a href="javascript:steal()">a</a><a href="https://example.org">b</a><iframe src="x"></iframe>'
                     '<math display="block"><mfrac><mi>a</mi><mi>b</mi></mfrac></math><table><tr><td>1</td></tr></table>'
                     '<svg onload="steal()"></svg><p style="background:url(javascript:steal())">s</p>')
    assert "<script" not in page and "onerror" not in page and "onload" not in page and "iframe" not in page
    assert "javascript:" not in page and "style=" not in page
    assert '<a href="https://example.org">b</a>' in page and "<b>bold</b>" in page
    assert '<math display="block"><mfrac><mi>a</mi><mi>b</mi></mfrac></math>' in page and "<td>1</td>" in page
