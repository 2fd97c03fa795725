"""Read one row group of a shard into numpy label arrays and its image bytes, as Arrow left them.

A worker keeps a few ``ParquetFile`` handles open (footers parsed once) and reads whole row
groups with only the columns the batch needs. Labels are turned into the batch contract's
form here, once per row group and vectorised: nulls become 0 (-1 for ``expr``) and the masks
come from the nulls themselves, so a sample never carries a value its mask does not vouch for.
Images stay in Arrow's buffer (the export stores them uncompressed): a row is (buffer, start,
stop), and the decoder reads a slice of it. No Python object per row is made here (a
``to_pylist()`` of the image column cost a third of the decode).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from affmodels.data.errors import ShardError
from affmodels.data.manifest import Manifest, check_version
from affmodels.data.pages import ImagePages, Unsupported, image_pages

COLUMNS = ("video", "track", "frame", "image", "valence", "arousal", "au", "au_mask", "expr")
LABEL_COLUMNS = tuple(c for c in COLUMNS if c != "image")


@dataclass
class Images:
    """Row ``i``'s encoded image is ``buffers[buf[i]][start[i]:stop[i]]`` (uint8 numpy views)."""

    buffers: list[np.ndarray]
    buf: np.ndarray  # (n,) int64
    start: np.ndarray  # (n,) int64
    stop: np.ndarray  # (n,) int64

    @classmethod
    def from_arrow(cls, column: pa.ChunkedArray) -> Images:
        arr = column.combine_chunks()
        _, offsets, data = arr.buffers()
        wide = pa.types.is_large_binary(arr.type)
        off = np.frombuffer(offsets, np.int64 if wide else np.int32)[arr.offset:arr.offset + len(arr) + 1]
        off = off.astype(np.int64)
        data_arr = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        return cls([data_arr], np.zeros(len(arr), np.int64), off[:-1], off[1:])

    def __len__(self) -> int:
        return len(self.buf)

    def get(self, i: int) -> np.ndarray:
        return self.buffers[int(self.buf[i])][int(self.start[i]):int(self.stop[i])]

    def slices(self, index: np.ndarray) -> list[memoryview]:
        """The encoded images of rows ``index``, in that order (views, no copy: memoryview
        slices, cheaper to make than numpy views)."""
        bufs = [memoryview(b) for b in self.buffers]
        return [bufs[b][a:z] for b, a, z in zip(self.buf[index].tolist(), self.start[index].tolist(),
                                                 self.stop[index].tolist())]

    @staticmethod
    def concat(parts: list[Images]) -> Images:
        buffers, bufs = [], []
        for p in parts:
            bufs.append(p.buf + len(buffers))
            buffers += p.buffers
        return Images(buffers, np.concatenate(bufs), np.concatenate([p.start for p in parts]),
                      np.concatenate([p.stop for p in parts]))


@dataclass
class Block:
    """One row group in batch-contract form; ``rows`` global row indices in file order."""

    rows: np.ndarray  # (n,) int64
    images: Images
    va: np.ndarray  # (n, 2) float32, 0 where missing
    va_mask: np.ndarray  # (n,) bool
    au: np.ndarray  # (n, K) float32, 0 where missing
    au_mask: np.ndarray  # (n, K) bool
    expr: np.ndarray  # (n,) int64, -1 where missing
    expr_mask: np.ndarray  # (n,) bool
    video: np.ndarray  # (n,) object (str)
    track: np.ndarray  # (n,) object (str)
    frame: np.ndarray  # (n,) int64

    FIELDS = ("rows", "va", "va_mask", "au", "au_mask", "expr", "expr_mask", "video",
              "track", "frame")


