"""`affdata ingest videos` into the store: identity, idempotence, moves, broken input, concurrency."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata.db import Store
from affdata.videos import ingest_videos

SMALL = ["pyfeat__single_face.mp4", "liveportrait__driving_d0.mp4", "dlib__elon-musk-smoke.gif",
         "pyfeat__no_face.mp4"]


@pytest.fixture
def clips(shared_data: Path, tmp_path: Path) -> Path:
    """A folder of a few real clips (copies, so that tests may move and break them)."""
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in SMALL:
        shutil.copy(shared_data / "videos" / name, folder / name)
    return folder


def _count(store: Store, table: str) -> int:
    return store.scalar(f"SELECT COUNT(*) FROM {table}")


def test_ingest_registers_verified_facts_and_frames(store: Store, clips: Path) -> None:
    report = ingest_videos(store, [clips], subject_pattern=r"^([a-z]+)__")
    assert report.ok and report.count("added") == len(SMALL)
    rows = {r.name: r for r in store.session().execute(sa.text(
        "SELECT v.name, v.frame_count, v.decoder, v.codec, v.fps_num, v.fps_den, s.name AS subject,"
        " (SELECT COUNT(*) FROM frame f WHERE f.video_id = v.id) AS frames"
        " FROM video v LEFT JOIN subject s ON s.id = v.subject_id"))}
    assert rows["pyfeat__single_face"].frame_count == 72 == rows["pyfeat__single_face"].frames
    assert rows["dlib__elon-musk-smoke"].decoder == "pyav"  # decord refuses GIFs
    assert rows["dlib__elon-musk-smoke"].frames == 35
    assert rows["pyfeat__no_face"].frame_count == 95  # what decoding yields, not the container's 98
    assert rows["pyfeat__single_face"].subject == "pyfeat"
    assert rows["liveportrait__driving_d0"].subject == "liveportrait"
    assert _count(store, "subject") == 3


def test_ingesting_again_is_a_no_op_and_a_move_updates_the_path(store: Store, clips: Path, tmp_path: Path) -> None:
    ingest_videos(store, [clips])
    frames = _count(store, "frame")
    again = ingest_videos(store, [clips])
    assert again.count("present") == len(SMALL) and again.count("added") == 0
    assert _count(store, "frame") == frames
    moved_to = tmp_path / "elsewhere"
    moved_to.mkdir()
    shutil.move(clips / "pyfeat__single_face.mp4", moved_to / "renamed.mp4")
    report = ingest_videos(store, [moved_to])
    assert [o.status for o in report.outcomes] == ["moved"]
    assert report.outcomes[0].video == "pyfeat__single_face"  # the name labels use stays
    assert store.scalar("SELECT path FROM video WHERE name = 'pyfeat__single_face'") == str(
        (moved_to / "renamed.mp4").resolve())
    assert _count(store, "video") == len(SMALL) and _count(store, "frame") == frames


def test_a_copy_beside_the_original_is_reported_as_present(store: Store, clips: Path, tmp_path: Path) -> None:
    ingest_videos(store, [clips / "pyfeat__single_face.mp4"])
    copy = tmp_path / "copy.mp4"
    shutil.copy(clips / "pyfeat__single_face.mp4", copy)
    report = ingest_videos(store, [copy])
    assert report.outcomes[0].status == "present" and "same content" in report.outcomes[0].reason
    assert _count(store, "video") == 1


def test_broken_files_fail_alone_and_leave_nothing(store: Store, clips: Path, shared_data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    real = (shared_data / "videos" / "pyfeat__WolfgangLanger_Pexels.mp4").read_bytes()
    (bad / "truncated.mp4").write_bytes(real[: len(real) // 3])
    (bad / "text.mp4").write_text("this is not a video\n")
    (bad / "notes.txt").write_text("skipped, not failed\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    report = ingest_videos(store, [bad, clips, tmp_path / "missing.mp4", empty])
    failed = {Path(o.path).name: o.reason for o in report.failed}
    assert set(failed) == {"zero.mp4", "truncated.mp4", "text.mp4", "missing.mp4", "empty"}
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert failed["missing.mp4"] == "does not exist"
    assert failed["empty"] == "no videos in this folder"
    assert [Path(p).name for p, _ in report.skipped] == ["notes.txt"]
    assert report.count("added") == len(SMALL)  # the good files still went in
    names = {r[0] for r in store.session().execute(sa.text("SELECT path FROM video"))}
    assert not any("/bad/" in n for n in names)
    assert _count(store, "frame") == store.scalar("SELECT SUM(frame_count) FROM video")


def test_frame_folder_with_a_gap(store: Store, tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "cropped_aligned" / "video7"
    folder.mkdir(parents=True)
    for n in (1, 2, 4, 5):
        Image.new("RGB", (112, 112), (n * 20, 0, 0)).save(folder / f"{n:05d}.jpg")
    report = ingest_videos(store, [tmp_path / "cropped_aligned"], fps=25)
    assert report.ok and report.outcomes[0].video == "video7"
    assert store.scalar("SELECT frame_count FROM video") == 5
    assert store.scalar("SELECT decoder FROM video") == "images"
    with store.connect() as conn:
        present = [r[0] for r in conn.exec_driver_sql("SELECT present FROM frame ORDER BY idx")]
    assert [bool(p) for p in present] == [True, True, False, True, True]


def test_vfr_timestamps_are_stored(store: Store, shared_data: Path) -> None:
    ingest_videos(store, [shared_data / "videos" / "pyfeat__face_noface.mov"])
    assert store.scalar("SELECT is_vfr FROM video") in (True, 1)
    with store.connect() as conn:
        pts = [r[0] for r in conn.exec_driver_sql("SELECT pts_s FROM frame ORDER BY idx")]
    steps = [b - a for a, b in zip(pts, pts[1:])]
    assert len(pts) == 169 and pts[0] == 0.0
    assert min(steps) > 0.013 and max(steps) < 0.042 and max(steps) - min(steps) > 0.02


def test_two_processes_at_once_store_each_video_once(db_url: str, clips: Path) -> None:
    Store(db_url).close()
    env = {k: v for k, v in os.environ.items() if k != "AFFDATA_DB"}
    cmd = [sys.executable, "-m", "cli.affdata_app", "ingest", "videos", str(clips), "--db", db_url, "--json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    summaries = [json.loads(out)["summary"] for out, _ in results]
    assert sum(s["added"] for s in summaries) == len(SMALL)
    assert sum(s["present"] for s in summaries) == len(SMALL)
    with Store(db_url) as store:
        assert _count(store, "video") == len(SMALL)
        assert _count(store, "frame") == store.scalar("SELECT SUM(frame_count) FROM video")


def test_worker_processes_are_recycled_without_hanging(store: Store, clips: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers, a fresh pool after every video each: every clip still goes in, once."""
    import affdata.videos

    monkeypatch.setattr(affdata.videos, "RECYCLE_EVERY", 1)
    report = ingest_videos(store, [clips], workers=2)
    assert report.ok and report.count("added") == len(SMALL)
    assert _count(store, "frame") == store.scalar("SELECT SUM(frame_count) FROM video")


def test_an_unexpected_store_error_stops_the_ingest_without_hanging(
        store: Store, clips: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Registering runs in a thread beside the probing: an error there must reach the caller
    (not be lost, not leave the prober blocked on a full queue) and keep what was committed."""
    import affdata.videos as videos

    real, calls = videos.register, []

    def flaky(store_, info, subject=None, name=None):
        calls.append(name)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(store_, info, subject, name)

    monkeypatch.setattr(videos, "register", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest_videos(store, [clips])
    assert len(calls) == 2  # nothing registered after the error
    assert _count(store, "video") == 1
    assert _count(store, "frame") == store.scalar("SELECT frame_count FROM video")
