"""affdata export --out s3://...: against a real S3-compatible server on loopback (moto in
server mode, over HTTP): same bytes as a local export, the manifest last, an interrupted upload
never taken for a complete export and resumed, credentials never on the command line or in logs."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata.db import Store
from affdata.errors import ConfigError
from affdata.export import export_part
from tests.affdata.export.conftest import tree_digest
from tests.s3server import SECRET

SMALL = {"split": "official", "part": "train", "shard_size": 40, "row_group_size": 16}
ROOT = Path(__file__).resolve().parents[2]


def _fs():
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    return fs


def remote_digest(prefix: str) -> dict[str, str]:
    fs = _fs()
    return {p[len(prefix) + 1:]: hashlib.sha256(fs.cat_file(p)).hexdigest()
            for p in sorted(fs.find(prefix))}


def test_an_export_to_s3_has_the_bytes_of_a_local_one(loaded: Store, tmp_path: Path, s3) -> None:
    local = export_part(loaded, out=tmp_path / "local", **SMALL)
    url = f"s3://{s3.bucket}/exports/train"
    result = export_part(loaded, out=url, **SMALL)
    assert result.out == url and result.manifest_sha256 == local.manifest_sha256
    assert remote_digest(f"{s3.bucket}/exports/train") == tree_digest(tmp_path / "local")
    with loaded.connect() as conn:
        assert conn.execute(sa.text("SELECT out_dir FROM export WHERE id = :i"),
                            {"i": result.export_id}).scalar() == url
    assert not list((tmp_path / "staging").rglob("*.parquet"))  # the staging copy is gone


class _Interrupted(OSError):
    pass


def test_an_interrupted_upload_is_never_a_complete_export_and_resumes(
        loaded: Store, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:
    import affdata.export.publish as publish

    url = f"s3://{s3.bucket}/train"
    prefix = f"{s3.bucket}/train"
    first = export_part(loaded, out=url, size=64, **SMALL)  # an older export at the URL
    assert first.shards >= 3
    real = publish.filesystem
    puts: list[str] = []

    class Flaky:  # the S3 filesystem, but its third upload fails
        def __init__(self, fs) -> None:
            self.fs = fs

        def __getattr__(self, name: str):
            return getattr(self.fs, name)

        def put_file(self, lpath, rpath, *a, **kw):
            puts.append(rpath)
            if len(puts) == 3:
                raise _Interrupted("connection reset")
            return self.fs.put_file(lpath, rpath, *a, **kw)

    def failing(u: str):
        fs, root = real(u)
        return Flaky(fs), root

    monkeypatch.setattr(publish, "filesystem", failing)
    with pytest.raises(_Interrupted):
        export_part(loaded, out=url, **SMALL)
    fs = _fs()
    assert not fs.exists(f"{prefix}/meta/info.json")  # the old manifest went first
    assert len(fs.find(f"{prefix}/data")) >= 2  # shards are there, without a manifest
    puts.clear()
    monkeypatch.setattr(publish, "filesystem", real)
    calls: list[str] = []
    original_publish = publish.publish

    def counting(local, u, record, progress=None):
        return original_publish(local, u, record, progress=lambda n: calls.append(n))

    import affdata.export.run as run
    monkeypatch.setattr(run, "publish", counting)
    result = export_part(loaded, out=url, **SMALL)
    assert 0 < len(calls) < result.shards  # only what the interrupted run had not uploaded
    local = export_part(loaded, out=tmp_path / "local", **SMALL)
    assert remote_digest(prefix) == tree_digest(tmp_path / "local")  # old longer export's shards gone
    assert result.manifest_sha256 == local.manifest_sha256


def test_the_same_export_again_uploads_nothing(loaded: Store, s3, monkeypatch: pytest.MonkeyPatch) -> None:
    import affdata.export.publish as publish

    url = f"s3://{s3.bucket}/again"
    export_part(loaded, out=url, **SMALL)
    uploaded = []
    real = publish.publish
    monkeypatch.setattr("affdata.export.run.publish", lambda *a, **k: uploaded.append(real(*a, **k)))
    export_part(loaded, out=url, **SMALL)
    assert uploaded == [0]


@pytest.mark.parametrize("url", ["s3://key:secret@bucket/x", "s3://AKIA@bucket/x"])
def test_credentials_in_the_url_are_refused(loaded: Store, url: str) -> None:
    with pytest.raises(ConfigError, match="credentials in the URL") as info:
        export_part(loaded, out=url, **SMALL)
    assert "secret" not in str(info.value) and "AKIA" not in str(info.value)


def test_the_cli_exports_to_s3_with_credentials_only_from_the_environment(
        loaded: Store, tmp_path: Path, s3) -> None:
    url = f"s3://{s3.bucket}/cli/train"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AFFDATA_DEBUG": "1"}
    env.pop("AFFDATA_DB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cli.affdata_app", "export", "--db", loaded.url, "--split", "official",
         "--part", "train", "--out", url, "--shard-size", "40", "--row-group-size", "16", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["out"] == url
    assert SECRET not in proc.stdout + proc.stderr
    assert _fs().exists(f"{s3.bucket}/cli/train/meta/info.json")
