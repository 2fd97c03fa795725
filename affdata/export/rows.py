"""The shards' Arrow schema (docs/export-format.md, "Rows") and building row batches.

A batch is one track's run of rows: its labels come from the planned numpy arrays, its images
from the crop chunks, so building it costs no Python per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from affdata.export.plan import TrackLabels

FORMAT_VERSION = 1
SCHEMA_METADATA = {b"affdata.export.format_version": str(FORMAT_VERSION).encode()}


def export_schema(n_aus: int) -> pa.Schema:
    return pa.schema([
        pa.field("video", pa.string(), nullable=False),
        pa.field("video_id", pa.int64(), nullable=False),
        pa.field("track", pa.string(), nullable=False),
        pa.field("subject", pa.string()),
        pa.field("frame", pa.int32(), nullable=False),
        pa.field("pts", pa.float64(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),
        pa.field("box", pa.list_(pa.field("item", pa.float32(), nullable=False), 4)),
        pa.field("valence", pa.float32()),
        pa.field("arousal", pa.float32()),
        pa.field("au", pa.list_(pa.int8(), n_aus), nullable=False),
        pa.field("au_mask", pa.list_(pa.field("item", pa.bool_(), nullable=False), n_aus), nullable=False),
        pa.field("expr", pa.int16()),
        pa.field("has_va", pa.bool_(), nullable=False),
        pa.field("has_au", pa.bool_(), nullable=False),
        pa.field("has_expr", pa.bool_(), nullable=False),
    ], metadata=SCHEMA_METADATA)


def _fixed(values: np.ndarray, mask: np.ndarray | None, type_: pa.DataType, size: int,
           list_type: pa.DataType, row_mask: np.ndarray | None = None) -> pa.Array:
    flat = pa.array(values.reshape(-1), type=type_, mask=None if mask is None else ~mask.reshape(-1))
    rows_null = None if row_mask is None else pa.array(~row_mask)
    return pa.FixedSizeListArray.from_arrays(flat, type=list_type, mask=rows_null)


def build_batch(schema: pa.Schema, video: str, video_id: int, track: str, subject: str | None,
                labels: TrackLabels, crop_boxes: np.ndarray, has_box: np.ndarray,
                images: pa.Array) -> pa.RecordBatch:
    """Rows ``labels[i]`` with ``images[i]``; ``crop_boxes``/``has_box`` give the ``box`` column."""
    n = len(labels.frames)
    if len(images) != n:
        raise ValueError(f"{n} rows but {len(images)} images")
    k = labels.au.shape[1]
    columns = [
        pa.array(np.full(n, video, dtype=object), pa.string()),
        pa.array(np.full(n, video_id, dtype=np.int64)),
        pa.array(np.full(n, track, dtype=object), pa.string()),
        pa.nulls(n, pa.string()) if subject is None else pa.array(np.full(n, subject, dtype=object), pa.string()),
        pa.array(labels.frames, pa.int32()),
        pa.array(labels.pts, pa.float64()),
        images.cast(pa.binary()) if images.type != pa.binary() else images,
        _fixed(crop_boxes.astype(np.float32), None, pa.float32(), 4, schema.field("box").type, has_box),
        pa.array(labels.valence, pa.float32(), mask=~labels.has_va),
        pa.array(labels.arousal, pa.float32(), mask=~labels.has_va),
        _fixed(labels.au, labels.au_mask, pa.int8(), k, schema.field("au").type),
        _fixed(labels.au_mask, None, pa.bool_(), k, schema.field("au_mask").type),
        pa.array(labels.expr, pa.int16(), mask=~labels.has_expr),
        pa.array(labels.has_va, pa.bool_()),
        pa.array(labels.has_au, pa.bool_()),
        pa.array(labels.has_expr, pa.bool_()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
