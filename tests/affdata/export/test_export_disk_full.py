"""A full disk during export: one line, the complete shards kept to resume from, the rest removed."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.errors import DiskFullError
from affdata.export import export_part
from affdata.export.shards import ShardWriter
from tests.affdata.export.conftest import tree_digest

SMALL = {"split": "official", "part": "train", "shard_size": 40, "row_group_size": 16}
ROOT = Path(__file__).resolve().parents[3]


def _full_after(monkeypatch: pytest.MonkeyPatch, flushes: int) -> None:
    """Row groups after the first ``flushes`` fail as a full disk would (Errno 28)."""
    real = ShardWriter._flush
    done = [0]

    def flush(self: ShardWriter, rows: int) -> None:
        done[0] += 1
        if done[0] > flushes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, rows)

    monkeypatch.setattr(ShardWriter, "_flush", flush)


@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_keeps_the_complete_shards_and_resumes_to_the_same_bytes(
        loaded: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """With workers, their spool files of videos ahead of the writer are removed too."""
    reference = export_part(loaded, out=tmp_path / "ref", **SMALL)
    out, staging = tmp_path / "out", tmp_path / "out.partial"
    _full_after(monkeypatch, 7)  # 40-row shards of 16+16+8-row groups: mid-way through shard 3
    with pytest.raises(DiskFullError) as caught:
        export_part(loaded, out=out, workers=workers, **SMALL)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{out}: no space left on the device while exporting (")
    assert " MiB free after clean-up" in message
    assert "kept the 2 complete shards (" in message and "run the same command again to resume" in message
    state = json.loads((staging / "staging.json").read_text())
    assert [s["path"] for s in state["shards"]] == ["data/shard-00000.parquet", "data/shard-00001.parquet"]
    assert sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()) == [
        "data/shard-00000.parquet", "data/shard-00001.parquet", "staging.json"]  # no half shard, no spool
    assert not out.exists() and not (tmp_path / "out.lock").exists()
    monkeypatch.undo()
    resumed = export_part(loaded, out=out, **SMALL)
    assert resumed.resumed_shards == 2 and resumed.rows == reference.rows
    assert tree_digest(out) == tree_digest(tmp_path / "ref") and not staging.exists()


def test_disk_full_before_a_shard_is_complete_removes_the_staging_folder(
        loaded: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _full_after(monkeypatch, 1)
    with pytest.raises(DiskFullError, match=r"removed .*out\.partial \(no complete shard to resume from\)"):
        export_part(loaded, out=tmp_path / "out", **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == []


def test_disk_full_while_writing_the_manifest(loaded: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last write of all fails: every shard is complete and kept."""
    import affdata.export.shards as shards

    def finish(self: shards.Staging, manifest: bytes) -> None:
        (self.dir / "meta").mkdir(exist_ok=True)
        (self.dir / "meta" / "info.tmp").write_bytes(manifest[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shards.Staging, "finish", finish)
    with pytest.raises(DiskFullError, match=r"kept the (\d+) complete shards") as caught:
        export_part(loaded, out=tmp_path / "out", **SMALL)
    kept = int(re.search(r"kept the (\d+) complete", str(caught.value)).group(1))
    assert not (tmp_path / "out.partial" / "meta").exists()
    monkeypatch.undo()
    resumed = export_part(loaded, out=tmp_path / "out", **SMALL)
    assert resumed.resumed_shards == resumed.shards == kept >= 3


def test_the_command_line_says_it_in_one_line(loaded: Store, tmp_path: Path) -> None:
    script = (
        "import errno, os, sys\n"
        "from affdata.export.shards import ShardWriter\n"
        "def flush(self, rows):\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "ShardWriter._flush = flush\n"
        "from cli.affdata_app import main\n"
        "sys.argv[0] = 'affdata'\n"
        "main()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AFFDATA_DB", None)
    result = subprocess.run([sys.executable, "-c", script, "export", "--db", loaded.url, "--split", "official",
                             "--part", "train", "--out", str(tmp_path / "out"), "--json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'out'}: no space left on the device")
    assert not (tmp_path / "out.partial").exists()
