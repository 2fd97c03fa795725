"""ABAW prediction files: a value on every frame, and the challenge's file rules.

A challenge submission needs one line per video frame with a prediction on each: the
evaluation scripts refuse -5 (VA) and -1 (AU, expression), which label files use for
"unannotated". A model predicts only on frames that were exported (a face was found), so the
rest are filled within the track, from that track's predictions only:

- **VA: linear in time** between the two nearest predicted frames (affect changes smoothly;
  annotations are continuous), the first / last prediction held before / after them.
- **AU, expression: nearest predicted frame in time**, the earlier one on a tie (a class or
  an on/off state cannot be averaged).

A track with no prediction at all cannot be filled and is an error: the file would be a guess.

:func:`check_submission_file` checks a written file against the rules: the task's header (VA
``valence,arousal``; AU names; the expression class names), exactly one line per frame of
the video, and every value in range (VA in [-1, 1], AU 0 or 1, a class index), none missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affdata.errors import LabelFormatError
from affdata.formats.abaw import read_abaw_task_file
from affdata.formats.table import CLASS_MISSING, LabelTable

FILL_RULES = ("none", "nearest")  # "nearest": VA linear in time, AU / expression nearest frame


def _nearest_index(known: np.ndarray, n_frames: int) -> np.ndarray:
    """For each frame 0..n-1, the position in sorted ``known`` of the nearest known frame
    (the earlier on a tie)."""
    grid = np.arange(n_frames)
    right = np.searchsorted(known, grid).clip(0, known.size - 1)
    left = (right - 1).clip(0)
    take_left = np.abs(grid - known[left]) <= np.abs(known[right] - grid)
    return np.where(take_left, left, right)


def _fill_linear(frames: np.ndarray, values: np.ndarray, n_frames: int) -> np.ndarray:
    ok = ~np.isnan(values)
    if not ok.any():
        return np.full(n_frames, np.nan)
    return np.interp(np.arange(n_frames), frames[ok], values[ok])  # holds the ends


def _fill_nearest(frames: np.ndarray, values: np.ndarray, n_frames: int) -> np.ndarray:
    ok = values != CLASS_MISSING
    if not ok.any():
        return np.full(n_frames, CLASS_MISSING, dtype=values.dtype)
    known = frames[ok]
    return values[ok][_nearest_index(known, n_frames)]


def fill_track(table: LabelTable, task: str, n_frames: int) -> LabelTable:
    """``table`` (one track's predictions, any subset of frames) with a value on every frame
    ``0..n_frames-1`` by the rule above. Raises :class:`LabelFormatError` when the track has
    no value at all for the task."""
    order = np.argsort(table.frames, kind="stable")
    frames = np.asarray(table.frames, dtype=np.int64)[order]
    grid = np.arange(n_frames, dtype=np.int64)
    out = LabelTable(path=table.path, video=table.video, track=table.track, frames=grid, lines=grid + 2,
                     n_lines=n_frames, kind=table.kind, au_numbers=table.au_numbers, expr_order=table.expr_order)
    if task == "va":
        out.valence = _fill_linear(frames, np.asarray(table.valence, dtype=np.float64)[order], n_frames)
        out.arousal = _fill_linear(frames, np.asarray(table.arousal, dtype=np.float64)[order], n_frames)
        empty = np.isnan(out.valence).any() or np.isnan(out.arousal).any()
    elif task == "au":
        present = np.asarray(table.au_present)[order]
        cols = [_fill_nearest(frames, present[:, k], n_frames) for k in range(present.shape[1])]
        out.au_present = np.stack(cols, axis=1).astype(np.int8) if cols else np.zeros((n_frames, 0), np.int8)
        empty = bool((out.au_present == CLASS_MISSING).any())
    else:
        out.expr = _fill_nearest(frames, np.asarray(table.expr)[order], n_frames).astype(np.int16)
        empty = bool((out.expr == CLASS_MISSING).any())
    if empty and n_frames:
        raise LabelFormatError(table.path, f"track {table.video}/{table.track} has no {task.upper()} "
                                           "prediction on any frame: nothing to fill from")
    return out


def check_submission_file(path: str | Path, task: str, *, n_frames: int | None = None,
                          header: str | None = None) -> int:
    """Check one written prediction file against the challenge's rules; return its frame count.

    Raises :class:`LabelFormatError` naming the file (and line) for: a header other than
    ``header`` (when given); a line count other than ``n_frames`` (when given); any frame
    without a value (-5 / -1) or a value out of range (the reader refuses those)."""
    path = Path(path)
    if header is not None:
        with path.open("rb") as fh:
            first = fh.readline().decode("utf-8").rstrip("\r\n")
        if first != header:
            raise LabelFormatError(path, f"header {first!r} is not the expected {header!r}", line=1)
    table = read_abaw_task_file(path, task)
    if n_frames is not None and table.n_lines != n_frames:
        raise LabelFormatError(path, f"{table.n_lines} frame lines; the video has {n_frames} frames")
    if task == "va":
        missing = np.flatnonzero(np.isnan(table.valence) | np.isnan(table.arousal))
    elif task == "au":
        missing = np.flatnonzero((table.au_present == CLASS_MISSING).any(axis=1))
    else:
        missing = np.flatnonzero(table.expr == CLASS_MISSING)
    if missing.size:
        raise LabelFormatError(path, f"frame {int(missing[0])} has no prediction ({missing.size} frames "
                                     "without one); a submission needs a value on every frame",
                               line=int(missing[0]) + 2)
    return table.n_lines


def check_submission_folder(folder: str | Path, *, frame_counts: dict[str, int] | None = None) -> dict[str, int]:
    """Check every ``{VA,AU,EXPR}_Set/**/*.txt`` under ``folder``; return the files per task.
    ``frame_counts`` (video name -> frames) adds the one-line-per-frame check."""
    from affdata.formats.table import split_track

    counts = {"va": 0, "au": 0, "expr": 0}
    for task, sub in (("va", "VA_Set"), ("au", "AU_Set"), ("expr", "EXPR_Set")):
        for path in sorted((Path(folder) / sub).rglob("*.txt")):
            video, _ = split_track(path.stem)
            check_submission_file(path, task, n_frames=(frame_counts or {}).get(video))
            counts[task] += 1
    return counts
