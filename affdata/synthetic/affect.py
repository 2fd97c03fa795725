"""Per-frame affect trajectories of one synthetic person: expression segments, valence/arousal
and AU intensities.

Render and labels-only modes both draw their labels from :func:`sample_affect`, and the renderer
draws exactly these arrays, so the written labels are the values that drove the pixels: VA is
the (3-decimal) trajectory itself, an AU label is its rendered intensity above
:data:`AU_THRESHOLD`, and the expression label is the segment's class.

Expressions are prototypes over AU intensities plus a class-typical VA mean; random AU events
(above and below threshold) are laid on top independently of the class so that AU labels are
not a function of the expression, and every track samples the same process so no label
distribution depends on the subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: AUs the face renderer knows, in column order of :attr:`Affect.au`. AU9 (nose wrinkle) is
#: drawn for disgust but is in no label set.
RENDER_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 9, 10, 12, 15, 20, 23, 24, 25, 26)

#: An AU is labelled present when its rendered intensity (0..1) is above this.
AU_THRESHOLD = 0.5

#: Canonical expression id -> AU intensities of its prototype (before a per-segment scale in
#: [0.8, 1]; values stay well above threshold so labels follow the class).
PROTOTYPES: dict[int, dict[int, float]] = {
    0: {},  # Neutral
    1: {4: 1.0, 7: 0.9, 23: 0.9, 24: 0.8},  # Anger: lowered brows, tight pressed lips
    2: {9: 1.0, 10: 1.0},  # Disgust: nose wrinkle, upper lip raise
    3: {1: 1.0, 2: 1.0, 4: 0.85, 20: 1.0, 25: 1.0},  # Fear
    4: {6: 1.0, 12: 1.0},  # Happiness
    5: {1: 1.0, 4: 0.85, 15: 1.0},  # Sadness
    6: {1: 1.0, 2: 1.0, 25: 1.0, 26: 1.0},  # Surprise: raised brows, open jaw
    7: {},  # Other: an asymmetric smirk (see Affect.smirk), no labelled AU
}

#: Canonical expression id -> class-typical (valence, arousal) mean.
VA_MEANS: dict[int, tuple[float, float]] = {
    0: (0.0, -0.15),
    1: (-0.6, 0.65),
    2: (-0.55, 0.2),
    3: (-0.5, 0.7),
    4: (0.65, 0.35),
    5: (-0.55, -0.5),
    6: (0.25, 0.6),
    7: (0.15, 0.05),
}

SEGMENT_SECONDS = (2.0, 6.0)  # expression segment length range
EVENT_SECONDS = (0.6, 2.5)  # random AU event length range
EVENT_RATE = 0.05  # supra-threshold events per AU per second (~8% of time active each)
WEAK_EVENT_RATE = 0.04  # sub-threshold events (peak 0.1-0.3) per AU per second


@dataclass(frozen=True)
class Affect:
    """One track's per-frame affect; all arrays have one row per frame."""

    valence: np.ndarray  # float64 in [-1, 1], rounded to 3 decimals
    arousal: np.ndarray  # float64 in [-1, 1], rounded to 3 decimals
    au: np.ndarray  # float32 (frames, len(RENDER_AUS)) intensities in [0, 1]
    smirk: np.ndarray  # float32 in [-1, 1]: one-sided lip corner raise, sign = side
    expression: np.ndarray  # int16 canonical expression id

    @property
    def frames(self) -> int:
        return len(self.valence)

    def intensity(self, au: int) -> np.ndarray:
        return self.au[:, RENDER_AUS.index(au)]

    def au_labels(self, aus: Sequence[int]) -> np.ndarray:
        """Boolean (frames, len(aus)) presence: rendered intensity above :data:`AU_THRESHOLD`."""
        cols = [RENDER_AUS.index(a) for a in aus]
        return self.au[:, cols] > AU_THRESHOLD


