"""Feedback HTML that renders offline and runs nothing a student wrote: math as MathML, long messages wrapped.

nbgrader's feedback page (``nbgrader generate_feedback``) loads MathJax from a CDN: offline, a student sees
``$\\sqrt{d_k}$`` raw. :class:`OfflineFeedback` (a ``GenerateFeedback`` preprocessor) turns the LaTeX of
markdown cells and markdown outputs into MathML, which browsers draw natively, and adds a style sheet that
wraps long lines (grader messages, code) and shrinks wide figures instead of cutting them at the right edge. The course's feedback template
(``autograder/templates/tfs-feedback``) loads no script from anywhere.

A submission's markdown and HTML outputs are the student's: instructors open feedback pages too, so no script,
event handler or ``javascript:`` link of theirs may reach the page. :class:`OfflineFeedback` cleans HTML outputs
and drops JavaScript and widget outputs; :class:`SafeFeedbackExporter` cleans the HTML that markdown (cells,
markdown outputs, comments) renders to. Both keep an allowlist of tags (:func:`safe_html`), MathML included.
"""

from __future__ import annotations

import re

import bleach
from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
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
HTML_TAGS = {"a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt", "em",
             "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p",
             "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot",
             "th", "thead", "tr", "u", "ul", "var"}
MATHML_TAGS = {"math", "maction", "menclose", "merror", "mfenced", "mfrac", "mi", "mmultiscripts", "mn", "mo", "mover",
               "mpadded", "mphantom", "mprescripts", "mroot", "mrow", "ms", "mspace", "msqrt", "mstyle", "msub",
               "msubsup", "msup", "mtable", "mtd", "mtext", "mtr", "munder", "munderover", "none", "semantics",
               "annotation"}
SAFE_ATTRIBUTES = {"class", "id", "title", "alt", "width", "height", "colspan", "rowspan", "align", "start", "open",
                   "href", "src", "xmlns", "display", "mathvariant", "mathcolor", "mathbackground", "mathsize", "stretchy",
                   "fence", "separator", "separators", "lspace", "rspace", "accent", "accentunder", "columnalign",
                   "columnlines", "columnspacing", "rowalign", "rowlines", "rowspacing", "displaystyle", "scriptlevel",
                   "linethickness", "notation", "close", "minsize", "maxsize", "movablelimits", "form", "depth",
                   "voffset", "encoding", "largeop", "symmetric"}
SAFE_PROTOCOLS = {"http", "https", "mailto", "attachment"}
SCRIPT_OUTPUTS = ("application/javascript", "text/javascript", "application/vnd.jupyter.widget-view+json")


def safe_html(html: str) -> str:
    """``html`` with only harmless tags and attributes (MathML included): no script, no event handler, no style, no
    ``javascript:`` or ``data:`` link, no frame or form. Other tags are removed, their text kept as text."""
    cleaner = bleach.Cleaner(tags=HTML_TAGS | MATHML_TAGS, attributes=lambda tag, name, value: name in SAFE_ATTRIBUTES,
                             protocols=SAFE_PROTOCOLS, strip=True, strip_comments=True)
    return cleaner.clean(html)


class SafeFeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter whose markdown (cells, markdown outputs, comments) renders through :func:`safe_html`."""

    @pass_context
    def markdown2html(self, context, source):
        return safe_html(super().markdown2html(context, source))


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
    """Math as MathML in markdown cells and markdown outputs, wrapped output lines, HTML outputs cleaned, script
    outputs dropped."""

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
            if isinstance(data.get("text/html"), str):
                data["text/html"] = safe_html(data["text/html"])
            for mime in SCRIPT_OUTPUTS:
                data.pop(mime, None)
        return cell, resources
