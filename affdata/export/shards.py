"""Parquet shards with rollover, their hashes, and the staging folder that makes export
atomic and resumable.

:class:`ShardWriter` takes row batches in export order and writes ``shard_size`` rows per
file in row groups of exactly ``row_group_size`` rows (a shard's last group may be smaller),
with fixed writer options so the same rows give the same bytes.

:class:`Staging` owns ``OUT.partial/``: shards are written there, each completed shard is
recorded (path, rows, bytes, sha256) in ``staging.json`` together with the fingerprint of the
export's inputs, and only a finished export, manifest included, is renamed to ``OUT``. A rerun
with the same fingerprint keeps the recorded shards whose bytes still hash the same and
continues after them; any other rerun starts over. Replacing an old export renames it to
``OUT.previous`` for the moment of the swap; a crash inside that moment is repaired by the
next run (the previous export is put back).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from affdata.errors import ConfigError
from affdata.hashing import file_sha256

log = logging.getLogger(__name__)

MANIFEST = "meta/info.json"
STATE = "staging.json"
SPOOL = "spool"
_STAT_COLUMNS = ("video", "video_id", "track", "subject", "frame", "pts", "valence", "arousal",
                 "expr", "has_va", "has_au", "has_expr")
_DICTIONARY_COLUMNS = ("video", "track", "subject")


@dataclass(frozen=True)
class ShardInfo:
    path: str  # relative to the export folder
    rows: int
    bytes: int
    sha256: str
    first: dict[str, Any]


def shard_name(index: int) -> str:
    return f"data/shard-{index:05d}.parquet"


class ShardWriter:
    """Streams batches into numbered shards; ``on_shard`` hears of each completed one."""

    def __init__(self, root: Path, schema: pa.Schema, shard_size: int, row_group_size: int,
                 start_index: int = 0, on_shard: Callable[[ShardInfo], None] | None = None) -> None:
        self.root, self.schema = root, schema
        self.shard_size, self.row_group_size = shard_size, row_group_size
        self.index = start_index
        self.on_shard = on_shard
        self.completed: list[ShardInfo] = []
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._shard_rows = 0  # rows of the open shard, written or pending
        self._first: dict[str, Any] | None = None

    def _open(self) -> pq.ParquetWriter:
        path = self.root / shard_name(self.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        compression = {name: ("NONE" if name == "image" else "ZSTD") for name in self.schema.names}
        return pq.ParquetWriter(
            str(path), self.schema, compression=compression,
            use_dictionary=list(_DICTIONARY_COLUMNS), write_statistics=list(_STAT_COLUMNS),
            version="2.6", data_page_version="1.0")

    def write(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            take = min(batch.num_rows - offset, self.shard_size - self._shard_rows)
            part = batch.slice(offset, take)
            if self._first is None:
                self._first = {"video": part.column(0)[0].as_py(), "track": part.column(2)[0].as_py(),
                               "frame": part.column(4)[0].as_py()}
            self._pending.append(part)
            self._pending_rows += take
            self._shard_rows += take
            offset += take
            while self._pending_rows >= self.row_group_size:
                self._flush(self.row_group_size)
            if self._shard_rows == self.shard_size:
                self._close_shard()

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        if self._writer is None:
            self._writer = self._open()
        self._writer.write_table(table.slice(0, rows), row_group_size=rows)
        rest = table.slice(rows)
        self._pending = rest.to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def _close_shard(self) -> None:
        if self._pending_rows:
            self._flush(self._pending_rows)
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        path = self.root / shard_name(self.index)
        info = ShardInfo(shard_name(self.index), self._shard_rows, path.stat().st_size,
                         file_sha256(path), self._first or {})
        self.completed.append(info)
        self.index += 1
        self._shard_rows = 0
        self._first = None
        if self.on_shard is not None:
            self.on_shard(info)

    def close(self) -> list[ShardInfo]:
        """Finish the open shard; the shards this writer completed."""
        self._close_shard()
        return self.completed

    def abort(self) -> None:
        """Drop the open shard's writer (its file stays partial and unrecorded)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError:  # the disk that failed the write fails the footer too
                pass


