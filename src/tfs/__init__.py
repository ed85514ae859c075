"""Transformers from Scratch: the course package.

What the notebooks share lives here, so that no notebook copies another. By purpose:

- :mod:`tfs.nn`        reference model code: attention and masks, layers, blocks (chapters 01-03)
- :mod:`tfs.models`    complete models with config dataclasses (BERT, GPT)
- :mod:`tfs.convert`   the one place that maps weights between the course, ``torch.nn`` and ``transformers``
- :mod:`tfs.teaching`  checks, probes, plots and widgets that lessons and visible tests call
- :mod:`tfs.data`      corpus, data sets, tokenizers, weights and the course's checkpoints, offline
- :mod:`tfs.grader`    nbgrader extensions for grading untrusted notebooks, and ``tfs check``
- :mod:`tfs.utils`     seeding, device selection, environment report
"""

from tfs.teaching.checks import CheckError, check_close, check_shape, check_true
from tfs.utils import environment_report, get_device, seed_everything

__all__ = [
    "CheckError",
    "check_close",
    "check_shape",
    "check_true",
    "environment_report",
    "get_device",
    "seed_everything",
]
__version__ = "0.1.0"
