"""Derived exports for the paper's loop: fewer labels, and generated faces added as rows.

The multi-task training reads exports, so the augmented training set *is* an export: a copy
of a training export whose labels are thinned (each track keeps one contiguous run of a
fraction of its labelled frames per task, as an annotator who labelled part of a video;
rows left with no label are dropped, as an export without ``include_unlabelled`` drops them),
plus rows drawn by a generator, labelled with their targets (VA, every AU, the class). The
generated rows are their own videos (``gan-<source video>``, no box), so they are easy to tell
apart and count. The manifest's counts, class frequencies and AU positive rates are recomputed,
because the loss weights come from them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from affmodels.data import load_manifest
from affmodels.gan.identity import Faces
from affmodels.gan.targets import Target


def _runs(keys: np.ndarray, has: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Per track (``keys``), keep one random contiguous run of ``fraction`` of its labelled rows."""
    keep = np.zeros(len(has), bool)
    for key in np.unique(keys):
        labelled = np.flatnonzero((keys == key) & has)
        n = int(round(fraction * len(labelled)))
        if n:
            start = int(rng.integers(0, len(labelled) - n + 1))
            keep[labelled[start:start + n]] = True
    return keep


def thin_table(table: pa.Table, fraction: float, seed: int) -> pa.Table:
    """``table`` with each task's labels kept on ``fraction`` of its labelled rows (per track, one
    contiguous run), and rows with no label left dropped."""
    rng = np.random.default_rng([seed, 5])
    keys = np.asarray([f"{v}/{t}" for v, t in zip(table["video"].to_pylist(), table["track"].to_pylist())])
    has = {t: table[f"has_{t}"].to_numpy(zero_copy_only=False) for t in ("va", "au", "expr")}
    keep = {t: _runs(keys, has[t], fraction, rng) for t in has}
    k = table.schema.field("au").type.list_size
    au = np.asarray(table["au"].to_pylist(), dtype=object)
    au_mask = np.asarray(table["au_mask"].to_pylist(), dtype=bool).reshape(-1, k) & keep["au"][:, None]
    au_vals = np.asarray([[x if x is not None else 0 for x in row] for row in au], dtype=np.int8).reshape(-1, k)
    cols = {name: table[name] for name in table.column_names}
    cols["valence"] = pa.array(table["valence"].to_numpy(zero_copy_only=False), pa.float32(), mask=~keep["va"])
    cols["arousal"] = pa.array(table["arousal"].to_numpy(zero_copy_only=False), pa.float32(), mask=~keep["va"])
    cols["au"] = pa.FixedSizeListArray.from_arrays(pa.array(au_vals.reshape(-1), pa.int8(), mask=~au_mask.reshape(-1)),
                                                   type=table.schema.field("au").type)
    cols["au_mask"] = pa.FixedSizeListArray.from_arrays(pa.array(au_mask.reshape(-1), pa.bool_()),
                                                        type=table.schema.field("au_mask").type)
    cols["expr"] = pa.array(table["expr"].to_numpy(zero_copy_only=False).astype(np.float64), pa.float64(),
                            mask=~keep["expr"]).cast(pa.int16(), safe=False)
    for t in ("va", "au", "expr"):
        cols[f"has_{t}"] = pa.array(keep[t])
    out = pa.Table.from_arrays([cols[n] for n in table.column_names], schema=table.schema)
    return out.filter(pa.array(keep["va"] | keep["au"] | keep["expr"]))


