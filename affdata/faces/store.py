"""Face boxes in the store: who made them, and the rules for replacing them.

* A detector run is a label source of kind ``model``: its name is the detector's, its version
  the detector's version (the weights' hash) and a hash of the parameters, and ``details`` holds
  the parameters themselves, so every box can be traced to the exact settings that made it.
* Boxes have an ``origin`` (``affdata.schema.BOX_ORIGINS``). ``affdata detect faces`` replaces
  only ``detector`` boxes; a video that has any box from a file (``ingest boxes``, or the face
  rectangles of an OpenFace / py-feat file) or from a person is left as it is, and reported.
* Tracks a previous detector run made and that nothing else uses (no box, no label, no subject)
  are removed when the video is detected again, so a rerun never leaves stale ``face3`` tracks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, text, update

from affdata.bulk import insert_rows, upsert_ignore
from affdata.faces.track import Track
from affdata.schema import LANDMARK_COLUMNS, LabelSource, utcnow
from affdata.videos import ensure_track

BOX_COLUMNS = ("track_id", "frame_idx", "x", "y", "w", "h", "origin", "source_id", "interpolated",
               "score", *LANDMARK_COLUMNS)


def detector_source(conn: Connection, name: str, version: str, params: dict[str, Any]) -> int:
    """The label source of one detector with one set of parameters (created if new)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"))
    full = f"{version}/{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
    upsert_ignore(conn, "label_source", {"kind": "model", "name": name, "version": full,
                                         "created_at": utcnow()}, ["name", "version"])
    source_id = conn.execute(text("SELECT id FROM label_source WHERE name = :n AND version = :v"),
                             {"n": name, "v": full}).scalar_one()
    conn.execute(update(LabelSource).where(LabelSource.id == source_id)
                 .values(details={"task": "face-detection", **params}))
    return source_id


def kept_boxes(conn: Connection, video_id: int) -> int:
    """Boxes of a video that a detector run must not replace (from a file or a person)."""
    return conn.execute(text(
        "SELECT COUNT(*) FROM face_box b JOIN track t ON t.id = b.track_id "
        "WHERE t.video_id = :v AND b.origin <> 'detector'"), {"v": video_id}).scalar_one()


def _rows(track_id: int, track: Track, source_id: int) -> Iterator[tuple[Any, ...]]:
    marks = track.landmarks.reshape(-1, 10)
    for k in range(len(track.frames)):
        score = float(track.scores[k])
        yield (track_id, int(track.frames[k]), *map(float, track.boxes[k]), "detector", source_id,
               bool(track.interpolated[k]), None if np.isnan(score) else score,
               *(None if np.isnan(v) else float(v) for v in marks[k]))


def replace_detected(conn: Connection, video_id: int, tracks: Sequence[Track], source_id: int) -> dict[str, int]:
    """Swap a video's detector boxes for ``tracks`` (named) in the caller's transaction.

    Returns boxes per track name. The caller has checked :func:`kept_boxes` is zero.
    """
    conn.execute(text("DELETE FROM face_box WHERE origin = 'detector' AND track_id IN "
                      "(SELECT id FROM track WHERE video_id = :v)"), {"v": video_id})
    unused = " AND ".join(f"NOT EXISTS (SELECT 1 FROM {t} x WHERE x.track_id = track.id)"
                          for t in ("face_box", "va_label", "au_label", "expr_label", "campaign_item"))
    conn.execute(text(f"DELETE FROM track WHERE video_id = :v AND subject_id IS NULL AND {unused}"),
                 {"v": video_id})
    counts: dict[str, int] = {}
    for track in tracks:
        track_id = ensure_track(conn, video_id, track.name)
        insert_rows(conn, "face_box", BOX_COLUMNS, _rows(track_id, track, source_id))
        counts[track.name] = len(track.frames)
    return counts
