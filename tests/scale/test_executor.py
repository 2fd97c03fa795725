"""affdata.executor: one map over the local pool and Dask, each item's failure its own,
a killed worker's task rerun without duplicates, --cluster and --path-map parsed strictly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from affdata.errors import ClusterError, ConfigError
from affdata.executor import ClusterSpec, DaskExecutor, PathMap, PoolExecutor, open_executor
from tests.scale.tasks import square

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_libraries_imports_no_dask() -> None:
    code = ("import sys, affdata, affdata.executor, affdata.videos, affdata.export, affmodels, affmodels.predict; "
            "print(sorted(m for m in ('dask', 'distributed', 's3fs') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text, kind, workers, address", [
    ("local", "local", 3, None), ("local:4", "dask-local", 4, None),
    ("tcp://10.0.0.5:8786", "dask", 0, "tcp://10.0.0.5:8786"),
])
def test_cluster_addresses(text: str, kind: str, workers: int, address: str | None) -> None:
    assert ClusterSpec.parse(text, workers=3) == ClusterSpec(kind, workers, address)


def test_cluster_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFDATA_CLUSTER", "local:2")
    assert ClusterSpec.parse(None).kind == "dask-local"
    monkeypatch.delenv("AFFDATA_CLUSTER")
    assert ClusterSpec.parse(None, 2) == ClusterSpec("local", 2)


@pytest.mark.parametrize("text", ["local:0", "local:x", "dask", "8786"])
def test_bad_cluster_addresses_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--cluster"):
        ClusterSpec.parse(text)


def test_an_unreachable_scheduler_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import affdata.executor

    monkeypatch.setattr(affdata.executor, "CONNECT_TIMEOUT", "2s")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClusterError, match=f"127.0.0.1:{port}"):
        open_executor(f"tcp://127.0.0.1:{port}")


def test_path_map_rewrites_prefixes_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    pm = PathMap.parse(["/data=/mnt/lab/data", "/data/videos/=/fast/videos"])
    assert pm.to_worker("/data/videos/a.mp4") == "/fast/videos/a.mp4"  # the longest prefix wins
    assert pm.to_worker("/data/other/b.mp4") == "/mnt/lab/data/other/b.mp4"
    assert pm.to_worker("/database/c.mp4") == "/database/c.mp4"  # whole folder names only
    assert pm.to_client("/mnt/lab/data/other/b.mp4") == "/data/other/b.mp4"
    monkeypatch.setenv("AFFDATA_PATH_MAP", "/a=/b;/c=/d")
    assert PathMap.parse(None).to_worker("/c/x") == "/d/x"
    with pytest.raises(ConfigError, match="OLD=NEW"):
        PathMap.parse(["/only-one-side"])


@pytest.mark.parametrize("workers", [1, 2])
def test_the_local_pool_fails_only_the_bad_item(workers: int) -> None:
    out = {item: (result, error) for item, result, error in PoolExecutor(workers).map(square, range(6))}
    assert {k: r for k, (r, e) in out.items() if e is None} == {0: 0, 1: 1, 2: 4, 4: 16, 5: 25}
    assert isinstance(out[3][1], ValueError)


def test_dask_fails_only_the_bad_item(dask_local: DaskExecutor) -> None:
    out = {item: (result, error) for item, result, error in dask_local.map(square, range(20))}
    assert sorted(out) == list(range(20))
    assert isinstance(out[3][1], ValueError) and str(out[3][1]) == "three is bad"
    assert all(r == i * i for i, (r, e) in out.items() if i != 3)


def test_dask_reruns_the_task_of_a_worker_killed_mid_task(dask_local: DaskExecutor, killer) -> None:
    from tests.scale.tasks import stall_slow

    tags = ["slow-0", *(f"t{i}" for i in range(1, 6))]
    results = [(item, result) for item, result, error in dask_local.map(stall_slow, tags) if error is None]
    assert killer.killed, "no worker was killed"
    assert sorted(results) == sorted(zip(tags, tags))  # every item once, the killed one rerun
