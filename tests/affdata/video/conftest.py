"""Shared fixtures: the real clips in ../shared/data/videos, probed and decoded once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from affdata.video import VideoProbe, iter_frames, probe

DATA_DIR = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
VIDEOS_DIR = DATA_DIR / "videos"
CLIPS = sorted(p.name for p in VIDEOS_DIR.iterdir()) if VIDEOS_DIR.is_dir() else []

needs_data = pytest.mark.skipif(
    not VIDEOS_DIR.is_dir(), reason=f"real test clips not found at {VIDEOS_DIR} (../shared/data/videos)"
)


@dataclass(frozen=True)
class Decoded:
    """What decoding a whole clip once with its recorded decoder gave."""

    indices: list[int]
    shapes: set[tuple[int, ...]]
    dtypes: set[str]
    means: np.ndarray  # per-frame mean pixel value, to compare decoders cheaply


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    if not VIDEOS_DIR.is_dir():
        pytest.skip(f"real test clips not found at {VIDEOS_DIR} (../shared/data/videos)")
    return VIDEOS_DIR


@pytest.fixture(scope="session")
def probes(videos_dir: Path) -> dict[str, VideoProbe]:
    """Every clip probed as ingest does by default: no pixels decoded, decoder by rule."""
    return {name: probe(videos_dir / name) for name in CLIPS}


@pytest.fixture(scope="session")
def verified(videos_dir: Path) -> dict[str, VideoProbe]:
    """Every clip probed with ``verify``: first frame decoded, decord checked against PyAV."""
    return {name: probe(videos_dir / name, verify=True) for name in CLIPS}


@pytest.fixture(scope="session")
def decoded(probes: dict[str, VideoProbe]) -> dict[str, Decoded]:
    """Every clip decoded in full once (about 8000 frames, a few seconds)."""
    out: dict[str, Decoded] = {}
    for name, p in probes.items():
        indices, shapes, dtypes, means = [], set(), set(), []
        for index, rgb in iter_frames(p):
            indices.append(index)
            shapes.add(rgb.shape)
            dtypes.add(str(rgb.dtype))
            means.append(float(rgb[::4, ::4].mean()))
        out[name] = Decoded(indices, shapes, dtypes, np.array(means))
    return out
