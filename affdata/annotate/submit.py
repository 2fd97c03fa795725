"""Submitting an assignment: validate on the server, write labels as the annotator's source.

The labels go through :func:`affdata.labels.importer.store_tables`, the same writer as file
imports, as one import of the source named after the user (kind ``annotator``) keyed
``campaign/NAME/assignment/ID``: one transaction, and a re-submission replaces the previous
one's rows atomically (an identical re-submission is a no-op). The ``submission`` row then links
the assignment to that source and import.

VA payload: ``valence`` and ``arousal``, arrays of one value (or null) per video frame, as the
page recorded them from the frames the browser presented. Gaps of up to ``MAX_GAP_S`` between
recorded frames (frames the browser skipped) are filled by linear interpolation and counted;
anything else unrecorded is untraced: refused, unless ``partial`` is set, when only traced frames
are written. Range payload (AU, expression): ``ranges`` of ``{start, end, expr}`` or
``{start, end, aus}``, frame indices inclusive. An expression campaign needs every frame covered
by exactly one class (unless partial); in an AU campaign, frames outside every range of an AU
are that AU's absence.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from affdata.annotate.assignments import Assignment
from affdata.db import Store
from affdata.errors import AnnotationError
from affdata.formats.table import LabelTable
from affdata.labels.importer import store_tables
from affdata.schema import utcnow

MAX_GAP_S = 0.5
FORMAT = "annotate"


@dataclass(frozen=True)
class SubmitResult:
    status: str  # imported | replaced | unchanged
    frames: int
    interpolated: int
    partial: bool
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_key(a: Assignment) -> str:
    return f"campaign/{a.campaign.name}/assignment/{a.id}"


def _values(name: str, raw: Any, n: int) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) != n:
        raise AnnotationError(f"{name} must be a list of {n} values (one per frame, null where untraced)")
    try:
        arr = np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
    except (TypeError, ValueError):
        raise AnnotationError(f"{name} holds a value that is not a number") from None
    bad = ~np.isnan(arr) & ((arr < -1) | (arr > 1) | ~np.isfinite(arr))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AnnotationError(f"{name} of frame {i} is {raw[i]}, outside [-1, 1]")
    return arr


def fill_gaps(values: np.ndarray, pts_s: np.ndarray, max_gap_s: float = MAX_GAP_S) -> tuple[np.ndarray, int]:
    """Linear interpolation over interior gaps no longer than ``max_gap_s``; returns (filled, count)."""
    out = values.copy()
    known = np.flatnonzero(~np.isnan(values))
    filled = 0
    for a, b in zip(known[:-1], known[1:]):
        if b - a > 1 and pts_s[b] - pts_s[a] <= max_gap_s:
            w = (pts_s[a + 1:b] - pts_s[a]) / (pts_s[b] - pts_s[a])
            out[a + 1:b] = values[a] + w * (values[b] - values[a])
            filled += int(b - a - 1)
    return out, filled


def _pts(store: Store, video_id: int) -> np.ndarray:
    with store.connect() as conn:
        return np.array([r[0] for r in conn.execute(
            text("SELECT pts_s FROM frame WHERE video_id = :v ORDER BY idx"), {"v": video_id})], dtype=np.float64)


def _untraced_message(missing: np.ndarray) -> str:
    breaks = np.flatnonzero(np.diff(missing) != 1)
    first, last = int(missing[0]), int(missing[breaks[0]] if breaks.size else missing[-1])
    return (f"{len(missing)} frames are not traced (the first run: frames {first}..{last}); trace them "
            "or submit as partial")


def _va_table(a: Assignment, payload: dict[str, Any], pts: np.ndarray, partial: bool) -> tuple[LabelTable, int]:
    n = len(pts)
    valence, n_v = fill_gaps(_values("valence", payload.get("valence"), n), pts)
    arousal, n_a = fill_gaps(_values("arousal", payload.get("arousal"), n), pts)
    traced = ~np.isnan(valence) & ~np.isnan(arousal)
    if not partial and not traced.all():
        raise AnnotationError(_untraced_message(np.flatnonzero(~traced)))
    frames = np.flatnonzero(traced).astype(np.int64)
    if not frames.size:
        raise AnnotationError("nothing is traced")
    table = LabelTable(path=import_key(a), video=a.video, track=a.track, frames=frames, lines=frames + 1,
                       valence=valence[frames], arousal=arousal[frames], n_lines=int(frames.size), kind="human")
    return table, max(n_v, n_a)


def _ranges(payload: dict[str, Any], n: int) -> list[dict[str, Any]]:
    ranges = payload.get("ranges")
    if not isinstance(ranges, list):
        raise AnnotationError("ranges must be a list of {start, end, ...}")
    out = []
    for k, r in enumerate(ranges):
        if not isinstance(r, dict):
            raise AnnotationError(f"range {k} is not an object")
        s, e = r.get("start"), r.get("end")
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (s, e)):
            raise AnnotationError(f"range {k}: start and end must be frame indices")
        if not 0 <= s <= e < n:
            raise AnnotationError(f"range {k}: frames {s}..{e} are not within 0..{n - 1} (start <= end)")
        out.append(r)
    return out


def _expr_table(a: Assignment, payload: dict[str, Any], n: int, partial: bool) -> LabelTable:
    expr = np.full(n, -1, dtype=np.int16)
    for k, r in enumerate(_ranges(payload, n)):
        cls = r.get("expr")
        if cls not in a.campaign.classes:
            raise AnnotationError(f"range {k}: expression {cls!r} is not one of the campaign's classes")
        seg = expr[r["start"]:r["end"] + 1]
        clash = (seg >= 0) & (seg != cls)
        if clash.any():
            raise AnnotationError(f"range {k} overlaps another range of a different expression at frame "
                                  f"{r['start'] + int(np.flatnonzero(clash)[0])}")
        seg[:] = cls
    if not partial and (expr < 0).any():
        raise AnnotationError(_untraced_message(np.flatnonzero(expr < 0)).replace("traced", "labelled"))
    frames = np.flatnonzero(expr >= 0).astype(np.int64)
    if not frames.size:
        raise AnnotationError("no frame is labelled")
    return LabelTable(path=import_key(a), video=a.video, track=a.track, frames=frames, lines=frames + 1,
                      expr=expr[frames], expr_order=tuple(a.campaign.classes), n_lines=int(frames.size))


def _au_table(a: Assignment, payload: dict[str, Any], n: int) -> LabelTable:
    aus = list(a.campaign.classes)
    present = np.zeros((n, len(aus)), dtype=np.int8)
    for k, r in enumerate(_ranges(payload, n)):
        chosen = r.get("aus")
        if not isinstance(chosen, list) or not chosen or any(x not in aus for x in chosen):
            raise AnnotationError(f"range {k}: aus must be a non-empty list of the campaign's AUs {aus}")
        for au in chosen:
            present[r["start"]:r["end"] + 1, aus.index(au)] = 1
    frames = np.arange(n, dtype=np.int64)
    return LabelTable(path=import_key(a), video=a.video, track=a.track, frames=frames, lines=frames + 1,
                      au_numbers=tuple(aus), au_present=present, n_lines=n)


def submit(store: Store, a: Assignment, payload: dict[str, Any], *, partial: bool = False) -> SubmitResult:
    """Validate ``payload`` and write it as ``a``'s annotator's labels; see the module docstring."""
    if not isinstance(payload, dict):
        raise AnnotationError("a submission is a JSON object")
    pts = _pts(store, a.video_id)
    n = len(pts)
    interpolated = 0
    if a.campaign.task == "va":
        table, interpolated = _va_table(a, payload, pts, partial)
    elif a.campaign.task == "expr":
        table = _expr_table(a, payload, n, partial)
    else:
        table = _au_table(a, payload, n)
    canonical = json.dumps({"task": a.campaign.task, "partial": partial, "payload": payload},
                           sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    key = import_key(a)

    def record(conn: Connection, source_id: int, import_id: int) -> None:  # in the labels' transaction
        conn.execute(text("DELETE FROM submission WHERE assignment_id = :a"), {"a": a.id})
        conn.execute(text("INSERT INTO submission (assignment_id, source_id, import_id, frames, interpolated, "
                          "partial, submitted_at) VALUES (:a, :s, :i, :f, :n, :p, :t)"),
                     {"a": a.id, "s": source_id, "i": import_id, "f": len(table), "n": interpolated,
                      "p": partial, "t": utcnow()})
        conn.execute(text("UPDATE assignment SET status = 'submitted' WHERE id = :a"), {"a": a.id})

    status, rows = store_tables(
        store, [(table, a.video_id)], source=a.user, version="", kind="annotator", key=key,
        path=f"annotate://{key}", fmt=FORMAT, digest=digest,
        details={"campaign": a.campaign.name, "campaign_id": a.campaign.id, "assignment": a.id,
                 "task": a.campaign.task, "interpolated": interpolated, "partial": partial},
        replace=True, on_written=record)
    return SubmitResult(status, len(table), interpolated, partial, rows)
