"""Fixtures shared by the tests: one temporary course with every chapter released by nbgrader."""

from __future__ import annotations

import pytest

from course import CHAPTERS, Course


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Course:
    """A temporary course root with ``nbgrader generate_assignment`` run for every chapter."""
    temporary = Course(tmp_path_factory.mktemp("course"))
    temporary.release(CHAPTERS)
    return temporary
