"""Linking per-frame detections into face tracks, and naming the tracks.

Association is ByteTrack (``supervision``'s implementation; Zhang et al. 2022): a Kalman
filter per face, IoU matching, high- and low-score rounds. What this module adds around it:

* **shots**: a fresh tracker for every shot, so no track runs across a cut;
* **stride**: the tracker sees only the frames the detector ran on (every ``stride``-th frame of
  a shot, plus each shot's first and last frame); the frames between two detections of a track
  get boxes and landmarks interpolated linearly, marked ``interpolated``, when the two are at
  most ``max_gap`` frames apart (default: two strides or half a second, whichever is longer);
  a longer gap is left without boxes;
* **minimum length**: a track with fewer than ``min_detections`` detections is dropped (a face
  seen once or twice is usually a false detection);
* **names** (:func:`name_tracks`), the rule Aff-Wild2 follows: when no two tracks overlap in
  time the video shows one person at a time and all its tracks become ``main``; when exactly
  two tracks exist and they overlap, ``left`` and ``right`` by the mean horizontal centre of
  their boxes; otherwise ``face1``, ``face2``... in order of first frame, then of horizontal
  centre. Labels imported for a video without a track name attach to ``main``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from affdata.faces.detector import Faces


@dataclass
class Track:
    """One face over a run of frames (strictly increasing, not necessarily contiguous)."""

    frames: np.ndarray  # int64 (n,)
    boxes: np.ndarray  # float64 (n, 4) x, y, w, h
    landmarks: np.ndarray  # float64 (n, 5, 2)
    scores: np.ndarray  # float64 (n,), NaN where interpolated
    interpolated: np.ndarray  # bool (n,)
    name: str = field(default="")

    @property
    def detections(self) -> int:
        return int((~self.interpolated).sum())

    @property
    def centre_x(self) -> float:
        return float(np.mean(self.boxes[:, 0] + self.boxes[:, 2] / 2))

    def span(self) -> tuple[int, int]:
        return int(self.frames[0]), int(self.frames[-1])


@dataclass(frozen=True)
class TrackingParams:
    stride: int = 5
    min_detections: int = 3
    max_gap: int | None = None  # frames; None: max(2 * stride, fps / 2)
    min_score: float = 0.5

    def gap(self, fps: float) -> int:
        return self.max_gap if self.max_gap is not None else max(2 * self.stride, round(fps / 2))


def _byte_track(params: TrackingParams, fps: float) -> Any:
    with warnings.catch_warnings():  # supervision warns that OpenCV is absent and that
        warnings.simplefilter("ignore")  # ByteTrack moves to the `trackers` package
        from supervision.tracker.byte_tracker.core import ByteTrack

        # ByteTrack starts a track only above track_activation_threshold + 0.1: every
        # detection the detector kept (>= min_score) may start one
        return ByteTrack(track_activation_threshold=max(0.01, params.min_score - 0.1 - 1e-6),
                         lost_track_buffer=max(1, -(-params.gap(fps) // params.stride)),
                         minimum_matching_threshold=0.8, frame_rate=30,
                         minimum_consecutive_frames=1)


def _detections(faces: Faces) -> Any:
    import supervision as sv

    xyxy = np.column_stack([faces.boxes[:, :2], faces.boxes[:, :2] + faces.boxes[:, 2:]])
    return sv.Detections(xyxy=xyxy.astype(np.float32), confidence=faces.scores.astype(np.float32),
                         data={"index": np.arange(len(faces))})


def link(observations: Sequence[tuple[int, Faces]], shot_starts: Sequence[int], fps: float,
         params: TrackingParams) -> list[Track]:
    """Tracks from ``(frame, faces)`` of the frames the detector ran on (in frame order).

    ``shot_starts`` are the first frames of the shots after the first (sorted); a tracker never
    links detections of two shots. Tracks come out ordered by first frame, then by horizontal
    centre.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import supervision  # noqa: F401  (its import warns about OpenCV once)
    starts = np.asarray(sorted(shot_starts), dtype=np.int64)
    gap = params.gap(fps)
    tracks: list[Track] = []
    shot_of = lambda f: int(np.searchsorted(starts, f, side="right"))  # noqa: E731
    current_shot, tracker = -1, None
    hits: dict[tuple[int, int], list[tuple[int, Faces, int]]] = {}
    # detections of the previous detected frame that no track took: ByteTrack confirms a track
    # that starts mid-shot on its second detection and reports it from there; the first one
    # is found again here (the left-over detection that overlaps the new track's first box)
    left_over: tuple[int, Faces, list[int]] = (-1, Faces.empty(), [])
    for frame, faces in observations:
        shot = shot_of(frame)
        if shot != current_shot:
            current_shot, tracker = shot, _byte_track(params, fps)
            left_over = (-1, Faces.empty(), [])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = tracker.update_with_detections(_detections(faces))
        taken: list[int] = []
        if len(out):  # (with no confirmed track ByteTrack returns no data columns)
            for tid, i in zip(out.tracker_id.tolist(), out.data["index"].tolist()):
                key = (shot, int(tid))
                if key not in hits:
                    hits[key] = _first_detection(left_over, faces.boxes[i])
                hits[key].append((int(frame), faces, int(i)))
                taken.append(int(i))
        left_over = (int(frame), faces, [i for i in range(len(faces)) if i not in taken])
    for key in sorted(hits, key=lambda k: (hits[k][0][0], k)):
        seen = hits[key]
        if len(seen) < params.min_detections:
            continue
        tracks.append(_fill(seen, gap))
    tracks.sort(key=lambda t: (t.frames[0], t.centre_x))
    return tracks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _first_detection(left_over: tuple[int, Faces, list[int]], box: np.ndarray) -> list[tuple[int, Faces, int]]:
    frame, faces, free = left_over
    best = max(free, key=lambda i: _iou(faces.boxes[i], box), default=None)
    if best is None or _iou(faces.boxes[best], box) < 0.3:
        return []
    return [(frame, faces, best)]


