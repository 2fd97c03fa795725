"""Exports on object storage: shards fetched on first use into a bounded cache on this host,
each verified against the manifest's sha256 before anything reads it.

``load_manifest("s3://bucket/exports/train")`` (and so ``affmodels train/eval/predict --data
s3://...``) downloads ``meta/info.json`` (a prefix without one is refused: an export writes it
last, so an upload in progress or interrupted is never read) and returns a
:class:`RemoteManifest`, whose :meth:`~RemoteManifest.shard_path` downloads the shard the first
time a reader opens it. Credentials come from the environment and fsspec's config
(:mod:`affdata.storage`); no URL with credentials is accepted and none is logged.

The cache (``--cache DIR``, ``$AFFMODELS_SHARD_CACHE``, default ``~/.cache/affmodels/shards``)
is shared by every rank and DataLoader worker on the host: a download happens under a lock
file, into a temporary file that is hashed and renamed into place only when its sha256 is the
manifest's, and is named by that sha256, so a replaced export never meets a stale file and a
file in the cache is one that was verified. A cached file met again (another process, a later
run) is checked by the loader's verification cache (:mod:`affmodels.data.verify`: hashed once,
then remembered by its size, times and inode); one changed on this disk is downloaded again.
``--cache-size`` (``$AFFMODELS_SHARD_CACHE_SIZE``,
bytes or ``20G``) bounds it: before a download, the least recently used shards (by the time
of their ``.used`` marker) are removed
until the new one fits (a reader that still has one open keeps reading it: POSIX unlink).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from collections.abc import Iterator

from affmodels.data.errors import ExportError, ShardError
from affmodels.data.manifest import MANIFEST, Manifest, ShardEntry

log = logging.getLogger(__name__)

#: (path, size, mtime, inode) of shards this process downloaded and hashed as they came
_DOWNLOADED: set[tuple[str, int, int, int]] = set()

CACHE_ENV = "AFFMODELS_SHARD_CACHE"
SIZE_ENV = "AFFMODELS_SHARD_CACHE_SIZE"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str | int | None) -> int | None:
    """``20G``, ``512M``, ``1000000`` -> bytes; None or ``0``: unbounded."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text or None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not m:
        raise ExportError(f"cache size {text!r}: expected bytes or a size such as 512M, 20G")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()]) or None


def default_cache() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "affmodels" / "shards"


def is_remote(path: str | os.PathLike[str]) -> bool:
    from affdata.storage import is_url

    return is_url(path)


@dataclass(frozen=True)
class RemoteManifest(Manifest):
    """A manifest whose shards live at ``url``; ``root`` is this host's cache folder for it."""

    url: str = ""
    cache: str = ""
    max_bytes: int | None = None

    def shard_path(self, index: int) -> Path:
        return ShardCache(Path(self.cache), self.max_bytes).fetch(self.url, self.shards[index], self)


