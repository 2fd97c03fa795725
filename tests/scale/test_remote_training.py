"""Training's reader on exports in object storage (a real S3-compatible server on loopback):
the same samples as from the local disk, shards verified before use, a bounded per-host cache,
ranks that fetch only the shards they read, an incomplete upload refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from affdata.db import Store
from affdata.export import export_part
from affmodels.data import AffectStream
from affmodels.data.errors import ExportError, ShardError
from affmodels.data.remote import RemoteManifest, open_remote

SMALL = {"split": "official", "part": "train", "shard_size": 40, "row_group_size": 16}


def _fs():
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True)


@pytest.fixture
def exported(loaded: Store, tmp_path: Path, s3) -> tuple[Path, str]:
    """The same part exported to a local folder and to s3://BUCKET/train."""
    local = tmp_path / "local"
    export_part(loaded, out=local, **SMALL)
    url = f"s3://{s3.bucket}/train"
    export_part(loaded, out=url, **SMALL)
    return local, url


def _samples(ds: AffectStream) -> list[tuple]:
    out = []
    for batch in ds:
        for i in range(len(batch["frame"])):
            out.append((batch["video"][i], batch["track"][i], int(batch["frame"][i]),
                        hashlib.sha256(np.asarray(batch["image"][i]).tobytes()).hexdigest()))
    return out


def test_streaming_from_s3_gives_the_samples_of_the_local_export(exported, tmp_path: Path) -> None:
    local, url = exported
    kw = {"seed": 3, "shuffle": True, "batch_size": 8, "rank": 0, "world_size": 1}
    remote = AffectStream(url, **kw)
    assert isinstance(remote.manifest, RemoteManifest)
    assert _samples(remote) == _samples(AffectStream(local, **kw))


def _shard_of_rows(local: Path) -> dict[tuple, str]:
    """(video, track, frame) -> the sha256 of the local shard holding it."""
    import json

    import pyarrow.parquet as pq

    manifest = json.loads((local / "meta" / "info.json").read_text())
    where = {}
    for s in manifest["shards"]:
        t = pq.read_table(local / s["path"], columns=["video", "track", "frame"])
        for v, tr, f in zip(*(t.column(c).to_pylist() for c in ("video", "track", "frame"))):
            where[(v, tr, f)] = s["sha256"]
    return where


