"""A tiny real export (synthetic videos -> store -> Parquet shards), made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affdata.boxes import import_boxes
from affdata.db import Store
from affdata.export import export_part
from affdata.labels import import_labels
from affdata.synthetic import generate_dataset
from affdata.videos import ingest_videos


def synthetic_exports(root: Path, *, subjects: int, seconds: float, seed: int, parts: tuple[str, ...],
                      **export: int) -> Path:
    """A synthetic release in ``root / "data"`` taken through the store (``root /
    "affdata.db"``) and exported, each part of split ``official`` to ``root / part``; returns
    the release's folder. ``export``: size, shard_size, row_group_size."""
    data = root / "data"
    generate_dataset(data, subjects=subjects, seconds=seconds, seed=seed)
    store = Store(str(root / "affdata.db"))
    assert ingest_videos(store, [data / "videos"], subject_pattern=r"^(subj\d+)_").ok
    import_boxes(store, data / "boxes.csv", data / "subjects.csv")
    assert import_labels(store, [data / "annotations"], source="tiny", as_split="official").ok
    for part in parts:
        export_part(store, split="official", part=part, out=root / part, **export)
    store.close()
    return data


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Exports of a 3-subject synthetic release at 32x32: train and val parts, and the store."""
    root = tmp_path_factory.mktemp("tiny")
    data = synthetic_exports(root, subjects=3, seconds=4, seed=5, parts=("train", "val"), size=32, shard_size=64,
                             row_group_size=16)
    return {"train": root / "train", "val": root / "val", "db": root / "affdata.db", "data": data}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
