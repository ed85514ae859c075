"""The grading kernel's ``sys.stdout``/``sys.stderr``: at most :data:`MAX_CHARS` per cell reach the grader.

ipykernel sends what a cell prints in messages of whatever it buffered (a loop printing 1.5 GB made messages of
hundreds of MB, and the grader held all of them until the cell ended). :class:`tfs.grader.grading.SandboxKernelManager`
starts every kernel with ``--IPKernelApp.outstream_class`` set to :class:`CappedOutStream`, which keeps the first
:data:`MAX_CHARS` characters of each stream per execution and drops the rest, with one line saying so. A kernel that
bypasses it (sending messages itself) is still capped by the grader as messages arrive
(:meth:`tfs.grader.grading.ResilientExecute.output`).
"""

from __future__ import annotations

from ipykernel.iostream import OutStream

MAX_CHARS = 5 * 1024 * 1024
DROPPED = "\n[further output of this cell was dropped by the grader: too much output]\n"


class CappedOutStream(OutStream):
    """ipykernel's ``OutStream`` that passes on at most :data:`MAX_CHARS` characters per execution."""

    _execution: str | None = None  # msg_id of the execute request whose output is being counted
    _written = 0

    def write(self, string: str) -> int | None:
        if not isinstance(string, str):
            return super().write(string)  # ipykernel's own TypeError
        execution = self.parent_header.get("msg_id")
        if execution != self._execution:
            self._execution, self._written = execution, 0
        room = MAX_CHARS - self._written
        if room <= 0:
            return len(string)
        self._written += len(string)
        if len(string) > room:
            super().write(string[:room] + DROPPED)
            return len(string)
        return super().write(string)
