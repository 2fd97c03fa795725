"""Deterministic, atomic, resumable: same bytes every time, nothing half-written at OUT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.errors import ConfigError
from affdata.export import export_part
from tests.affdata.export.conftest import tree_digest

SMALL = {"split": "official", "part": "train", "shard_size": 40, "row_group_size": 16}


class Crash(Exception):
    pass


def _crash_after(n: int):
    done = [0]

    def progress(k: int) -> None:
        done[0] += k
        if done[0] >= n:
            raise Crash(f"killed after {done[0]}")

    return progress


def test_same_store_and_arguments_give_identical_bytes_with_any_workers(loaded: Store, tmp_path: Path) -> None:
    a = export_part(loaded, out=tmp_path / "a", **SMALL)
    export_part(loaded, out=tmp_path / "b", **SMALL)
    c = export_part(loaded, out=tmp_path / "c", workers=2, **SMALL)
    assert a.shards >= 3
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") == tree_digest(tmp_path / "c")
    assert a.manifest_sha256 == c.manifest_sha256
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.previous"))
    text = (tmp_path / "a" / "meta" / "info.json").read_text()
    assert str(tmp_path) not in text  # nothing machine-specific in the manifest


def test_recycled_worker_pools_give_the_same_bytes(loaded: Store, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh pool after every video per worker (affdata.workers) changes nothing in the output."""
    import affdata.export.run

    a = export_part(loaded, out=tmp_path / "a", **SMALL)
    monkeypatch.setattr(affdata.export.run, "RECYCLE_EVERY", 1)
    b = export_part(loaded, out=tmp_path / "b", workers=2, **SMALL)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") and a.rows == b.rows


def test_a_killed_export_leaves_nothing_and_resumes_to_the_same_bytes(loaded: Store, tmp_path: Path) -> None:
    reference = export_part(loaded, out=tmp_path / "ref", **SMALL)
    out = tmp_path / "out"
    with pytest.raises(Crash):
        export_part(loaded, out=out, progress=_crash_after(reference.rows * 2 // 3), **SMALL)
    assert not out.exists()
    staging = tmp_path / "out.partial"
    state = json.loads((staging / "staging.json").read_text())
    assert len(state["shards"]) >= 2 and not (staging / "meta" / "info.json").exists()
    resumed = export_part(loaded, out=out, **SMALL)
    assert resumed.resumed_shards == len(state["shards"])
    assert tree_digest(out) == tree_digest(tmp_path / "ref")
    assert not staging.exists()


def test_resume_drops_a_damaged_shard_and_different_arguments_start_over(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(Crash):
        export_part(loaded, out=out, progress=_crash_after(130), **SMALL)
    staging = tmp_path / "out.partial"
    state = json.loads((staging / "staging.json").read_text())
    assert len(state["shards"]) == 3
    with open(staging / state["shards"][1]["path"], "r+b") as f:  # flip a byte of the second shard
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    resumed = export_part(loaded, out=out, **SMALL)
    assert resumed.resumed_shards == 1  # shard 0 kept; the damaged one and what follows redone
    assert tree_digest(out) == tree_digest(export_part(loaded, out=tmp_path / "ref", **SMALL).out)
    with pytest.raises(Crash):
        export_part(loaded, out=out, progress=_crash_after(130), **SMALL)
    other = export_part(loaded, out=out, **{**SMALL, "size": 64})
    assert other.resumed_shards == 0  # different arguments: started over
    assert json.loads((out / "meta" / "info.json").read_text())["image"]["size"] == 64


def test_a_failed_rerun_keeps_the_previous_export(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_part(loaded, out=out, **SMALL)
    before = tree_digest(out)
    with pytest.raises(Crash):
        export_part(loaded, out=out, progress=_crash_after(100), **{**SMALL, "size": 64})
    assert tree_digest(out) == before  # the previous export, untouched
    # an export interrupted between moving the old export aside and the new one in
    (tmp_path / "out").rename(tmp_path / "out.previous")
    again = export_part(loaded, out=out, **SMALL)
    assert tree_digest(out) == before and again.rows > 0
    assert not (tmp_path / "out.previous").exists()


def test_out_that_is_not_an_export_is_refused(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an affdata export"):
        export_part(loaded, out=out, **SMALL)
    assert (out / "notes.txt").read_text() == "keep me"
