"""A video changed since ingest is refused before any shard is written (size, mtime, sampled
bytes; the full hash with --verify), and its identity is what ingest stored."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from affdata.db import Store
from affdata.errors import VideoChangedError
from affdata.export import export_part
from affdata.synthetic import DatasetSummary
from affdata.video import probe
from affdata.video.identity import SAMPLE_BLOCK_BYTES, SAMPLE_BLOCKS, file_identity, identity
from tests.affdata.export.conftest import load_boxes

SMALL = {"split": "official", "part": "train", "shard_size": 40, "row_group_size": 16}
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def own(store: Store, dataset: DatasetSummary, tmp_path: Path) -> tuple[Store, Path]:
    """The dataset ingested from a copy of its videos (which the tests then change)."""
    from affdata.labels import import_labels
    from affdata.videos import ingest_videos

    videos = tmp_path / "videos"
    shutil.copytree(dataset.paths["videos"], videos)
    assert ingest_videos(store, [videos], subject_pattern=r"^(subj\d+)_").ok
    assert import_labels(store, [dataset.paths["annotations"]], as_split="official").ok
    load_boxes(store, dataset.paths["boxes"])
    return store, videos


def _train_video(store: Store) -> Path:
    with store.connect() as conn:
        return Path(conn.execute(sa.text(
            "SELECT v.path FROM video v JOIN split_assignment a ON a.video_id = v.id "
            "WHERE a.part = 'train' ORDER BY v.name LIMIT 1")).scalar_one())


def _rewrite_in_place(path: Path, offset: int) -> None:
    """Change bytes without changing the size, and put the modification time back."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(16)
        f.seek(offset)
        f.write(bytes(b ^ 0x5A for b in old))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _stored(store: Store, path: Path) -> tuple:
    with store.connect() as conn:
        return tuple(conn.execute(sa.text("SELECT size_bytes, mtime_ns, sample_hash FROM video WHERE path = :p"),
                                  {"p": str(path)}).one())


def test_ingest_stores_the_identity_that_export_checks(own: tuple[Store, Path]) -> None:
    store, _ = own
    path = _train_video(store)
    now = identity(path, "file")
    assert _stored(store, path) == (now.size_bytes, now.mtime_ns, now.sample_hash)


