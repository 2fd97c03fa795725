"""A small synthetic dataset (videos, ABAW annotations, face boxes) loaded into a store."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata.bulk import insert_rows
from affdata.db import Store
from affdata.synthetic import DatasetSummary, generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> DatasetSummary:
    # 3 subjects, 4 s each: 4 videos, one of them with two people (left/right tracks)
    return generate_dataset(tmp_path_factory.mktemp("export-syn") / "ds", subjects=3, seconds=4.0, seed=1)


def load_boxes(store: Store, boxes_csv: Path) -> int:
    """face_box rows from the generator's boxes.csv (video,track,frame,x,y,w,h)."""
    with store.transaction() as conn:
        tracks = {(v, t): i for i, v, t in conn.execute(sa.text(
            "SELECT t.id, v.name, t.name FROM track t JOIN video v ON v.id = t.video_id"))}
        with open(boxes_csv, newline="") as f:
            rows = [(tracks[r["video"], r["track"]], int(r["frame"]), float(r["x"]), float(r["y"]),
                     float(r["w"]), float(r["h"])) for r in csv.DictReader(f) if (r["video"], r["track"]) in tracks]
        insert_rows(conn, "face_box", ("track_id", "frame_idx", "x", "y", "w", "h"), rows)
    return len(rows)


@pytest.fixture
def loaded(store: Store, dataset: DatasetSummary) -> Store:
    """The dataset in the store: videos (subjects from names), labels as split 'official', boxes."""
    from affdata.labels import import_labels
    from affdata.videos import ingest_videos

    report = ingest_videos(store, [dataset.paths["videos"]], subject_pattern=r"^(subj\d+)_")
    assert report.ok
    labels = import_labels(store, [dataset.paths["annotations"]], as_split="official")
    assert labels.ok
    load_boxes(store, dataset.paths["boxes"])
    return store


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root``, by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def digest() -> Callable[[Path], dict[str, str]]:
    return tree_digest
