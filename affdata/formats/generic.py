"""Generic label tables (CSV or Parquet), one row per labelled frame, columns named by option.

For datasets that ship their own layout: each row names (optionally) its video and track, a
frame number, and any of valence/arousal, an expression (a name in any alias, or a class id in
``expr_order``) and AU presence columns (0/1). Empty cells, ``NaN``, -5 (VA) and -1 (AU,
expression) all mean unannotated. In Parquet files ``line`` numbers are 1-based row numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from affdata.errors import LabelFormatError, VocabularyError
from affdata.formats import _csv
from affdata.formats.table import (
    CLASS_MISSING,
    KIND_HUMAN,
    TRACK_MAIN,
    VA_MISSING,
    FirstError,
    LabelTable,
    check_frames,
    check_presence,
    check_va,
    check_va_pair,
    encode,
    file_stem,
    fmt,
    pair_codes,
    rank_within,
    split_tables,
)
from affdata.vocab import au_number, expression_id, expression_order

_AU_COLUMN = re.compile(r"^AU\d+$", re.IGNORECASE)
_DEFAULT_COLUMNS = {
    "video_col": "video",
    "frame_col": "frame",
    "valence_col": "valence",
    "arousal_col": "arousal",
    "expr_col": "expression",
}


def is_parquet(path: str | Path) -> bool:
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


def read_generic(
    path: str | Path,
    *,
    video: str | None = None,
    video_col: str = "video",
    frame_col: str = "frame",
    frame_base: int = 0,
    valence_col: str = "valence",
    arousal_col: str = "arousal",
    expr_col: str = "expression",
    expr_order: str | tuple[int, ...] = "abaw",
    au_cols: Sequence[str] | Mapping[str, str | int] | None = None,
    track_col: str | None = None,
    kind: str = KIND_HUMAN,
) -> list[LabelTable]:
    """One table per (video, track), in order of first appearance.

    The video is ``video`` if given, else the ``video_col`` column, else the file stem; the
    track is the ``track_col`` column or ``main``. Without a frame column, rows are frames
    0, 1, 2... of their video in file order. A column option left at its default may be absent
    from the file; one set to another name must exist. ``au_cols`` lists AU columns by name
    (default: every ``AU<n>`` column) or maps other column names to AUs (``{"smile": 12}``).
    """
    order = expression_order(expr_order) if isinstance(expr_order, str) else tuple(expr_order)
    parquet = is_parquet(path)
    if parquet:
        names, data = _parquet_names(path), b""
    else:
        data = _csv.read_bytes(path)
        names = _csv.header_fields(_csv.split_header(path, data)[0])
    exact = {n: i for i, n in enumerate(names)}
    folded = {n.lower(): i for i, n in reversed(list(enumerate(names)))}

    def find(option: str, name: str | None, *, required: bool = False) -> int | None:
        if name is None:
            return None
        idx = exact.get(name, folded.get(name.lower()))
        if idx is None and (required or _DEFAULT_COLUMNS.get(option) != name):
            reason = f"no column {name!r} ({option}); columns: {', '.join(names)}"
            raise LabelFormatError(path, reason, line=1)
        return idx

    col = {
        "video": None if video is not None else find("video_col", video_col),
        "track": find("track_col", track_col, required=True),
        "frame": find("frame_col", frame_col),
        "valence": find("valence_col", valence_col),
        "arousal": find("arousal_col", arousal_col),
        "expr": find("expr_col", expr_col),
    }
    if au_cols is None:
        au_idx = [i for i, n in enumerate(names) if _AU_COLUMN.match(n)]
    else:
        au_idx = [find("au_cols", n, required=True) for n in au_cols]  # type: ignore[misc]
    rename = dict(au_cols) if isinstance(au_cols, Mapping) else {}
    try:
        au_nums = tuple(au_number(rename.get(names[i], names[i])) for i in au_idx)
    except VocabularyError as exc:
        raise LabelFormatError(path, f"bad AU column: {exc}", line=1) from None
    if (col["valence"] is None) != (col["arousal"] is None):
        reason = "file has only one of the valence and arousal columns"
        raise LabelFormatError(path, reason, line=1)
    if col["valence"] is None and col["expr"] is None and not au_idx:
        reason = "no label columns (valence/arousal, expression or AU)"
        raise LabelFormatError(path, reason, line=1)

    wanted: dict[int, pa.DataType] = {i: pa.float64() for i in au_idx}
    for role, i in col.items():
        if i is not None:
            wanted[i] = pa.string() if role in ("video", "track", "expr") else pa.float64()
    if parquet:
        table, first_line = _read_parquet(path, names, wanted), 1
    else:
        body = _csv.trim_body(_csv.split_header(path, data)[1])
        table = _csv.read_body(
            path, body, names=names, types=wanted, quoting=True, nulls=_csv.MODEL_NULLS
        )
        first_line = 2
    n = table.num_rows
    lines = np.arange(first_line, first_line + n, dtype=np.int64)
    errs = FirstError(path, lines)

    def num(i: int) -> np.ndarray:
        return table.column(f"c{i}").to_numpy().astype(np.float64)

    def text(i: int | None, default: str) -> pa.Array:
        if i is None:
            return pa.array([default] * n, type=pa.string())
        return table.column(f"c{i}").combine_chunks().fill_null(default)

    videos = encode(text(col["video"], video or file_stem(path)))
    codes, pairs = pair_codes(videos, encode(text(col["track"], TRACK_MAIN)))
    out = LabelTable(
        path=str(path), video="", track="", frames=lines, lines=lines, n_lines=n, kind=kind
    )
    if col["valence"] is not None:
        for role in ("valence", "arousal"):
            i = col[role]
            assert i is not None
            values = num(i)
            values[values == VA_MISSING] = np.nan
            setattr(out, role, check_va(errs, names[i], values, sentinel=False))
        check_va_pair(errs, out.valence, out.arousal, missing="unannotated")
    if col["expr"] is not None:
        expr_name = names[col["expr"]]
        out.expr = _expressions(errs, expr_name, table.column(f"c{col['expr']}"), order)
        out.expr_order = order
    if au_idx:
        values = np.column_stack([num(i) for i in au_idx])
        out.au_numbers = au_nums
        out.au_present = check_presence(errs, [names[i] for i in au_idx], values, allow_nan=True)
    if col["frame"] is not None:
        frames = num(col["frame"]) - frame_base
        check_frames(errs, frames, codes)
        out.frames = np.nan_to_num(frames).astype(np.int64)
    else:
        out.frames = rank_within(codes[:, None])
    errs.raise_first()
    return split_tables(out, codes, pairs)


def _expressions(
    errs: FirstError, name: str, column: pa.ChunkedArray, order: tuple[int, ...]
) -> np.ndarray:
    """Names (any alias) or class ids in ``order`` -> canonical ids, one lookup per distinct
    value (a million rows hold a handful of distinct spellings)."""
    arr = column.combine_chunks()
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    codes, distinct = encode(arr.fill_null(""))
    lut = np.full(max(len(distinct), 1), CLASS_MISSING, dtype=np.int16)
    problems: dict[int, str] = {}
    for k, value in enumerate(distinct):
        lut[k], problem = _expression_value(value.strip(), order)
        if problem:
            problems[k] = problem
    if problems:
        bad = np.isin(codes, list(problems))
        errs.check(bad, lambda i: f"{name} {problems[int(codes[i])]}")
    return lut[codes]


def _expression_value(value: str, order: tuple[int, ...]) -> tuple[int, str | None]:
    """(canonical id, problem) for one spelling: empty, -1, a class id, or a name."""
    if value in _csv.MODEL_NULLS:
        return CLASS_MISSING, None
    try:
        number = float(value)
    except ValueError:
        try:
            return expression_id(value), None
        except VocabularyError:
            return CLASS_MISSING, f"{value!r} is neither a class id nor an expression name"
    if number == CLASS_MISSING:
        return CLASS_MISSING, None
    if number.is_integer() and 0 <= number < len(order):
        return order[int(number)], None
    last = len(order) - 1
    return CLASS_MISSING, f"{fmt(number)} is not a class id 0..{last} (-1 = unannotated)"


def _parquet_names(path: str | Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowInvalid) as exc:
        raise LabelFormatError(path, f"not a readable Parquet file: {exc}") from None


def _read_parquet(path: str | Path, names: list[str], wanted: dict[int, pa.DataType]) -> pa.Table:
    """The wanted columns cast to the CSV reader's types; a cell that will not cast is
    reported with its 1-based row number."""
    table = pq.read_table(path, columns=[names[i] for i in sorted(wanted)])
    out = {}
    for i in sorted(wanted):
        column = table.column(names[i])
        try:
            out[f"c{i}"] = pc.cast(column, wanted[i])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = column.to_pylist()
            row = next((r for r, v in enumerate(values) if not _is_number(v)), 0)
            reason = f"{names[i]} {values[row]!r} is not a number"
            raise LabelFormatError(path, reason, line=row + 1) from None
    return pa.table(out)


def _is_number(value: object) -> bool:
    if value is None:
        return True
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