class ShardCache:
    """The per-host folder of verified shards: ``DIR/<sha256>.parquet``, least recently used
    first out when over ``max_bytes``."""

    def __init__(self, folder: Path, max_bytes: int | None = None) -> None:
        self.folder, self.max_bytes = Path(folder), max_bytes

    def path(self, entry: ShardEntry) -> Path:
        return self.folder / f"{entry.sha256}.parquet"

    def fetch(self, url: str, entry: ShardEntry, manifest: Manifest | None = None) -> Path:
        """The local, verified copy of ``entry`` (downloaded from ``url`` when missing)."""
        path = self.path(entry)
        if self._fresh(path, entry, manifest):
            return path
        with self._locked():
            if self._fresh(path, entry, manifest):  # another rank or worker on this host fetched it
                return path
            self._make_room(entry.bytes)
            self._download(url, entry, path)
        return path

    def _fresh(self, path: Path, entry: ShardEntry, manifest: Manifest | None) -> bool:
        """A cached copy that is still the verified one: the loader's verification cache
        (:mod:`affmodels.data.verify`, keyed by size, times and inode) vouches for it, or it is
        hashed again; a copy changed on this disk is removed and downloaded again."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if st.st_size != entry.bytes:
            path.unlink(missing_ok=True)
            return False
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        if key not in _DOWNLOADED and manifest is not None:
            from affmodels.data.verify import verify_shards

            base = {f.name: getattr(manifest, f.name) for f in fields(Manifest)}
            one = Manifest(**{**base, "root": self.folder, "shards": (replace(entry, path=path.name),)})
            try:
                verify_shards(one)
            except ShardError:
                log.warning("shard cache: %s changed on this disk; downloading it again", path.name)
                path.unlink(missing_ok=True)
                return False
        self._used(path).touch()  # recently used: evicted last
        return True

    @staticmethod
    def _used(path: Path) -> Path:
        return path.with_suffix(".used")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _make_room(self, need: int) -> None:
        if self.max_bytes is None:
            return
        if need > self.max_bytes:
            raise ShardError(f"a shard of {need} bytes does not fit in the shard cache's "
                             f"{self.max_bytes} bytes (--cache-size): give it at least one shard")
        files = []
        for p in self.folder.glob("*.parquet"):
            try:
                size = p.stat().st_size
                used = self._used(p).stat().st_mtime_ns
            except FileNotFoundError:
                used = 0
                if not p.exists():
                    continue
            files.append((used, size, p))
        total = sum(size for _, size, _ in files)
        for _, size, p in sorted(files):
            if total + need <= self.max_bytes:
                break
            p.unlink(missing_ok=True)
            self._used(p).unlink(missing_ok=True)
            total -= size
            log.debug("shard cache: evicted %s", p.name)

    def _download(self, url: str, entry: ShardEntry, path: Path) -> None:
        from affdata.storage import filesystem, redact

        fs, root = filesystem(url)
        fs.invalidate_cache(f"{root}/{entry.path}")  # a listing cached earlier may be stale
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        h = hashlib.sha256()
        started = time.perf_counter()
        try:
            with fs.open(f"{root}/{entry.path}", "rb", block_size=8 << 20) as src, open(tmp, "wb") as dst:
                while block := src.read(4 << 20):
                    h.update(block)
                    dst.write(block)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            raise ShardError(f"shard {entry.path} is missing from {redact(url)}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if h.hexdigest() != entry.sha256:
            tmp.unlink(missing_ok=True)
            raise ShardError(f"shard {entry.path} of {redact(url)} fails verification: its sha256 is "
                             f"{h.hexdigest()[:16]}..., the manifest records {entry.sha256[:16]}... "
                             "(changed or corrupted since the export; re-export it)")
        os.replace(tmp, path)
        self._used(path).touch()
        st = path.stat()
        _DOWNLOADED.add((str(path), st.st_size, st.st_mtime_ns, st.st_ino))  # hashed as it came
        log.debug("shard cache: fetched %s (%d bytes) in %.2f s", entry.path, entry.bytes,
                  time.perf_counter() - started)


def open_remote(url: str, *, cache: str | Path | None = None,
                max_bytes: int | str | None = None) -> RemoteManifest:
    """Download and validate ``url``'s manifest; shards come later, on first use."""
    from affdata.storage import check_url, filesystem, redact
    from affmodels.data.manifest import load_manifest

    url = check_url(url)
    fs, root = filesystem(url)
    fs.invalidate_cache()
    try:
        blob = fs.cat_file(f"{root}/{MANIFEST.as_posix()}")
    except FileNotFoundError:
        raise ExportError(f"{redact(url)} is not an export: {MANIFEST.as_posix()} not found (an export "
                          "writes it last: an upload in progress or interrupted has none)") from None
    folder = Path(cache) if cache else default_cache()
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    meta_root = folder / "manifests" / key / hashlib.sha256(blob).hexdigest()[:16]
    (meta_root / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
    target = meta_root / MANIFEST
    if not target.is_file():
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, target)
    local = load_manifest(meta_root, check=False)
    limit = parse_size(max_bytes if max_bytes is not None else os.environ.get(SIZE_ENV))
    base = {f.name: getattr(local, f.name) for f in fields(Manifest)}
    log.info("%s: %d shards, cache %s", redact(url), len(local.shards), folder)
    return RemoteManifest(**base, url=url, cache=str(folder / "data"), max_bytes=limit)

