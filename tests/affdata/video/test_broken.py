"""Broken input gives a one-line VideoError that names the file and says what is wrong."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from affdata.errors import AffdataError, VideoError
from affdata.video import iter_frames, probe

from .conftest import needs_data


def _probe_error(path: Path) -> VideoError:
    with pytest.raises(VideoError) as info:
        probe(path)
    err = info.value
    assert isinstance(err, AffdataError)
    assert err.path == str(path) and "\n" not in str(err)
    return err


def test_missing_path(tmp_path):
    assert "does not exist" in _probe_error(tmp_path / "nope.mp4").reason


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    assert _probe_error(path).reason == "empty file (0 bytes)"


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a text file, not a video\n" * 50)
    assert "not a readable video" in _probe_error(path).reason


@needs_data
@pytest.mark.parametrize(
    "name, why",
    [
        ("wtomin_mtl__utterance_1.mp4", "the 'mdat' box needs"),  # index (moov) at the end: lost
        ("liveportrait__driving_d20.mp4", "the index lists 175 frames"),  # index first: data cut
        ("dlib__elon-musk-smoke.gif", "GIF lacks its trailer"),
    ],
)
def test_truncated_copy_of_a_real_file(videos_dir, tmp_path, name, why):
    data = (videos_dir / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * 0.3)])
    err = _probe_error(path)
    assert err.reason.startswith("truncated: ") and why in err.reason


def test_audio_only_file(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    assert _probe_error(path).reason == "no video stream (streams: audio)"


def test_empty_folder(tmp_path):
    assert "no numbered images" in _probe_error(tmp_path).reason


def test_folder_of_other_files(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    Image.new("RGB", (8, 8)).save(tmp_path / "face.jpg")
    assert "no numbered images" in _probe_error(tmp_path).reason


def test_folder_numbered_from_zero(tmp_path):
    for k in (0, 1):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{k:05d}.jpg")
    assert "start at 1" in _probe_error(tmp_path).reason


def test_folder_with_two_images_of_one_number(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "00001.jpg")
    Image.new("RGB", (8, 8)).save(tmp_path / "1.png")
    assert "two images numbered 1" in _probe_error(tmp_path).reason


def test_unreadable_first_image(tmp_path):
    (tmp_path / "00001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(VideoError, match="not a readable image") as info:
        probe(tmp_path)
    assert info.value.path == str(tmp_path / "00001.jpg")


@needs_data
def test_file_changed_after_probing(videos_dir, tmp_path):
    path = tmp_path / "clip.mp4"
    shutil.copyfile(videos_dir / "pyfeat__single_face.mp4", path)
    p = probe(path)
    shutil.copyfile(videos_dir / "sadtalker__WDA_KatieHill_000.mp4", path)
    with pytest.raises(VideoError, match="probe it again"):
        iter_frames(p)
    # a store row without size_bytes or width: decoding itself notices the difference
    for decoder in ("decord", "pyav"):
        row = SimpleNamespace(path=str(path), kind="file", decoder=decoder, stream_index=0, frame_count=72)
        with pytest.raises(VideoError, match="200 frames|more than the 72 frames"):
            list(iter_frames(row))


@needs_data
def test_decord_count_mismatch_is_refused(videos_dir):
    p = probe(videos_dir / "pyfeat__single_face.mp4")
    wrong = replace(p, frame_count=71, timestamps=p.timestamps[:71], present=p.present[:71])
    with pytest.raises(VideoError, match="decord reports 72 frames"):
        list(iter_frames(wrong))
    with pytest.raises(VideoError, match="more than the 71 frames"):
        list(iter_frames(replace(wrong, decoder="pyav")))
