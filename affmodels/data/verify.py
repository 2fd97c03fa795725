"""Each shard checked against the manifest's sha256 once per file version, not once per run.

A flipped byte in a label column changes training silently (or crashes it deep in a loss), and
the size check of :func:`~affmodels.data.manifest.check_shards` cannot see it. So every reader
hashes each shard the first time it meets it and refuses a mismatch with one line naming the
shard. What was verified is remembered, keyed by the file's identity (absolute path, size,
mtime, ctime, inode) and the manifest's sha256: in this process (a set) and across processes in
a small JSON file, ``meta/verified.json`` of the export when that folder is writable, else
``$AFFMODELS_CACHE`` (default ``$XDG_CACHE_HOME/affmodels`` or ``~/.cache/affmodels``). A warm
run stats the shards and reads that file: no hashing. Any write to a shard moves its mtime or
ctime, so the entry no longer matches and the shard is hashed again; what the cache cannot see
is a change that keeps all of them (bit rot on the disk): ``recheck=True`` hashes regardless.
A file changed less than :data:`RACY_NS` before it was hashed is verified but not remembered
(file times tick coarsely, so a write in the same tick could keep them; git's "racy clean").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from affdata.hashing import file_sha256 as sha256_file
from affmodels.data.errors import ShardError

if TYPE_CHECKING:
    from affmodels.data.manifest import Manifest

CACHE_FORMAT = "affmodels-verified"
CACHE_VERSION = 1
EXPORT_CACHE = Path("meta") / "verified.json"
RACY_NS = 1_000_000_000
#: keys verified in this process (see :func:`_key`)
_VERIFIED: set[tuple[str, int, int, int, int, str]] = set()


@dataclass(frozen=True)
class VerifyReport:
    """What one :func:`verify_shards` call did: shards hashed, taken from a cache, bytes read."""

    hashed: int
    cached: int
    bytes_hashed: int
    cache: Path | None  # the file the results were written to (None: nothing new to write)


def user_cache_dir() -> Path:
    base = os.environ.get("AFFMODELS_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "affmodels"


def cache_paths(root: Path) -> tuple[Path, Path]:
    """(the export's own cache file, this user's cache file for that export)."""
    root = root.resolve()
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return root / EXPORT_CACHE, user_cache_dir() / f"verified-{tag}.json"


def _key(path: Path, st: os.stat_result, sha256: str) -> tuple[str, int, int, int, int, str]:
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha256)


def _read_cache(path: Path) -> set[tuple[str, int, int, int, int, str]]:
    """Keys recorded in ``path``; an unreadable or foreign file counts as empty (it is only a cache)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return set()
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
        return set()
    keys = set()
    for name, entry in (data.get("files") or {}).items():
        if isinstance(entry, list) and len(entry) == 5:
            keys.add((str(name), *(int(x) for x in entry[:4]), str(entry[4])))
    return keys


def _write_cache(path: Path, keys: Iterable[tuple[str, int, int, int, int, str]]) -> bool:
    """Atomically replace ``path`` with ``keys``; False where it cannot be written."""
    files = {k[0]: [*k[1:5], k[5]] for k in sorted(keys)}
    body = json.dumps({"format": CACHE_FORMAT, "version": CACHE_VERSION, "files": files}, indent=1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".verified-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


def verify_shards(manifest: Manifest, *, recheck: bool = False, threads: int | None = None) -> VerifyReport:
    """Check every shard's sha256 against the manifest, hashing only what no cache vouches for.

    Raises :class:`ShardError` naming the first shard (in manifest order) that differs.
    ``recheck`` ignores the caches (and refreshes them). ``threads`` hash in parallel
    (default: up to 4, never more than the CPUs).
    """
    shards = [(manifest.shard_path(i).resolve(), s) for i, s in enumerate(manifest.shards)]
    stats = []
    for path, s in shards:
        try:
            stats.append(path.stat())
        except FileNotFoundError:
            raise ShardError(f"shard {s.path} is missing from {manifest.root}") from None
    keys = [_key(path, st, s.sha256) for (path, s), st in zip(shards, stats)]
    now = time.time_ns()
    own, user = cache_paths(manifest.root)
    known = set() if recheck else _VERIFIED | _read_cache(own) | _read_cache(user)
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        workers = max(1, min(len(todo), threads or min(4, os.cpu_count() or 1)))
        with ThreadPoolExecutor(workers) as pool:
            digests = list(pool.map(lambda i: sha256_file(shards[i][0]), todo))
        for i, digest in zip(todo, digests):
            entry = shards[i][1]
            if digest != entry.sha256:
                raise ShardError(f"shard {entry.path} fails verification in {manifest.root}: its sha256 is {digest[:16]}..., "
                                 f"the manifest records {entry.sha256[:16]}... (changed or corrupted since "
                                 "the export; re-export it, or pass --no-verify to read it anyway)")
    settled = [k for k, st in zip(keys, stats) if now - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS]
    _VERIFIED.update(settled)
    written = None
    if todo and settled:
        mine = {k[0] for k in settled}
        for target in ((own,) if os.access(own.parent, os.W_OK) else ()) + (user,):
            # other shards' entries stay: a call may check only some shards (one per task
            # in ``affmodels predict``); a lost race with another process only costs a rehash
            kept = [k for k in _read_cache(target) if k[0] not in mine]
            if _write_cache(target, [*settled, *kept]):
                written = target
                break
    return VerifyReport(hashed=len(todo), cached=len(keys) - len(todo),
                        bytes_hashed=sum(stats[i].st_size for i in todo), cache=written)


def forget() -> None:
    """Drop this process's memory of verified shards (the cache files stay): for benchmarks and tests."""
    _VERIFIED.clear()


__all__ = ["VerifyReport", "cache_paths", "forget", "sha256_file", "user_cache_dir", "verify_shards"]
