"""The tracker glue on synthetic detections: crossings, gaps, shot cuts, stride, naming."""

from __future__ import annotations

import numpy as np

from affdata.faces.detector import Faces
from affdata.faces.track import Track, TrackingParams, link, name_tracks


def faces(*boxes: tuple[float, float, float, float], score: float = 0.9) -> Faces:
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    centre = b[:, :2] + b[:, 2:] / 2
    marks = np.repeat(centre[:, None, :], 5, axis=1) + np.arange(5)[None, :, None]
    return Faces(b, np.full(len(b), score), marks)


def test_one_face_every_frame_is_one_track_without_interpolation() -> None:
    obs = [(f, faces((100 + f, 50, 40, 40))) for f in range(30)]
    tracks = link(obs, [], 30.0, TrackingParams(stride=1))
    assert len(tracks) == 1
    t = tracks[0]
    assert t.frames.tolist() == list(range(30)) and not t.interpolated.any()
    assert np.allclose(t.boxes[:, 0], 100 + np.arange(30))


def test_stride_interpolates_boxes_and_landmarks_between_detections() -> None:
    obs = [(f, faces((100 + 2 * f, 50, 40, 40))) for f in range(0, 41, 5)]
    (t,) = link(obs, [], 30.0, TrackingParams(stride=5))
    assert t.frames.tolist() == list(range(41))
    assert t.interpolated.tolist() == [f % 5 != 0 for f in range(41)]
    assert np.allclose(t.boxes[:, 0], 100 + 2 * np.arange(41))  # linear motion comes back exactly
    assert np.allclose(t.landmarks[:, 0, 0], 120 + 2 * np.arange(41))
    assert np.isnan(t.scores[t.interpolated]).all() and (t.scores[~t.interpolated] == 0.9).all()
    assert t.detections == 9


def test_two_faces_crossing_keep_their_identity() -> None:
    # A moves right, B moves left, they pass each other vertically apart enough not to merge
    obs = [(f, faces((10 + 10 * f, 50, 40, 40), (310 - 10 * f, 110, 40, 40))) for f in range(31)]
    tracks = link(obs, [], 30.0, TrackingParams(stride=1))
    assert len(tracks) == 2
    starts = sorted((t.boxes[0, 0], t.boxes[-1, 0]) for t in tracks)
    assert starts == [(10.0, 310.0), (310.0, 10.0)]  # each track kept its own direction


def test_a_short_gap_is_bridged_and_a_long_one_is_not() -> None:
    seen = [f for f in range(0, 60, 5) if f not in (20,)]  # one missed detection at stride 5
    obs = [(f, faces((100, 50, 40, 40)) if f in seen else Faces.empty()) for f in range(0, 60, 5)]
    (t,) = link(obs, [], 30.0, TrackingParams(stride=5))
    assert t.frames.tolist() == list(range(56))  # 15 -> 25 is 10 frames <= max gap (15)
    far = [(f, faces((100, 50, 40, 40)) if not 10 < f < 40 else Faces.empty()) for f in range(0, 60, 5)]
    parts = link(far, [], 30.0, TrackingParams(stride=5, max_gap=10))
    covered = sorted(int(f) for t in parts for f in t.frames)  # 10 -> 40: too long, left without boxes
    assert covered == list(range(0, 11)) + list(range(40, 56))


def test_a_shot_cut_splits_a_track_even_in_place() -> None:
    obs = [(f, faces((100, 50, 40, 40))) for f in range(40)]
    tracks = link(obs, [20], 30.0, TrackingParams(stride=1))
    assert [t.span() for t in tracks] == [(0, 19), (20, 39)]
    # one face at a time: both halves are the video's main face
    (main,) = name_tracks(tracks)
    assert main.name == "main" and main.frames.tolist() == list(range(40))


def test_short_tracks_are_dropped() -> None:
    obs = [(f, faces((100, 50, 40, 40), (400, 50, 30, 30)) if f < 2 else faces((100, 50, 40, 40)))
           for f in range(20)]
    tracks = link(obs, [], 30.0, TrackingParams(stride=1, min_detections=3))
    assert len(tracks) == 1 and tracks[0].boxes[0, 0] == 100


def _track(x: float, frames: range) -> Track:
    n = len(frames)
    return Track(np.array(frames), np.tile([x, 0, 10, 10], (n, 1)).astype(float),
                 np.zeros((n, 5, 2)), np.ones(n), np.zeros(n, bool))


def test_naming_rule() -> None:
    assert name_tracks([]) == []
    assert [t.name for t in name_tracks([_track(50, range(10))])] == ["main"]
    # two people side by side: left / right by horizontal centre, whatever their order
    pair = name_tracks([_track(300, range(0, 10)), _track(20, range(5, 20))])
    assert {t.name: t.boxes[0, 0] for t in pair} == {"left": 20, "right": 300}
    # three or more: face1..n by first frame, then horizontal centre
    many = name_tracks([_track(300, range(5, 9)), _track(20, range(0, 10)), _track(10, range(5, 12))])
    assert [(t.name, t.frames[0], t.boxes[0, 0]) for t in many] == [
        ("face1", 0, 20), ("face2", 5, 10), ("face3", 5, 300)]
