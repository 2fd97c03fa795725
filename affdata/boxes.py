"""Face boxes (and the people they belong to) from a CSV, per track and frame.

The file has a header and the columns ``video,track,frame,x,y,w,h`` (pixels of the decoded
frame; ``track`` is ``main``, ``left``, ``right``...). An optional ``subjects`` CSV with columns
``video,track,subject`` names the person of each track. Export crops faces by these boxes, so a
dataset that ships its boxes (the synthetic one does) needs no face detector.

Like label files, each boxes file is one transaction: a bad line names the file and line and
nothing of the file is stored. The file's boxes are stored with ``origin = 'file'`` (no label
source) and replace the earlier boxes of its tracks (a detector's, another file's), except
boxes a person drew: those frames keep them. ``affdata detect faces`` never replaces file boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import text

from affdata.bulk import insert_rows
from affdata.db import Store
from affdata.errors import LabelFormatError
from affdata.videos import ensure_subject, ensure_track

BOX_COLUMNS = ("video", "track", "frame", "x", "y", "w", "h")


@dataclass(frozen=True)
class BoxImport:
    path: str
    tracks: int
    boxes: int
    subjects: int


def _read(path: Path, columns: tuple[str, ...], types: dict[str, pa.DataType]) -> pa.Table:
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, OSError) as exc:
        raise LabelFormatError(path, f"not a readable CSV with columns {','.join(columns)} ({str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise LabelFormatError(path, f"missing columns {', '.join(missing)} (expected {','.join(columns)})", line=1)
    return table


def import_boxes(store: Store, path: Path, subjects: Path | None = None) -> BoxImport:
    """Store the boxes in ``path`` (and the track subjects in ``subjects``) in one transaction."""
    path = Path(path)
    types = {"video": pa.string(), "track": pa.string(), "frame": pa.int64(),
             "x": pa.float64(), "y": pa.float64(), "w": pa.float64(), "h": pa.float64()}
    table = _read(path, BOX_COLUMNS, types)
    frames = table["frame"].to_numpy()
    w, h = table["w"].to_numpy(), table["h"].to_numpy()
    bad = np.flatnonzero((frames < 0) | ~(w > 0) | ~(h > 0))
    if bad.size:
        raise LabelFormatError(path, "frame must be >= 0 and w, h > 0", line=int(bad[0]) + 2)
    people = _read(subjects, ("video", "track", "subject"),
                   {"video": pa.string(), "track": pa.string(), "subject": pa.string()}) if subjects else None
    videos = table["video"].to_pylist()
    tracks = table["track"].to_pylist()
    with store.transaction() as conn:
        known = {r.name: (r.id, r.frame_count) for r in conn.execute(text("SELECT id, name, frame_count FROM video"))}
        track_ids: dict[tuple[str, str], int] = {}
        rows = []
        for i, (video, track, frame, x, y, bw, bh) in enumerate(zip(
                videos, tracks, frames.tolist(), table["x"].to_pylist(), table["y"].to_pylist(),
                w.tolist(), h.tolist())):
            if video not in known:
                raise LabelFormatError(path, f"unknown video {video!r}: ingest it first (affdata ingest videos)", line=i + 2)
            video_id, n_frames = known[video]
            if frame >= n_frames:
                raise LabelFormatError(path, f"frame {frame} is beyond the last frame ({n_frames - 1}) of {video!r}", line=i + 2)
            key = (video, track)
            if key not in track_ids:
                track_ids[key] = ensure_track(conn, video_id, track)
            rows.append((track_ids[key], frame, x, y, bw, bh))
        drawn: set[tuple[int, int]] = set()
        for track_id in set(track_ids.values()):
            conn.execute(text("DELETE FROM face_box WHERE track_id = :t AND origin <> 'person'"), {"t": track_id})
            drawn.update((track_id, f) for (f,) in conn.execute(
                text("SELECT frame_idx FROM face_box WHERE track_id = :t"), {"t": track_id}))
        if drawn:
            rows = [r for r in rows if (r[0], r[1]) not in drawn]
        insert_rows(conn, "face_box", ("track_id", "frame_idx", "x", "y", "w", "h", "origin"),
                    (r + ("file",) for r in rows))
        n_subjects = 0
        if people is not None:
            for i, (video, track, subject) in enumerate(zip(
                    people["video"].to_pylist(), people["track"].to_pylist(), people["subject"].to_pylist())):
                if video not in known:
                    raise LabelFormatError(subjects, f"unknown video {video!r}", line=i + 2)
                track_id = ensure_track(conn, known[video][0], track)
                subject_id = ensure_subject(conn, subject)
                conn.execute(text("UPDATE track SET subject_id = :s WHERE id = :t"), {"s": subject_id, "t": track_id})
                if track in ("main", "left"):  # the video's subject: its only or its left person
                    conn.execute(text("UPDATE video SET subject_id = COALESCE(subject_id, :s) WHERE id = :v"),
                                 {"s": subject_id, "v": known[video][0]})
                n_subjects += 1
    return BoxImport(str(path), len(track_ids), len(rows), n_subjects)
