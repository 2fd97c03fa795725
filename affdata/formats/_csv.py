"""Bulk CSV reading with pyarrow, and exact error lines when it fails.

Every text format goes through :func:`read_body`: the header is split off and checked by the
format module, the body is handed to pyarrow in one call (about 10 million values a second),
and only when pyarrow refuses the body do we look for the line at fault: a binary search over
line prefixes (pyarrow itself decides which prefix parses, so the line found is the one it
choked on), then a plain-Python look at that one line to say why in words.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from affdata.errors import LabelFormatError

_FIRST_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")
_ARROW_PREFIX = re.compile(r"^(?:CSV parse error: |In CSV column #\d+: )*(?:Row #\d+: )?")
#: Null spellings for model output (OpenFace, py-feat, generic tables); never for ABAW files.
MODEL_NULLS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LabelFormatError(path, f"cannot read: {exc.strerror or exc}") from None


def split_header(path: str | Path, data: bytes) -> tuple[str, bytes]:
    """(header text, body bytes). The header is decoded as UTF-8 (a BOM is dropped)."""
    match = _FIRST_LINE.match(data)
    assert match is not None
    raw = match.group(0)
    try:
        header = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise LabelFormatError(path, "header is not UTF-8 text", line=1) from None
    return header, data[len(raw) :]


def header_fields(header: str, delimiter: str = ",") -> list[str]:
    """Column names with surrounding spaces dropped (OpenFace writes ``", "`` separators);
    quoted names may hold the delimiter."""
    fields = next(csv.reader([header], delimiter=delimiter, skipinitialspace=True), [])
    return [name.strip() for name in fields] or [""]


def trim_body(body: bytes) -> bytes:
    """Drop blank lines at the end of the file (an editor's extra newline is not an error).

    The result ends with exactly one newline so that line slicing stays simple.
    """
    end = len(body)
    while end and body[end - 1 : end] in (b"\n", b"\r", b" ", b"\t"):
        end -= 1
    return body[:end] + b"\n" if end else b""


def read_body(
    path: str | Path,
    body: bytes,
    *,
    names: Sequence[str],
    types: Mapping[int, pa.DataType],
    first_line: int = 2,
    delimiter: str = ",",
    quoting: bool = False,
    nulls: Sequence[str] = (),
) -> pa.Table:
    """Parse ``body`` (no header) into a table with columns ``c<i>`` for each index in ``types``.

    ``names`` are the header's column names (for messages and the column count); only the
    columns in ``types`` are converted. Raises one :class:`LabelFormatError` naming the line.
    """
    n = len(names)
    cols = [f"c{i}" for i in range(n)]
    include = [cols[i] for i in sorted(types)]
    if not body:
        return pa.table({c: pa.array([], type=types[int(c[1:])]) for c in include})
    read_opts = pacsv.ReadOptions(column_names=cols, use_threads=len(body) > (4 << 20))
    parse_opts = pacsv.ParseOptions(
        delimiter=delimiter, quote_char='"' if quoting else False, ignore_empty_lines=False
    )
    convert_opts = pacsv.ConvertOptions(
        column_types={cols[i]: t for i, t in types.items()},
        include_columns=include,
        null_values=list(nulls),
        strings_can_be_null=bool(nulls),
        quoted_strings_can_be_null=bool(nulls),
    )

    def parse(chunk: bytes) -> pa.Table:
        return pacsv.read_csv(
            pa.py_buffer(chunk),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=convert_opts,
        )

    try:
        return parse(body)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        message = str(exc)
    lines = body.splitlines(keepends=True)
    lo, hi = 0, len(lines)  # invariant: lines[:lo] parse, lines[:hi] do not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            parse(b"".join(lines[:mid]))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            hi, message = mid, str(exc)
        else:
            lo = mid
    bad = lines[hi - 1] if lines else b""
    reason = explain_line(bad, names, types, delimiter, quoting, nulls)
    reason = reason or _ARROW_PREFIX.sub("", message)
    raise LabelFormatError(path, reason, line=first_line + hi - 1)


def explain_line(
    raw: bytes,
    names: Sequence[str],
    types: Mapping[int, pa.DataType],
    delimiter: str,
    quoting: bool,
    nulls: Sequence[str],
) -> str | None:
    """Why one line does not parse, in words; None if Python sees nothing wrong with it."""
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return "line is not UTF-8 text"
    if not text.strip():
        return "empty line"
    if quoting:
        fields = next(csv.reader([text], delimiter=delimiter), [])
    else:
        fields = text.split(delimiter)
    if len(fields) != len(names):
        return f"expected {len(names)} values, got {len(fields)}"
    for i, dtype in sorted(types.items()):
        value = fields[i].strip()
        if value in nulls:
            continue
        if pa.types.is_floating(dtype) or pa.types.is_integer(dtype):
            if value == "":
                return f"{names[i]} is empty"
            try:
                number = float(value)
            except ValueError:
                return f"{names[i]} {value!r} is not a number"
            if "_" in value:
                return f"{names[i]} {value!r} is not a number"
            if pa.types.is_integer(dtype) and not number.is_integer():
                return f"{names[i]} {value!r} is not an integer"
    return None
