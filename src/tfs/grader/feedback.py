"""Feedback HTML that renders offline: math as MathML, long grader messages wrapped.

nbgrader's feedback page (``nbgrader generate_feedback``) loads MathJax from a CDN: offline, a student sees
``$\\sqrt{d_k}$`` raw. :class:`OfflineFeedback` (a ``GenerateFeedback`` preprocessor) turns the LaTeX of
markdown cells and markdown outputs into MathML, which browsers draw natively, and adds a style sheet that
wraps long lines (grader messages, code) and shrinks wide figures instead of cutting them at the right edge. The course's feedback template
(``autograder/templates/tfs-feedback``) loads no script from anywhere.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)  # fenced blocks and code spans: left as they are
MATH = re.compile(r"\$\$(?P<display>.+?)\$\$|\\\[(?P<bracket>.+?)\\\]|(?<![\\$])\$(?P<inline>[^$\n]+?)\$|\\\((?P<paren>.+?)\\\)",
                  re.S)
WRAP_CSS = """
pre {  /* code and grader messages: wrapped at the page's edge, not cut or scrolled */
    white-space: pre-wrap;
    overflow-wrap: anywhere;
}
img { max-width: 100%; height: auto; }  /* figures shrink to the page */
math[display="block"] { margin: 0.6em 0; }
"""


def _mathml(match: re.Match) -> str:
    from latex2mathml.converter import convert

    display = match.group("display") or match.group("bracket")
    tex = display if display is not None else (match.group("inline") or match.group("paren"))
    try:
        return convert(tex.strip(), display="block" if display is not None else "inline")
    except Exception:  # noqa: BLE001 - a formula the converter cannot read stays as the author wrote it
        return match.group(0)


def latex_to_mathml(markdown: str) -> str:
    """``markdown`` with every ``$...$``, ``$$...$$``, ``\\(...\\)`` and ``\\[...\\]`` outside code replaced by MathML."""
    parts = CODE.split(markdown)
    return "".join(part if i % 2 else MATH.sub(_mathml, part) for i, part in enumerate(parts))


class OfflineFeedback(Preprocessor):
    """Math as MathML in markdown cells and markdown outputs, and wrapped output lines."""

    enabled = Bool(True, help="nbconvert's preprocessors are off unless enabled; this one is on once listed").tag(config=True)

    def preprocess(self, nb, resources):
        resources.setdefault("inlining", {}).setdefault("css", []).append(WRAP_CSS)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = latex_to_mathml(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if isinstance(data.get("text/markdown"), str):
                data["text/markdown"] = latex_to_mathml(data["text/markdown"])
        return cell, resources
