"""Fixtures for the annotation-format tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.affdata.formats.util import ANNOTATIONS


@pytest.fixture
def annotations() -> Path:
    """The real OpenFace / py-feat files; skips when shared/data is not next to the checkout."""
    if not ANNOTATIONS.is_dir():
        pytest.skip(f"real annotation files not found at {ANNOTATIONS} (shared/data is not checked out)")
    return ANNOTATIONS
