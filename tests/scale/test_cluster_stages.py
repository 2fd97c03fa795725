"""ingest videos and export on a Dask LocalCluster: same store rows and same bytes as locally,
a worker killed by pid mid-task changes nothing, one bad video fails alone, paths mapped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata.db import Store
from affdata.errors import VideoError
from affdata.executor import DaskExecutor, PathMap
from affdata.export import export_part
from affdata.videos import ingest_videos
from tests.affdata.export.conftest import tree_digest

GOOD = ["pyfeat__single_face.mp4", "liveportrait__driving_d0.mp4", "dlib__elon-musk-smoke.gif"]
SMALL = {"split": "official", "part": "train", "shard_size": 40, "row_group_size": 16}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clips(shared_data: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in GOOD:
        shutil.copy(shared_data / "videos" / name, folder / name)
    shutil.copy(shared_data / "videos" / GOOD[0], folder / "slow_copy.mp4")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    return folder


def _paths(store: Store) -> list[str]:
    with store.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT path FROM video")).scalars())


def test_ingest_on_dask_survives_a_killed_worker_and_fails_the_bad_file_alone(
        store: Store, clips: Path, dask_local: DaskExecutor, killer, monkeypatch: pytest.MonkeyPatch) -> None:
    import affdata.videos
    from tests.scale.tasks import probe_slow_once

    monkeypatch.setattr(affdata.videos, "_probe_one", probe_slow_once)  # shipped by reference
    report = ingest_videos(store, [clips], executor=dask_local)
    assert killer.killed, "no worker was killed"
    status = {Path(o.path).name: o.status for o in report.outcomes}
    assert status.pop("broken.mp4") == "failed"
    # slow_copy.mp4 has the same content as GOOD[0]: one of the two is 'present'
    assert sorted(status.values()) == ["added", "added", "added", "present"]
    assert store.scalar("SELECT COUNT(*) FROM video") == 3
    expected = sum(o.frames for o in report.outcomes if o.status == "added")
    assert store.scalar("SELECT COUNT(*) FROM frame") == expected  # nothing twice from the rerun


def test_ingest_maps_paths_for_workers_and_stores_the_client_path(
        store: Store, clips: Path, dask_local: DaskExecutor, tmp_path: Path) -> None:
    (clips / "broken.mp4").unlink()
    (clips / "slow_copy.mp4").unlink()
    worker_view = tmp_path / "worker-view"
    worker_view.symlink_to(clips)
    mapped = dask_local.with_path_map(PathMap.parse([f"{clips}={worker_view}"]))
    report = ingest_videos(store, [clips], executor=mapped)
    assert report.ok and len(report.outcomes) == 3
    assert _paths(store) == sorted(str(clips / n) for n in GOOD)  # the client's paths
    # mapped to where the workers find nothing: the file fails, named by the client's path
    nowhere = dask_local.with_path_map(PathMap.parse([f"{clips}={tmp_path / 'nowhere'}"]))
    shutil.copy(clips / GOOD[1], clips / "late.mp4")
    again = ingest_videos(store, [clips / "late.mp4"], executor=nowhere)
    assert [(o.status, o.path) for o in again.outcomes] == [("failed", str(clips / "late.mp4"))]


def test_export_on_dask_is_byte_identical_even_with_a_worker_killed_mid_video(
        loaded: Store, tmp_path: Path, dask_local: DaskExecutor, killer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import affdata.export.run
    from tests.scale.tasks import crop_slow_once

    reference = export_part(loaded, out=tmp_path / "ref", **SMALL)
    monkeypatch.setattr(affdata.export.run, "crop_video_arrays", crop_slow_once)
    result = export_part(loaded, out=tmp_path / "dask", executor=dask_local, **SMALL)
    assert killer.killed, "no worker was killed"
    assert result.rows == reference.rows and result.manifest_sha256 == reference.manifest_sha256
    assert tree_digest(tmp_path / "ref") == tree_digest(tmp_path / "dask")


def test_export_on_dask_reads_videos_through_the_path_map_and_fails_on_the_missing_one(
        loaded: Store, tmp_path: Path, dask_local: DaskExecutor, dataset) -> None:
    videos = dataset.paths["videos"]
    view = tmp_path / "view"
    view.mkdir()
    names = sorted(p.name for p in videos.iterdir())
    for name in names:
        (view / name).symlink_to(videos / name)
    mapped = dask_local.with_path_map(PathMap.parse([f"{videos}={view}"]))
    reference = export_part(loaded, out=tmp_path / "ref", **SMALL)
    export_part(loaded, out=tmp_path / "mapped", executor=mapped, **SMALL)
    assert tree_digest(tmp_path / "ref") == tree_digest(tmp_path / "mapped")
    # the last video cannot be found where the workers look: that video fails, named by the
    # client's path; the complete shards before it stay for a resume
    last = reference.manifest["shards"][-1]["first"]["video"]  # a video of the part, not its first
    (view / f"{last}.mp4").unlink()
    with pytest.raises(VideoError) as info:
        export_part(loaded, out=tmp_path / "broken", executor=mapped, **SMALL)
    assert str(videos) in str(info.value) and str(view) not in str(info.value)
    assert not (tmp_path / "broken").exists()
    staged = json.loads((tmp_path / "broken.partial" / "staging.json").read_text())
    assert staged["shards"]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AFFDATA_TEST_CROP_DELAY": "0.7"}
    env.pop("AFFDATA_DB", None)
    env.pop("AFFDATA_CLUSTER", None)
    return env


CLIENT = """
import sys
import affdata.export.run
from tests.scale.tasks import crop_slowly
affdata.export.run.crop_video_arrays = crop_slowly  # shipped to the workers by reference
from cli.affdata_app import main
sys.argv = ["affdata", *sys.argv[1:]]
main()
"""


def _cli(store: Store, out: Path) -> list[str]:
    return [sys.executable, "-c", CLIENT, "export", "--db", store.url, "--split", "official",
            "--part", "train", "--out", str(out), "--shard-size", "40", "--row-group-size", "16",
            "--cluster", "local:2", "--json"]


@pytest.mark.slow
def test_a_killed_client_resumes_on_the_cluster(loaded: Store, tmp_path: Path) -> None:
    reference = export_part(loaded, out=tmp_path / "ref", **SMALL)
    out = tmp_path / "out"
    state = tmp_path / "out.partial" / "staging.json"
    proc = subprocess.Popen(_cli(loaded, out), cwd=ROOT, env=_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and proc.poll() is None:
            try:
                if json.loads(state.read_text())["shards"]:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)  # the client, by its pid
        proc.wait()
    finally:
        try:  # its LocalCluster's worker processes (started in the client's session) go too
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
    assert not out.exists()
    again = subprocess.run(_cli(loaded, out), cwd=ROOT, env={**_env(), "AFFDATA_TEST_CROP_DELAY": "0"},
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["resumed_shards"] >= 1
    assert tree_digest(out) == tree_digest(tmp_path / "ref")
    assert result["manifest_sha256"] == reference.manifest_sha256


def test_detect_faces_on_dask_stores_the_same_boxes_and_fails_a_missing_file_alone(
        store: Store, shared_data: Path, tmp_path: Path, dask_local: DaskExecutor) -> None:
    from affdata.faces import DetectOptions, detect_faces

    clips = tmp_path / "faces"
    clips.mkdir()
    for name in ("pyfeat__single_face.mp4", "pyfeat__no_face.mp4"):
        shutil.copy(shared_data / "videos" / name, clips / name)
    assert ingest_videos(store, [clips]).ok
    options = DetectOptions(stride=12)
    local = detect_faces(store, all_videos=True, options=options)
    boxes = _boxes(store)
    on_dask = detect_faces(store, all_videos=True, options=options, executor=dask_local)
    assert [(v.video, v.status, v.tracks) for v in on_dask.videos] == \
        [(v.video, v.status, v.tracks) for v in local.videos]
    assert _boxes(store) == boxes and len(boxes) == 72
    # workers that cannot find one file: that video fails, the other is detected again
    view = tmp_path / "view"
    view.mkdir()
    (view / "pyfeat__single_face.mp4").symlink_to(clips / "pyfeat__single_face.mp4")
    partial = detect_faces(store, all_videos=True, options=options,
                           executor=dask_local.with_path_map(PathMap.parse([f"{clips}={view}"])))
    status = {v.video: v.status for v in partial.videos}
    assert status == {"pyfeat__no_face": "failed", "pyfeat__single_face": "detected"}
    assert _boxes(store) == boxes


def _boxes(store: Store) -> list:
    with store.connect() as conn:
        return conn.execute(sa.text(
            "SELECT t.name, b.frame_idx, b.x, b.y, b.w, b.h, b.score "
            "FROM face_box b JOIN track t ON t.id = b.track_id ORDER BY t.name, b.frame_idx")).all()
