"""Plausible learner mistakes, one list per chapter (``chNN.py``: ``MUTANTS = [Mutant(...), ...]``).

They are graded through nbgrader by ``tests/mutant_campaign.py``; each is a solution answer with one edit, the
way a learner's notebook would hold the mistake.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """One mistake: in the answer cell ``answer``, ``old`` replaced by ``new`` (``old=None``: the whole answer is ``new``).

    ``names`` is a regular expression (case-insensitive) that a message naming this mistake matches; ``kind`` is
    ``"common"`` (a mistake many learners make) or ``"rare"``.
    """

    name: str
    answer: str
    old: str | None
    new: str
    names: str
    kind: str = "common"

    def apply(self, code: str) -> str:
        if self.old is None:
            return self.new
        if self.old not in code:
            raise ValueError(f"mutant {self.name}: {self.old!r} is not in the answer {self.answer}")
        return code.replace(self.old, self.new)
