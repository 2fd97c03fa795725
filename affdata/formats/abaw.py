"""ABAW / Aff-Wild2 per-task annotation files: read, write back, and find them in a release.

One ``<video>[_left|_right].txt`` per video (or person) and task: a header line, then line
k+1 for frame k. -5 (valence, arousal) and -1 (AU, expression) mark unannotated frames. The
reader accepts the header variants seen in public code (``AU01`` spellings, spaces after the
commas, a trailing space, CRLF, a UTF-8 BOM, blank lines after the last frame) and rejects
anything else with the line at fault; the writer produces the canonical spelling so that a
canonical file round-trips byte for byte.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from affdata.errors import LabelFormatError, VocabularyError
from affdata.formats._csv import (
    header_fields,
    read_body,
    read_bytes,
    split_header,
    trim_body,
)
from affdata.formats.table import (
    CLASS_MISSING,
    KIND_HUMAN,
    FirstError,
    LabelTable,
    check_classes,
    check_presence,
    check_va,
    check_va_pair,
    file_stem,
    split_track,
)
from affdata.vocab import EXPRESSIONS, au_number, expression_order, order_from_header

TASKS = ("va", "au", "expr")
VA_HEADER = ("valence", "arousal")
_F64 = pa.float64()


def parse_task_header(
    path: str | Path, header: str, task: str
) -> tuple[list[str], tuple[int, ...]]:
    """Column names and, per task, the VA column order (0 valence, 1 arousal), the AU numbers
    or the expression order as canonical ids. Raises on line 1."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    names = header_fields(header)
    if not header.strip():
        raise LabelFormatError(path, "missing header line", line=1)
    if any(not n for n in names):
        raise LabelFormatError(path, f"empty column name in header {header.strip()!r}", line=1)
    if all(_is_number(n) for n in names):
        reason = f"missing header: first line {header.strip()!r} is data"
        raise LabelFormatError(path, reason, line=1)
    try:
        if task == "va":
            keys = [n.lower() for n in names]
            if sorted(keys) != sorted(VA_HEADER):
                raise LabelFormatError(
                    path, f"header {header.strip()!r} is not 'valence,arousal'", line=1
                )
            ids = tuple(VA_HEADER.index(k) for k in keys)
        elif task == "au":
            ids = tuple(au_number(n) for n in names)
        else:
            ids = order_from_header(names)
    except VocabularyError as exc:
        raise LabelFormatError(path, f"bad {task.upper()} header: {exc}", line=1) from None
    if len(set(ids)) != len(ids):
        raise LabelFormatError(path, f"repeated column in header {header.strip()!r}", line=1)
    return names, ids


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_abaw_task_file(path: str | Path, task: str) -> LabelTable:
    """Parse one per-task ABAW file (``task`` in ``va``, ``au``, ``expr``) into a table.

    Every line is a frame (``frames = arange(n)``), annotated or not, so that ``n_lines`` can
    be compared with the video's frame count.
    """
    data = read_bytes(path)
    header, body = split_header(path, data)
    names, ids = parse_task_header(path, header, task)
    body = trim_body(body)
    columns = ["expression"] if task == "expr" else names  # one class id per expression line
    types = {i: _F64 for i in range(len(columns))}
    table = read_body(path, body, names=columns, types=types)
    values = np.column_stack([table.column(f"c{i}").to_numpy() for i in range(len(columns))])
    n = values.shape[0]
    lines = np.arange(2, n + 2, dtype=np.int64)
    errs = FirstError(path, lines)
    video, track = split_track(file_stem(path))
    out = LabelTable(
        path=str(path),
        video=video,
        track=track,
        frames=np.arange(n, dtype=np.int64),
        lines=lines,
        n_lines=n,
        kind=KIND_HUMAN,
    )
    if task == "va":
        va = {VA_HEADER[k]: values[:, i] for i, k in enumerate(ids)}
        out.valence = check_va(errs, "valence", va["valence"], sentinel=True)
        out.arousal = check_va(errs, "arousal", va["arousal"], sentinel=True)
        check_va_pair(errs, out.valence, out.arousal)
    elif task == "au":
        out.au_numbers = ids
        out.au_present = check_presence(errs, names, values)
    else:
        out.expr_order = ids
        out.expr = check_classes(errs, "expression", values[:, 0], ids)
    errs.raise_first()
    return out


# --- writing -------------------------------------------------------------------------------


