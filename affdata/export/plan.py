"""Which rows an export writes, in which order, from which labels (all of export's SQL).

* :func:`resolve` turns ``--split NAME[@VERSION]``, ``--part`` and ``--source`` into store
  objects, or a :class:`NotFoundError` that lists what exists.
* :func:`vocabularies` fixes the AU columns and expression classes from the labels of the
  source over the **whole store** (not the part), so train and val exports share columns.
* :func:`label_state` hashes the label imports the exported labels come from.
* :func:`track_labels` reads one track's labels (consensus views, or one source's tables) into
  numpy arrays; :func:`select_rows` keeps the frames that become rows.

Order: videos by name, tracks by name, frames by index; names are sorted in Python (code point
order), not by the database, whose collation differs between SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, insert, text

from affdata.errors import ConfigError, NotFoundError
from affdata.export.encode import VideoSourceRow
from affdata.schema import LANDMARK_COLUMNS, Export, utcnow
from affdata.splits import resolve_split
from affdata.vocab import AU_SETS, EXPRESSIONS

CONSENSUS = "consensus"
TASKS = ("va", "au", "expr")
#: AU columns when the labels use none (Arrow has no fixed-size lists of size 0)
FALLBACK_AUS = AU_SETS["abaw2020"]
_PART_TRACKS = ("SELECT t.id FROM track t JOIN split_assignment a ON a.video_id = t.video_id "
                "WHERE a.split_id = :split_id AND a.part = :part")
_LABEL_TABLES = {"va": "va_label", "au": "au_label", "expr": "expr_label"}


@dataclass(frozen=True)
class SplitRef:
    id: int
    name: str
    version: int
    content_hash: str
    part: str


@dataclass(frozen=True)
class Scope:
    """The label source(s) read: the consensus views over ``source_ids``, or one source."""

    name: str  # "consensus", or the source's name
    version: str | None
    source_ids: tuple[int, ...]

    @property
    def consensus(self) -> bool:
        return self.version is None


@dataclass(frozen=True)
class TrackRef:
    id: int
    name: str
    subject: str | None


@dataclass(frozen=True)
class VideoRef:
    id: int
    name: str
    content_hash: str
    source: VideoSourceRow
    tracks: tuple[TrackRef, ...]
    #: the identity stored at ingest (affdata.video.identity); None for rows from before 0005
    mtime_ns: int | None = None
    sample_hash: str | None = None


@dataclass(frozen=True)
class Vocabulary:
    au_numbers: tuple[int, ...]
    expression_ids: tuple[int, ...]

    def to_json(self) -> dict[str, list[Any]]:
        return {"au_names": [f"AU{n}" for n in self.au_numbers], "au_numbers": list(self.au_numbers),
                "expressions": [EXPRESSIONS[i] for i in self.expression_ids],
                "expression_ids": list(self.expression_ids)}


@dataclass
class TrackLabels:
    """One track's frames and labels, one entry per frame (or per selected row)."""

    frames: np.ndarray  # int32
    pts: np.ndarray  # float64
    present: np.ndarray  # bool: the frame has an image
    valence: np.ndarray  # float32, NaN where unlabelled
    arousal: np.ndarray  # float32
    has_va: np.ndarray  # bool
    expr: np.ndarray  # int16 index into the vocabulary, -1 where unlabelled
    has_expr: np.ndarray  # bool
    au: np.ndarray  # int8 (n, K), 0 where not annotated
    au_mask: np.ndarray  # bool (n, K)
    boxes: np.ndarray = field(repr=False)  # float64 (n, 4), NaN where no face box
    landmarks: np.ndarray = field(repr=False)  # float64 (n, 10), NaN where none (schema.LANDMARK_COLUMNS)

    @property
    def has_au(self) -> np.ndarray:
        return self.au_mask.any(axis=1)

    def take(self, rows: np.ndarray) -> TrackLabels:
        return TrackLabels(**{k: v[rows] for k, v in vars(self).items()})


def _in(sql: str) -> Any:
    return text(sql).bindparams(bindparam("ids", expanding=True))