def _fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The shards downloaded from now on (the readers below run in this process)."""
    from affmodels.data import remote

    got: list[str] = []
    real = remote.ShardCache._download

    def counting(self, url, entry, path):
        got.append(entry.sha256)
        return real(self, url, entry, path)

    monkeypatch.setattr(remote.ShardCache, "_download", counting)
    return got


def test_each_rank_fetches_only_its_shards_and_ranks_on_one_host_share_the_cache(
        exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local, url = exported
    where = _shard_of_rows(local)
    fetched = _fetches(monkeypatch)
    kw = {"shuffle": False, "batch_size": 8, "world_size": 2, "drop_last": True}
    rank0 = _samples(AffectStream(url, rank=0, **kw))
    mine0 = {where[s[:3]] for s in rank0}
    assert set(fetched) == mine0 and len(fetched) == len(mine0)  # its own shards, each once
    assert len(mine0) < len({s["sha256"] for s in open_remote(url).raw["shards"]})
    first = len(fetched)
    rank1 = _samples(AffectStream(url, rank=1, **kw))  # the second rank on the same host
    mine1 = {where[s[:3]] for s in rank1}
    assert set(fetched[first:]) == mine1 - mine0  # what rank 0 fetched is not fetched again
    assert {s[:3] for s in rank0}.isdisjoint({s[:3] for s in rank1})
    cache = Path(open_remote(url).cache)
    assert {p.stem for p in cache.glob("*.parquet")} == mine0 | mine1


def test_a_bounded_cache_stays_within_its_size_and_the_epoch_is_unchanged(
        exported, monkeypatch: pytest.MonkeyPatch) -> None:
    local, url = exported
    sizes = [s["bytes"] for s in open_remote(url).raw["shards"]]
    limit = 2 * max(sizes)
    monkeypatch.setenv("AFFMODELS_SHARD_CACHE_SIZE", str(limit))
    kw = {"seed": 5, "shuffle": True, "batch_size": 8, "rank": 0, "world_size": 1}
    remote = AffectStream(url, **kw)
    assert remote.manifest.max_bytes == limit
    assert _samples(remote) == _samples(AffectStream(local, **kw))
    cache = Path(remote.manifest.cache)
    assert sum(p.stat().st_size for p in cache.glob("*.parquet")) <= limit
    assert len(list(cache.glob("*.parquet"))) < len(sizes)  # some were evicted on the way


def test_a_shard_changed_on_the_server_is_refused_and_never_cached(exported) -> None:
    local, url = exported
    manifest = open_remote(url)
    victim = manifest.shards[1]
    fs = _fs()
    prefix = url.removeprefix("s3://")
    blob = bytearray(fs.cat_file(f"{prefix}/{victim.path}"))
    blob[len(blob) // 2] ^= 0xFF  # same size, one byte flipped
    fs.pipe_file(f"{prefix}/{victim.path}", bytes(blob))
    with pytest.raises(ShardError, match=f"{victim.path}.*fails verification"):
        _samples(AffectStream(url, shuffle=False, batch_size=8, rank=0, world_size=1))
    assert not (Path(manifest.cache) / f"{victim.sha256}.parquet").exists()
    assert not list(Path(manifest.cache).glob(".*.tmp"))


def test_a_prefix_without_a_manifest_is_not_an_export(exported) -> None:
    _, url = exported
    fs = _fs()
    fs.rm_file(f"{url.removeprefix('s3://')}/meta/info.json")  # as an interrupted upload leaves it
    with pytest.raises(ExportError, match="is not an export: meta/info.json not found"):
        AffectStream(url, batch_size=8, rank=0, world_size=1)


def test_train_eval_and_predict_read_s3_through_the_command_line(
        exported, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    from typer.testing import CliRunner

    from cli.affmodels_app import app
    from tests.s3server import SECRET

    local, url = exported
    cache = tmp_path / "host-cache"
    before = dict(os.environ)

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
        return result.stdout

    try:
        run("train", "--data", url, "--val", url, "--out", str(tmp_path / "run"), "--epochs", "1",
            "--batch-size", "16", "--workers", "0", "--device", "cpu", "--threads", "1",
            "--cache", str(cache), "--cache-size", "50M", "--json")
        shards = {s["sha256"] for s in json.loads((local / "meta" / "info.json").read_text())["shards"]}
        assert {p.stem for p in (cache / "data").glob("*.parquet")} == shards  # downloaded, verified
        remote = json.loads(run("eval", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data", url,
                                "--cache", str(cache), "--json"))
        here = json.loads(run("eval", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data", str(local),
                              "--json"))
        assert remote == {**here, **{k: v for k, v in remote.items() if k in ("data", "path")}}
        run("predict", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data", url,
            "--out", str(tmp_path / "pred"), "--cache", str(cache))
        assert list((tmp_path / "pred").iterdir())
    finally:  # the command line passes --cache on through the environment
        for key in ("AFFMODELS_SHARD_CACHE", "AFFMODELS_SHARD_CACHE_SIZE"):
            if key in before:
                os.environ[key] = before[key]
            else:
                os.environ.pop(key, None)


@pytest.mark.slow
def test_two_hosts_with_torchrun_each_fetch_only_their_ranks_shards_into_their_own_cache(
        exported, tmp_path: Path) -> None:
    """torchrun --nnodes 2: two "hosts" (two launchers on loopback, each its own --cache)."""
    import os
    import socket
    import subprocess
    import sys

    local, url = exported
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    procs = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--node-rank", str(node), "--master-addr", "127.0.0.1", "--master-port", str(port),
               "-m", "cli.affmodels_app", "train", "--data", url, "--out", str(tmp_path / "run"),
               "--epochs", "1", "--batch-size", "8", "--workers", "0", "--threads", "1", "--device", "cpu",
               "--cache", str(tmp_path / f"host{node}"), "--json"]
        procs.append(subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    where = _shard_of_rows(local)
    sets: list[set[str]] = []
    for rank in (0, 1):
        # the rows this rank trains on in epoch 0, read from the local copy the same way
        mine = {where[s[:3]] for s in _samples(AffectStream(local, seed=0, shuffle=True, batch_size=8,
                                                            rank=rank, world_size=2))}
        cached = {p.stem for p in (tmp_path / f"host{rank}" / "data").glob("*.parquet")}
        assert cached == mine
        sets.append(mine)
    # shuffled over windows of 32 row groups, this small export is one window: each rank's
    # half of it lies in every shard (docs/scale.md); with shuffle=False the ranks' shards are
    # disjoint (test_each_rank_fetches_only_its_shards...)
    assert sets[0] and sets[1]


def test_a_cached_shard_changed_on_this_disk_is_hashed_and_downloaded_again(
        exported, monkeypatch: pytest.MonkeyPatch) -> None:
    from affmodels.data import remote, verify

    local, url = exported
    kw = {"seed": 2, "shuffle": True, "batch_size": 8, "rank": 0, "world_size": 1}
    expected = _samples(AffectStream(local, **kw))
    first = AffectStream(url, **kw)
    assert _samples(first) == expected
    cache = Path(first.manifest.cache)
    victim = cache / f"{first.manifest.shards[0].sha256}.parquet"
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 3] ^= 0xFF  # bit rot: same size
    victim.write_bytes(bytes(blob))
    remote._DOWNLOADED.clear()  # as a new process: only the loader's verification cache is left
    verify.forget()
    fetched = _fetches(monkeypatch)
    assert _samples(AffectStream(url, **kw)) == expected
    assert fetched == [first.manifest.shards[0].sha256]  # only the changed one came again
