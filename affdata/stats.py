"""What is in the store: counts of media, and labelled frames per task, source and split part.

A labelled frame is a (track, frame) with at least one label of the task; for AUs, with at
least one AU annotated. Counted straight from the label tables (one grouped scan each), so the
figures stay cheap on a million-frame store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text

from affdata.db import Store

TASK_TABLES = {"va": "va_label", "au": "au_label", "expr": "expr_label"}


@dataclass
class StoreStats:
    videos: int
    frames: int
    subjects: int
    tracks: int
    sources: int
    #: task -> frames with a label from any human or consensus source
    labelled: dict[str, int]
    #: one row per (source, task): name, kind, task, frames
    per_source: list[dict[str, Any]] = field(default_factory=list)
    #: one row per (split, part): split, version, part, videos, frames, and frames per task
    per_split: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _distinct_frames(table: str, where: str = "") -> str:
    return f"SELECT DISTINCT track_id, frame_idx FROM {table} l {where}"


def store_stats(store: Store) -> StoreStats:
    with store.connect() as conn:
        one = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        human = (
            "WHERE l.source_id IN (SELECT id FROM label_source "
            "WHERE kind IN ('annotator', 'dataset', 'consensus'))"
        )
        labelled = {
            task: one(f"SELECT COUNT(*) FROM ({_distinct_frames(table, human)}) x")
            for task, table in TASK_TABLES.items()
        }
        per_source = []
        for task, table in TASK_TABLES.items():
            rows = conn.execute(text(
                f"SELECT s.name, s.version, s.kind, COUNT(*) FROM "
                f"(SELECT DISTINCT source_id, track_id, frame_idx FROM {table}) l "
                f"JOIN label_source s ON s.id = l.source_id "
                f"GROUP BY s.id, s.name, s.version, s.kind ORDER BY s.name, s.version"
            ))
            per_source += [
                {"source": n, "version": v, "kind": k, "task": task, "frames": c}
                for n, v, k, c in rows
            ]
        per_split = []
        parts = conn.execute(text(
            "SELECT s.id, s.name, s.version, a.part, COUNT(*), COALESCE(SUM(v.frame_count), 0) "
            "FROM split s JOIN split_assignment a ON a.split_id = s.id "
            "JOIN video v ON v.id = a.video_id "
            "GROUP BY s.id, s.name, s.version, a.part ORDER BY s.name, s.version, a.part"
        )).all()
        for split_id, name, version, part, n_videos, n_frames in parts:
            row: dict[str, Any] = {
                "split": name, "version": version, "part": part,
                "videos": n_videos, "frames": int(n_frames),
            }
            for task, table in TASK_TABLES.items():
                row[task] = conn.execute(text(
                    f"SELECT COUNT(*) FROM ({_distinct_frames(table, human)}) l "
                    "JOIN track t ON t.id = l.track_id "
                    "JOIN split_assignment a ON a.video_id = t.video_id "
                    "WHERE a.split_id = :s AND a.part = :p"
                ), {"s": split_id, "p": part}).scalar_one()
            per_split.append(row)
        return StoreStats(
            videos=one("SELECT COUNT(*) FROM video"),
            frames=one("SELECT COUNT(*) FROM frame"),
            subjects=one("SELECT COUNT(*) FROM subject"),
            tracks=one("SELECT COUNT(*) FROM track"),
            sources=one("SELECT COUNT(*) FROM label_source"),
            labelled=labelled,
            per_source=per_source,
            per_split=per_split,
        )
