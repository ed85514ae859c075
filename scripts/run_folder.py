"""What the training scripts share: the rule for the folder a run writes into, and the CPU's name for a model card."""

from __future__ import annotations

import platform
from collections.abc import Collection
from pathlib import Path


def check_out(out: Path, overwrite: bool, owned: Collection[str]) -> None:
    """Raise ``ValueError`` unless ``out`` is absent or empty, or ``overwrite`` is set and ``out`` holds only
    ``owned`` files (the files the script writes, and so may replace). Nothing is ever deleted."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder.")
    entries = sorted(out.iterdir()) if out.is_dir() else []
    if not entries:
        return
    if not overwrite:
        raise ValueError(f"--out {out} exists and is not empty ({len(entries)} entries); choose a new folder, or pass "
                         "--overwrite to replace the files of an earlier run of this script.")
    foreign = [p.name + ("/" if p.is_dir() else "") for p in entries if p.name not in owned or not p.is_file()]
    if foreign:
        raise ValueError(f"--out {out} holds files this script did not write ({', '.join(foreign)}): refusing to "
                         "overwrite there; choose a new folder or move them away.")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
