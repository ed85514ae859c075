"""Visible test cells call the learner's code only through the course's checks.

A visible test that calls a learner's function, class or method directly shows a raising answer as a
long torch traceback; wrapped in ``call(fn, *args, name=...)`` it reads "✗ name: your function raised
RuntimeError when called with (...)". This test reads every solution notebook's cells (no kernel): the
names the solution cells define are the learner's; an object built from a learner's class is the
learner's too, through the cells that follow. A visible test cell (a graded cell without its hidden
block, or another cell that runs a course check) may give those to ``call`` (or to a lambda that
``call`` runs), or call them in the body of a ``try`` that catches every ``Exception`` (a test of the
error an answer must raise, which then checks what was raised), but not call them otherwise.

    python tests/test_visible_calls.py            # lists every direct call, chapter by chapter
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import nbformat
import pytest

from course import CHAPTERS, REPO, nbgrader_meta
from tfs.grader.judged import visible_source

CHECKS = {"call", "check_close", "check_shape", "check_true", "check_tensor", "unpack"}
WRAPPER = "call"
# Course helpers that run a function they are given through `call` (a lambda around the learner's code).
RUNS_THROUGH_CALL = {WRAPPER, "check_lines"}
# Methods every nn.Module inherits: calling them runs torch's code, not the learner's.
MODULE_METHODS = {"double", "float", "half", "to", "cpu", "eval", "train", "parameters", "named_parameters",
                  "buffers", "named_buffers", "modules", "named_modules", "children", "named_children",
                  "state_dict", "load_state_dict", "requires_grad_", "zero_grad", "apply", "register_forward_hook",
                  "get_parameter", "get_submodule"}
MAGIC = re.compile(r"^\s*[%!].*$", re.MULTILINE)


@dataclass
class Learner:
    """What the solution cells define: functions and classes, and each class's own methods."""
    functions: set[str] = field(default_factory=set)
    classes: dict[str, set[str]] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return self.functions | set(self.classes)


def parse(source: str) -> ast.Module:
    return ast.parse(MAGIC.sub("", source))


