"""Decoder choice: decord or PyAV for a probed video stream, with the reason (kept in ``notes``).

decord is the primary decoder (fast, in the design). By default it is chosen by rule:
one video stream, a codec decord reads, and an exact demux count; everything else gets PyAV.
The rule is the set of conditions under which the full check agreed on every real clip; files
with several video streams always get the full check. The full check (``verify``, and
``affdata ingest videos --verify``) chooses decord when it provably yields the same frames: it
opens the file, reports the verified frame count, its first frame
equals PyAV's first frame, its frame timestamps equal the probed ones, and it cannot pick another
stream (decord always takes ffmpeg's best stream and cannot be told otherwise, so for a file
with two video streams its choice is identified by picture size; two streams of the same size
mean PyAV). Otherwise the decoder is PyAV, and the reason is in ``notes``: a GIF (decord:
"broken metadata"), pyfeat__no_face.mp4 (decord reports 98 frames and pads its end with 3 copies
of the last frame; PyAV yields the 95 the edit list keeps).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from affdata.video.probe import FirstFrame, StreamFacts

#: Largest mean abs difference (0-255 scale) for decord's first frame to count as PyAV's.
FIRST_FRAME_TOLERANCE = 1.0
#: Codecs decord reads in order with the same frames as PyAV (checked on every real clip).
DECORD_CODECS = frozenset({"h264", "hevc", "mpeg4", "mjpeg", "vp8", "vp9", "av1"})


def decoder_by_rule(info: StreamFacts, not_exact: list[str]) -> tuple[str, str]:
    """The decoder without opening decord: decord only where it is known to agree with PyAV.

    The conditions are the ones under which the full check (:func:`choose_decoder`) agreed on
    every real clip: one video stream (decord cannot be told which to use), a codec decord reads,
    and a packet count that is exactly the frame count (where it is not, e.g. an edit list that
    drops frames, decord has been seen to pad the end with copies of the last frame).
    """
    if info.codec == "gif":
        return "pyav", "decoder pyav: decord cannot read GIF (it reports broken metadata)"
    if info.codec not in DECORD_CODECS:
        return "pyav", f"decoder pyav: decord is not known to read {info.codec} correctly"
    if not_exact:
        return "pyav", ("decoder pyav: the packets do not map one to one onto decoded frames (edit list, "
                        "open GOP, B-frames in mpeg4), where decord has been seen to disagree")
    return "decord", (
        f"decoder decord: one video stream, exact demux count, codec {info.codec} "
        "(by rule; `affdata ingest videos --verify` cross-checks it against PyAV)"
    )


def choose_decoder(
    path: Path,
    info: StreamFacts,
    others: list[tuple[int, int, int]],
    count: int,
    timestamps: np.ndarray,
    first: FirstFrame | None,
) -> tuple[str, str]:
    """decord when it provably yields the probed frames, else PyAV; with the reason.

    Without a decoded first frame (probing without ``verify``) the pixel comparison is skipped
    and decord's frame size stands in for it.
    """
    if info.codec == "gif":
        return "pyav", "decoder pyav: decord cannot read GIF (it reports broken metadata)"
    same_size = [index for index, w, h in others if (w, h) == (info.width, info.height)]
    if same_size:
        return "pyav", (
            f"decoder pyav: streams {same_size} have the same size as #{info.index}, so decord's "
            "stream choice cannot be verified"
        )
    try:
        import decord  # lazily, never at module import (decord before torch can hang DataLoader workers)
    except ImportError:
        return "pyav", "decoder pyav: decord is not installed"
    try:
        # One short-lived reader, deleted below (decord leaks when readers pile up).
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    except Exception as exc:  # decord raises DECORDError, a bare Exception subclass
        return "pyav", f"decoder pyav: decord cannot open the file ({_short(exc)})"
    try:
        n = len(reader)
        if n != count:
            return "pyav", f"decoder pyav: decord reports {n} frames, the verified count is {count}"
        frame = reader.next()  # in order from the start: no seek
        frame = frame.asnumpy() if hasattr(frame, "asnumpy") else np.asarray(frame)
        want = first.rgb.shape if first is not None else (info.height, info.width, 3)
        if frame.shape != want:
            return "pyav", (
                f"decoder pyav: decord decodes {frame.shape[1]}x{frame.shape[0]} frames, "
                f"stream #{info.index} is {want[1]}x{want[0]} (decord chose another stream)"
            )
        diff = 0.0 if first is None else float(
            np.abs(frame.astype(np.int16) - first.rgb.astype(np.int16)).mean())
        if diff > FIRST_FRAME_TOLERANCE:
            return "pyav", (
                f"decoder pyav: decord's first frame differs from PyAV's (mean abs diff {diff:.2f})"
            )
        ts = np.asarray(reader.get_frame_timestamp(np.arange(n)), dtype=np.float64)[:, 0]
        ts = ts - ts[0]
        steps = np.diff(timestamps)
        tolerance = min(0.002, 0.25 * float(steps.min())) if len(steps) else 0.002
        worst = float(np.abs(ts - timestamps).max())
        if worst > tolerance:
            return "pyav", (
                "decoder pyav: decord's frame timestamps differ from the probed ones "
                f"by up to {worst * 1000:.3g} ms"
            )
    except Exception as exc:
        return "pyav", f"decoder pyav: decord failed while checking the file ({_short(exc)})"
    finally:
        del reader
    extra = f" (chose stream #{info.index} like this probe)" if others else ""
    return "decord", f"decoder decord: frame count, first frame and timestamps agree with PyAV{extra}"


def _short(exc: BaseException) -> str:
    """decord's messages carry a source location and the path; keep the last line's gist."""
    text = " ".join(str(exc).split())
    if "] " in text:
        text = text.rsplit("] ", 1)[-1]
    return text[:200] or type(exc).__name__
