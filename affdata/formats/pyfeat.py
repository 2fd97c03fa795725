"""py-feat ``Fex`` CSV output (``Detector.detect_video`` / ``detect_image``), as model labels.

Decisions:

* AU columns (``AU01``...) are presence probabilities in [0, 1]: ``present = p >= 0.5``
  (``au_threshold``), -1 where empty. py-feat writes no AU intensities, so ``au_intensity``
  stays None; a value outside [0, 1] is an error rather than a guess at intensities.
* Emotion columns are found by name, whichever py-feat version wrote them (``anger`` ...
  ``neutral``, or ``Neutral, Happy, Sad, ...``): the label is the canonical id of the most
  probable column (first one on a tie), -1 where a probability is empty; ``expr_order`` is
  the file's column order. ``valence`` / ``arousal`` are read where present.
* Frames: the ``frame`` column as written (py-feat counts from 0; with ``skip_frames`` the
  numbers keep their gaps). Without one, rows are frames 0, 1, 2... of their video.
* Video: ``video`` if given, else the stem of each row's ``input`` (one Fex file may hold
  several inputs; each becomes its own table), else the file stem.
* Tracks: with an ``Identity`` column (py-feat's identity clustering, ``Person_N``) the track
  is ``face<N>`` and rows without an identity (no face found) are dropped. Otherwise ``main``
  when no frame has two rows, and when some do, ``face<k>`` for the k-th row of its frame in
  file order. That is detection order, which need not follow one person across frames.
"""

from __future__ import annotations

import re
from pathlib import Path, PureWindowsPath

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
    check_va,
    check_va_pair,
    encode,
    file_stem,
    fmt,
    pair_codes,
    rank_within,
    split_tables,
)
from affdata.vocab import EXPRESSION_ALIASES, au_number

_AU = re.compile(r"^AU\d+$", re.IGNORECASE)
_PERSON = re.compile(r"(\d+)$")
_ROLES = ("frame", "input", "identity", "valence", "arousal")


#: py-feat's face rectangle columns (x, y, width, height), lower case
_RECT = ("facerectx", "facerecty", "facerectwidth", "facerectheight")


