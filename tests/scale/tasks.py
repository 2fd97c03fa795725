"""Task functions the cluster tests ship to Dask workers (importable there by module and name).

A slow task writes its worker's pid to a marker file the first time it runs, so the test can
kill that worker process in the middle of it; when Dask reruns it the marker is there and it
goes through at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

MARKERS = "AFFDATA_TEST_MARKERS"


def _first_time(tag: str) -> Path | None:
    folder = os.environ.get(MARKERS)
    if not folder:
        return None
    marker = Path(folder) / f"{tag}.pid"
    try:
        with open(marker, "x") as f:
            f.write(str(os.getpid()))
        return marker
    except FileExistsError:
        return None


def slow_once(tag: str, seconds: float = 30.0) -> None:
    """The first run of ``tag`` stalls (long enough to be killed); later runs do not."""
    if _first_time(tag) is not None:
        time.sleep(seconds)


def stall_slow(tag: str) -> str:
    """``slow...`` tags stall the first time; the others return at once."""
    if tag.startswith("slow"):
        slow_once(tag)
    return tag


def probe_slow_once(path: Path, fps: float | None = None, verify: bool = False):
    from affdata.video import probe

    if path.name.startswith("slow"):
        slow_once(path.name)
    return probe(path, fps=fps, verify=verify)


def crop_slow_once(job):
    from affdata.export.encode import crop_video_arrays

    slow_once("crop")  # the first video to start stalls (and is killed); the rest go through
    return crop_video_arrays(job)


def crop_slowly(job):
    """Every video a little slow, so a client can be killed mid-export."""
    from affdata.export.encode import crop_video_arrays

    time.sleep(float(os.environ.get("AFFDATA_TEST_CROP_DELAY", "0.5")))
    return crop_video_arrays(job)


def square(n: int) -> int:
    if n == 3:
        raise ValueError("three is bad")
    return n * n


def predict_shard_slow_once(job):
    """affmodels predict's task; the first shard to start stalls (and is killed)."""
    from affmodels.predict import predict_shard

    slow_once("predict")
    return predict_shard(job)


def model_loads(sha256: str) -> int:
    """Runs on a worker: how often this process loaded the checkpoint of ``sha256``."""
    from affmodels.predict import MODELS

    return MODELS.loads.get(sha256, 0)


def set_env(values: dict) -> None:
    """Runs on a worker: set (value str) or unset (value None) environment variables."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
