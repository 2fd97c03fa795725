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
