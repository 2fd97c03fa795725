"""Readers for the synthetic layout used by the tests (deliberately independent of the
library's writer, so a formatting bug cannot hide behind its own parser)."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import numpy as np

TASK_DIRS = {"VA": "VA_Set", "AU": "AU_Set", "EXPR": "EXPR_Set"}
SPLITS = ("Training_Set", "Validation_Set")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def annotation_files(out: Path, task: str) -> dict[str, Path]:
    """File stem -> path, over both splits."""
    found: dict[str, Path] = {}
    for split in SPLITS:
        for p in sorted((out / "annotations" / TASK_DIRS[task] / split).glob("*.txt")):
            assert p.stem not in found, f"{p.stem} is in both splits"
            found[p.stem] = p
    return found


def read_labels(path: Path) -> tuple[str, np.ndarray]:
    """Header line and a float array (frames, columns)."""
    lines = path.read_text().split("\n")
    assert lines[-1] == "", "file must end with a newline"
    body = lines[1:-1]
    rows = np.array([[float(x) for x in line.split(",")] for line in body]).reshape(len(body), -1)
    return lines[0], rows


def decode(path: Path) -> np.ndarray:
    """All frames of a video as (frames, h, w, 3) uint8 RGB."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def boxes_by_track(out: Path) -> dict[tuple[str, str], np.ndarray]:
    """(video, track) -> (frames, 4) x, y, w, h; frames must be listed in order from 0."""
    rows: dict[tuple[str, str], list[tuple[int, ...]]] = {}
    for r in read_csv(out / "boxes.csv"):
        key = (r["video"], r["track"])
        rows.setdefault(key, [])
        assert int(r["frame"]) == len(rows[key])
        rows[key].append(tuple(int(r[k]) for k in "xywh"))
    return {k: np.array(v) for k, v in rows.items()}


def stem(video: str, track: str) -> str:
    return video if track == "main" else f"{video}_{track}"
