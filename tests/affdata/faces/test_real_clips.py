"""CenterFace + tracking on the real clips in ../shared/data/videos (no store needed).

Each clip is scanned once per session (stride 5, or 10 on the large ones) and the tests look at
the result; the crowd clip is 1080p and the heaviest, so it is marked slow (it still runs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affdata.faces.detector import make_detector
from affdata.faces.run import DetectOptions, _Job, track_one
from affdata.faces.track import Track
from affdata.video import iter_frames, probe

_CACHE: dict[tuple[str, int], tuple[int, list[Track]]] = {}


def tracks_of(path: Path, stride: int = 5) -> tuple[int, list[Track]]:
    key = (str(path), stride)
    if key not in _CACHE:
        p = probe(path)
        job = _Job(path.name, p, p.fps_num / p.fps_den, DetectOptions(stride=stride), None)
        frames, tracks, _ = track_one(job)
        _CACHE[key] = (frames, tracks)
    return _CACHE[key]


@pytest.mark.parametrize("clip", ["pyfeat__single_face.mp4", "wtomin_mtl__utterance_1.mp4"])
def test_a_single_face_clip_gives_one_main_track_over_95_percent_of_frames(shared_data: Path, clip: str) -> None:
    frames, tracks = tracks_of(shared_data / "videos" / clip)
    assert [t.name for t in tracks] == ["main"]
    assert len(tracks[0].frames) >= 0.95 * frames
    assert tracks[0].interpolated.any() and (~tracks[0].interpolated).sum() >= frames // 5


def test_the_no_face_clip_gives_no_track(shared_data: Path) -> None:
    assert tracks_of(shared_data / "videos" / "pyfeat__no_face.mp4", stride=10)[1] == []


def test_multi_person_clip_with_cuts_gives_several_tracks_none_across_a_cut(shared_data: Path) -> None:
    frames, tracks = tracks_of(shared_data / "videos" / "face_recognition__short_hamilton_clip.mp4")
    assert len(tracks) >= 5 and all(t.name.startswith("face") for t in tracks)
    cuts = (20, 82, 211)  # the clip's shot cuts (seen by eye)
    for t in tracks:
        first, last = t.span()
        assert not any(first < c <= last for c in cuts), (t.name, first, last)


@pytest.mark.slow
def test_the_crowd_gives_several_simultaneous_tracks(shared_data: Path) -> None:
    frames, tracks = tracks_of(shared_data / "videos" / "facenet_pytorch__video.mp4", stride=10)
    at = [sum(1 for t in tracks if f in set(t.frames.tolist())) for f in range(0, frames, 10)]
    assert len(tracks) >= 4 and max(at) >= 4


def test_the_vfr_mov_with_a_cut_to_a_cartoon(shared_data: Path) -> None:
    frames, tracks = tracks_of(shared_data / "videos" / "pyfeat__face_noface.mov", stride=10)
    assert frames == 169 and [t.name for t in tracks] == ["main"]
    first, last = tracks[0].span()
    assert first == 0 and 60 <= last < 73  # the face shot ends where the cartoon begins (frame 72)


def test_a_frame_folder_works_like_the_video(shared_data: Path, tmp_path: Path) -> None:
    clip = probe(shared_data / "videos" / "pyfeat__single_face.mp4")
    folder = tmp_path / "single_face_frames"
    folder.mkdir()
    for index, rgb in iter_frames(clip, stop=30):
        Image.fromarray(rgb).save(folder / f"{index + 1:05d}.png")  # lossless: same pixels
    frames, tracks = tracks_of(folder)
    assert frames == 30 and [t.name for t in tracks] == ["main"] and len(tracks[0].frames) == 30
    video_main = tracks_of(shared_data / "videos" / "pyfeat__single_face.mp4")[1][0]
    assert np.allclose(tracks[0].boxes[:26], video_main.boxes[:26])  # same pixels, same boxes
    shutil.rmtree(folder)


def test_detections_are_reproducible_run_to_run(shared_data: Path) -> None:
    clip = probe(shared_data / "videos" / "pyfeat__single_face.mp4")
    detector = make_detector()
    rgb = next(iter(iter_frames(clip, indices=[40])))[1]
    a, b = detector.detect(rgb), make_detector().detect(rgb)
    assert len(a) == 1 and np.array_equal(a.boxes, b.boxes) and np.array_equal(a.landmarks, b.landmarks)
    first = tracks_of(shared_data / "videos" / "pyfeat__single_face.mp4")[1][0]
    _CACHE.pop((str(shared_data / "videos" / "pyfeat__single_face.mp4"), 5))
    again = tracks_of(shared_data / "videos" / "pyfeat__single_face.mp4")[1][0]
    assert np.array_equal(first.boxes, again.boxes) and np.array_equal(first.frames, again.frames)
    # landmarks sit inside the box, eyes above the mouth
    m = first.landmarks[~first.interpolated]
    box = first.boxes[~first.interpolated]
    assert ((m[:, :, 0] >= box[:, None, 0]) & (m[:, :, 0] <= box[:, None, 0] + box[:, None, 2])).all()
    assert (m[:, 0, 1] < m[:, 3, 1]).all() and (m[:, 0, 0] < m[:, 1, 0]).all()
