"""Judges: the trusted halves of hidden tests, one module per chapter (``ch05.py``, ...).

Each function takes the plain data its collector (``tfs.grader.collectors.<chapter>``) produced,
rebuilds the inputs, computes the oracle (``torch.nn.functional``, ``torch.nn``, ``transformers``,
analytic results) and raises ``tfs.grader.judging.JudgeFailure`` with a course message when the
data is wrong. Judges run where student code never ran; they are unit-tested in ``tests/``.
"""