def _fill(seen: list[tuple[int, Faces, int]], gap: int) -> Track:
    """A track from its detections, with interpolated frames between close ones."""
    frames, boxes, marks, scores, interp = [], [], [], [], []
    for k, (frame, faces, i) in enumerate(seen):
        if k:
            prev_frame, prev_faces, j = seen[k - 1]
            d = frame - prev_frame
            if 1 < d <= gap:
                t = (np.arange(1, d) / d)[:, None]
                frames.extend(range(prev_frame + 1, frame))
                boxes.extend(prev_faces.boxes[j] * (1 - t) + faces.boxes[i] * t)
                marks.extend(prev_faces.landmarks[j][None] * (1 - t[:, :, None])
                             + faces.landmarks[i][None] * t[:, :, None])
                scores.extend([np.nan] * (d - 1))
                interp.extend([True] * (d - 1))
        frames.append(frame)
        boxes.append(faces.boxes[i])
        marks.append(faces.landmarks[i])
        scores.append(faces.scores[i])
        interp.append(False)
    return Track(np.asarray(frames, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                 np.asarray(marks, dtype=np.float64).reshape(-1, 5, 2),
                 np.asarray(scores, dtype=np.float64), np.asarray(interp, dtype=bool))


def _overlap(a: Track, b: Track) -> bool:
    (a0, a1), (b0, b1) = a.span(), b.span()
    return a0 <= b1 and b0 <= a1


def name_tracks(tracks: Sequence[Track]) -> list[Track]:
    """Named tracks (module docstring): ``main`` (tracks merged), ``left``/``right``, or ``faceN``."""
    tracks = sorted(tracks, key=lambda t: (t.frames[0], t.centre_x))
    if not tracks:
        return []
    overlapping = any(_overlap(a, b) for i, a in enumerate(tracks) for b in tracks[i + 1:])
    if not overlapping:
        merged = Track(*(np.concatenate([getattr(t, f) for t in tracks])
                         for f in ("frames", "boxes", "landmarks", "scores", "interpolated")),
                       name="main")
        return [merged]
    if len(tracks) == 2:
        left, right = sorted(tracks, key=lambda t: t.centre_x)
        left.name, right.name = "left", "right"
        return [left, right]
    for k, t in enumerate(tracks, 1):
        t.name = f"face{k}"
    return list(tracks)
