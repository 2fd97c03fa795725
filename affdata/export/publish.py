"""Uploading a finished local export to an fsspec URL: shards first, the manifest last.

An export to ``s3://bucket/prefix`` is built exactly as a local one, in a local staging folder
(:func:`affdata.storage.staging_root`, resumable and locked by ``OUT.lock`` as always), then
published:

1. If the URL already holds this very manifest (same sha256), nothing is done.
2. Otherwise the URL's old ``meta/info.json`` is deleted **first**: from then on the prefix is
   not a complete export for any reader, which requires the manifest.
3. Each shard is uploaded unless this client's record (``published.json`` in the staging
   folder) says it already uploaded those bytes (same sha256) and the remote size matches:
   a publish interrupted anywhere resumes with the shards it had not finished.
4. Files under ``data/`` that the new manifest does not name (an older, longer export) are
   removed, then the manifest is written, last, and the remote sizes are checked against it.

Readers verify every shard's sha256 against the manifest before using it
(:mod:`affmodels.data.remote`), so even a prefix that two clients publish into at once is never
read as a mixture: object stores have no ``flock``, and ``OUT.lock`` guards only the local
staging folder of one host (docs/scale.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affdata.export.shards import MANIFEST
from affdata.storage import filesystem, redact

log = logging.getLogger(__name__)

RECORD = "published.json"


def _record(path: Path, url: str, manifest_sha256: str) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    if record.get("url") != url:
        record = {"url": url, "shards": {}}
    record["manifest_sha256"] = manifest_sha256
    return record


def _save(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)


def publish(local: Path, url: str, record_path: Path,
            progress: Callable[[int], None] | None = None) -> int:
    """Upload the finished export in ``local`` to ``url``; returns the shards uploaded now."""
    fs, root = filesystem(url)
    blob = (local / MANIFEST).read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    manifest = json.loads(blob)
    remote_manifest = f"{root}/{MANIFEST}"
    fs.invalidate_cache()
    if fs.exists(remote_manifest):
        if hashlib.sha256(fs.cat_file(remote_manifest)).hexdigest() == digest:
            log.info("%s already holds this export", redact(url))
            return 0
        fs.rm_file(remote_manifest)  # from here on the prefix is incomplete for every reader
    record = _record(record_path, url, digest)
    _save(record_path, record)
    sizes = _remote_sizes(fs, f"{root}/data")
    uploaded = 0
    for shard in manifest["shards"]:
        name, sha = shard["path"], shard["sha256"]
        if record["shards"].get(name) == sha and sizes.get(name.rsplit("/", 1)[-1]) == shard["bytes"]:
            continue
        fs.put_file(str(local / name), f"{root}/{name}")
        record["shards"][name] = sha
        _save(record_path, record)
        uploaded += 1
        if progress is not None:
            progress(1)
    wanted = {s["path"].rsplit("/", 1)[-1] for s in manifest["shards"]}
    for stale in sorted(set(_remote_sizes(fs, f"{root}/data")) - wanted):
        fs.rm_file(f"{root}/data/{stale}")
    sizes = _remote_sizes(fs, f"{root}/data")
    for shard in manifest["shards"]:
        got = sizes.get(shard["path"].rsplit("/", 1)[-1])
        if got != shard["bytes"]:
            raise OSError(f"{redact(url)}/{shard['path']}: {got} bytes after upload, "
                          f"{shard['bytes']} expected")
    fs.pipe_file(remote_manifest, blob)  # last: only now is the prefix a complete export
    log.info("published %d shards (%d uploaded now) and the manifest to %s",
             len(manifest["shards"]), uploaded, redact(url))
    return uploaded


def _remote_sizes(fs: Any, folder: str) -> dict[str, int]:
    fs.invalidate_cache()
    try:
        entries = fs.ls(folder, detail=True)
    except FileNotFoundError:
        return {}
    return {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e["size"]) for e in entries
            if e.get("type") == "file"}
