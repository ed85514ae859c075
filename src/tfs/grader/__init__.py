"""The grader: nbgrader extensions for untrusted submissions, and ``tfs check`` for students.

- :mod:`tfs.grader.grading`    nbgrader preprocessors and the kernel manager wired in ``autograder/nbgrader_config.py``
- :mod:`tfs.grader.sandbox`    the grading kernel's limits and audit hook
- :mod:`tfs.grader.selfcheck`  ``tfs check <notebook>``: a student's own run of the visible tests
"""