def test_same_size_same_mtime_changed_bytes_is_refused_before_any_shard(own: tuple[Store, Path], tmp_path: Path) -> None:
    store, _ = own
    path = _train_video(store)
    _rewrite_in_place(path, path.stat().st_size // 2)
    with pytest.raises(VideoChangedError) as caught:
        export_part(store, out=tmp_path / "out", **SMALL)
    message = str(caught.value)
    assert message.startswith(f"{path}: changed since it was ingested as video '{path.stem}'")
    assert "same size, but the sampled bytes differ" in message
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    assert not (tmp_path / "out.lock").exists()


def test_verify_hashes_in_full_what_the_sample_does_not_see(own: tuple[Store, Path], tmp_path: Path) -> None:
    """A change the sample misses (stood in for by storing the changed file's sample) needs --verify."""
    store, _ = own
    path = _train_video(store)
    _rewrite_in_place(path, 100)
    now = file_identity(path)
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE video SET sample_hash = :s WHERE path = :p"), {"s": now.sample_hash, "p": str(path)})
    with pytest.raises(VideoChangedError, match="same size, but the content sha256 differs"):
        export_part(store, out=tmp_path / "out", verify=True, **SMALL)
    assert not (tmp_path / "out.partial").exists()


def test_a_new_mtime_alone_is_checked_in_full_and_then_remembered(own: tuple[Store, Path], tmp_path: Path) -> None:
    store, _ = own
    path = _train_video(store)
    size, mtime, sample = _stored(store, path)
    os.utime(path, ns=(mtime + 5 * 10**9, mtime + 5 * 10**9))  # touched (or copied): same bytes
    assert export_part(store, out=tmp_path / "a", **SMALL).rows > 0
    assert _stored(store, path) == (size, mtime + 5 * 10**9, sample)
    # touched and changed at the same size: the full hash refuses it
    _rewrite_in_place(path, 100)
    with store.transaction() as conn:  # the sample misses it (as in the test above)
        conn.execute(sa.text("UPDATE video SET sample_hash = :s WHERE path = :p"),
                     {"s": file_identity(path).sample_hash, "p": str(path)})
    os.utime(path, ns=(mtime, mtime))
    with pytest.raises(VideoChangedError, match="content sha256 differs"):
        export_part(store, out=tmp_path / "b", **SMALL)


def test_videos_ingested_before_0005_are_hashed_once_and_filled_in(own: tuple[Store, Path], tmp_path: Path) -> None:
    store, _ = own
    path = _train_video(store)
    stored = _stored(store, path)
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE video SET mtime_ns = NULL, sample_hash = NULL"))
    assert export_part(store, out=tmp_path / "a", **SMALL).rows > 0
    assert _stored(store, path) == stored
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE video SET mtime_ns = NULL, sample_hash = NULL"))
    _rewrite_in_place(path, 100)
    with pytest.raises(VideoChangedError, match="content sha256 differs"):
        export_part(store, out=tmp_path / "b", **SMALL)


def test_a_missing_or_resized_video_is_named(own: tuple[Store, Path], tmp_path: Path) -> None:
    store, _ = own
    path = _train_video(store)
    path.rename(path.with_suffix(".gone"))
    with pytest.raises(VideoChangedError, match=f"^{path}: changed since it was ingested .*: missing"):
        export_part(store, out=tmp_path / "out", **SMALL)
    path.with_suffix(".gone").rename(path)
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(VideoChangedError, match=r": size (\d+) bytes, \d+ at ingest"):
        export_part(store, out=tmp_path / "out", **SMALL)


def test_the_command_line_refuses_in_one_line(own: tuple[Store, Path], tmp_path: Path) -> None:
    store, _ = own
    path = _train_video(store)
    _rewrite_in_place(path, path.stat().st_size // 2)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AFFDATA_DB", None)
    result = subprocess.run([sys.executable, "-m", "cli.affdata_app", "export", "--db", store.url, "--split",
                             "official", "--part", "train", "--out", str(tmp_path / "out"), "--json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "sampled bytes differ" in lines[0], result.stderr


def test_a_large_file_is_sampled_from_first_to_last_block(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = np.random.default_rng(0).integers(0, 256, 3 * SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES, dtype=np.uint8)
    path.write_bytes(data.tobytes())
    before = file_identity(path)
    assert before.size_bytes == len(data)
    for offset, seen in ((0, True), (len(data) - 1, True), (SAMPLE_BLOCK_BYTES + 10, False)):
        _rewrite_in_place(path, min(offset, len(data) - 16))
        assert (file_identity(path).sample_hash != before.sample_hash) == seen, offset
        _rewrite_in_place(path, min(offset, len(data) - 16))  # xor again: back to the original
        assert file_identity(path) == before


def test_a_frame_folder_identity_sees_a_changed_image(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(1, 6):
        Image.fromarray(np.full((16, 16, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i:05d}.png")
    info = probe(folder)
    now = identity(folder, "frames")
    assert (info.size_bytes, info.mtime_ns, info.sample_hash) == (now.size_bytes, now.mtime_ns, now.sample_hash)
    _rewrite_in_place(folder / "00003.png", 40)
    assert identity(folder, "frames").sample_hash != info.sample_hash


def test_ingesting_the_same_file_again_refreshes_its_identity(own: tuple[Store, Path]) -> None:
    from affdata.videos import ingest_videos

    store, videos = own
    path = _train_video(store)
    size, mtime, sample = _stored(store, path)
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))
    report = ingest_videos(store, [path])
    assert [o.status for o in report.outcomes] == ["present"]
    assert _stored(store, path) == (size, mtime + 10**9, sample)
