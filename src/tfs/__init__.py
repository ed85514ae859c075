"""Transformers from Scratch: the course package.

What the notebooks share lives here, so that no notebook copies another:

- :mod:`tfs.checks`  learner-friendly checks (expected vs received, worst element, hint)
- :mod:`tfs.probes`  diagnoses that name the usual mistakes (wrong softmax dim, wrong scale, ...)
- :mod:`tfs.utils`   seeding, device selection, environment report
- :mod:`tfs.plots`   attention heatmaps and loss curves
- :mod:`tfs.blocks`  reference building blocks that later chapters import
- :mod:`tfs.data`    corpus, data sets, GPT-2/BERT tokenizers and weights, offline
- :mod:`tfs.layers`  reference Transformer layers: multi-head attention, LayerNorm, blocks, encoder
- :mod:`tfs.widgets` the interactive attention-head explorer
- :mod:`tfs.grading`, :mod:`tfs.sandbox`  nbgrader extensions for grading untrusted notebooks
"""

from tfs.checks import CheckError, check_close, check_shape, check_true
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
