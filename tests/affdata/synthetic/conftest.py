"""Small synthetic datasets shared by the synthetic tests (rendered once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affdata.synthetic import DatasetSummary, generate_dataset, generate_labels_only


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> DatasetSummary:
    """3 subjects x 8 s: ~1.5 s to render, enough frames for pixel statistics."""
    return generate_dataset(tmp_path_factory.mktemp("syn") / "ds", subjects=3, seconds=8.0, seed=3)


@pytest.fixture(scope="session")
def labels_only(tmp_path_factory: pytest.TempPathFactory) -> DatasetSummary:
    """A labels-only dataset big enough for coverage and distribution checks (~0.3 s)."""
    return generate_labels_only(tmp_path_factory.mktemp("lo") / "ds", videos=80, frames=240_000,
                                seed=11)


@pytest.fixture(scope="session")
def rendered_path(rendered: DatasetSummary) -> Path:
    return rendered.out
