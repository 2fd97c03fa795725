"""Read and validate an export's ``meta/info.json`` (docs/export-format.md, version 1).

The manifest is the contract: a reader refuses a ``format_version`` it does not know (older
or newer, with a message that says which way to go), checks that every shard it names
exists with the recorded size, and can verify each shard's sha256. Everything the trainer
needs to build the model and its loss weights (vocabularies, counts, class frequencies, AU
positive rates) is exposed here, so no training code parses the JSON itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affmodels.data.errors import ExportError, FormatVersionError, ShardError
from affmodels.data.verify import sha256_file, verify_shards

FORMAT = "affdata-export"
FORMAT_VERSION = 1  # the version this reader implements
MANIFEST = Path("meta") / "info.json"
ENCODINGS = ("jpeg", "raw")


@dataclass(frozen=True)
class ShardEntry:
    path: str  # relative to the export root
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """A validated ``meta/info.json``; ``raw`` keeps the whole JSON for anything not lifted."""

    root: Path
    format_version: int
    au_names: tuple[str, ...]
    expressions: tuple[str, ...]
    tasks: tuple[str, ...]
    encoding: str  # "jpeg" | "raw"
    image_size: int
    shards: tuple[ShardEntry, ...]
    shard_size: int
    row_group_size: int
    counts: Mapping[str, Any]
    class_counts: np.ndarray = field(repr=False)  # (C,) int64, vocabulary order
    au_positive_rates: np.ndarray = field(repr=False)  # (K,) float64, NaN where no AU annotated
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def n_aus(self) -> int:
        return len(self.au_names)

    @property
    def n_classes(self) -> int:
        return len(self.expressions)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def shard_path(self, index: int) -> Path:
        return self.root / self.shards[index].path


def _need(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ExportError(f"{where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ExportError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def check_version(version: Any, where: str) -> int:
    """Refuse every version but :data:`FORMAT_VERSION`, saying what to upgrade."""
    if not isinstance(version, int) or isinstance(version, bool):
        raise FormatVersionError(f"{where}: format_version must be an integer, got {version!r}")
    if version < FORMAT_VERSION:
        raise FormatVersionError(
            f"{where}: export format version {version} is older than this reader's "
            f"({FORMAT_VERSION}); re-export it with a current affdata")
    if version > FORMAT_VERSION:
        raise FormatVersionError(
            f"{where}: export format version {version} is newer than this reader's "
            f"({FORMAT_VERSION}); upgrade affmodels to read it")
    return version


def load_manifest(path: str | Path, *, verify: bool = False, check: bool = True) -> Manifest:
    """Read ``path/meta/info.json``, validate it, and check the shards on disk.

    ``path`` may be an fsspec URL (``s3://bucket/prefix``): then shards are fetched on first use
    into this host's cache and verified as they arrive (:mod:`affmodels.data.remote`).
    ``check=False`` skips the shard checks (the remote reader's manifest, shards not here yet).

    Always checks that each shard exists with the recorded byte size (a stat, no reading);
    ``verify=True`` also compares each shard with its recorded sha256, hashing only shards
    that no cache has seen verified at their current size and mtime (:mod:`affmodels.data.verify`).
    """
    if "://" in str(path):
        from affmodels.data.remote import is_remote, open_remote

        if is_remote(path):
            return open_remote(str(path))
    root = Path(path)
    info = root / MANIFEST
    if not info.is_file():
        raise ExportError(f"{root} is not an export: {MANIFEST} not found (an export writes it last)")
    try:
        raw = json.loads(info.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{info}: not readable JSON ({e})") from e
    where = str(info)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise ExportError(f"{where}: format is {got!r}, expected {FORMAT!r}")
    version = check_version(raw.get("format_version"), where)

    vocab = _need(raw, "vocabulary", dict, where)
    au_names = tuple(_need(vocab, "au_names", list, f"{where} vocabulary"))
    expressions = tuple(_need(vocab, "expressions", list, f"{where} vocabulary"))
    image = _need(raw, "image", dict, where)
    encoding = _need(image, "encoding", str, f"{where} image")
    if encoding not in ENCODINGS:
        raise ExportError(f"{where}: unknown image encoding {encoding!r}; known: {', '.join(ENCODINGS)}")
    size = _need(image, "size", int, f"{where} image")
    if size < 1:
        raise ExportError(f"{where}: image size must be positive, got {size}")
    shard_size = _need(raw, "shard_size", int, where)
    row_group_size = _need(raw, "row_group_size", int, where)
    if shard_size < 1 or row_group_size < 1:
        raise ExportError(f"{where}: shard_size and row_group_size must be positive, "
                          f"got {shard_size}, {row_group_size}")
    shards = []
    for i, s in enumerate(_need(raw, "shards", list, where)):
        w = f"{where} shards[{i}]"
        if not isinstance(s, dict):
            raise ExportError(f"{w}: not an object")
        entry = ShardEntry(_need(s, "path", str, w), _need(s, "rows", int, w),
                           _need(s, "bytes", int, w), _need(s, "sha256", str, w))
        if entry.rows < 1:
            raise ExportError(f"{w}: {entry.path} has {entry.rows} rows; shards are never empty")
        shards.append(entry)
    counts = _need(raw, "counts", dict, where)
    rows = sum(s.rows for s in shards)
    if counts.get("rows", rows) != rows:
        raise ExportError(f"{where}: counts.rows is {counts.get('rows')} but the shards hold {rows} rows")

    freqs = raw.get("class_frequencies") or {}
    rates = raw.get("au_positive_rates") or {}
    class_counts = np.array([int(freqs.get(c) or 0) for c in expressions], dtype=np.int64)
    au_rates = np.array([math.nan if rates.get(a) is None else float(rates[a]) for a in au_names])
    manifest = Manifest(root=root, format_version=version, au_names=au_names,
                        expressions=expressions, tasks=tuple(raw.get("tasks") or ()),
                        encoding=encoding, image_size=size, shards=tuple(shards),
                        shard_size=shard_size, row_group_size=row_group_size, counts=counts,
                        class_counts=class_counts, au_positive_rates=au_rates, raw=raw)
    if check:
        check_shards(manifest, verify=verify)
    return manifest


def check_shards(manifest: Manifest, *, verify: bool = False) -> None:
    """Every shard exists with its recorded size; with ``verify`` also its recorded sha256
    (hashed once per file version: :func:`affmodels.data.verify.verify_shards`)."""
    for i, s in enumerate(manifest.shards):
        path = manifest.shard_path(i)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ShardError(f"shard {s.path} is missing from {manifest.root}") from None
        if size != s.bytes:
            raise ShardError(f"shard {s.path} is {size} bytes but the manifest records {s.bytes}: "
                             "truncated or replaced since the export")
    if verify:
        verify_shards(manifest)


__all__ = ["FORMAT", "FORMAT_VERSION", "Manifest", "ShardEntry", "check_shards", "check_version",
           "load_manifest", "sha256_file"]