def write_abaw_task_file(
    path: str | Path,
    table: LabelTable,
    task: str,
    *,
    header: str | Sequence[str] | None = None,
    n_frames: int,
) -> None:
    """Write ``table``'s ``task`` labels in the ABAW layout, one line per frame ``0..n_frames-1``.

    ``header`` (a line or a list of names) sets the column order and spelling; by default the
    canonical one (``valence,arousal``; ``AU1,...`` in the table's AU order; expression names in
    the table's class order). Floats are written ``repr``-shortest, so values parsed from a
    file come back with the same digits; frames without a label get -5 / -1.
    """
    if header is None:
        header = _default_header(table, task)
    header_line = header if isinstance(header, str) else ",".join(header)
    names, ids = parse_task_header(path, header_line, task)
    frames = _check_frames(table, n_frames)
    if task == "va":
        if table.valence is None or table.arousal is None:
            raise LabelFormatError(table.path, "has no valence/arousal labels to write")
        source = {"valence": table.valence, "arousal": table.arousal}
        cols = [_va_tokens(source[VA_HEADER[k]], frames, n_frames) for k in ids]
    elif task == "au":
        if table.au_present is None:
            raise LabelFormatError(table.path, "has no AU presence labels to write")
        where = {n: k for k, n in enumerate(table.au_numbers)}
        missing = [n for n in ids if n not in where]
        if missing:
            raise VocabularyError(
                f"{table.path}: header asks for AU{missing[0]}, which the table lacks"
            )
        grid = np.full((n_frames, len(ids)), CLASS_MISSING, dtype=np.int8)
        grid[frames] = table.au_present[:, [where[n] for n in ids]]
        cols = [_au_tokens(grid)]
    else:
        if table.expr is None:
            raise LabelFormatError(table.path, "has no expression labels to write")
        cols = [_expr_tokens(table, frames, n_frames, ids)]
    body = "\n".join(map(",".join, zip(*cols))) if len(cols) > 1 else "\n".join(cols[0])
    text = header_line + "\n" + (body + "\n" if n_frames else "")
    Path(path).write_bytes(text.encode("utf-8"))


def _default_header(table: LabelTable, task: str) -> str:
    if task == "va":
        return ",".join(VA_HEADER)
    if task == "au":
        return ",".join(f"AU{n}" for n in table.au_numbers)
    order = table.expr_order or expression_order("abaw")
    return ",".join(EXPRESSIONS[c] for c in order)


def _check_frames(table: LabelTable, n_frames: int) -> np.ndarray:
    frames = np.asarray(table.frames, dtype=np.int64)
    bad = np.flatnonzero((frames < 0) | (frames >= n_frames))
    if bad.size:
        i = int(bad[0])
        raise LabelFormatError(
            table.path,
            f"frame {int(frames[i])} is outside the video's {n_frames} frames",
            line=int(table.lines[i]),
        )
    return frames


def _va_tokens(values: np.ndarray, frames: np.ndarray, n_frames: int) -> list[str]:
    full = np.full(n_frames, np.nan)
    full[frames] = values
    uniq, inverse = np.unique(full, return_inverse=True)  # repr once per distinct value
    tokens = np.array(["-5" if v != v else repr(v) for v in uniq.tolist()], dtype=object)[inverse.ravel()]
    zero = full == 0  # np.unique folds 0.0 and -0.0 into one: keep each one's sign
    tokens[zero] = np.where(np.signbit(full[zero]), "-0.0", "0.0")
    return tokens.tolist()


def _au_tokens(grid: np.ndarray) -> list[str]:
    if grid.shape[0] == 0:
        return []
    uniq, inverse = np.unique(grid, axis=0, return_inverse=True)  # few distinct AU patterns
    tokens = np.array([",".join(map(str, row)) for row in uniq.tolist()], dtype=object)
    return tokens[inverse.reshape(-1)].tolist()


def _expr_tokens(
    table: LabelTable, frames: np.ndarray, n_frames: int, order: tuple[int, ...]
) -> list[str]:
    to_file = np.full(len(EXPRESSIONS) + 1, -2, dtype=np.int64)  # canonical id -> file id
    for file_id, canonical in enumerate(order):
        to_file[canonical] = file_id
    to_file[-1] = CLASS_MISSING  # index -1: unannotated stays -1
    ids = to_file[np.asarray(table.expr, dtype=np.int64)]
    bad = np.flatnonzero(ids == -2)
    if bad.size:
        i = int(bad[0])
        name = EXPRESSIONS[int(table.expr[i])]
        raise VocabularyError(
            f"{table.path}:{int(table.lines[i])}: expression {name} has no class in the "
            f"output order {','.join(EXPRESSIONS[c] for c in order)}"
        )
    full = np.full(n_frames, CLASS_MISSING, dtype=np.int64)
    full[frames] = ids
    return [str(v) for v in full.tolist()]