def resolve(conn: Connection, split: str, part: str, source: str) -> tuple[SplitRef, Scope]:
    """The split version, part and label scope named on the command line."""
    row = resolve_split(conn, split)
    name = row.name
    parts = conn.execute(text("SELECT part, COUNT(*) FROM split_assignment WHERE split_id = :s "
                              "GROUP BY part"), {"s": row.id}).all()
    if part not in {p for p, _ in parts}:
        known = ", ".join(f"{p} ({n} video{'' if n == 1 else 's'})" for p, n in sorted(parts))
        raise NotFoundError(f"split {name}@{row.version} has no part {part!r}; parts: {known}")
    return SplitRef(row.id, name, row.version, row.content_hash, part), _scope(conn, source)


def _scope(conn: Connection, source: str) -> Scope:
    rows = conn.execute(text("SELECT id, kind, name, version FROM label_source")).all()
    if source == CONSENSUS:
        ids = tuple(sorted(r.id for r in rows if r.kind in ("annotator", "dataset", "consensus")))
        return Scope(CONSENSUS, None, ids)
    name, at, version = source.partition("@")
    mine = [r for r in rows if r.name == name and (not at or r.version == version)]
    if len(mine) == 1:
        return Scope(name, mine[0].version, (mine[0].id,))
    if not mine:
        known = ", ".join(sorted({f"{r.name} ({r.kind})" for r in rows})) or "none"
        raise NotFoundError(f"unknown label source {source!r}; use 'consensus' or one of: {known}")
    versions = ", ".join(sorted(f"{name}@{r.version}" for r in mine))
    raise ConfigError(f"label source {name!r} has several versions; name one: {versions}")


def part_videos(conn: Connection, ref: SplitRef) -> list[VideoRef]:
    """The part's videos (by name) and their tracks (by name), with each track's subject."""
    videos = conn.execute(text(
        "SELECT v.id, v.name, v.content_hash, v.path, v.kind, v.decoder, v.stream_index, "
        "v.frame_count, v.width, v.height, v.size_bytes, v.mtime_ns, v.sample_hash FROM video v "
        "JOIN split_assignment a ON a.video_id = v.id WHERE a.split_id = :s AND a.part = :p"),
        {"s": ref.id, "p": ref.part}).all()
    tracks: dict[int, list[TrackRef]] = {}
    for r in conn.execute(text(
            "SELECT t.id, t.video_id, t.name, s.name AS subject FROM track t "
            "JOIN video v ON v.id = t.video_id "
            "LEFT JOIN subject s ON s.id = COALESCE(t.subject_id, v.subject_id) "
            f"WHERE t.id IN ({_PART_TRACKS})"), {"split_id": ref.id, "part": ref.part}):
        tracks.setdefault(r.video_id, []).append(TrackRef(r.id, r.name, r.subject))
    out = []
    for v in sorted(videos, key=lambda v: v.name):
        source = VideoSourceRow(v.path, v.kind, v.decoder, v.stream_index, int(v.frame_count),
                                int(v.width), int(v.height), v.size_bytes)
        mine = tuple(sorted(tracks.get(v.id, []), key=lambda t: t.name))
        out.append(VideoRef(v.id, v.name, v.content_hash, source, mine, v.mtime_ns, v.sample_hash))
    return out


