"""Faults during `affdata ingest videos` stay with the file that has them.

A bad file beside good ones with two workers, a worker process that dies in the middle of a
probe, a file deleted while it is being probed: each is one failed file, and every other file
goes in.
"""

from __future__ import annotations

import importlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.video import probe
from affdata.videos import ingest_videos
from affdata.workers import WorkerDiedError, map_in_workers

GOOD = ["pyfeat__single_face.mp4", "liveportrait__driving_d0.mp4", "dlib__elon-musk-smoke.gif"]


@pytest.fixture
def clips(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in GOOD:
        shutil.copy(shared_data / "videos" / name, folder / name)
    return folder


def _count(store: Store, table: str) -> int:
    return store.scalar(f"SELECT COUNT(*) FROM {table}")


def _statuses(report) -> dict[str, str]:
    return {Path(o.path).name: o.status for o in report.outcomes}


# Run inside worker processes (looked up there by module and name), so they live at module level.

def probe_or_exit(path: Path, fps: float | None = None, verify: bool = False):
    if path.name.startswith("crash"):
        os._exit(3)  # as a segfault in a decoder would: no exception, no clean-up
    return probe(path, fps=fps, verify=verify)


def probe_or_kill(path: Path, fps: float | None = None, verify: bool = False):
    if path.name.startswith("crash"):
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
    return probe(path, fps=fps, verify=verify)


def square_or_exit(n: int) -> int:
    if n % 7 == 3:
        os._exit(1)
    if n % 5 == 4:
        raise ValueError(f"no square for {n}")
    return n * n


def test_a_text_file_named_mp4_fails_alone_with_two_workers(store: Store, clips: Path) -> None:
    """Before the fix its VideoError could not be unpickled, which broke the pool: every file
    failed with BrokenProcessPool and no video was stored."""
    (clips / "notes.mp4").write_text("this is not a video\n")
    report = ingest_videos(store, [clips], workers=2)
    assert _statuses(report) == {**{n: "added" for n in GOOD}, "notes.mp4": "failed"}
    assert "not a readable video" in report.failed[0].reason
    assert _count(store, "video") == len(GOOD)


@pytest.mark.parametrize("dying_probe", [probe_or_exit, probe_or_kill], ids=["os._exit", "SIGKILL"])
def test_a_worker_that_dies_takes_only_its_own_file(store: Store, clips: Path, dying_probe,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import affdata.videos

    shutil.copy(clips / GOOD[0], clips / "crash.mp4")
    shutil.copy(clips / GOOD[1], clips / "crash2.mp4")
    monkeypatch.setattr(affdata.videos, "_probe_one", dying_probe)
    monkeypatch.setattr(affdata.videos, "RECYCLE_EVERY", 2)  # pool replacement and breakage together
    report = ingest_videos(store, [clips], workers=2)
    assert _statuses(report) == {**{n: "added" for n in GOOD}, "crash.mp4": "failed", "crash2.mp4": "failed"}
    assert all("worker process died" in o.reason for o in report.failed)
    assert _count(store, "video") == len(GOOD)
    assert _count(store, "frame") == store.scalar("SELECT SUM(frame_count) FROM video")


def test_map_in_workers_rebuilds_the_pool_after_each_death() -> None:
    """Many tasks, several that kill their worker: each other task gets its own result once."""
    results = {}
    for item, result, error in map_in_workers(square_or_exit, range(30), 2, recycle_every=3):
        assert item not in results
        results[item] = result if error is None else error
    assert sorted(results) == list(range(30))
    for n, got in results.items():
        if n % 7 == 3:
            assert isinstance(got, WorkerDiedError), n
        elif n % 5 == 4:
            assert isinstance(got, ValueError) and str(got) == f"no square for {n}"
        else:
            assert got == n * n


def test_a_video_deleted_while_it_is_probed_is_one_failure(store: Store, clips: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker. ``vanish.mp4`` is deleted after its container was read and before it was
    hashed; ``gone.mp4`` after discovery and before its probe. Before the fix the first aborted
    the whole run with FileNotFoundError."""
    import affdata.videos

    probe_module = importlib.import_module("affdata.video.probe")  # the package exports probe()

    shutil.copy(clips / GOOD[0], clips / "vanish.mp4")
    shutil.copy(clips / GOOD[1], clips / "gone.mp4")
    real_hash, real_list = probe_module.file_sha256, affdata.videos.list_videos

    def delete_then_hash(path):
        if Path(path).name == "vanish.mp4":
            Path(path).unlink()
        return real_hash(path)

    def list_then_delete(*args, **kwargs):
        found = real_list(*args, **kwargs)
        (clips / "gone.mp4").unlink()
        return found

    monkeypatch.setattr(probe_module, "file_sha256", delete_then_hash)
    monkeypatch.setattr(affdata.videos, "list_videos", list_then_delete)
    report = ingest_videos(store, [clips])
    assert _statuses(report) == {**{n: "added" for n in GOOD}, "vanish.mp4": "failed", "gone.mp4": "failed"}
    reasons = {Path(o.path).name: o.reason for o in report.failed}
    assert reasons == {"vanish.mp4": "disappeared while it was being probed", "gone.mp4": "does not exist"}
    assert _count(store, "video") == len(GOOD)


def test_a_frame_deleted_while_its_folder_is_probed_names_the_frame(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import affdata.video.hashing as hashing
    from PIL import Image

    folder = tmp_path / "frames" / "clip1"
    folder.mkdir(parents=True)
    for k in (1, 2, 3):
        Image.new("RGB", (8, 8), (k, 0, 0)).save(folder / f"{k:05d}.png")
    real_hash = hashing.file_sha256

    def delete_then_hash(path):
        if Path(path).name == "00002.png":
            Path(path).unlink()
        return real_hash(path)

    monkeypatch.setattr(hashing, "file_sha256", delete_then_hash)
    report = ingest_videos(store, [tmp_path / "frames"])
    assert [o.status for o in report.outcomes] == ["failed"]
    assert report.failed[0].reason == f"{folder / '00002.png'} disappeared while it was being probed"
    assert _count(store, "video") == 0
