"""Transformers from Scratch: the course package.

What the notebooks share lives here, so that no notebook copies another. By purpose:

- :mod:`tfs.nn`        reference model code: attention and masks, layers, blocks (chapters 01-03)
- :mod:`tfs.models`    complete models with config dataclasses (BERT, GPT)
- :mod:`tfs.convert`   the one place that maps weights between the course, ``torch.nn`` and ``transformers``
- :mod:`tfs.teaching`  checks, probes, plots and widgets that lessons and visible tests call
- :mod:`tfs.data`      corpus, data sets, tokenizers, weights and the course's checkpoints, offline
- :mod:`tfs.grader`    nbgrader extensions for grading untrusted notebooks, and ``tfs check``
- :mod:`tfs.utils`     seeding, device selection, environment report

The names below (``from tfs import check_close``) are imported on first use, so that the grader's own processes
(the sandbox launcher, nbgrader's configuration) start without importing torch.
"""

import importlib

_HOMES = {
    "CheckError": "tfs.teaching.checks",
    "check_close": "tfs.teaching.checks",
    "check_shape": "tfs.teaching.checks",
    "check_true": "tfs.teaching.checks",
    "environment_report": "tfs.utils",
    "get_device": "tfs.utils",
    "seed_everything": "tfs.utils",
}
__all__ = list(_HOMES)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'tfs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
