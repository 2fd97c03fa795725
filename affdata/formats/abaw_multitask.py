"""The ABAW multi-task file: every annotated frame of every video in one file.

Rows are ``<video>/<number>.jpg,valence,arousal,expression,AU1,...,AU12`` under a header
``image,valence,arousal,expression,AU1,...`` (the AU list may also be written as one ``aus``
column name standing for the 12 ABAW AUs). Image numbers count from 1, so frame = number - 1.
Unlike the per-task files only some frames appear, so frames come from the image names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from affdata.errors import LabelFormatError, VocabularyError
from affdata.formats._csv import (
    header_fields,
    read_body,
    read_bytes,
    split_header,
    trim_body,
)
from affdata.formats.table import (
    KIND_HUMAN,
    FirstError,
    LabelTable,
    check_classes,
    check_frames,
    check_presence,
    check_va,
    check_va_pair,
    encode,
    split_tables,
    split_track,
)
from affdata.vocab import au_number, au_set, expression_order

_IMAGE = r"^(?:.*[/\\])?(?P<video>[^/\\]+)[/\\](?P<num>[0-9]{1,9})\.[A-Za-z]+$"
_IMAGE_NAMES = ("image", "img", "path", "image_path")
_ROLES = {
    "valence": "valence",
    "arousal": "arousal",
    "expression": "expression",
    "expr": "expression",
}


def parse_multitask_header(
    path: str | Path, header: str
) -> tuple[list[str], dict[str, int], tuple[int, ...]]:
    """(column names, role -> column index, AU numbers); roles are image, valence, arousal and
    expression. Raises on line 1."""
    names = header_fields(header)
    if not names or names[0].lower() not in _IMAGE_NAMES:
        reason = f"header {header.strip()!r} does not start with 'image'"
        raise LabelFormatError(path, reason, line=1)
    roles: dict[str, int] = {"image": 0}
    columns = ["image"]
    aus: list[int] = []
    for name in names[1:]:
        key = name.lower()
        role = _ROLES.get(key)
        if role is not None:
            if role in roles:
                raise LabelFormatError(path, f"repeated column {name!r} in header", line=1)
            roles[role] = len(columns)
            columns.append(role)
        elif key in ("aus", "au"):
            for n in au_set("abaw"):
                aus.append(n)
                columns.append(f"AU{n}")
        else:
            try:
                aus.append(au_number(name))
            except VocabularyError:
                reason = f"unexpected column {name!r} in header"
                raise LabelFormatError(path, reason, line=1) from None
            columns.append(f"AU{aus[-1]}")
    if len(set(aus)) != len(aus):
        raise LabelFormatError(path, "repeated AU column in header", line=1)
    if ("valence" in roles) != ("arousal" in roles):
        raise LabelFormatError(path, "header has only one of valence and arousal", line=1)
    if len(columns) == 1:
        raise LabelFormatError(path, "header names no label columns", line=1)
    return columns, roles, tuple(aus)


def read_abaw_multitask(
    path: str | Path, *, expr_order: str | tuple[int, ...] = "abaw"
) -> list[LabelTable]:
    """One table per video (and per ``_left``/``_right`` person), in order of first appearance.

    Expression ids are read in ``expr_order`` (a named order or canonical ids). ``n_lines`` of
    each table is the number of rows it got, not a frame count.
    """
    order = expression_order(expr_order) if isinstance(expr_order, str) else tuple(expr_order)
    data = read_bytes(path)
    header, body = split_header(path, data)
    columns, roles, aus = parse_multitask_header(path, header)
    types = {i: (pa.string() if i == 0 else pa.float64()) for i in range(len(columns))}
    table = read_body(path, trim_body(body), names=columns, types=types)
    n = table.num_rows
    lines = np.arange(2, n + 2, dtype=np.int64)
    errs = FirstError(path, lines)

    image = table.column("c0").combine_chunks()
    parts = pc.extract_regex(image, _IMAGE)
    bad_name = parts.is_null().to_numpy(zero_copy_only=False)
    images = image.to_numpy(zero_copy_only=False)
    errs.check(bad_name, lambda i: f"image {images[i]!r} is not '<video>/<number>.jpg'")
    nums = pc.struct_field(parts, "num").fill_null("1")
    frames = pc.cast(nums, pa.int64()).to_numpy() - 1
    errs.check(frames < 0, lambda i: f"image {images[i]!r}: image numbers start at 1")
    codes, videos = encode(pc.struct_field(parts, "video").fill_null(""))

    def col_at(i: int) -> np.ndarray:
        return table.column(f"c{i}").to_numpy()

    def col(role: str) -> np.ndarray:
        return col_at(roles[role])

    valence = arousal = expr = present = None
    if "valence" in roles:
        valence = check_va(errs, "valence", col("valence"), sentinel=True)
        arousal = check_va(errs, "arousal", col("arousal"), sentinel=True)
        check_va_pair(errs, valence, arousal)
    if "expression" in roles:
        expr = check_classes(errs, "expression", col("expression"), order)
    if aus:
        au_at = [i for i, c in enumerate(columns) if c.startswith("AU")]
        values = np.column_stack([col_at(i) for i in au_at])
        present = check_presence(errs, [columns[i] for i in au_at], values)
    check_frames(errs, np.maximum(frames, 0), codes)
    errs.raise_first()

    whole = LabelTable(
        path=str(path),
        video="",
        track="",
        frames=frames,
        lines=lines,
        valence=valence,
        arousal=arousal,
        au_numbers=aus,
        au_present=present,
        expr=expr,
        expr_order=order if expr is not None else None,
        n_lines=n,
        kind=KIND_HUMAN,
    )
    return split_tables(whole, codes, [split_track(v) for v in videos])
