"""Where each image of a row group lies in its shard file, so a worker reads only the images it
decodes.

The export stores the ``image`` column uncompressed, PLAIN-encoded, required (docs/export-format.md
and affdata's writer): a data page is a Thrift page header, then per row a 4-byte little-endian
length and the image bytes. Read through Arrow, a row group's whole image column is parsed and
copied even when a worker decodes a tenth of its rows (a worker's share of the epoch's sequence
cuts across the shuffled windows; with many workers each one used to read every row group of
its windows). Here the shard is memory-mapped and each page header parsed (the Thrift compact
protocol, a few fields), so an image is a zero-copy slice of the page cache and a row nobody
decodes is never touched. Anything else (compression, dictionary pages, data page v2, nulls)
is not handled here: :func:`image_pages` returns None and the reader uses Arrow. Each file is
also checked once against Arrow's reading of its first row group. A mapped file must not be
cut short in place while a worker reads it (a re-export swaps folders, which is safe: the
mapping keeps the old file); reading past a truncated end would kill the worker with SIGBUS.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

DATA_PAGE, PLAIN = 0, 0
_LENGTH = struct.Struct("<I")


class Unsupported(ValueError):
    """This column chunk is not laid out as the fast path expects (use Arrow instead)."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Unsupported("varint too long")


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _skip(buf: memoryview, pos: int, kind: int) -> int:
    """Skip one value of compact-protocol type ``kind``."""
    if kind in (1, 2):  # bool in a field header: no payload
        return pos
    if kind == 3:
        return pos + 1
    if kind in (4, 5, 6):
        return _varint(buf, pos)[1]
    if kind == 7:
        return pos + 8
    if kind == 8:
        n, pos = _varint(buf, pos)
        return pos + n
    if kind in (9, 10):
        head = buf[pos]
        pos += 1
        size, elem = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _varint(buf, pos)
        for _ in range(size):
            pos = pos + 1 if elem in (1, 2) else _skip(buf, pos, elem)
        return pos
    if kind == 11:
        size, pos = _varint(buf, pos)
        if size:
            types = buf[pos]
            pos += 1
            for _ in range(size):
                pos = _skip(buf, pos, types >> 4)
                pos = _skip(buf, pos, types & 0x0F)
        return pos
    if kind == 12:
        return _struct(buf, pos, {})[1]
    raise Unsupported(f"unknown thrift type {kind}")


def _struct(buf: memoryview, pos: int, want: dict[int, str]) -> tuple[dict[str, object], int]:
    """Parse a struct, keeping i32 fields and nested structs named in ``want`` ({id: name};
    a nested struct's fields are wanted under "name.subname" as ``want[(id, subid)]``)."""
    out: dict[str, object] = {}
    last = 0
    while True:
        head = buf[pos]
        pos += 1
        if head == 0:
            return out, pos
        delta, kind = head >> 4, head & 0x0F
        if delta:
            fid = last + delta
        else:
            raw, pos = _varint(buf, pos)
            fid = _zigzag(raw)
        last = fid
        name = want.get(fid)
        if name is not None and kind == 5:
            raw, pos = _varint(buf, pos)
            out[name] = _zigzag(raw)
        elif name is not None and kind == 12:
            sub = {k[1]: v for k, v in want.items() if isinstance(k, tuple) and k[0] == fid}
            out[name], pos = _struct(buf, pos, sub)
        else:
            pos = _skip(buf, pos, kind)


_PAGE_HEADER = {1: "type", 3: "compressed_size", 5: "data", (5, 1): "num_values", (5, 2): "encoding"}


def _row_group_offsets(buf: memoryview, start: int, size: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    starts: list[int] = []
    lengths: list[int] = []
    unpack = _LENGTH.unpack_from
    pos, end, i = start, start + size, 0
    while pos < end:
        header, pos = _struct(buf, pos, _PAGE_HEADER)
        data = header.get("data")
        if header.get("type") != DATA_PAGE or not isinstance(data, dict) or data.get("encoding") != PLAIN:
            raise Unsupported(f"page of type {header.get('type')} / encoding "
                              f"{data.get('encoding') if isinstance(data, dict) else None}")
        page_end = pos + int(header["compressed_size"])
        n = int(data["num_values"])
        if i + n > rows:
            raise Unsupported("more values than rows")
        for _ in range(n):
            (length,) = unpack(buf, pos)
            starts.append(pos + 4)
            lengths.append(length)
            pos += 4 + length
        if pos != page_end:
            raise Unsupported("values do not fill the page")
        i += n
    if i != rows or pos != end:
        raise Unsupported(f"{i} values for {rows} rows")
    first = np.array(starts, np.int64)
    return first, first + np.array(lengths, np.int64)


class ImagePages:
    """One shard's image column: its file mapped, and each row group's (start, stop) byte ranges."""

    def __init__(self, path: Path, meta: pq.FileMetaData, column: int) -> None:
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.data = np.frombuffer(self._map, np.uint8)
        self.meta, self.column = meta, column
        self._ranges: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def ranges(self, group: int) -> tuple[np.ndarray, np.ndarray]:
        """(start, stop) byte offsets in :attr:`data` of each row's image in row group ``group``.

        Parsed once per row group and kept (16 bytes a row, as long as the file stays open): the
        parse is a Python loop over the rows, and a worker meets every row group of its windows
        each epoch, many of them for a few rows."""
        got = self._ranges.get(group)
        if got is None:
            rg = self.meta.row_group(group)
            chunk = rg.column(self.column)
            got = _row_group_offsets(memoryview(self._map), chunk.data_page_offset,
                                     chunk.total_compressed_size, rg.num_rows)
            self._ranges[group] = got
        return got


def image_pages(path: Path, f: pq.ParquetFile) -> ImagePages | None:
    """The fast path for ``f``'s image column, or None where its layout is not the one handled
    (or the file disagrees with Arrow on its first row group)."""
    meta = f.metadata
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    if "image" not in names or meta.num_row_groups == 0:
        return None
    col = names.index("image")
    desc = meta.schema.column(col)
    if desc.physical_type != "BYTE_ARRAY" or desc.max_definition_level or desc.max_repetition_level:
        return None
    for g in range(meta.num_row_groups):
        chunk = meta.row_group(g).column(col)
        if chunk.compression != "UNCOMPRESSED" or chunk.dictionary_page_offset is not None:
            return None
    try:
        pages = ImagePages(path, meta, col)
        starts, stops = pages.ranges(0)
        arrow = f.read_row_group(0, columns=["image"], use_threads=False)["image"].combine_chunks()
        _, offsets, blob = arrow.buffers()
        off = np.frombuffer(offsets, np.int32)[arrow.offset:arrow.offset + len(arrow) + 1].astype(np.int64)
        ours = np.concatenate([pages.data[a:z] for a, z in zip(starts.tolist(), stops.tolist())]) if len(starts) else np.zeros(0, np.uint8)
        theirs = np.frombuffer(blob, np.uint8)[off[0]:off[-1]] if blob is not None else np.zeros(0, np.uint8)
        if not (np.array_equal(np.diff(off), stops - starts) and np.array_equal(ours, theirs)):
            return None
    except (Unsupported, IndexError, ValueError, OSError):
        return None
    return pages


__all__ = ["ImagePages", "Unsupported", "image_pages"]
