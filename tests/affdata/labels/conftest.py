"""A small synthetic release (generated once per session) and stores with its videos in them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.synthetic import generate_dataset
from affdata.videos import ingest_videos


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered videos plus ABAW annotations: 3 subjects, 6 s each (read-only: copy to change)."""
    out = tmp_path_factory.mktemp("release") / "ds"
    generate_dataset(out, subjects=3, seconds=6, seed=3)
    return out


@pytest.fixture
def annotations(release: Path, tmp_path: Path) -> Path:
    """A private copy of the release's annotation folder, free to edit."""
    copy = tmp_path / "annotations"
    shutil.copytree(release / "annotations", copy)
    return copy


@pytest.fixture
def with_videos(store: Store, release: Path) -> Store:
    report = ingest_videos(store, [release / "videos"], subject_pattern=r"^(subj\d+)_")
    assert report.ok
    return store
