"""Teaching helpers: what lessons and visible test cells call.

- :mod:`tfs.teaching.checks`   learner-friendly checks (expected vs received, worst element, hint)
- :mod:`tfs.teaching.probes`   diagnoses that name the usual mistakes (wrong softmax dim, wrong scale, ...)
- :mod:`tfs.teaching.plots`    attention heatmaps and loss curves
- :mod:`tfs.teaching.widgets`  the interactive attention-head explorer
"""
