"""iter_frames on real clips: frame selection, resizing, argument checks, lazy imports."""

from __future__ import annotations

import gc
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from affdata.video import iter_frames, probe
from affdata.video.hashing import file_sha256

from .conftest import needs_data

CLIP = "pyfeat__single_face.mp4"  # 72 frames, 640x360, decord
EDIT_LIST_CLIP = "pyfeat__no_face.mp4"  # 95 frames, pyav


@pytest.fixture(scope="module")
def small(probes):
    return probes[CLIP]


@pytest.fixture(scope="module")
def all_frames(small):
    return dict(iter_frames(replace(small, decoder="pyav")))


@needs_data
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_selection_equals_the_same_frames_of_a_full_decode(small, all_frames, decoder):
    p = replace(small, decoder=decoder)
    cases = [
        ({"start": 5, "stop": 20, "step": 4}, [5, 9, 13, 17]),
        ({"indices": [0, 1, 30, 71]}, [0, 1, 30, 71]),
        ({"indices": np.array([3, 60])}, [3, 60]),
        ({"start": 70, "stop": 500}, [70, 71]),  # stop past the end is clipped, as in slicing
        ({"start": 80}, []),
        ({"indices": []}, []),
    ]
    for kwargs, expected in cases:
        got = list(iter_frames(p, **kwargs))
        assert [i for i, _ in got] == expected, kwargs
        for i, rgb in got:
            assert np.array_equal(rgb, all_frames[i]), (kwargs, i)


@needs_data
def test_stopping_early_and_reading_again(small):
    frames = iter_frames(small)
    assert [next(frames)[0] for _ in range(3)] == [0, 1, 2]
    frames.close()  # frees the reader; a new iterator starts from frame 0 again
    assert next(iter_frames(small))[0] == 0


@needs_data
@pytest.mark.parametrize("decoder", ["decord", "pyav"])
def test_resize(small, all_frames, decoder):
    (i, rgb), = iter_frames(replace(small, decoder=decoder), indices=[10], size=(320, 180))
    assert i == 10 and rgb.shape == (180, 320, 3) and rgb.dtype == np.uint8
    reference = all_frames[10][::2, ::2].astype(np.int16)  # a crude downscale of the same frame
    assert np.abs(rgb.astype(np.int16) - reference).mean() < 6


@needs_data
def test_pyav_record_from_a_store_row(probes, videos_dir):
    p = probes[EDIT_LIST_CLIP]
    row = SimpleNamespace(
        path=str(videos_dir / EDIT_LIST_CLIP), kind="file", decoder="pyav", stream_index=0, frame_count=95
    )
    assert [i for i, _ in iter_frames(row, step=10)] == list(range(0, 95, 10))
    assert sum(1 for _ in iter_frames(row)) == p.frame_count


@needs_data
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"indices": [5, 3]}, "strictly increasing"),
        ({"indices": [1, 1]}, "strictly increasing"),
        ({"indices": [0, 72]}, r"\[0, 72\)"),
        ({"indices": [-1]}, r"\[0, 72\)"),
        ({"indices": [1], "step": 2}, "either indices"),
        ({"step": 0}, "step"),
        ({"start": -5}, ">= 0"),
        ({"size": (0, 10)}, "size"),
    ],
)
def test_bad_arguments_fail_before_decoding(small, kwargs, message):
    with pytest.raises(ValueError, match=message):
        iter_frames(small, **kwargs)


@needs_data
def test_content_hash_is_stable(probes, videos_dir, tmp_path):
    p = probes[CLIP]
    assert p.content_hash == hashlib.sha256((videos_dir / CLIP).read_bytes()).hexdigest()
    assert probe(videos_dir / CLIP).content_hash == p.content_hash
    copy = tmp_path / "renamed.mp4"
    shutil.copyfile(videos_dir / CLIP, copy)
    assert probe(copy).content_hash == p.content_hash  # identity follows the bytes, not the path
    with open(copy, "r+b") as f:  # one byte changed in the middle of the media data
        f.seek(p.size_bytes // 2)
        byte = f.read(1)
        f.seek(p.size_bytes // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert file_sha256(copy) != p.content_hash


def test_importing_affdata_video_loads_neither_decord_nor_pyav():
    """Guard (d): decord imported before torch can hang DataLoader workers."""
    code = (
        "import sys, affdata.video; "
        "print(sorted(m for m in ('decord', 'av') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@needs_data
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc to read memory use")
def test_readers_do_not_pile_up(probes):
    """Guard (b): one decord reader per call, freed at the end; memory stays flat over many."""
    p = probes["liveportrait__driving_d18.mp4"]
    assert p.decoder == "decord"

    def rss_mib() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    for _ in range(5):
        list(iter_frames(p, indices=[0, 5]))
    gc.collect()
    before = rss_mib()
    for _ in range(60):
        list(iter_frames(p, indices=[0, 5]))
    gc.collect()
    assert rss_mib() - before < 25  # a leaked reader holds several frames (0.7 MiB each)
