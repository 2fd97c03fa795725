"""The :class:`LabelTable` every parser returns, and the vectorised checks they share.

A table is columnar (one numpy array per quantity) so that the store can bulk-insert it
without touching rows in Python. The checks here find the *first* offending row of a whole
column at once; parsers run several checks and raise one :class:`LabelFormatError` for the
earliest line, so a file with many problems reports the one a person would see first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from affdata.errors import LabelFormatError

#: Unannotated markers in ABAW files.
VA_MISSING = -5.0
CLASS_MISSING = -1

TRACK_MAIN = "main"
KIND_HUMAN = "human"
KIND_MODEL = "model"


@dataclass(eq=False)
class LabelTable:
    """Labels for one track of one video, from one file (or one part of a multi-video file)."""

    path: str  # the file it came from
    video: str  # file stem without _left/_right; for multi-video files, from the row
    track: str  # "main", "left"/"right" (ABAW suffixes), "face<N>" (OpenFace / py-feat faces)
    frames: np.ndarray  # int64, 0-based frame index of each row
    lines: np.ndarray  # int64, 1-based line of each row in the file (row number for Parquet)
    valence: np.ndarray | None = None  # float64, NaN where unannotated
    arousal: np.ndarray | None = None  # float64, NaN where unannotated
    au_numbers: tuple[int, ...] = ()  # FACS numbers of the AU columns, file order
    au_present: np.ndarray | None = None  # int8 (n, K): 1/0, -1 where unannotated
    au_intensity: np.ndarray | None = None  # float64 (n, K): 0..5, NaN where absent
    expr: np.ndarray | None = None  # int16 canonical expression id, -1 where unannotated
    expr_order: tuple[int, ...] | None = None  # the file's class order as canonical ids
    n_lines: int = 0  # data lines (no header) this table came from
    kind: str = KIND_HUMAN  # "human" (annotation sets) or "model" (OpenFace, py-feat)
    #: float64 (n, 4) face rectangles x, y, w, h in frame pixels that model files carry, NaN where none
    boxes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def take(self, rows: np.ndarray) -> LabelTable:
        """The given rows as a table of their own (same path, AU columns and class order)."""

        def sub(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[rows]

        frames = self.frames[rows]
        return LabelTable(
            path=self.path,
            video=self.video,
            track=self.track,
            frames=frames,
            lines=self.lines[rows],
            valence=sub(self.valence),
            arousal=sub(self.arousal),
            au_numbers=self.au_numbers,
            au_present=sub(self.au_present),
            au_intensity=sub(self.au_intensity),
            expr=sub(self.expr),
            expr_order=self.expr_order,
            n_lines=int(frames.shape[0]),
            kind=self.kind,
            boxes=sub(self.boxes),
        )


def split_track(stem: str) -> tuple[str, str]:
    """``video_left`` -> (``video``, ``left``): ABAW names one file per person this way."""
    for side in ("left", "right"):
        suffix = "_" + side
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], side
    return stem, TRACK_MAIN


def file_stem(path: str | Path) -> str:
    return Path(path).stem


def fmt(value: float) -> str:
    """A value as messages show it: ``1.7``, ``-5``, ``nan``."""
    v = float(value)
    return str(int(v)) if v.is_integer() else repr(v)


class FirstError:
    """Collects vectorised checks and raises one error for the earliest bad row.

    ``lines[i]`` is the file line of row ``i``. On a tie (two problems on one row) the check
    registered first wins, so parsers register them in column order.
    """

    def __init__(self, path: str | Path, lines: np.ndarray) -> None:
        self.path = str(path)
        self.lines = lines
        self.row: int | None = None
        self.reason: Callable[[int], str] | None = None

    def check(self, bad: np.ndarray, reason: Callable[[int], str]) -> None:
        """``bad`` is a row mask; ``reason(i)`` words the problem of row ``i`` (called once)."""
        hits = np.flatnonzero(bad)
        if hits.size and (self.row is None or hits[0] < self.row):
            self.row = int(hits[0])
            self.reason = reason

    def raise_first(self) -> None:
        if self.row is not None and self.reason is not None:
            line = int(self.lines[self.row])
            raise LabelFormatError(self.path, self.reason(self.row), line=line)


def check_va(errs: FirstError, name: str, values: np.ndarray, *, sentinel: bool) -> np.ndarray:
    """Range-check a valence or arousal column; returns a copy with unannotated values NaN.

    With ``sentinel`` (human annotation files) -5 means unannotated and NaN is an error; model
    output has no sentinel and leaves values empty (NaN) instead.
    """
    values = np.asarray(values, dtype=np.float64)
    if sentinel:
        missing = values == VA_MISSING
        errs.check(np.isnan(values), lambda i: f"{name} is not a number")
    else:
        missing = np.isnan(values)
    bad = ~missing & ~((values >= -1.0) & (values <= 1.0))
    errs.check(bad, lambda i: f"{name} {fmt(values[i])} outside [-1, 1]")
    return np.where(missing, np.nan, values)


def check_va_pair(errs: FirstError, valence: np.ndarray, arousal: np.ndarray, *,
                  missing: str = "-5") -> None:
    """Refuse a row where only one of valence and arousal is unannotated (``-5,0.3``).

    Valence and arousal are one rating, stored as one row: a half-annotated line would
    otherwise be dropped without a word. ``valence`` and ``arousal`` are NaN where unannotated
    (as :func:`check_va` returns them); ``missing`` is how the file writes that.
    """
    half = np.isnan(valence) != np.isnan(arousal)

    def reason(i: int) -> str:
        v, a = (missing if x != x else fmt(x) for x in (valence[i], arousal[i]))
        return f"valence {v} and arousal {a}: only one of the two is annotated (a frame has both or neither)"

    errs.check(half, reason)


def check_presence(
    errs: FirstError, names: list[str], values: np.ndarray, *, allow_nan: bool = False
) -> np.ndarray:
    """(n, K) values in {0, 1, -1} -> int8, -1 where unannotated (and where NaN, if allowed)."""
    values = np.asarray(values, dtype=np.float64)
    nan = np.isnan(values)
    ok = (values == 0) | (values == 1) | (values == CLASS_MISSING)
    if allow_nan:
        ok |= nan
    bad = ~ok
    if bad.any():

        def reason(i: int) -> str:
            k = int(np.flatnonzero(bad[i])[0])
            return f"{names[k]} {fmt(values[i, k])} not in {{0, 1}} (-1 = unannotated)"

        errs.check(bad.any(axis=1), reason)
    return np.where(ok & ~nan, values, CLASS_MISSING).astype(np.int8)


def check_intensity(errs: FirstError, names: list[str], values: np.ndarray) -> np.ndarray:
    """(n, K) AU intensities in [0, 5], NaN where absent."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isnan(values) & ~((values >= 0.0) & (values <= 5.0))
    if bad.any():

        def reason(i: int) -> str:
            k = int(np.flatnonzero(bad[i])[0])
            return f"{names[k]} intensity {fmt(values[i, k])} outside [0, 5]"

        errs.check(bad.any(axis=1), reason)
    return values


