"""Small clips encoded here with PyAV, for the codecs and containers the real clips lack.

They exercise both counting methods: demux where one packet is provably one frame, full decode
where it is not (VP8 alt-ref frames are packets that show no frame; MPEG-4 Part 2 B-frames).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from affdata.video import iter_frames, probe

av = pytest.importorskip("av")

N = 30


def _encode(path: Path, codec: str, *, pix_fmt="yuv420p", options=None, max_b=None, pts=None) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        if max_b is not None:
            stream.codec_context.max_b_frames = max_b
        for i in range(N):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, : (3 * i) % 64] = 8 * i
            img[::7, ::5] = 255 - i
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i if pts is None else pts[i]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


CASES = {
    # name: (codec, options, method expected, extra encode kwargs)
    "vp8_altref.webm": ("libvpx", {"auto-alt-ref": "1", "lag-in-frames": "16"}, "full decode", {}),
    "mpeg4_bframes.avi": ("mpeg4", {}, "full decode", {"max_b": 2}),
    "mpeg4.avi": ("mpeg4", {}, "demux", {"max_b": 0}),
    "mjpeg.avi": ("mjpeg", {}, "demux", {"pix_fmt": "yuvj420p"}),
    "x264_bframes.mkv": ("libx264", {"bf": "3"}, "demux", {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_count_method_and_decoded_count(tmp_path, name):
    codec, options, method, extra = CASES[name]
    path = _encode(tmp_path / name, codec, options=options, **extra)
    p = probe(path)
    assert p.frame_count == N
    assert p.notes[0].startswith(f"frame count by {method}")
    assert p.fps == 25 and not p.is_vfr and (p.width, p.height) == (64, 48)
    for decoder in {p.decoder, "pyav"}:
        assert [i for i, _ in iter_frames(replace(p, decoder=decoder))] == list(range(N))


def test_mpeg4_with_bframes_in_avi_is_not_left_to_decord(tmp_path):
    """decord reports nonsense timestamps for this file: the rule refuses it (the demux count is
    not exact), and the full check notices the timestamps."""
    path = _encode(tmp_path / "b.avi", "mpeg4", max_b=2)
    p = probe(path)
    assert p.decoder == "pyav"
    assert any("do not map one to one" in n for n in p.notes)
    checked = probe(path, verify=True)
    assert checked.decoder == "pyav"
    assert any("decord's frame timestamps differ" in n for n in checked.notes)


def test_dropped_frame_makes_the_stream_vfr(tmp_path):
    pts = [i if i < 15 else i + 1 for i in range(N)]  # one frame missing after frame 14
    p = probe(_encode(tmp_path / "gap.mkv", "libx264", pts=pts))
    assert p.is_vfr and p.frame_count == N
    steps = np.round(np.diff(p.timestamps) * 1000).astype(int)
    assert sorted(set(steps.tolist())) == [40, 80]
    assert float(p.fps) == pytest.approx(N / p.duration_s)
    assert p.duration_s == pytest.approx(31 / 25)