def _details(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value or {}


def vocabularies(conn: Connection, scope: Scope) -> Vocabulary:
    """AU columns and expression classes of the source's labels over the whole store.

    AUs: those with a presence label, in the order the first imported file (by key) that
    declares AU columns gives them, the rest in FACS order. Expressions: the canonical ids
    ``0..max(6, largest id used or declared by a file's class order)``, so ``expr`` = the
    canonical id (ABAW: 0..6, or 0..7 once Other occurs).
    """
    ids = {"ids": list(scope.source_ids) or [-1]}
    used_au = {r[0] for r in conn.execute(_in(
        "SELECT DISTINCT au_id FROM au_label WHERE present IS NOT NULL AND source_id IN :ids"), ids)}
    used_expr = {r[0] for r in conn.execute(_in(
        "SELECT DISTINCT expr_id FROM expr_label WHERE source_id IN :ids"), ids)}
    declared_au: list[int] = []
    for key, details in sorted(conn.execute(_in(
            "SELECT key, details FROM label_import WHERE source_id IN :ids"), ids).all()):
        d = _details(details)
        if d.get("au_numbers") and not declared_au:
            declared_au = [int(n) for n in d["au_numbers"]]
        used_expr.update(int(i) for i in d.get("expr_order") or ())
    rank = {n: i for i, n in enumerate(declared_au)}
    aus = tuple(sorted(used_au, key=lambda n: (rank.get(n, len(rank)), n))) or FALLBACK_AUS
    top = max([6, *used_expr])
    return Vocabulary(aus, tuple(range(top + 1)))


def label_state(conn: Connection, scope: Scope, ref: SplitRef, tasks: Sequence[str]) -> str:
    """sha256 over the sorted (source, version, import key, file sha256) the labels come from.

    Only imports with labels of an exported task on the part's tracks count. Labels written
    without an import (a consensus run) count as one entry per source and table with their
    number of rows.
    """
    params = {"ids": list(scope.source_ids) or [-1], "split_id": ref.id, "part": ref.part}
    entries: set[tuple[str, str, str, str]] = set()
    for task in tasks:
        table = _LABEL_TABLES[task]
        where = f"l.source_id IN :ids AND l.track_id IN ({_PART_TRACKS})"
        for r in conn.execute(_in(
                "SELECT DISTINCT s.name, s.version, i.key, i.sha256 FROM label_import i "
                "JOIN label_source s ON s.id = i.source_id "
                f"WHERE i.id IN (SELECT l.import_id FROM {table} l WHERE {where})"), params):
            entries.add((r[0], r[1], r[2], r[3]))
        for r in conn.execute(_in(
                f"SELECT s.name, s.version, COUNT(*) FROM {table} l JOIN label_source s "
                f"ON s.id = l.source_id WHERE l.import_id IS NULL AND {where} "
                "GROUP BY s.name, s.version"), params):
            entries.add((r[0], r[1], f"(no import: {table})", str(r[2])))
    digest = hashlib.sha256()
    for entry in sorted(entries):
        digest.update(("\t".join(entry) + "\n").encode())
    return digest.hexdigest()


def box_state(conn: Connection, ref: SplitRef) -> list[Any]:
    """A cheap fingerprint of the part's face boxes (for resuming only)."""
    row = conn.execute(text(
        "SELECT COUNT(*), SUM(x), SUM(y), SUM(w), SUM(h), SUM(frame_idx * (x + w)), "
        "SUM(COALESCE(leye_x, 0) + COALESCE(reye_y, 0) + COALESCE(nose_x, 0) + COALESCE(rmouth_y, 0)) FROM face_box "
        f"WHERE track_id IN ({_PART_TRACKS})"), {"split_id": ref.id, "part": ref.part}).one()
    return [None if v is None else round(float(v), 3) for v in row]


def _column(rows: list[Any], i: int, dtype: Any) -> np.ndarray:
    return np.array([r[i] for r in rows], dtype=dtype)


def track_labels(conn: Connection, scope: Scope, vocab: Vocabulary, video: VideoRef,
                 track: TrackRef) -> TrackLabels:
    """Every frame of one track with its labels (consensus views, or one source's rows)."""
    if scope.consensus:
        rows = conn.execute(text(
            "SELECT frame_idx, pts_s, present, valence, arousal, expr_id FROM frame_labels "
            "WHERE track_id = :t ORDER BY frame_idx"), {"t": track.id}).all()
        au_rows = conn.execute(text(
            "SELECT frame_idx, au_id, present FROM frame_au_labels "
            "WHERE track_id = :t AND present IS NOT NULL"), {"t": track.id}).all()
    else:
        params = {"t": track.id, "s": scope.source_ids[0], "v": video.id}
        rows = conn.execute(text(
            "SELECT f.idx, f.pts_s, f.present, va.valence, va.arousal, e.expr_id FROM frame f "
            "LEFT JOIN va_label va ON va.track_id = :t AND va.frame_idx = f.idx AND va.source_id = :s "
            "LEFT JOIN expr_label e ON e.track_id = :t AND e.frame_idx = f.idx AND e.source_id = :s "
            "WHERE f.video_id = :v ORDER BY f.idx"), params).all()
        au_rows = conn.execute(text(
            "SELECT frame_idx, au_id, present FROM au_label "
            "WHERE track_id = :t AND source_id = :s AND present IS NOT NULL"), params).all()
    box_rows = conn.execute(text(f"SELECT frame_idx, x, y, w, h, {', '.join(LANDMARK_COLUMNS)} "
                                 "FROM face_box WHERE track_id = :t"), {"t": track.id}).all()

    frames = _column(rows, 0, np.int64)
    n, k = len(rows), len(vocab.au_numbers)
    valence = _column(rows, 3, np.float64).astype(np.float32)
    arousal = _column(rows, 4, np.float64).astype(np.float32)
    expr_f = _column(rows, 5, np.float64)
    has_expr = ~np.isnan(expr_f)
    expr = np.where(has_expr, expr_f, -1).astype(np.int16)  # index = canonical id (vocabularies)
    position = np.full(frames.max() + 1 if n else 0, -1, dtype=np.int64)
    position[frames] = np.arange(n)
    au = np.zeros((n, k), dtype=np.int8)
    au_mask = np.zeros((n, k), dtype=bool)
    if au_rows:
        column = {a: j for j, a in enumerate(vocab.au_numbers)}
        arr = np.array([(f, column.get(a, -1), p) for f, a, p in au_rows], dtype=np.int64)
        arr = arr[(arr[:, 1] >= 0) & (arr[:, 0] < len(position))]
        r = position[arr[:, 0]]
        arr, r = arr[r >= 0], r[r >= 0]
        au[r, arr[:, 1]] = arr[:, 2]
        au_mask[r, arr[:, 1]] = True
    boxes = np.full((n, 4), np.nan)
    landmarks = np.full((n, 10), np.nan)
    if box_rows:
        # not Rows: numpy would probe each Row for array attributes, and every failed look-up
        # raises inside SQLAlchemy; None (no landmark) becomes NaN
        b = np.array([tuple(np.nan if v is None else v for v in r) for r in box_rows], dtype=np.float64)
        inside = b[:, 0] < len(position)
        r = position[b[inside, 0].astype(np.int64)]
        boxes[r[r >= 0]] = b[inside][r >= 0, 1:5]
        landmarks[r[r >= 0]] = b[inside][r >= 0, 5:]
    return TrackLabels(
        frames=frames.astype(np.int32), pts=_column(rows, 1, np.float64),
        present=np.array([bool(r[2]) for r in rows], dtype=bool),
        valence=valence, arousal=arousal, has_va=~np.isnan(valence) & ~np.isnan(arousal),
        expr=expr, has_expr=has_expr, au=au, au_mask=au_mask, boxes=boxes, landmarks=landmarks)


def select_rows(labels: TrackLabels, tasks: Sequence[str], include_unlabelled: bool) -> TrackLabels:
    """Rows to export: frames with an image and a label of an exported task (or all of them).

    Columns of tasks not exported are cleared here, so they come out null with false masks.
    """
    if "va" not in tasks:
        labels.has_va[:] = False
        labels.valence[:] = np.nan
        labels.arousal[:] = np.nan
    if "expr" not in tasks:
        labels.has_expr[:] = False
        labels.expr[:] = -1
    if "au" not in tasks:
        labels.au[:] = 0
        labels.au_mask[:] = False
    keep = labels.present.copy()
    if not include_unlabelled:
        keep &= labels.has_va | labels.has_expr | labels.has_au
    return labels.take(np.flatnonzero(keep))


def refresh_identity(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Store the identity of videos whose content was just hashed in full and found unchanged
    (``id``, ``mtime_ns``, ``sample_hash``)."""
    if rows:
        conn.execute(text("UPDATE video SET mtime_ns = :mtime_ns, sample_hash = :sample_hash WHERE id = :id"),
                     list(rows))


def record_export(conn: Connection, ref: SplitRef, out_dir: str, format_version: int, state: str,
                  args: dict[str, Any], manifest_sha256: str, n_rows: int) -> int:
    """The store's ``export`` row for a finished export."""
    return conn.execute(insert(Export).values(
        split_id=ref.id, part=ref.part, out_dir=out_dir, format_version=format_version,
        label_state=state, args=args, manifest_sha256=manifest_sha256, n_rows=n_rows,
        created_at=utcnow()).returning(Export.id)).scalar_one()
