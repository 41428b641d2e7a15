"""Fixtures of the instructor's tool tests (tools/tests is not in the student release)."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthetic import make_workbook


@pytest.fixture
def workbook(tmp_path) -> Path:
    """The synthetic workbook of synthetic.py: two parts, their tests, a notebook, the reference and its stubs."""
    return make_workbook(tmp_path)
