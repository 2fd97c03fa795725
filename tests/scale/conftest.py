"""A Dask LocalCluster shared by the cluster tests (starting one takes seconds), and a killer
of worker processes by pid."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from affdata.executor import ClusterSpec, DaskExecutor
from tests.scale.tasks import MARKERS


@pytest.fixture(scope="session")
def marker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("markers")
    os.environ[MARKERS] = str(folder)  # before the workers start: they inherit it
    return folder


@pytest.fixture(scope="session")
def dask_local(marker_dir: Path) -> Iterator[DaskExecutor]:
    """Two worker processes on this host, one thread each."""
    executor = DaskExecutor(ClusterSpec.parse("local:2"))
    try:
        yield executor
    finally:
        executor.close()


@pytest.fixture
def markers(marker_dir: Path) -> Path:
    for p in marker_dir.iterdir():
        p.unlink()
    return marker_dir


class Killer(threading.Thread):
    """Waits for the first marker a task writes and kills the process named in it (SIGKILL)."""

    def __init__(self, folder: Path, timeout: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.folder, self.timeout = folder, timeout
        self.killed: list[int] = []

    def run(self) -> None:
        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            for marker in self.folder.glob("*.pid"):
                text = marker.read_text().strip()
                if text:
                    pid = int(text)
                    time.sleep(0.2)  # well inside the task's stall
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                    return
            time.sleep(0.02)


@pytest.fixture
def killer(markers: Path) -> Iterator[Killer]:
    k = Killer(markers)
    k.start()
    yield k
    k.join(timeout=1)


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


from tests.affdata.export.conftest import dataset, loaded  # noqa: E402,F401 - the export tests' fixtures


@pytest.fixture(scope="session")
def s3_server() -> Iterator["LoopbackS3"]:
    from tests.s3server import LoopbackS3

    server = LoopbackS3()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def s3(s3_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest):
    """The loopback S3 server in this test's environment, a fresh bucket, a local staging root."""
    import re
    import uuid

    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AFFDATA_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("AFFMODELS_SHARD_CACHE", str(tmp_path / "shard-cache"))
    bucket = re.sub(r"[^a-z0-9-]", "-", f"b-{uuid.uuid4().hex[:12]}")
    s3_server.create_bucket(bucket)
    s3_server.bucket = bucket
    return s3_server