def box_smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along axis 0 with edge padding (same length); cumsum keeps it O(n)."""
    width = int(width)
    if width <= 1 or len(x) == 0:
        return np.asarray(x, dtype=np.float64)
    left = width // 2
    pad = [(left, width - 1 - left)] + [(0, 0)] * (x.ndim - 1)
    c = np.cumsum(np.pad(np.asarray(x, dtype=np.float64), pad, mode="edge"), axis=0)
    c = np.concatenate([np.zeros((1,) + c.shape[1:]), c])
    return (c[width:] - c[:-width]) / width


def smooth_noise(n: int, fps: float, rng: np.random.Generator, knot_s: float, std: float,
                 dims: int | None = None) -> np.ndarray:
    """Smooth zero-mean wander: Gaussian knots every ``knot_s`` seconds, interpolated, smoothed."""
    step = max(1.0, knot_s * fps)
    knots = int(np.ceil(n / step)) + 2
    shape = (knots,) if dims is None else (knots, dims)
    values = rng.normal(0.0, std, shape)
    t = np.arange(n) / step
    grid = np.arange(knots)
    if dims is None:
        out = np.interp(t, grid, values)
    else:
        out = np.stack([np.interp(t, grid, values[:, d]) for d in range(dims)], axis=1)
    return box_smooth(out, max(1, int(step / 2)))


def _segments(n: int, fps: float, rng: np.random.Generator,
              classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Segment lengths (summing to n) and their classes, never the same class twice in a row."""
    lo, hi = SEGMENT_SECONDS
    count = int(n / (lo * fps)) + 2
    lengths = np.maximum(1, np.round(rng.uniform(lo, hi, count) * fps)).astype(np.int64)
    ends = np.cumsum(lengths)
    keep = int(np.searchsorted(ends, n)) + 1
    lengths = lengths[:keep]
    lengths[-1] -= int(ends[keep - 1] - n)
    k = len(classes)
    idx = np.empty(keep, dtype=np.int64)
    idx[0] = rng.integers(k)
    steps = rng.integers(1, k, keep) if k > 1 else np.zeros(keep, dtype=np.int64)
    idx[1:] = (idx[0] + np.cumsum(steps[1:])) % k
    return lengths, np.asarray(classes, dtype=np.int64)[idx]


def _add_events(target: np.ndarray, col: int, n: int, fps: float, rng: np.random.Generator,
                rate: float, peak: tuple[float, float]) -> None:
    count = rng.poisson(rate * n / fps)
    starts = rng.integers(0, max(n, 1), count)
    lengths = np.round(rng.uniform(*EVENT_SECONDS, count) * fps).astype(np.int64)
    peaks = rng.uniform(*peak, count)
    for s, length, p in zip(starts.tolist(), lengths.tolist(), peaks.tolist()):
        seg = target[s:s + length, col]
        np.maximum(seg, p, out=seg)


def sample_affect(n: int, fps: float, rng: np.random.Generator, classes: Sequence[int],
                  event_aus: Sequence[int]) -> Affect:
    """Trajectories for ``n`` frames; ``classes`` are the canonical expression ids in use and
    ``event_aus`` the AUs that also fire at random (the release's labelled set)."""
    lengths, seg_class = _segments(n, fps, rng, classes)
    nseg = len(lengths)
    frame_seg = np.repeat(np.arange(nseg), lengths)
    expression = seg_class[frame_seg].astype(np.int16)

    # AU intensities: scaled class prototype, max with independent events, smoothed ramps.
    proto = np.zeros((max(PROTOTYPES) + 1, len(RENDER_AUS)))
    for cls, aus in PROTOTYPES.items():
        for au, value in aus.items():
            proto[cls, RENDER_AUS.index(au)] = value
    scale = rng.uniform(0.8, 1.0, nseg)
    target = proto[seg_class] * scale[:, None]
    target = target[frame_seg]
    for au in event_aus:
        col = RENDER_AUS.index(au)
        _add_events(target, col, n, fps, rng, EVENT_RATE, (0.75, 1.0))
        _add_events(target, col, n, fps, rng, WEAK_EVENT_RATE, (0.1, 0.3))
    ramp = max(1, int(round(0.16 * fps)))
    au = box_smooth(box_smooth(target, ramp), ramp)
    au += smooth_noise(n, fps, rng, 0.5, 0.025, dims=len(RENDER_AUS))
    au = np.clip(au, 0.0, 1.0).astype(np.float32)

    # Smirk for "Other": one-sided, side drawn per segment.
    side = np.where(rng.random(nseg) < 0.5, -1.0, 1.0) * rng.uniform(0.8, 1.0, nseg)
    smirk = np.where(seg_class == 7, side, 0.0)[frame_seg]
    smirk = box_smooth(box_smooth(smirk, ramp), ramp).astype(np.float32)

    # VA: class mean plus a per-segment offset, smoothed across segments, plus slow wander.
    means = np.array([VA_MEANS[int(c)] for c in seg_class]).reshape(nseg, 2)
    means = means + rng.normal(0.0, 0.1, (nseg, 2))
    va_width = max(1, int(round(0.6 * fps)))
    va = box_smooth(box_smooth(means[frame_seg], va_width), va_width)
    va += smooth_noise(n, fps, rng, 0.6, 0.1, dims=2)
    va = np.round(np.clip(va, -1.0, 1.0), 3)
    return Affect(valence=va[:, 0].copy(), arousal=va[:, 1].copy(), au=au, smirk=smirk,
                  expression=expression)