def learner_definitions(cells) -> Learner:
    learner = Learner()
    for cell in cells:
        if not nbgrader_meta(cell).get("solution"):
            continue
        for node in parse(cell.source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                learner.functions.add(node.name)
            elif isinstance(node, ast.ClassDef):
                learner.classes[node.name] = {item.name for item in node.body
                                              if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return learner


def built_class(value: ast.expr, learner: Learner, objects: dict[str, str]) -> str | None:
    """The learner's class an expression's value is an instance of: ``Cls(...)`` or ``call(Cls, ...)`` followed
    by ``.double().eval()``, a name already bound to such an object, or a learner's function given one of
    those (``load_weights(Model(config), state)`` returns the model); else None."""
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in MODULE_METHODS:
        value = value.func.value
    if isinstance(value, ast.Name):
        return objects.get(value.id)
    if not isinstance(value, ast.Call) or not isinstance(value.func, ast.Name):
        return None
    func, args = value.func.id, value.args
    if func == WRAPPER and args and isinstance(args[0], ast.Name):
        func, args = args[0].id, args[1:]
    if func in learner.classes:
        return func
    if func in learner.functions:
        return next(filter(None, (built_class(arg, learner, objects) for arg in args)), None)
    return None


def _bind(node: ast.Assign, learner: Learner, objects: dict[str, str]) -> None:
    cls = built_class(node.value, learner, objects)
    for target in node.targets:
        if isinstance(target, ast.Name):
            if cls:
                objects[target.id] = cls
            else:
                objects.pop(target.id, None)


def _runs_learner_code(node: ast.Call, learner: Learner, objects: dict[str, str]) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in learner.names or func.id in objects
    # a method the learner wrote, of an object built from the learner's class
    cls = objects.get(func.value.id) if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
    return cls is not None and func.attr in learner.classes[cls]


def _catches_everything(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return handler.type is None or any(isinstance(n, ast.Name) and n.id in ("Exception", "BaseException") for n in names)


def _guarded(tree: ast.AST) -> set[int]:
    """ids of the nodes whose exceptions a course check reports: inside a lambda given to ``call`` (or a helper
    that runs it through ``call``), or in the body of a ``try`` that catches every Exception (the cell then
    checks what was raised)."""
    guarded = set()
    for node in ast.walk(tree):
        inner = []
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name in RUNS_THROUGH_CALL:
                inner = [arg for arg in [*node.args, *(k.value for k in node.keywords)] if isinstance(arg, ast.Lambda)]
        elif isinstance(node, ast.Try) and any(_catches_everything(h) for h in node.handlers):
            inner = node.body
        guarded |= {id(n) for part in inner for n in ast.walk(part)}
    return guarded


def direct_calls(tree: ast.AST, learner: Learner, objects: dict[str, str]) -> list[str]:
    """Each call in ``tree`` that runs the learner's code unguarded, as its source text, in the order the code
    runs; ``objects`` follows the assignments of learner's objects (name -> class)."""
    events = []  # a call where it starts, an assignment where it ends (its value runs first)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            events.append(((node.lineno, node.col_offset), 1, node))
        elif isinstance(node, ast.Assign):
            events.append(((node.end_lineno, node.end_col_offset), 0, node))
    guarded = _guarded(tree)
    found = []
    for _, _, node in sorted(events, key=lambda event: event[:2]):
        if isinstance(node, ast.Assign):
            _bind(node, learner, objects)
        elif id(node) not in guarded and _runs_learner_code(node, learner, objects):
            found.append(ast.unparse(node))
    return found


def is_test_cell(cell, tree: ast.AST) -> bool:
    if nbgrader_meta(cell).get("grade"):
        return True
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in CHECKS - {WRAPPER}
               for n in ast.walk(tree))


def unwrapped_calls(cells) -> list[tuple[int, str, str]]:
    """``[(cell index, grade_id or "", call source)]`` for a notebook's visible test cells."""
    learner = learner_definitions(cells)
    objects: dict[str, str] = {}
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code" or nbgrader_meta(cell).get("solution"):
            continue
        tree = parse(visible_source(cell.source))
        calls = direct_calls(tree, learner, objects)
        if is_test_cell(cell, tree):
            found += [(index, nbgrader_meta(cell).get("grade_id", ""), text) for text in calls]
    return found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_visible_test_cells_call_the_learners_code_through_call(chapter):
    problems = [f"{path.name} cell {index} {grade_id}: {text}"
                for path in sorted((REPO / "solutions" / chapter).glob("*.ipynb"))
                for index, grade_id, text in unwrapped_calls(nbformat.read(path, as_version=4).cells)]
    assert not problems, ("a raising answer would show a raw traceback here; wrap these in "
                          "call(fn, *args, name=...):\n" + "\n".join(problems))


def test_the_finder_sees_direct_calls_and_lets_guarded_ones_pass():
    solution = "class Net:\n    def forward(self, x): ...\n    def encode(self, x): ...\ndef f(x): ...\ndef load(m, s): ...\n"
    test = """net = call(Net, name='Net()').double()
check_true(call(f, 1), 'f', 'no')
check_true(net(2), 'net', 'no')
check_true(net.encode(3) and net.double(), 'e', 'no')
y = f(5)
z = call(lambda: f(6) + net(7), name='both')
try:
    f(8)
except Exception as error:
    raised = error
try:
    f(9)
except ValueError:
    pass
loaded = load(Net(), {})
loaded(10)
### BEGIN HIDDEN TESTS
f(11)
### END HIDDEN TESTS
"""
    cells = [nbformat.v4.new_code_cell(solution, metadata={"nbgrader": {"solution": True}}),
             nbformat.v4.new_code_cell(test, metadata={"nbgrader": {"grade": True, "grade_id": "t"}}),
             nbformat.v4.new_code_cell("other = Net()\nnet = None\nprint(other.encode(12), net(13))"),  # not a test
             nbformat.v4.new_code_cell("check_true(other.encode(14) and net(15), 'o', 'no')")]
    assert unwrapped_calls(cells) == [(1, "t", text) for text in ("net(2)", "net.encode(3)", "f(5)", "f(9)",
                                                                  "load(Net(), {})", "Net()", "loaded(10)")] + [
        (3, "", "other.encode(14)")]


if __name__ == "__main__":
    for chapter in CHAPTERS:
        for path in sorted((REPO / "solutions" / chapter).glob("*.ipynb")):
            for index, grade_id, text in unwrapped_calls(nbformat.read(path, as_version=4).cells):
                print(f"{chapter:24s} [{index:2d}] {grade_id:32s} {text[:110]}")