def check_classes(
    errs: FirstError, name: str, values: np.ndarray, order: tuple[int, ...]
) -> np.ndarray:
    """Class ids in the file's ``order`` -> canonical int16 ids; -1 stays -1 (unannotated)."""
    values = np.asarray(values, dtype=np.float64)
    valid = (values >= 0) & (values < len(order)) & (values == np.floor(values))
    last = len(order) - 1
    errs.check(
        ~valid & (values != CLASS_MISSING),
        lambda i: f"{name} {fmt(values[i])} is not a class id 0..{last} (-1 = unannotated)",
    )
    lut = np.asarray(order, dtype=np.int16)
    ids = np.where(valid, values, 0).astype(np.int64)
    return np.where(valid, lut[ids], CLASS_MISSING).astype(np.int16)


def check_frames(errs: FirstError, frames: np.ndarray, groups: np.ndarray | None = None) -> None:
    """Frame numbers must be non-negative whole numbers, unique within each group (track)."""
    frames = np.asarray(frames, dtype=np.float64)
    bad = np.isnan(frames) | (frames < 0) | (frames != np.floor(frames))
    errs.check(bad, lambda i: f"frame number {fmt(frames[i])} is not a non-negative integer")
    if frames.size < 2:
        return
    if groups is None:
        order = np.argsort(frames, kind="stable")
        s = frames[order]
        repeat = np.flatnonzero(s[1:] == s[:-1]) + 1
    else:
        order = np.lexsort((np.arange(frames.size), frames, groups))
        s = np.stack([groups.astype(np.float64), frames], axis=1)[order]
        repeat = np.flatnonzero((s[1:] == s[:-1]).all(axis=1)) + 1
    if repeat.size:
        dup = np.zeros(frames.size, dtype=bool)
        dup[order[repeat]] = True  # every occurrence after the first

        def reason(i: int) -> str:
            j = int(np.flatnonzero(order == i)[0])
            previous = int(errs.lines[order[j - 1]])
            return f"duplicate frame {fmt(frames[i])} (also on line {previous})"

        errs.check(dup, reason)


def group_rows(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices of each group ``0..n_groups-1``, each in file order (one stable sort)."""
    if n_groups == 0:
        return []
    codes = np.asarray(codes, dtype=np.int64)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=n_groups))[:-1]
    return np.split(order, bounds)


def rank_within(keys: np.ndarray) -> np.ndarray:
    """For each row of an (n, m) int array, how many earlier rows have the same key: 0, 1..."""
    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    columns = tuple(keys[:, j] for j in range(keys.shape[1] - 1, -1, -1))
    order = np.lexsort((np.arange(n), *columns))
    s = keys[order]
    start = np.ones(n, dtype=bool)
    start[1:] = (s[1:] != s[:-1]).any(axis=1)
    run_start = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - run_start
    return rank


def encode(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Strings -> (int codes, distinct values in first-appearance order)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    enc = values.dictionary_encode()
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, enc.dictionary.to_pylist()


def pair_codes(
    videos: tuple[np.ndarray, list[str]], tracks: tuple[np.ndarray, list[str]]
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """(video codes, names) and (track codes, names) -> one code per (video, track) pair."""
    (v_codes, v_names), (t_codes, t_names) = videos, tracks
    m = max(len(t_names), 1)
    return v_codes * m + t_codes, [(v, t) for v in v_names for t in t_names]


def split_tables(
    whole: LabelTable,
    codes: np.ndarray,
    names: list[tuple[str, str]],
    keep: np.ndarray | None = None,
) -> list[LabelTable]:
    """One table per (video, track) code that has rows (``keep`` drops rows), ordered by the
    line of their first row."""
    parts = []
    for code, rows in enumerate(group_rows(codes, len(names))):
        if keep is not None:
            rows = rows[keep[rows]]
        if rows.size == 0:
            continue
        part = whole.take(rows)
        part.video, part.track = names[code]
        parts.append(part)
    parts.sort(key=lambda t: int(t.lines[0]))
    return parts
