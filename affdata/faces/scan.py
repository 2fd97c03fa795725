"""One pass over a video: decode every frame in order, find the cuts, run the detector.

The detector runs on the first frame of every shot, then every ``stride``-th frame of the
shot, and on each shot's last frame (kept one frame back, so tracks reach the end of their
shot). Every frame is decoded anyway (in-order decoding cannot skip frames), and the cut test
needs each one; converting to RGB costs far less than one detection. Decoding uses the decoder
and stream recorded at ingest (:func:`affdata.video.iter_frames`), so frame indices are the
store's. No database here: this is what runs in worker processes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from affdata.faces.cuts import CutDetector
from affdata.faces.detector import FaceDetector, Faces


@dataclass
class Scan:
    """What one pass over a video found."""

    frames: int
    observations: list[tuple[int, Faces]]  # frames the detector ran on, in order
    shot_starts: list[int]  # first frames of the shots after the first
    seconds: dict[str, float] = field(default_factory=dict)  # time spent: detector, other


def scan_video(source, detector: FaceDetector, stride: int, *, threads: int | None = None,
               on_frame: Callable[[int], None] | None = None) -> Scan:
    """Decode ``source`` (a store row or probe) once and detect faces (module docstring)."""
    from affdata.video import iter_frames

    cuts = CutDetector()
    observations: list[tuple[int, Faces]] = []
    shot_starts: list[int] = []
    shot_start = 0
    previous: tuple[int, np.ndarray] | None = None
    last_detected = -1
    detect_s = 0.0
    start = time.perf_counter()

    def detect(index: int, rgb: np.ndarray) -> None:
        nonlocal detect_s, last_detected
        t = time.perf_counter()
        observations.append((index, detector.detect(rgb)))
        detect_s += time.perf_counter() - t
        last_detected = index

    n = 0
    with contextlib.closing(iter_frames(source, threads=threads)) as frames:
        for index, rgb in frames:
            n += 1
            if cuts(rgb):
                if previous is not None and last_detected != previous[0]:
                    detect(*previous)  # the last frame of the shot that ends here
                shot_starts.append(index)
                shot_start = index
            if (index - shot_start) % stride == 0:
                detect(index, rgb)
            previous = (index, rgb)
            if on_frame is not None:
                on_frame(1)
    if previous is not None and last_detected != previous[0]:
        detect(*previous)
    total = time.perf_counter() - start
    return Scan(n, observations, shot_starts, {"detector": detect_s, "other": total - detect_s})
