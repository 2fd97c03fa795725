"""OpenFace ``FeatureExtraction`` / ``FaceLandmarkVidMulti`` CSV output, as model labels.

Both layouts are read: the old one (no ``face_id``; ``", "`` separators, so every column name
after the first has a leading space) and OpenFace 2 (with ``face_id``), including reduced
exports that keep only some columns. Only ``frame``, ``face_id``, ``success`` and the
``AUxx_r`` / ``AUxx_c`` columns are read.

Decisions:

* Frames: OpenFace numbers frames from 1, so frame k of the file is video frame k-1. Exports
  whose smallest frame number is 0 (re-indexed ones, like FACSvatar's) are already 0-based;
  ``frame_base`` overrides the guess.
* ``success == 0`` rows stay (every frame keeps a row) but carry no labels: intensity NaN,
  presence -1. Empty cells mean the same.
* Presence comes only from ``AUxx_c``. An AU with only ``AUxx_r`` keeps presence -1 (unknown):
  OpenFace's classifier and regressor are separate models and no threshold on the regressor
  reproduces the classifier. ``presence_threshold`` opts in to ``present = intensity >= t``
  for those AUs (1.0, FACS level A, is the usual choice).
* Tracks: ``face<N>`` from ``face_id``; ``main`` when the file has no ``face_id``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from affdata.errors import LabelFormatError, VocabularyError
from affdata.formats import _csv
from affdata.formats.table import (
    CLASS_MISSING,
    KIND_MODEL,
    TRACK_MAIN,
    FirstError,
    LabelTable,
    check_frames,
    check_intensity,
    check_presence,
    file_stem,
    fmt,
    split_tables,
)
from affdata.vocab import au_number

_AU = re.compile(r"^AU(\d+)_([rc])$", re.IGNORECASE)


def read_openface(
    path: str | Path,
    video: str | None = None,
    *,
    frame_base: int | None = None,
    presence_threshold: float | None = None,
) -> list[LabelTable]:
    """One table per face (``face<N>``, or ``main`` without ``face_id``), kind ``model``."""
    header, body = _csv.split_header(path, _csv.read_bytes(path))
    names = _csv.header_fields(header)
    where = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
    if "frame" not in where:
        raise LabelFormatError(path, "not OpenFace output: no 'frame' column", line=1)
    r_cols: dict[int, int] = {}
    c_cols: dict[int, int] = {}
    au_order: list[int] = []
    for i, name in enumerate(names):
        m = _AU.match(name)
        if not m:
            continue
        try:
            number = au_number(int(m.group(1)))
        except VocabularyError as exc:
            raise LabelFormatError(path, f"bad AU column {name!r}: {exc}", line=1) from None
        target = r_cols if m.group(2).lower() == "r" else c_cols
        if number in target:
            raise LabelFormatError(path, f"repeated column {name!r}", line=1)
        target[number] = i
        if number not in au_order:
            au_order.append(number)
    if not au_order:
        reason = "not OpenFace output: no AUxx_r or AUxx_c columns"
        raise LabelFormatError(path, reason, line=1)

    roles = {k: where.get(k) for k in ("frame", "face_id", "success")}
    # the 68 2D landmarks (pixels) where the file has them: their bounding box is the face box
    marks = [where.get(f"{a}_{j}") for a in ("x", "y") for j in range(68)]
    marks = marks if all(i is not None for i in marks) else []
    read = [i for i in (*roles.values(), *r_cols.values(), *c_cols.values(), *marks) if i is not None]
    wanted = {i: pa.float64() for i in read}
    body = _csv.trim_body(body)
    table = _csv.read_body(path, body, names=names, types=wanted, nulls=_csv.MODEL_NULLS)
    n = table.num_rows
    lines = np.arange(2, n + 2, dtype=np.int64)
    errs = FirstError(path, lines)

    def num(i: int) -> np.ndarray:
        return table.column(f"c{i}").to_numpy().astype(np.float64)

    raw_frames = num(where["frame"])
    if frame_base is None:
        frame_base = 0 if n and np.nanmin(raw_frames) == 0 else 1
    frames = raw_frames - frame_base
    faces = np.zeros(n) if roles["face_id"] is None else num(roles["face_id"])
    errs.check(
        np.isnan(faces) | (faces < 0) | (faces != np.floor(faces)),
        lambda i: f"face_id {fmt(faces[i])} is not a non-negative integer",
    )
    failed = np.zeros(n, dtype=bool)
    if roles["success"] is not None:
        success = num(roles["success"])
        errs.check(
            ~np.isin(success, (0.0, 1.0)), lambda i: f"success {fmt(success[i])} is not 0 or 1"
        )
        failed = success == 0

    k = len(au_order)
    intensity = np.full((n, k), np.nan)
    presence = np.full((n, k), CLASS_MISSING, dtype=np.int8)
    if r_cols:
        r_idx = [j for j, a in enumerate(au_order) if a in r_cols]
        r_names = [names[r_cols[au_order[j]]] for j in r_idx]
        r_vals = np.column_stack([num(r_cols[au_order[j]]) for j in r_idx])
        intensity[:, r_idx] = check_intensity(errs, r_names, r_vals)
    if c_cols:
        c_idx = [j for j, a in enumerate(au_order) if a in c_cols]
        c_names = [names[c_cols[au_order[j]]] for j in c_idx]
        c_vals = np.column_stack([num(c_cols[au_order[j]]) for j in c_idx])
        presence[:, c_idx] = check_presence(errs, c_names, c_vals, allow_nan=True)
    if presence_threshold is not None:
        only_r = [j for j, a in enumerate(au_order) if a in r_cols and a not in c_cols]
        sub = intensity[:, only_r]
        presence[:, only_r] = np.where(np.isnan(sub), CLASS_MISSING, sub >= presence_threshold)
    intensity[failed] = np.nan
    presence[failed] = CLASS_MISSING
    face_codes, face_ids = _codes(faces)
    check_frames(errs, frames, face_codes)
    errs.raise_first()

    whole = LabelTable(
        path=str(path),
        video=video or file_stem(path),
        track=TRACK_MAIN,
        frames=frames.astype(np.int64),
        lines=lines,
        au_numbers=tuple(au_order),
        au_present=presence if c_cols or presence_threshold is not None else None,
        au_intensity=intensity if r_cols else None,
        n_lines=n,
        kind=KIND_MODEL,
    )
    if marks:
        xs = np.column_stack([num(i) for i in marks[:68]])
        ys = np.column_stack([num(i) for i in marks[68:]])
        with np.errstate(invalid="ignore"):
            x0, y0 = xs.min(axis=1), ys.min(axis=1)
            boxes = np.column_stack([x0, y0, xs.max(axis=1) - x0, ys.max(axis=1) - y0])
        boxes[failed | ~(boxes[:, 2] > 0) | ~(boxes[:, 3] > 0)] = np.nan
        whole.boxes = boxes
    if roles["face_id"] is None:
        return [whole]
    return split_tables(whole, face_codes, [(whole.video, f"face{f}") for f in face_ids])


def _codes(faces: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Face ids -> (codes 0..m-1, the ids in ascending order); invalid ids map to 0."""
    clean = np.where(np.isfinite(faces), faces, 0).astype(np.int64)
    ids, codes = np.unique(clean, return_inverse=True)
    return codes.reshape(-1), [int(v) for v in ids]
