"""Fast, exact text formatting of ABAW-style annotation files and the CSV side files.

Lines are looked up in small string tables indexed by integer codes (VA in thousandths, AU
rows as bit patterns), so a million frames format in well under a second and the text is
byte-identical for identical labels.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from affdata.vocab import EXPRESSIONS, au_names

VA_MISSING, AU_MISSING, EXPR_MISSING = "-5", "-1", "-1"


@lru_cache(maxsize=None)
def _va_table() -> np.ndarray:
    """Index i -> text of (i - 1000) / 1000; index 2001 -> the -5 marker.

    Written in Python's shortest round-trip form (``0.1``, ``-0.25``, ``1.0``), as the ABAW writer
    does, so a release imported into the store and exported again is byte-identical.
    """
    values = [repr(i / 1000) for i in range(-1000, 1001)] + [VA_MISSING]
    return np.array(values)


@lru_cache(maxsize=None)
def _au_table(k: int) -> np.ndarray:
    """Bit pattern -> ``0,1,...`` (bit j is column j); index 2**k -> all ``-1``."""
    rows = [",".join("1" if code >> j & 1 else "0" for j in range(k)) for code in range(2**k)]
    return np.array(rows + [",".join([AU_MISSING] * k)])


def va_text(valence: np.ndarray, arousal: np.ndarray, mask: np.ndarray) -> str:
    table = _va_table()
    missing = len(table) - 1
    v = np.where(mask, np.rint(np.asarray(valence) * 1000).astype(np.int64) + 1000, missing)
    a = np.where(mask, np.rint(np.asarray(arousal) * 1000).astype(np.int64) + 1000, missing)
    lines = np.strings.add(np.strings.add(table[v], ","), table[a])
    return "valence,arousal\n" + "\n".join(lines.tolist()) + "\n"


def au_text(labels: np.ndarray, mask: np.ndarray, aus: tuple[int, ...]) -> str:
    k = len(aus)
    codes = (np.asarray(labels, dtype=np.int64) << np.arange(k)).sum(axis=1)
    codes = np.where(mask, codes, 2**k)
    return ",".join(au_names(aus)) + "\n" + "\n".join(_au_table(k)[codes].tolist()) + "\n"


def expr_text(expression: np.ndarray, mask: np.ndarray, order: tuple[int, ...]) -> str:
    """``expression`` holds canonical ids; written as positions in ``order``."""
    lookup = np.full(max(max(order), int(np.max(expression, initial=0))) + 1, -1, dtype=np.int64)
    lookup[list(order)] = np.arange(len(order))
    index = np.where(mask, lookup[np.asarray(expression, dtype=np.int64)], -1)
    table = np.array([EXPR_MISSING] + [str(i) for i in range(len(order))])
    header = ",".join(EXPRESSIONS[c] for c in order)
    return header + "\n" + "\n".join(table[index + 1].tolist()) + "\n"


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write(text)


def csv_text(header: str, rows: list[tuple[object, ...]]) -> str:
    return header + "\n" + "".join(",".join(str(x) for x in row) + "\n" for row in rows)


def boxes_text(video: str, track: str, boxes: np.ndarray) -> str:
    """Rows ``video,track,frame,x,y,w,h`` of one track (no header)."""
    prefix = f"{video},{track},"
    return "".join(f"{prefix}{k},{x},{y},{w},{h}\n"
                   for k, (x, y, w, h) in enumerate(boxes.tolist()))
