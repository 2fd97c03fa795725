"""Shot cuts: where one shot ends and the next begins.

A face track must not run across a cut (the person after it is, in general, someone else,
even when they stand in the same place). Each frame is reduced to two small signatures:

* a joint RGB histogram, 8 x 8 x 8 bins over every 8th pixel each way (what the shot shows);
* a 16 x 9 grey thumbnail, block means of every 4th pixel (where things are).

A frame starts a new shot when, against the previous frame, the histograms differ by more than
:data:`HIST_THRESHOLD` in total variation distance (half the L1 distance of the normalised
histograms) **and** the thumbnails by more than :data:`THUMB_THRESHOLD` in mean absolute
difference (fraction of full scale). Either cue alone confuses motion with cuts: a man lifting
his hands shifts the histogram by 0.15, a crowd panning moves the thumbnail. On the real clips
in the test material the cuts score at least 0.16 / 0.09 and everything else at most
0.15 / 0.042. Hard cuts only, not slow dissolves; well under a millisecond per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIST_THRESHOLD = 0.1
THUMB_THRESHOLD = 0.07


@dataclass(frozen=True)
class Signature:
    hist: np.ndarray  # (512,) float64, sums to 1
    thumb: np.ndarray  # (9, 16) float64 in [0, 1]


def signature(rgb: np.ndarray) -> Signature:
    small = rgb[::8, ::8].reshape(-1, 3) >> 5  # 8 levels per channel
    codes = (small[:, 0].astype(np.int32) << 6) | (small[:, 1].astype(np.int32) << 3) | small[:, 2]
    hist = np.bincount(codes, minlength=512).astype(np.float64)
    grey = rgb[::4, ::4].mean(axis=2)
    h, w = grey.shape[0] // 9 * 9, grey.shape[1] // 16 * 16
    if h == 0 or w == 0:  # a frame smaller than 36x64: the thumbnail is the frame's mean
        thumb = np.full((9, 16), grey.mean())
    else:
        thumb = grey[:h, :w].reshape(9, h // 9, 16, w // 16).mean(axis=(1, 3))
    return Signature(hist / max(hist.sum(), 1.0), thumb / 255.0)


def is_cut(a: Signature, b: Signature) -> bool:
    """Whether ``b`` starts a new shot after ``a`` (module docstring)."""
    hist = 0.5 * float(np.abs(a.hist - b.hist).sum())
    thumb = float(np.abs(a.thumb - b.thumb).mean())
    return hist > HIST_THRESHOLD and thumb > THUMB_THRESHOLD


class CutDetector:
    """Fed every frame in order; says whether each one starts a new shot."""

    def __init__(self) -> None:
        self._previous: Signature | None = None

    def __call__(self, rgb: np.ndarray) -> bool:
        current = signature(rgb)
        cut = self._previous is not None and is_cut(self._previous, current)
        self._previous = current
        return cut