def _strings(col: pa.ChunkedArray) -> np.ndarray:
    """(n,) object array of a string column. Read as a dictionary (the ids repeat over a row
    group) it indexes the few distinct names instead of making one Python str per row."""
    if not pa.types.is_dictionary(col.type):
        return np.array(col.to_pylist(), dtype=object)
    parts = [np.array(c.dictionary.to_pylist(), dtype=object)[c.indices.to_numpy(zero_copy_only=False)]
             for c in col.chunks]
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _flat(col: pa.ChunkedArray, k: int, fill: int | bool) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) values of a fixed-size list column with nulls filled, and (n, K) validity."""
    flat = col.combine_chunks().flatten()  # respects slice offsets
    n = len(col)
    values = pc.fill_null(flat, fill).to_numpy(zero_copy_only=False).reshape(n, k)
    valid = pc.is_valid(flat).to_numpy(zero_copy_only=False).reshape(n, k)
    return values, valid


def table_to_block(table: pa.Table, rows: np.ndarray, k: int, images: Images | None = None) -> Block:
    """Convert a table of :data:`COLUMNS` (export schema) to a :class:`Block`; ``images``
    replaces the table's image column (which it may then lack)."""
    valence, arousal, expr = table["valence"], table["arousal"], table["expr"]
    va_mask = (pc.is_valid(valence).to_numpy(zero_copy_only=False)
               & pc.is_valid(arousal).to_numpy(zero_copy_only=False))
    va = np.stack([pc.fill_null(valence, 0).to_numpy(), pc.fill_null(arousal, 0).to_numpy()], 1)
    va = np.where(va_mask[:, None], va, 0).astype(np.float32)
    au, au_valid = _flat(table["au"], k, 0)
    au_mask = _flat(table["au_mask"], k, False)[0].astype(bool) & au_valid  # null: not annotated
    au = np.where(au_mask, au, 0).astype(np.float32)
    expr_mask = pc.is_valid(expr).to_numpy(zero_copy_only=False)
    return Block(
        rows=rows,
        images=Images.from_arrow(table["image"]) if images is None else images,
        va=va, va_mask=va_mask, au=au, au_mask=au_mask,
        expr=pc.fill_null(expr, -1).to_numpy().astype(np.int64), expr_mask=expr_mask,
        video=_strings(table["video"]), track=_strings(table["track"]),
        frame=table["frame"].to_numpy().astype(np.int64),
    )


