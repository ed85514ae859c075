"""Where the judges live, how a hidden test is named and how a run seed is drawn, without torch.

The grader's host process (nbgrader with :class:`tfs.grader.judged.JudgedExecute`) needs only these facts
to start a judge process; the judges themselves (:mod:`tfs.grader.judging`) need torch to read the data.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

TEST_NAME = re.compile(r"^(ch\d\d)\.([a-z_][a-z0-9_]*)$")


def split_test(test: str) -> tuple[str, str]:
    """``("ch01", "causal_mask_values")`` for ``"ch01.causal_mask_values"``; ValueError for any other form."""
    match = TEST_NAME.match(test)
    if not match:
        raise ValueError(f"a hidden test is named 'chNN.name'; received {test!r}")
    return match.group(1), match.group(2)


def judges_dir() -> Path:
    """``autograder/judges`` of this checkout (``TFS_JUDGES_DIR`` overrides it)."""
    configured = os.environ.get("TFS_JUDGES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "autograder" / "judges"


def new_run_seed() -> int:
    """A fresh run seed for the hidden tests' inputs (:func:`tfs.grader.judging.seeded_run`); never 0, the fixed
    inputs of earlier versions."""
    return 1 + secrets.randbelow(2**31 - 1)
