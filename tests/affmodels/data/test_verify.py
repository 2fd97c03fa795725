"""Shards are checked against the manifest's sha256 once per file version (affmodels.data.verify)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import affmodels.data.verify as verify_mod
from affmodels.data import AffectStream, ShardError
from affmodels.data.manifest import load_manifest
from affmodels.data.verify import RACY_NS, cache_paths, forget, verify_shards
from tests.affmodels.data.exports import Export

ROOT = Path(__file__).resolve().parents[3]


def _copy(export: Export, tmp_path: Path, name: str = "copy", settle: bool = False) -> Path:
    """A copy of the export; ``settle`` waits until its files are older than the verifier's
    racy margin, so that verifying them is remembered."""
    root = Path(shutil.copytree(export.root, tmp_path / name))
    if settle:
        time.sleep(RACY_NS / 1e9 + 0.1)
    return root


def _flip_column(shard: Path, column: str, n: int = 4) -> None:
    """Flip ``n`` bytes in the middle of ``column``'s chunk of row group 0: same size, same mtime
    granularity aside, a file Parquet still opens (the corruption the size check cannot see)."""
    meta = pq.ParquetFile(shard).metadata.row_group(0)
    names = [meta.column(i).path_in_schema.split(".")[0] for i in range(meta.num_columns)]
    chunk = meta.column(names.index(column))
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    middle = start + chunk.total_compressed_size // 2
    blob = bytearray(shard.read_bytes())
    for i in range(middle, middle + n):
        blob[i] ^= 0x5A
    shard.write_bytes(bytes(blob))


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """Every file the verifier hashes, in order; a fresh process memory and user cache."""
    calls: list[Path] = []
    real = verify_mod.sha256_file

    def counting(path: Path, *args, **kwargs) -> str:
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(verify_mod, "sha256_file", counting)
    monkeypatch.setenv("AFFMODELS_CACHE", str(tmp_path / "user-cache"))
    forget()
    yield calls
    forget()


def test_a_flipped_label_byte_is_refused_naming_the_shard(export: Export, tmp_path: Path, hashes) -> None:
    root = _copy(export, tmp_path)
    _flip_column(root / "data" / "shard-00001.parquet", "valence")
    with pytest.raises(ShardError, match=r"^shard data/shard-00001\.parquet fails verification in ") as e:
        AffectStream(root, batch_size=16)
    assert "\n" not in str(e.value)
    AffectStream(export.root, batch_size=16)  # the intact export passes


def test_a_warm_run_does_not_hash_again(export: Export, tmp_path: Path, hashes: list[Path]) -> None:
    root = _copy(export, tmp_path, settle=True)
    n = len(load_manifest(root).shards)
    report = verify_shards(load_manifest(root))
    assert (report.hashed, report.cached, len(hashes)) == (n, 0, n)
    assert report.cache == cache_paths(root)[0] and report.cache.is_file()  # the export folder is writable
    AffectStream(root)  # same process: remembered
    forget()  # a new process: only the cache file remembers
    AffectStream(root)
    assert len(hashes) == n
    # a rewritten shard (new mtime and ctime) is hashed again, alone
    shard = root / "data" / "shard-00002.parquet"
    shard.write_bytes(shard.read_bytes())
    forget()
    report = verify_shards(load_manifest(root))
    assert (report.hashed, report.cached) == (1, n - 1) and hashes[-1] == shard.resolve()
    # a corruption written right after a successful verification (maybe within the same tick of
    # the file clock) is caught: a file that recent is verified but not remembered
    _flip_column(shard, "au")
    with pytest.raises(ShardError, match="shard-00002.parquet fails verification"):
        AffectStream(root)
    assert verify_shards(load_manifest(export.root), recheck=True).hashed == n  # recheck ignores caches


def test_unwritable_export_folder_uses_the_user_cache(export: Export, tmp_path: Path, hashes: list[Path]) -> None:
    root = _copy(export, tmp_path, settle=True)
    own, user = cache_paths(root)
    own.unlink(missing_ok=True)  # copied from the original (whose paths it names: no use here)
    own.mkdir()  # the export's cache file cannot be written (a folder is in the way)
    n = len(load_manifest(root).shards)
    assert verify_shards(load_manifest(root)).cache == user
    assert json.loads(user.read_text())["format"] == "affmodels-verified"
    forget()
    assert verify_shards(load_manifest(root)).hashed == 0 and len(hashes) == n


def test_no_verify_skips_the_hashing(export: Export, tmp_path: Path, hashes: list[Path]) -> None:
    root = _copy(export, tmp_path)
    _flip_column(root / "data" / "shard-00000.parquet", "pts")  # a column the loader never reads
    stream = AffectStream(root, batch_size=16, verify=False)
    assert hashes == [] and sum(len(b["row"]) for b in stream) == export.rows
    with pytest.raises(ShardError, match="shard-00000.parquet"):
        AffectStream(root, batch_size=16)


def _affmodels(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "AFFMODELS_CACHE": str(cwd / "user-cache")}
    env.pop("AFFDATA_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "cli.affmodels_app", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_train_and_eval_refuse_a_corrupted_shard_in_one_line(export: Export, tmp_path: Path) -> None:
    bad = _copy(export, tmp_path, "bad")
    _flip_column(bad / "data" / "shard-00001.parquet", "au")
    common = ["--batch-size", "16", "--workers", "0", "--threads", "1"]
    train = ["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--max-steps", "1", "--json", *common]
    result = _affmodels(*train, "--data", str(bad), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: shard data/shard-00001.parquet fails verification in ")
    assert not (tmp_path / "run").exists() or not (tmp_path / "run" / "last.pt").exists()
    # a good export trains; its checkpoint then meets the corrupted export in eval and predict
    ok = _affmodels(*train, "--data", str(export.root), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    ckpt = str(tmp_path / "run" / "last.pt")
    for cmd in (["eval", "--checkpoint", ckpt, "--data", str(bad), "--json"],
                ["predict", "--checkpoint", ckpt, "--data", str(bad), "--out", str(tmp_path / "preds")]):
        result = _affmodels(*cmd, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, (cmd[0], result.stderr[-2000:])
        assert "shard data/shard-00001.parquet fails verification in " in lines[0]
    # --no-verify reads it anyway (what it then reads is the user's risk)
    cmd = ["eval", "--checkpoint", ckpt, "--data", str(bad), "--json", "--no-verify"]
    result = _affmodels(*cmd, cwd=tmp_path)
    assert "fails verification" not in result.stderr