class ShardReader:
    """Reads row groups of an export's shards, keeping at most ``max_open`` files open."""

    def __init__(self, manifest: Manifest, max_open: int = 8) -> None:
        self.manifest = manifest
        self.max_open = max_open
        self._files: OrderedDict[int, pq.ParquetFile] = OrderedDict()
        self._pages: dict[int, ImagePages | None] = {}

    def _file(self, shard: int) -> pq.ParquetFile:
        f = self._files.get(shard)
        if f is not None:
            self._files.move_to_end(shard)
            return f
        entry = self.manifest.shards[shard]
        try:
            # mapped (no read into a buffer per row group) and ids as dictionaries (_strings)
            f = pq.ParquetFile(self.manifest.shard_path(shard), memory_map=True,
                               read_dictionary=["video", "track"])
        except (OSError, pa.ArrowException) as e:
            raise ShardError(f"shard {entry.path}: cannot open as Parquet ({e})") from e
        if f.metadata.num_rows != entry.rows:
            raise ShardError(f"shard {entry.path} holds {f.metadata.num_rows} rows but the manifest "
                             f"records {entry.rows}")
        meta = f.schema_arrow.metadata or {}
        version = meta.get(b"affdata.export.format_version")
        if version is not None:  # optional in the contract; when present it must agree
            check_version(int(version), f"shard {entry.path}")
        names = set(f.schema_arrow.names)
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ShardError(f"shard {entry.path} lacks column(s) {', '.join(missing)}")
        k = f.schema_arrow.field("au").type
        if getattr(k, "list_size", None) != self.manifest.n_aus:
            raise ShardError(f"shard {entry.path}: column au is {k}, expected a fixed-size list of "
                             f"{self.manifest.n_aus} (the manifest's AUs)")
        self._files[shard] = f
        self._pages[shard] = image_pages(self.manifest.shard_path(shard), f)
        if len(self._files) > self.max_open:
            gone, _ = self._files.popitem(last=False)
            self._pages.pop(gone, None)
        return f

    def read(self, shard: int, group: int, first_row: int, length: int) -> Block:
        return self.read_groups(shard, [group], [first_row], [length])[0]

    def read_groups(self, shard: int, groups: list[int], first_rows: list[int], lengths: list[int]) -> list[Block]:
        """Row groups ``groups`` of ``shard`` (global first rows and lengths from the manifest's
        layout), one :class:`Block` each, read in one call: converting labels to the batch
        contract costs about the same for 512 rows as for 16k (a dozen Arrow and numpy calls),
        and a worker needs all the row groups of a window at once."""
        f = self._file(shard)
        entry = self.manifest.shards[shard]
        for group, length in zip(groups, lengths):
            if group >= f.num_row_groups or f.metadata.row_group(group).num_rows != length:
                raise ShardError(f"shard {entry.path}: row group {group} is not the {length} rows the "
                                 f"manifest's row_group_size ({self.manifest.row_group_size}) implies")
        images = None
        pages = self._pages.get(shard)
        if pages is not None:  # only the images a worker decodes are ever touched
            try:
                ranges = [pages.ranges(g) for g in groups]
                starts = np.concatenate([r[0] for r in ranges])
                images = Images([pages.data], np.zeros(len(starts), np.int64), starts,
                                np.concatenate([r[1] for r in ranges]))
            except (Unsupported, IndexError):  # a row group laid out otherwise: Arrow reads it
                images = None
        try:
            table = f.read_row_groups(list(groups), columns=list(LABEL_COLUMNS if images is not None else COLUMNS),
                                      use_threads=False)
        except (OSError, pa.ArrowException) as e:
            raise ShardError(f"shard {entry.path}: cannot read row group(s) {groups} ({e})") from e
        rows = np.concatenate([np.arange(a, a + n, dtype=np.int64) for a, n in zip(first_rows, lengths)])
        block = table_to_block(table, rows, self.manifest.n_aus, images)
        if len(groups) == 1:
            return [block]
        ends = np.cumsum(lengths).tolist()
        return [slice_block(block, a, z) for a, z in zip([0, *ends[:-1]], ends)]

    def read_task_masks(self) -> dict[str, np.ndarray]:
        """(rows,) bool per task over the whole export (for balanced sampling)."""
        cols = {"va": "has_va", "au": "has_au", "expr": "has_expr"}
        parts: dict[str, list[np.ndarray]] = {t: [] for t in cols}
        for s in range(len(self.manifest.shards)):
            t = self._file(s).read(columns=list(cols.values()), use_threads=False)
            for task, col in cols.items():
                parts[task].append(pc.fill_null(t[col], False).to_numpy(zero_copy_only=False).astype(bool))
        return {t: np.concatenate(p) for t, p in parts.items()}

    def read_labels(self) -> Block:
        """Every row's labels over the whole export, without pixels (a GAN draws targets from them)."""
        blocks, offset = [], 0
        for s, entry in enumerate(self.manifest.shards):
            try:
                table = self._file(s).read(columns=list(LABEL_COLUMNS), use_threads=False)
            except (OSError, pa.ArrowException) as e:
                raise ShardError(f"shard {entry.path}: cannot read its labels ({e})") from e
            none = np.zeros(table.num_rows, np.int64)
            blocks.append(table_to_block(table, np.arange(offset, offset + table.num_rows, dtype=np.int64),
                                         self.manifest.n_aus, Images([np.zeros(0, np.uint8)], none, none, none)))
            offset += table.num_rows
        return concat_blocks(blocks)

    def close(self) -> None:
        self._files.clear()
        self._pages.clear()


def slice_block(block: Block, a: int, z: int) -> Block:
    """Rows ``a:z`` of ``block`` (views)."""
    im = block.images
    return Block(images=Images(im.buffers, im.buf[a:z], im.start[a:z], im.stop[a:z]),
                 **{name: getattr(block, name)[a:z] for name in Block.FIELDS})


def concat_blocks(blocks: list[Block]) -> Block:
    """One block holding ``blocks`` in the given order (a window's row groups, rows ascending)."""
    if len(blocks) == 1:
        return blocks[0]
    out = {name: np.concatenate([getattr(b, name) for b in blocks]) for name in Block.FIELDS}
    return Block(images=Images.concat([b.images for b in blocks]), **out)


__all__ = ["COLUMNS", "Block", "Images", "ShardReader", "concat_blocks", "slice_block", "table_to_block"]
