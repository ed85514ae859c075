"""Collectors: the kernel-side halves of hidden tests, one module per chapter (``ch05.py``, ...).

Each function takes the learner's objects by keyword and returns plain data (see
:mod:`tfs.grader.judging`); it decides nothing. Inputs come from seeded generators defined here,
which the judges import too, so a judge never trusts inputs reported by the kernel.
"""
