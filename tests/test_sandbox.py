"""The grader's tool guard, in-process: it puts back the tests' tools and leaves learners' own names alone."""

import torch

from tfs.grader import sandbox
from tfs.teaching import checks


def test_guard_restores_patched_tools_but_not_a_learners_own_functions():
    sandbox.snapshot()
    original_allclose, original_check = torch.allclose, checks.check_close

    def scaled_dot_product_attention(q, k, v):  # the learner's own, same name as torch's
        return q

    namespace = {"check_close": lambda *a, **k: None, "torch": torch,
                 "scaled_dot_product_attention": scaled_dot_product_attention}
    torch.allclose = lambda *args, **kwargs: True
    checks.check_close = lambda *args, **kwargs: None
    try:
        restored = sandbox.guard(namespace)
    finally:
        torch.allclose, checks.check_close = original_allclose, original_check
    assert torch.allclose is original_allclose
    assert namespace["check_close"] is original_check
    assert namespace["scaled_dot_product_attention"] is scaled_dot_product_attention
    assert {"torch.allclose", "tfs.teaching.checks.check_close", "check_close"} <= set(restored)


def test_guard_is_silent_when_nothing_changed(capsys):
    sandbox.snapshot()
    assert sandbox.guard({"check_close": checks.check_close, "torch": torch}) == []
    assert capsys.readouterr().out == ""


def test_torch_rewrapping_its_own_function_is_not_tampering():
    from torch._compile import _disable_dynamo  # what torch._dynamo wraps torch.manual_seed with

    sandbox.snapshot()
    original = torch.manual_seed
    torch.manual_seed = _disable_dynamo(original)
    try:
        assert "torch.manual_seed" not in sandbox.guard({})
    finally:
        torch.manual_seed = original