def generated_table(images: torch.Tensor, sources: Faces, target: Target, schema: pa.Schema,
                    quality: int = 90) -> pa.Table:
    """Rows for generated uint8 faces ``images`` (drawn from ``sources``), labelled ``target``."""
    import simplejpeg

    n, k = len(images), target.au.shape[1]
    hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
    jpeg = [simplejpeg.encode_jpeg(np.ascontiguousarray(hwc[i]), quality=quality, colorspace="RGB",
                                   colorsubsampling="420") for i in range(n)]
    videos = [f"gan-{v}" for v in sources.video]
    names = sorted(set(videos))
    au = (target.au.numpy() > 0.5).astype(np.int8)
    cols = {
        "video": pa.array(videos, pa.string()),
        "video_id": pa.array([-1 - names.index(v) for v in videos], pa.int64()),
        "track": pa.array(["main"] * n, pa.string()),
        "subject": pa.array([str(s) for s in sources.subject], pa.string()),
        "frame": pa.array(np.arange(n, dtype=np.int32)),
        "pts": pa.array(np.arange(n, dtype=np.float64)),
        "image": pa.array(jpeg, pa.binary()),
        "box": pa.nulls(n, schema.field("box").type),
        "valence": pa.array(target.va[:, 0].numpy(), pa.float32()),
        "arousal": pa.array(target.va[:, 1].numpy(), pa.float32()),
        "au": pa.FixedSizeListArray.from_arrays(pa.array(au.reshape(-1), pa.int8()), type=schema.field("au").type),
        "au_mask": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(n * k, bool)), type=schema.field("au_mask").type),
        "expr": pa.array(target.expr.numpy().astype(np.int16), pa.int16()),
        "has_va": pa.array(np.ones(n, bool)), "has_au": pa.array(np.ones(n, bool)), "has_expr": pa.array(np.ones(n, bool)),
    }
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def write_export(table: pa.Table, like: dict, out: Path, source: str) -> Path:
    """Write ``table`` as an export at ``out`` (one shard), with ``like``'s manifest recomputed."""
    out = Path(out)
    (out / "data").mkdir(parents=True, exist_ok=False)
    shard = out / "data" / "shard-00000.parquet"
    pq.write_table(table, shard, row_group_size=like["row_group_size"], compression="none")
    data = shard.read_bytes()
    vocab = like["vocabulary"]
    has = {t: np.asarray(table[f"has_{t}"].to_numpy(zero_copy_only=False)) for t in ("va", "au", "expr")}
    au_mask = np.asarray(table["au_mask"].to_pylist(), bool).reshape(len(table), -1)
    au = np.asarray([[x or 0 for x in row] for row in table["au"].to_pylist()], float).reshape(len(table), -1)
    expr = table["expr"].to_numpy(zero_copy_only=False)
    counts = {**like["counts"], "rows": len(table), "va": int(has["va"].sum()), "au": int(has["au"].sum()),
              "expr": int(has["expr"].sum()), "videos": len(set(table["video"].to_pylist())),
              "au_per_unit": {a: int(au_mask[:, j].sum()) for j, a in enumerate(vocab["au_names"])}}
    manifest = {**like, "source": source, "counts": counts,
                "class_frequencies": {c: int((expr[has["expr"]] == i).sum()) for i, c in enumerate(vocab["expressions"])},
                "au_positive_rates": {a: round(float(au[au_mask[:, j], j].mean()), 6) if au_mask[:, j].any() else None
                                      for j, a in enumerate(vocab["au_names"])},
                "shards": [{"path": "data/shard-00000.parquet", "rows": len(table), "bytes": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "first": {"video": table["video"][0].as_py(), "track": table["track"][0].as_py(),
                                      "frame": int(table["frame"][0].as_py())}}],
                "shard_size": max(len(table), 1), "derived": {"from": like.get("source"), "by": "affmodels.gan.derive"}}
    (out / "meta").mkdir()
    (out / "meta" / "info.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def read_export(export: str | Path) -> tuple[pa.Table, dict]:
    """The rows of an export as one Arrow table, and its manifest."""
    manifest = load_manifest(Path(export))
    tables = [pq.read_table(manifest.root / s.path) for s in manifest.shards]
    return pa.concat_tables(tables), manifest.raw


__all__ = ["generated_table", "read_export", "thin_table", "write_export"]