# --- finding files in a release -----------------------------------------------------------


@dataclass(frozen=True)
class AbawFile:
    path: Path
    task: str  # "va", "au", "expr"
    part: str  # "train", "val", "test"
    video: str
    track: str


_TASK_DIRS = (
    ("va", re.compile(r"^va(?:[_\- ]|$)", re.IGNORECASE)),
    ("expr", re.compile(r"^expr(?:ession)?(?:[_\- ]|$)", re.IGNORECASE)),
    ("au", re.compile(r"^au(?:[_\- ]|$)", re.IGNORECASE)),
)
_PART_DIRS = (
    ("train", re.compile(r"^train(?:ing)?(?:[_\- ]?set)?$", re.IGNORECASE)),
    ("val", re.compile(r"^val(?:id|idation)?(?:[_\- ]?set)?$", re.IGNORECASE)),
    ("test", re.compile(r"^test(?:ing)?(?:[_\- ]?set)?$", re.IGNORECASE)),
)


def _match(name: str, table: tuple[tuple[str, re.Pattern[str]], ...]) -> str | None:
    return next((key for key, rx in table if rx.match(name)), None)


def scan_abaw(root: str | Path, skipped: list[tuple[Path, str]] | None = None) -> list[AbawFile]:
    """Every ``<task dir>/<part dir>/<video>.txt`` under ``root``, sorted by task, part, name.

    Task folders are ``VA_Set``, ``EXPR_Set``, ``AU_Set`` and the ABAW2 ``*_Challenge`` names
    (any case) that hold at least one part folder; part folders are ``Training_Set`` /
    ``Train_Set``, ``Validation_Set``, ``Test_Set`` and plain ``train`` / ``val`` / ``test``.
    The root may be the release folder or any folder above it, whatever its own name (a release
    called ``va_2020`` holds task folders; it is not one). What is passed over inside the task
    folders (a folder named like a label file, a file that is not ``.txt``, a folder that is not
    a part) is appended to ``skipped`` as ``(path, reason)``; hidden entries are not.
    """
    root = Path(root)
    if not root.is_dir():
        raise LabelFormatError(root, "not a folder")
    skipped = skipped if skipped is not None else []
    found: list[AbawFile] = []
    for task, task_dir in _task_dirs(root):
        for part_dir in _visible(task_dir):
            part = _match(part_dir.name, _PART_DIRS) if part_dir.is_dir() else None
            if part is None:
                if part_dir.is_dir():
                    skipped.append((part_dir, "not a part folder (Training_Set, Validation_Set, Test_Set)"))
                continue
            for f in _visible(part_dir):
                if f.suffix.lower() != ".txt":
                    skipped.append((f, "not a .txt annotation file"))
                elif not f.is_file():
                    skipped.append((f, "a folder named like an annotation file, not a file"))
                else:
                    video, track = split_track(f.stem)
                    found.append(AbawFile(f, task, part, video, track))
    order = {t: i for i, t in enumerate(TASKS)}
    parts = {"train": 0, "val": 1, "test": 2}
    found.sort(key=lambda a: (order[a.task], parts[a.part], a.video, a.track, str(a.path)))
    return found


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _is_task_dir(folder: Path) -> str | None:
    """The task of a task folder: a task name holding at least one part folder, else None."""
    task = _match(folder.name, _TASK_DIRS)
    if task is None:
        return None
    try:
        with os.scandir(folder) as entries:
            if any(e.is_dir() and _match(e.name, _PART_DIRS) for e in entries):
                return task
    except OSError:
        pass
    return None


def _task_dirs(root: Path, depth: int = 3) -> list[tuple[str, Path]]:
    """Task folders at most ``depth`` levels below ``root``, not looking inside them (a release
    folder may also hold millions of cropped frames, which must not be walked)."""
    own = _is_task_dir(root)
    if own is not None:
        return [(own, root)]
    found: list[tuple[str, Path]] = []
    level = [root]
    for _ in range(depth):
        below: list[Path] = []
        for folder in level:
            try:
                entries = sorted(
                    e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")
                )
            except OSError:
                continue
            for entry in map(Path, entries):
                task = _is_task_dir(entry)
                if task is not None:
                    found.append((task, entry))
                else:
                    below.append(entry)
        level = below
    return found
