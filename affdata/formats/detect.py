"""Guess an annotation file's format from its header line, so a CLI can pick the parser."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affdata.errors import LabelFormatError, VocabularyError
from affdata.formats._csv import header_fields, split_header
from affdata.formats.abaw import read_abaw_task_file
from affdata.formats.abaw_multitask import read_abaw_multitask
from affdata.formats.generic import is_parquet, read_generic
from affdata.formats.openface import read_openface
from affdata.formats.pyfeat import read_pyfeat
from affdata.formats.table import LabelTable
from affdata.vocab import EXPRESSION_ALIASES, au_number

FORMATS = ("abaw-va", "abaw-au", "abaw-expr", "abaw-multitask", "openface", "pyfeat", "generic")
_OPENFACE_AU = re.compile(r"^AU\d+_[rc]$", re.IGNORECASE)
_PYFEAT_MARKS = {"facescore", "facerectx", "facerectwidth"}


def detect_format(path: str | Path) -> str:
    """One of :data:`FORMATS`. ``generic`` is the fallback for any other table with a header."""
    if is_parquet(path):
        return "generic"
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)  # py-feat headers run to 30 kB
    except OSError as exc:
        raise LabelFormatError(path, f"cannot read: {exc.strerror or exc}") from None
    header, _ = split_header(path, head)
    names = header_fields(header)
    lower = [n.lower() for n in names]
    if not header.strip():
        raise LabelFormatError(path, "empty first line: no header", line=1)
    if sorted(lower) == ["arousal", "valence"]:
        return "abaw-va"
    if lower[0] in ("image", "img", "path", "image_path") and len(names) > 1:
        return "abaw-multitask"
    if len(names) >= 2 and all(k in EXPRESSION_ALIASES for k in lower):
        return "abaw-expr"
    if all(_is_au(n) for n in names):
        return "abaw-au"
    if "frame" in lower and any(_OPENFACE_AU.match(n) for n in names):
        return "openface"
    if _PYFEAT_MARKS & set(lower):
        return "pyfeat"
    return "generic"


def _is_au(name: str) -> bool:
    if not re.match(r"^AU\s*\d+$", name, re.IGNORECASE):
        return False
    try:
        au_number(name)
    except VocabularyError:
        return False
    return True


def read_labels(path: str | Path, fmt: str | None = None, **options: Any) -> list[LabelTable]:
    """Parse ``path`` with the parser for ``fmt`` (detected when None); always a list of tables.

    ``options`` go to the parser (``video=``, ``frame_base=``...; for ``generic`` its column
    options).
    """
    fmt = fmt or detect_format(path)
    if fmt in ("abaw-va", "abaw-au", "abaw-expr"):
        return [read_abaw_task_file(path, fmt[len("abaw-") :], **options)]
    readers: dict[str, Callable[..., list[LabelTable]]] = {
        "abaw-multitask": read_abaw_multitask,
        "openface": read_openface,
        "pyfeat": read_pyfeat,
        "generic": read_generic,
    }
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return readers[fmt](path, **options)
