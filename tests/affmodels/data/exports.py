"""Small exports written straight with pyarrow, following docs/export-format.md (version 1).

The fixture writes what the contract says, not what affdata's writer happens to do, so these
tests pin the reader to the document. Pixels are per-row noise (JPEG or raw) so a test can
tell every row's image from every other's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import simplejpeg

AU_NAMES = ["AU1", "AU4", "AU12"]
EXPRESSIONS = ["Neutral", "Anger", "Happiness", "Sadness"]


def schema(k: int) -> pa.Schema:
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
        pa.field("au", pa.list_(pa.int8(), k), nullable=False),
        pa.field("au_mask", pa.list_(pa.field("item", pa.bool_(), nullable=False), k), nullable=False),
        pa.field("expr", pa.int16()),
        pa.field("has_va", pa.bool_(), nullable=False),
        pa.field("has_au", pa.bool_(), nullable=False),
        pa.field("has_expr", pa.bool_(), nullable=False),
    ])


#: how affdata's exporter writes shards (affdata/export/shards.py): images uncompressed, PLAIN,
#: data pages v1; what the reader's zero-copy image path (affmodels.data.pages) handles
AFFDATA_WRITER = {"compression": {n: ("NONE" if n == "image" else "ZSTD") for n in schema(3).names},
                  "use_dictionary": ["video", "track", "subject"], "data_page_version": "1.0"}


@dataclass
class Export:
    root: Path
    rows: int
    videos: np.ndarray  # (rows,) str
    frames: np.ndarray  # (rows,) int
    has: dict[str, np.ndarray]  # per task (rows,) bool
    pixels: np.ndarray  # (rows, size, size, 3) uint8 as decoded


def write_export(root: Path, *, videos: int = 6, frames: int = 40, size: int = 16,
                 shard_size: int = 64, row_group_size: int = 16, encoding: str = "jpeg",
                 format_version: int = 1, va_rate: float = 0.8, au_rate: float = 0.25,
                 expr_rate: float = 0.15, seed: int = 0, writer: dict | None = None) -> Export:
    """``writer``: ParquetWriter options (default pyarrow's: snappy everywhere); affdata's own
    writer stores the image column uncompressed, see :data:`AFFDATA_WRITER`."""
    g = np.random.default_rng(seed)
    n, k, c = videos * frames, len(AU_NAMES), len(EXPRESSIONS)
    video = np.repeat([f"vid{v:02d}" for v in range(videos)], frames)
    frame = np.tile(np.arange(frames), videos)
    has_va = g.random(n) < va_rate
    au_mask = (g.random(n) < au_rate)[:, None] & (g.random((n, k)) < 0.85)
    has_au = au_mask.any(1)
    has_expr = g.random(n) < expr_rate
    au = (g.random((n, k)) < 0.3).astype(np.int8)
    expr = g.integers(0, c, n).astype(np.int16)
    val, aro = g.uniform(-1, 1, n).astype(np.float32), g.uniform(-1, 1, n).astype(np.float32)
    smooth = np.kron(g.integers(0, 256, (n, 4, 4, 3)), np.ones((1, size // 4, size // 4, 1)))
    raw_px = smooth.astype(np.uint8)
    images, pixels = [], np.empty_like(raw_px)
    for i in range(n):
        if encoding == "jpeg":
            data = simplejpeg.encode_jpeg(raw_px[i], quality=95, colorspace="RGB")
            pixels[i] = simplejpeg.decode_jpeg(data, colorspace="RGB")
        else:
            data = raw_px[i].tobytes()
            pixels[i] = raw_px[i]
        images.append(data)
    sch = schema(k)
    table = pa.table({
        "video": pa.array(video, pa.string()),
        "video_id": pa.array(np.repeat(np.arange(videos), frames), pa.int64()),
        "track": pa.array(["main"] * n, pa.string()),
        "subject": pa.array([f"s{int(v[3:]) % 3}" for v in video], pa.string()),
        "frame": pa.array(frame, pa.int32()),
        "pts": pa.array(frame / 25.0, pa.float64()),
        "image": pa.array(images, pa.binary()),
        "box": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(4 * n, np.float32)), type=sch.field("box").type),
        "valence": pa.array(val, pa.float32(), mask=~has_va),
        "arousal": pa.array(aro, pa.float32(), mask=~has_va),
        "au": pa.FixedSizeListArray.from_arrays(pa.array(au.reshape(-1), pa.int8(), mask=~au_mask.reshape(-1)),
                                                type=sch.field("au").type),
        "au_mask": pa.FixedSizeListArray.from_arrays(pa.array(au_mask.reshape(-1)), type=sch.field("au_mask").type),
        "expr": pa.array(expr, pa.int16(), mask=~has_expr),
        "has_va": pa.array(has_va), "has_au": pa.array(has_au), "has_expr": pa.array(has_expr),
    }, schema=sch)
    (root / "data").mkdir(parents=True)
    (root / "meta").mkdir()
    shards = []
    for s, a in enumerate(range(0, n, shard_size)):
        rel = f"data/shard-{s:05d}.parquet"
        part = table.slice(a, shard_size)
        with pq.ParquetWriter(root / rel, sch, **(writer or {})) as w:
            for g0 in range(0, len(part), row_group_size):
                w.write_table(part.slice(g0, row_group_size), row_group_size=row_group_size)
        blob = (root / rel).read_bytes()
        shards.append({"path": rel, "rows": len(part), "bytes": len(blob),
                       "sha256": hashlib.sha256(blob).hexdigest(),
                       "first": {"video": str(video[a]), "track": "main", "frame": int(frame[a])}})
    annotated = au_mask.sum(0)
    positive = (au_mask & (au == 1)).sum(0)
    manifest = {
        "format": "affdata-export", "format_version": format_version,
        "split": {"name": "official", "version": 1, "content_hash": "x", "part": "train"},
        "source": "consensus", "tasks": ["va", "au", "expr"],
        "image": {"encoding": encoding, "size": size, "quality": 95, "channels": 3, "margin": 1.2,
                  "crop_policy": "face box, else centred square"},
        "vocabulary": {"au_names": AU_NAMES, "au_numbers": [1, 4, 12], "expressions": EXPRESSIONS,
                       "expression_ids": list(range(c))},
        "counts": {"rows": n, "videos": videos, "tracks": videos, "subjects": 3,
                   "va": int(has_va.sum()), "au": int(has_au.sum()), "expr": int(has_expr.sum()),
                   "au_per_unit": {a: int(x) for a, x in zip(AU_NAMES, annotated)}},
        "class_frequencies": {e: int((expr[has_expr] == i).sum()) for i, e in enumerate(EXPRESSIONS)},
        "au_positive_rates": {a: (round(int(p) / int(x), 6) if x else None)
                              for a, p, x in zip(AU_NAMES, positive, annotated)},
        "shards": shards, "shard_size": shard_size, "row_group_size": row_group_size,
        "label_state": "0" * 64, "args": {},
    }
    (root / "meta" / "info.json").write_text(json.dumps(manifest, indent=2))
    return Export(root, n, video, frame, {"va": has_va, "au": has_au, "expr": has_expr}, pixels)
