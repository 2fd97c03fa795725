"""``meta/info.json``: what an export holds, counted from the rows as they are planned.

Every number here comes from the labels and the arguments, nothing from the clock or the
machine, and the JSON is written with a fixed key order: the same store and arguments give
the same bytes (and the same ``manifest_sha256`` in the store's ``export`` row).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

import numpy as np

from affdata.export.plan import SplitRef, TrackLabels, Vocabulary
from affdata.export.shards import ShardInfo


class Stats:
    """Counts over the exported rows: per task, per AU, per class, and how rows were cropped."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        k, c = len(vocab.au_numbers), len(vocab.expression_ids)
        self.rows = self.va = self.au = self.expr = 0
        self.with_box = self.whole_frame = self.without_image = 0
        self.skipped_without_box = self.aligned = self.box_without_landmarks = 0
        self.videos: set[str] = set()
        self.tracks: set[tuple[str, str]] = set()
        self.subjects: set[str] = set()
        self.au_annotated = np.zeros(k, dtype=np.int64)
        self.au_positive = np.zeros(k, dtype=np.int64)
        self.classes = np.zeros(c, dtype=np.int64)

    def add(self, video: str, track: str, subject: str | None, rows: TrackLabels,
            has_box: np.ndarray, without_image: int) -> None:
        """Count one track's selected rows (``without_image``: labelled frames with no image)."""
        self.without_image += without_image
        n = len(rows.frames)
        if n == 0:
            return
        self.rows += n
        self.videos.add(video)
        self.tracks.add((video, track))
        if subject is not None:
            self.subjects.add(subject)
        self.va += int(rows.has_va.sum())
        self.au += int(rows.has_au.sum())
        self.expr += int(rows.has_expr.sum())
        self.with_box += int(has_box.sum())
        self.whole_frame += n - int(has_box.sum())
        self.au_annotated += rows.au_mask.sum(axis=0)
        self.au_positive += (rows.au_mask & (rows.au == 1)).sum(axis=0)
        self.classes += np.bincount(rows.expr[rows.has_expr], minlength=len(self.classes))[: len(self.classes)]

    def counts(self) -> dict[str, Any]:
        names = self.vocab.to_json()["au_names"]
        return {"rows": self.rows, "videos": len(self.videos), "tracks": len(self.tracks),
                "subjects": len(self.subjects), "va": self.va, "au": self.au, "expr": self.expr,
                "au_per_unit": {a: int(n) for a, n in zip(names, self.au_annotated)},
                "crops_with_box": self.with_box, "crops_whole_frame": self.whole_frame,
                "labelled_frames_without_image": self.without_image,
                "rows_skipped_without_box": self.skipped_without_box, "crops_aligned": self.aligned}

    def class_frequencies(self) -> dict[str, int]:
        return {name: int(n) for name, n in zip(self.vocab.to_json()["expressions"], self.classes)}

    def au_positive_rates(self) -> dict[str, float | None]:
        names = self.vocab.to_json()["au_names"]
        return {a: (round(int(p) / int(n), 6) if n else None)
                for a, p, n in zip(names, self.au_positive, self.au_annotated)}


def build_manifest(*, format_version: int, split: SplitRef, source: str, tasks: list[str],
                   image: dict[str, Any], vocab: Vocabulary, stats: Stats,
                   shards: list[ShardInfo], shard_size: int, row_group_size: int,
                   label_state: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "affdata-export",
        "format_version": format_version,
        "split": {"name": split.name, "version": split.version, "content_hash": split.content_hash,
                  "part": split.part},
        "source": source,
        "tasks": tasks,
        "image": image,
        "vocabulary": vocab.to_json(),
        "counts": stats.counts(),
        "class_frequencies": stats.class_frequencies(),
        "au_positive_rates": stats.au_positive_rates(),
        "shards": [asdict(s) for s in shards],
        "shard_size": shard_size,
        "row_group_size": row_group_size,
        "label_state": label_state,
        "args": args,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def fingerprint(parts: dict[str, Any]) -> str:
    """sha256 of what an export's bytes depend on, to tell whether a staging folder resumes."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
