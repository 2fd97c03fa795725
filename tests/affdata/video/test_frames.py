"""Frame-sequence folders (ABAW cropped_aligned): numbering, gaps, fps, size, decoding."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affdata.errors import VideoError
from affdata.video import iter_frames, probe


def _image(k: int, size=(32, 24)) -> Image.Image:
    """A distinct, easily recognised image per number: flat grey level 10 * k."""
    return Image.new("RGB", size, (10 * k, 10 * k, 10 * k))


def _folder(root: Path, numbers, ext="png", size=(32, 24)) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for k in numbers:
        _image(k, size).save(root / f"{k:05d}.{ext}")
    return root


def test_folder_with_a_gap(tmp_path):
    folder = _folder(tmp_path / "v1", [1, 2, 4, 5])
    (folder / "Thumbs.db").write_bytes(b"x")
    p = probe(folder)
    assert (p.kind, p.decoder, p.stream_index, p.container, p.codec) == ("frames", "images", None, "image2", "png")
    assert p.frame_count == 5
    assert p.present.tolist() == [True, True, False, True, True]
    assert p.present_count == 4
    assert (p.width, p.height, p.sar_num, p.sar_den) == (32, 24, 1, 1)
    assert p.fps == 30 and not p.is_vfr
    assert np.allclose(p.timestamps, np.arange(5) / 30)
    assert p.duration_s == pytest.approx(5 / 30)
    assert any("no fps given, assuming 30" in n for n in p.notes)
    assert any("1 of 5 frame numbers missing" in n for n in p.notes)
    assert any("Thumbs.db" in n for n in p.notes)

    frames = list(iter_frames(p))
    assert [i for i, _ in frames] == [0, 1, 3, 4]  # the missing frame is skipped, not yielded
    for index, rgb in frames:
        assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
        assert int(rgb[0, 0, 0]) == 10 * (index + 1)  # index i is image number i + 1


def test_fps_argument_and_jpeg(tmp_path):
    folder = _folder(tmp_path / "v2", [1, 2, 3], ext="jpg")
    p = probe(folder, fps=25)
    assert (p.fps_num, p.fps_den, p.codec) == (25, 1, "mjpeg")
    assert p.timestamps[-1] == pytest.approx(2 / 25)
    q = probe(folder, fps=30000 / 1001)
    assert (q.fps_num, q.fps_den) == (30000, 1001)
    frames = dict(iter_frames(p))
    assert abs(int(frames[2][5, 5, 0]) - 30) <= 2  # JPEG: close to the grey level
    with pytest.raises(VideoError, match="fps must be positive"):
        probe(folder, fps=0)


def test_selection_and_resize_on_folder(tmp_path):
    p = probe(_folder(tmp_path / "v3", [1, 2, 3, 5, 6, 7]))
    assert [i for i, _ in iter_frames(p, start=1, step=2)] == [1, 5]  # index 3 is missing
    assert [i for i, _ in iter_frames(p, indices=[0, 3, 4, 6])] == [0, 4, 6]
    (_, small), = iter_frames(p, indices=[0], size=(16, 8))
    assert small.shape == (8, 16, 3)


def test_image_of_another_size_is_refused_at_decode(tmp_path):
    folder = _folder(tmp_path / "v4", [1, 2])
    _image(3, size=(40, 40)).save(folder / "00003.png")
    p = probe(folder)
    frames = iter_frames(p)
    assert next(frames)[0] == 0
    with pytest.raises(VideoError, match="00003.png.*40x40"):
        list(frames)


def test_folder_changed_since_probe(tmp_path):
    folder = _folder(tmp_path / "v5", [1, 2, 4])
    p = probe(folder)
    _image(3).save(folder / "00003.png")  # the gap filled in later
    with pytest.raises(VideoError, match="probe it again"):
        list(iter_frames(p))


def test_folder_hash_covers_names_and_contents(tmp_path):
    folder = _folder(tmp_path / "v6", [1, 2])
    first = probe(folder).content_hash
    assert probe(folder).content_hash == first
    expected = hashlib.sha256()
    for name in ("00001.png", "00002.png"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        expected.update(name.encode() + b"\0" + digest.encode() + b"\n")
    assert first == expected.hexdigest()
    (folder / "00002.png").rename(folder / "00003.png")  # same bytes, another frame number
    assert probe(folder).content_hash != first
    assert probe(folder).size_bytes == sum(f.stat().st_size for f in folder.glob("*.png"))