class Staging:
    """``OUT.partial/``: where an export is built, resumed, and moved into place from."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.dir = out.with_name(out.name + ".partial")
        self.previous = out.with_name(out.name + ".previous")
        self.fingerprint = ""
        self.shards: list[ShardInfo] = []

    @property
    def spool_dir(self) -> Path:
        return self.dir / SPOOL

    def prepare(self, fingerprint: str) -> list[ShardInfo]:
        """Repair an interrupted swap, check ``OUT``, and return the shards that can be kept."""
        self.fingerprint = fingerprint
        if self.previous.exists():
            if not self.out.exists():
                log.warning("restoring %s: an earlier export was interrupted while replacing it", self.out)
                os.rename(self.previous, self.out)
            else:
                shutil.rmtree(self.previous)
        if self.out.exists() and not (self.out / MANIFEST).is_file():
            if not self.out.is_dir() or any(self.out.iterdir()):
                raise ConfigError(f"{self.out}: exists and is not an affdata export (no {MANIFEST}); "
                                  "choose another --out or remove it")
        kept = self._resumable()
        if not kept and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        keep = {self.dir / s.path for s in kept}
        for path in sorted((self.dir / "data").glob("*")) if (self.dir / "data").is_dir() else []:
            if path not in keep:
                path.unlink()
        for name in (SPOOL, "meta"):
            shutil.rmtree(self.dir / name, ignore_errors=True)
        self.spool_dir.mkdir()
        self.shards = list(kept)
        self._save()
        return kept

    def _resumable(self) -> list[ShardInfo]:
        try:
            state = json.loads((self.dir / STATE).read_text())
        except (OSError, ValueError):
            return []
        if state.get("fingerprint") != self.fingerprint:
            log.info("%s: arguments or store changed since the interrupted export; starting over", self.dir)
            return []
        kept: list[ShardInfo] = []
        for raw in state.get("shards", []):
            info = ShardInfo(**raw)
            path = self.dir / info.path
            if not path.is_file() or path.stat().st_size != info.bytes or file_sha256(path) != info.sha256:
                log.warning("%s: does not match its recorded sha256; resuming before it", path)
                break
            kept.append(info)
        return kept

    def drop_unresumable(self) -> tuple[int, int]:
        """After a failed write (a full disk): remove the open shard, the spool and temporary
        files, keep the recorded shards and their record; the whole folder when none is complete.
        Returns the shards kept and their bytes."""
        if not self.dir.exists():
            return 0, 0
        keep = {self.dir / s.path for s in self.shards}
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            return 0, 0
        data = self.dir / "data"
        for path in sorted(data.glob("*")) if data.is_dir() else []:
            if path not in keep:
                path.unlink(missing_ok=True)
        for name in (SPOOL, "meta"):
            shutil.rmtree(self.dir / name, ignore_errors=True)
        (self.dir / (STATE + ".tmp")).unlink(missing_ok=True)
        try:  # the record may have missed the last shard if writing it was what failed
            self._save()
        except OSError:
            (self.dir / (STATE + ".tmp")).unlink(missing_ok=True)
        return len(self.shards), sum(s.bytes for s in self.shards)

    def add(self, info: ShardInfo) -> None:
        self.shards.append(info)
        self._save()

    def _save(self) -> None:
        state = {"fingerprint": self.fingerprint, "shards": [asdict(s) for s in self.shards]}
        tmp = self.dir / (STATE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        os.replace(tmp, self.dir / STATE)

    def finish(self, manifest: bytes) -> None:
        """Write the manifest last, drop the staging files, and swap the folder into place."""
        meta = self.dir / MANIFEST
        meta.parent.mkdir(parents=True, exist_ok=True)
        tmp = meta.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(manifest)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, meta)
        shutil.rmtree(self.spool_dir, ignore_errors=True)
        (self.dir / STATE).unlink(missing_ok=True)
        if self.out.exists():
            os.rename(self.out, self.previous)
            os.rename(self.dir, self.out)
            shutil.rmtree(self.previous)
        else:
            os.rename(self.dir, self.out)
