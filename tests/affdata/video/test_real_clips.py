"""Probe and decode every real clip: the probed frame count is what decoding yields."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from affdata.video import VideoProbe, iter_frames

from .conftest import CLIPS, needs_data

# file -> (decoder, stream_index, frame_count, fps, is_vfr, width, height); from
# /work/shared/data/README.md and checked by decoding with both decord and PyAV.
EXPECTED: dict[str, tuple[str, int, int, Fraction, bool, int, int]] = {
    "dlib__elon-musk-smoke.gif": ("pyav", 0, 35, Fraction(20), False, 480, 272),
    "face_recognition__short_hamilton_clip.mp4": ("decord", 0, 275, Fraction(2997, 100), False, 640, 360),
    "facenet_pytorch__video.mp4": ("decord", 0, 105, Fraction(25), False, 1920, 1080),
    "liveportrait__driving_d0.mp4": ("decord", 0, 78, Fraction(25), False, 512, 512),
    "liveportrait__driving_d10.mp4": ("decord", 0, 448, Fraction(30), False, 512, 512),
    "liveportrait__driving_d11.mp4": ("decord", 0, 225, Fraction(25), False, 512, 512),
    "liveportrait__driving_d12.mp4": ("decord", 0, 183, Fraction(25), False, 512, 512),
    "liveportrait__driving_d13.mp4": ("decord", 0, 352, Fraction(30), False, 720, 1280),
    "liveportrait__driving_d14.mp4": ("decord", 0, 536, Fraction(30), False, 512, 512),
    "liveportrait__driving_d18.mp4": ("decord", 0, 216, Fraction(30), False, 480, 480),
    "liveportrait__driving_d19.mp4": ("decord", 0, 250, Fraction(30), False, 480, 480),
    "liveportrait__driving_d20.mp4": ("decord", 0, 175, Fraction(25), False, 480, 480),
    "liveportrait__driving_d3.mp4": ("decord", 0, 354, Fraction(30), False, 512, 512),
    "liveportrait__driving_d6.mp4": ("decord", 0, 1008, Fraction(30), False, 480, 480),
    "liveportrait__driving_d9.mp4": ("decord", 0, 587, Fraction(30), False, 512, 480),
    "liveportrait__source_s13.mp4": ("decord", 0, 103, Fraction(25), False, 720, 1080),
    "liveportrait__source_s18.mp4": ("decord", 0, 282, Fraction(30), False, 1280, 720),
    "liveportrait__source_s20.mp4": ("decord", 0, 297, Fraction(30), False, 480, 908),
    "liveportrait__source_s29.mp4": ("decord", 0, 160, Fraction(30), False, 720, 1364),
    "liveportrait__source_s32.mp4": ("decord", 0, 180, Fraction(30), False, 1280, 720),
    "pyfeat__WolfgangLanger_Pexels.mp4": ("decord", 0, 472, Fraction(24000, 1001), False, 640, 360),
    "pyfeat__face_noface.mov": ("decord", 1, 169, Fraction(519168, 19667), True, 960, 540),
    "pyfeat__no_face.mp4": ("pyav", 0, 95, Fraction(24), False, 960, 540),
    "pyfeat__noface_face.mov": ("decord", 1, 169, Fraction(519168, 19595), True, 960, 540),
    "pyfeat__single_face.mp4": ("decord", 0, 72, Fraction(30), False, 640, 360),
    "sadtalker__WDA_AlexandriaOcasioCortez_000.mp4": ("decord", 0, 200, Fraction(25), False, 512, 512),
    "sadtalker__WDA_KatieHill_000.mp4": ("decord", 0, 200, Fraction(25), False, 512, 512),
    "torchcodec__nasa_13013.mp4": ("decord", 3, 390, Fraction(30000, 1001), False, 480, 270),
    "wtomin_mtl__utterance_1.mp4": ("decord", 0, 309, Fraction(30000, 1001), False, 640, 360),
}


@needs_data
def test_every_clip_has_an_expectation():
    assert set(CLIPS) == set(EXPECTED)


@needs_data
@pytest.mark.parametrize("name", CLIPS)
def test_probe_matches_expectation(probes, name):
    p = probes[name]
    decoder, stream, count, fps, vfr, width, height = EXPECTED[name]
    got = (p.decoder, p.stream_index, p.frame_count, p.fps, p.is_vfr, p.width, p.height)
    assert got == (decoder, stream, count, fps, vfr, width, height)
    assert p.kind == "file"
    assert p.notes and p.notes[0].startswith("frame count by ")
    assert any(n.startswith(f"decoder {p.decoder}") for n in p.notes)


@needs_data
@pytest.mark.parametrize("name", CLIPS)
def test_decoding_yields_exactly_the_probed_frames(probes, decoded, name):
    p, d = probes[name], decoded[name]
    assert d.indices == list(range(p.frame_count))
    assert d.shapes == {(p.height, p.width, 3)}
    assert d.dtypes == {"uint8"}


@needs_data
@pytest.mark.parametrize("name", CLIPS)
def test_timestamps_are_rebased_and_increasing(probes, name):
    p = probes[name]
    ts = p.timestamps
    assert ts.dtype == np.float64 and len(ts) == p.frame_count
    assert ts[0] == 0.0
    assert np.all(np.diff(ts) > 0)
    assert p.present.all() and len(p.present) == p.frame_count
    assert ts[-1] < p.duration_s <= ts[-1] + 0.2
    if not p.is_vfr:  # constant rate: timestamps are i / fps to within a millisecond
        assert np.allclose(ts, np.arange(p.frame_count) / float(p.fps), atol=1e-3)


@needs_data
def test_no_face_uses_the_edit_list_count_and_pyav(probes, decoded):
    p = probes["pyfeat__no_face.mp4"]
    assert (p.frame_count, p.decoder) == (95, "pyav")
    assert len(decoded["pyfeat__no_face.mp4"].indices) == 95
    # the edit list only trims the start: counted by demux, 3 packets flagged discard left out
    assert p.notes[0].startswith("frame count by demux: 95 of 98 packets")
    assert "discard" in p.notes[0]
    assert "container reports 98 frames, decoding yields 95: using 95" in p.notes
    assert any("do not map one to one" in n for n in p.notes)
    assert p.fps == 24  # from the frame steps; the container's average (23.67) counts 98 frames
    assert any("23.672" in n for n in p.notes)


@needs_data
@pytest.mark.parametrize("name", ["pyfeat__face_noface.mov", "pyfeat__noface_face.mov"])
def test_hevc_phone_clips_are_vfr(probes, name):
    p = probes[name]
    assert p.codec == "hevc" and p.is_vfr and p.frame_count == 169
    steps_ms = np.diff(p.timestamps) * 1000
    assert np.all(steps_ms > 0)
    assert steps_ms.min() == pytest.approx(13.7, abs=0.05)
    assert steps_ms.max() == pytest.approx(41.7, abs=0.05)
    assert float(p.fps) == pytest.approx(p.frame_count / p.duration_s)
    assert 26.3 < float(p.fps) < 26.6
    assert p.notes[0].startswith("frame count by demux")


@needs_data
def test_gif_uses_pyav(probes, decoded):
    p = probes["dlib__elon-musk-smoke.gif"]
    assert (p.decoder, p.codec, p.frame_count, p.stream_index) == ("pyav", "gif", 35, 0)
    assert len(decoded["dlib__elon-musk-smoke.gif"].indices) == 35
    assert any("GIF" in n for n in p.notes)


@needs_data
def test_two_stream_file_records_and_decodes_its_stream(probes, decoded):
    name = "torchcodec__nasa_13013.mp4"
    p = probes[name]
    assert p.stream_index == 3 and (p.width, p.height) == (480, 270) and p.frame_count == 390
    assert decoded[name].shapes == {(270, 480, 3)}
    assert any("2 video streams" in n and "chose #3" in n for n in p.notes)
    # PyAV must decode the recorded stream too, not its first one (320x180, 325 frames)
    as_pyav = replace(p, decoder="pyav")
    frames = list(iter_frames(as_pyav))
    assert len(frames) == 390 and frames[0][1].shape == (270, 480, 3)


@needs_data
def test_portrait_and_non_square_pixels(probes, decoded):
    d13 = probes["liveportrait__driving_d13.mp4"]
    assert (d13.width, d13.height) == (720, 1280)
    assert decoded["liveportrait__driving_d13.mp4"].shapes == {(1280, 720, 3)}
    d9 = probes["liveportrait__driving_d9.mp4"]
    assert (d9.sar_num, d9.sar_den) == (15, 16)
    assert (d9.width, d9.height) == (512, 480)  # coded size, not stretched by the SAR
    assert decoded["liveportrait__driving_d9.mp4"].shapes == {(480, 512, 3)}
    assert all((p.sar_num, p.sar_den) == (1, 1) for n, p in probes.items() if n != "liveportrait__driving_d9.mp4")


@needs_data
def test_first_frame_offset_is_rebased_and_noted(probes):
    p = probes["face_recognition__short_hamilton_clip.mp4"]
    assert p.timestamps[0] == 0.0
    assert any("first frame at 0.852 s" in n for n in p.notes)


@needs_data
@pytest.mark.parametrize(
    "name", ["wtomin_mtl__utterance_1.mp4", "pyfeat__face_noface.mov", "torchcodec__nasa_13013.mp4"]
)
def test_decord_in_order_equals_pyav_in_order(probes, decoded, name):
    """Guard (c) of decode.py: decord's in-order frames are PyAV's, pixel for pixel."""
    p = probes[name]
    assert p.decoder == "decord"
    pyav_means = []
    decord_frames = iter_frames(p, step=25)
    for (i, a), (j, b) in zip(iter_frames(replace(p, decoder="pyav"), step=25), decord_frames):
        assert i == j
        assert np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() < 0.5
    for _, rgb in iter_frames(replace(p, decoder="pyav")):
        pyav_means.append(float(rgb[::4, ::4].mean()))
    assert np.allclose(pyav_means, decoded[name].means, atol=0.5)


@needs_data
def test_to_dict_round_trips_through_json(probes):
    p = probes["pyfeat__face_noface.mov"]
    data = json.loads(json.dumps(p.to_dict()))
    assert data["path"] == str(p.path) and data["decoder"] == "decord"
    assert len(data["timestamps"]) == 169 and all(data["present"])
    back = VideoProbe.from_dict(data)
    assert back.to_dict() == p.to_dict()
    assert np.array_equal(back.timestamps, p.timestamps)
    with pytest.raises(ValueError):
        p.timestamps[0] = 1.0  # read-only arrays: a frozen probe stays frozen


@needs_data
def test_no_face_verified_shows_why_decord_is_refused(verified) -> None:
    p = verified["pyfeat__no_face.mp4"]
    assert (p.frame_count, p.decoder) == (95, "pyav")
    assert any("decord reports 98 frames" in n for n in p.notes)


@needs_data
@pytest.mark.parametrize("name", CLIPS)
def test_decoder_rule_agrees_with_the_full_check(probes, verified, name) -> None:
    """The rule ingest uses by default picks what decoding both ways picks, on every clip."""
    fast, full = probes[name], verified[name]
    assert (fast.decoder, fast.stream_index, fast.frame_count) == (full.decoder, full.stream_index, full.frame_count)
    assert np.array_equal(fast.timestamps, full.timestamps)