def read_pyfeat(
    path: str | Path, video: str | None = None, *, au_threshold: float = 0.5
) -> list[LabelTable]:
    """One table per (video, track), in order of first appearance; kind ``model``."""
    header, body = _csv.split_header(path, _csv.read_bytes(path))
    names = _csv.header_fields(header)
    lower = [n.lower() for n in names]
    au_idx = [i for i, n in enumerate(names) if _AU.match(n)]
    # "_neutral" is a blendshape in newer py-feat, not the emotion
    emo_idx = [i for i, k in enumerate(lower) if k in EXPRESSION_ALIASES and not k.startswith("_")]
    role = {k: (lower.index(k) if k in lower else None) for k in _ROLES}
    if not au_idx and not emo_idx and role["valence"] is None:
        reason = "not py-feat output: no AU, emotion or valence columns"
        raise LabelFormatError(path, reason, line=1)
    try:
        au_nums = tuple(au_number(names[i]) for i in au_idx)
    except VocabularyError as exc:
        raise LabelFormatError(path, f"bad AU column: {exc}", line=1) from None
    emo_ids = tuple(EXPRESSION_ALIASES[lower[i]] for i in emo_idx)
    if len(set(emo_ids)) != len(emo_ids) or len(set(au_nums)) != len(au_nums):
        raise LabelFormatError(path, "repeated AU or emotion column in header", line=1)

    numeric = [role[k] for k in ("frame", "valence", "arousal") if role[k] is not None]
    rect = [lower.index(k) for k in _RECT if k in lower]
    rect = rect if len(rect) == 4 else []
    wanted = {i: pa.float64() for i in numeric + au_idx + emo_idx + rect}
    wanted.update({role[k]: pa.string() for k in ("input", "identity") if role[k] is not None})
    table = _csv.read_body(
        path, _csv.trim_body(body), names=names, types=wanted, quoting=True, nulls=_csv.MODEL_NULLS
    )
    n = table.num_rows
    lines = np.arange(2, n + 2, dtype=np.int64)
    errs = FirstError(path, lines)

    def num(i: int) -> np.ndarray:
        return table.column(f"c{i}").to_numpy().astype(np.float64)

    out = LabelTable(
        path=str(path), video="", track="", frames=lines, lines=lines, n_lines=n, kind=KIND_MODEL
    )
    if rect:  # the face rectangle py-feat's detector found: kept as a box of this source
        out.boxes = np.column_stack([num(i) for i in rect])
        out.boxes[~(out.boxes[:, 2] > 0) | ~(out.boxes[:, 3] > 0)] = np.nan
    if role["valence"] is not None and role["arousal"] is not None:
        out.valence = check_va(errs, "valence", num(role["valence"]), sentinel=False)
        out.arousal = check_va(errs, "arousal", num(role["arousal"]), sentinel=False)
        check_va_pair(errs, out.valence, out.arousal, missing="empty")
    if au_idx:
        p = np.column_stack([num(i) for i in au_idx])
        _check_probability(errs, [names[i] for i in au_idx], p)
        out.au_numbers = au_nums
        out.au_present = np.where(np.isnan(p), CLASS_MISSING, p >= au_threshold).astype(np.int8)
    if emo_idx:
        p = np.column_stack([num(i) for i in emo_idx])
        _check_probability(errs, [names[i] for i in emo_idx], p)
        lut = np.asarray(emo_ids, dtype=np.int16)
        best = lut[np.argmax(np.nan_to_num(p, nan=-1.0), axis=1)]
        out.expr = np.where(np.isnan(p).any(axis=1), CLASS_MISSING, best).astype(np.int16)
        out.expr_order = emo_ids

    if video is not None or role["input"] is None:
        v_codes, videos = np.zeros(n, dtype=np.int64), [video or file_stem(path)]
    else:
        inputs = table.column(f"c{role['input']}").combine_chunks().fill_null("")
        v_codes, names_in = encode(inputs)
        v_codes, videos = _merge_names(v_codes, [_stem(s) or file_stem(path) for s in names_in])
    frames = num(role["frame"]) if role["frame"] is not None else None
    keep = None
    ident = None if role["identity"] is None else table.column(f"c{role['identity']}")
    if ident is not None and ident.null_count < n:
        ident = ident.combine_chunks()
        keep = ~ident.is_null().to_numpy(zero_copy_only=False)
        t_codes, idents = encode(ident.fill_null(""))
        t_codes, tracks = _merge_names(t_codes, [_face_track(s) for s in idents])
    elif frames is not None:
        t_codes, tracks = _rank_tracks(v_codes, len(videos), frames)
    else:
        t_codes, tracks = np.zeros(n, dtype=np.int64), [TRACK_MAIN]
    codes, pairs = pair_codes((v_codes, videos), (t_codes, tracks))
    if frames is not None:
        check_frames(errs, frames, codes if keep is None else np.where(keep, codes, -1))
        out.frames = np.nan_to_num(frames).astype(np.int64)
    else:
        out.frames = rank_within(codes[:, None])
    errs.raise_first()
    return split_tables(out, codes, pairs, keep)


def _rank_tracks(
    v_codes: np.ndarray, n_videos: int, frames: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Track codes when faces carry no identity: ``main`` for a video with one row per frame,
    else ``face<k>`` for the k-th row of each frame."""
    frame_keys = np.nan_to_num(frames, nan=-1).astype(np.int64)
    rank = rank_within(np.column_stack([v_codes, frame_keys]))
    most = np.zeros(n_videos, dtype=np.int64)
    np.maximum.at(most, v_codes, rank)
    codes = np.where(most[v_codes] == 0, 0, rank + 1)
    return codes, [TRACK_MAIN] + [f"face{k}" for k in range(int(most.max(initial=0)) + 1)]


def _check_probability(errs: FirstError, names: list[str], p: np.ndarray) -> None:
    bad = ~np.isnan(p) & ~((p >= 0.0) & (p <= 1.0))
    if bad.any():

        def reason(i: int) -> str:
            k = int(np.flatnonzero(bad[i])[0])
            return f"{names[k]} probability {fmt(p[i, k])} outside [0, 1]"

        errs.check(bad.any(axis=1), reason)


def _stem(text: str) -> str:
    text = text.strip()
    return PureWindowsPath(text).stem if "\\" in text else Path(text).stem


def _merge_names(codes: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Inputs with the same stem (``a.mp4`` and ``/x/a.mp4``) are one video."""
    distinct = list(dict.fromkeys(names))
    remap = np.array([distinct.index(v) for v in names], dtype=np.int64)
    return (remap[codes] if names else codes), distinct


def _face_track(identity: str) -> str:
    m = _PERSON.search(identity.strip())
    return f"face{int(m.group(1))}" if m else f"face-{identity.strip()}"
