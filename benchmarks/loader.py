"""Benchmark: the streaming loader (AffectStream) against the bare cost of its work.

Measured in the same run, on the same frames (one export of a synthetic dataset):

* ours: ``AffectStream(batch_size=256)`` through ``make_loader`` with 0 and 2 workers
  (persistent workers, one warm-up epoch, then timed epochs);
* (a) bare decode: simplejpeg on the JPEG bytes already in memory, one process;
* (b) naive video reading: a decord ``VideoReader`` per video, ``vr[i]`` per frame in
  shuffled order, crop to the export's box and resize to the crop size: timed on a sample
  and extrapolated (in a subprocess: decord must not be imported where loaders start);
* (c) a plain map-style Dataset: the Parquet files read into one in-memory table, rows by
  index, decode, default collate, shuffled DataLoader with the same workers;
* the cnn model's forward + backward at batch 256 (the step the loader must keep up with).

Target: ours at least 0.7 of (a); and faster than the model's step. Data: the synthetic
generator -> store -> ``affdata.export.export_part`` when that exists, else shards
synthesised directly (said in the output). Prints one JSON object; medians of --repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- data


def build_export(work: Path, subjects: int, seconds: float) -> tuple[Path, Path | None, str]:
    """(export dir, videos dir or None, how it was made)."""
    from affdata.synthetic import generate_dataset

    ds = work / "synthetic"
    if not (ds / "dataset.json").exists():
        generate_dataset(ds, subjects=subjects, seconds=seconds, seed=0)
    try:
        from affdata.export import export_part
    except ImportError:
        export_part = None
    out = work / "export-train"
    if export_part is not None:
        if not (out / "meta" / "info.json").exists():
            from affdata.boxes import import_boxes
            from affdata.db import Store
            from affdata.labels import import_labels
            from affdata.videos import ingest_videos

            store = Store(f"sqlite:///{work / 'store.db'}")
            ingest_videos(store, [ds / "videos"])
            import_labels(store, [ds / "annotations"], as_split="official")
            import_boxes(store, ds / "boxes.csv", ds / "subjects.csv")
            export_part(store, split="official", part="train", out=out, workers=2)
            store.close()
        return out, ds / "videos", "synthetic generator -> store -> affdata.export.export_part"
    sys.path.insert(0, str(ROOT / "tests"))
    from tests.data.exports import write_export

    if not (out / "meta" / "info.json").exists():
        write_export(out, videos=subjects * 4, frames=int(seconds * 25 / 4), size=112,
                     shard_size=8192, row_group_size=512)
    return out, None, "shards synthesised directly (affdata.export not available)"


# ----------------------------------------------------------------------------- measures


def median_rate(fn: Any, repeat: int) -> tuple[float, list[float]]:
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates), [round(r) for r in rates]


def read_images(root: Path) -> list[bytes]:
    import pyarrow.parquet as pq

    files = sorted((root / "data").glob("*.parquet"))
    return [b for f in files for b in pq.read_table(f, columns=["image"])["image"].to_pylist()]


def bare_decode(images: list[bytes]) -> int:
    import simplejpeg

    for b in images:
        simplejpeg.decode_jpeg(b, colorspace="RGB")
    return len(images)


def stream_epochs(root: Path, workers: int, batch: int, repeat: int) -> tuple[float, list[float]]:
    from affmodels.data import AffectStream, make_loader

    ds = AffectStream(root, batch_size=batch, seed=0)
    loader = make_loader(ds, batch, workers=workers)
    epoch = [0]

    def one() -> int:
        ds.set_epoch(epoch[0])
        epoch[0] += 1
        return sum(len(b["row"]) for b in loader)

    one()  # warm-up: worker start, page cache
    return median_rate(one, repeat)


class MapDataset:
    """The usual map-style baseline: the Parquet table in memory, one row per index."""

    def __init__(self, root: Path) -> None:
        import pyarrow.parquet as pq

        t = pq.read_table(sorted((root / "data").glob("*.parquet")),
                          columns=["image", "valence", "arousal", "au", "au_mask", "expr", "frame", "video"])
        self.images = t["image"].to_pylist()
        self.va = np.nan_to_num(np.stack([t["valence"].to_numpy(zero_copy_only=False),
                                          t["arousal"].to_numpy(zero_copy_only=False)], 1)).astype(np.float32)
        k = t["au"].type.list_size
        self.au = np.nan_to_num(np.array(t["au"].combine_chunks().flatten().to_numpy(zero_copy_only=False),
                                         dtype=np.float32)).reshape(-1, k)
        self.au_mask = t["au_mask"].combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, k)
        expr = t["expr"].to_numpy(zero_copy_only=False)
        self.expr = np.nan_to_num(np.asarray(expr, dtype=np.float64), nan=-1).astype(np.int64)
        self.frame = t["frame"].to_numpy()
        self.video = t["video"].to_pylist()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import simplejpeg
        import torch

        img = simplejpeg.decode_jpeg(self.images[i], colorspace="RGB")
        return {"image": torch.from_numpy(img).permute(2, 0, 1), "va": self.va[i],
                "va_mask": not np.isnan(self.va[i]).any(), "au": self.au[i], "au_mask": self.au_mask[i],
                "expr": self.expr[i], "expr_mask": self.expr[i] >= 0, "frame": int(self.frame[i]),
                "video": self.video[i]}


def map_epochs(ds: MapDataset, workers: int, batch: int, repeat: int) -> tuple[float, list[float]]:
    import torch
    from torch.utils.data import DataLoader

    def init(_: int) -> None:
        torch.set_num_threads(1)

    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0, worker_init_fn=init if workers else None,
                        generator=torch.Generator().manual_seed(0))

    def one() -> int:
        return sum(len(b["frame"]) for b in loader)

    one()
    return median_rate(one, repeat)


def model_rate(root: Path, batch: int, repeat: int) -> tuple[float, list[float]]:
    import torch

    from affmodels import ModelConfig, MultiTaskNet, multitask_loss
    from affmodels.data import AffectStream

    ds = AffectStream(root, batch_size=batch, seed=0)
    b = next(iter(ds))
    model = MultiTaskNet(ModelConfig(trunk="cnn", n_aus=ds.n_aus, n_classes=ds.n_classes,
                                     image_size=ds.image_size))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> int:
        opt.zero_grad(set_to_none=True)
        loss, _ = multitask_loss(model(b["image"]), b)
        loss.backward()
        opt.step()
        return len(b["row"])

    step()
    return median_rate(step, repeat)


DECORD_SNIPPET = r"""
import json, sys, time, random
import numpy as np
from PIL import Image
import decord
videos, frames, boxes, size, n = json.loads(sys.stdin.read())
idx = list(range(len(frames)))
random.Random(0).shuffle(idx)
idx = idx[:n]
readers = {}
t = time.perf_counter()
for i in idx:
    vr = readers.get(videos[i])
    if vr is None:
        vr = readers[videos[i]] = decord.VideoReader(videos[i], ctx=decord.cpu(0), num_threads=1)
    img = vr[frames[i]].asnumpy()
    x, y, w, h = boxes[i] if boxes[i] is not None else (0, 0, img.shape[1], img.shape[0])
    x0, y0 = int(round(x)), int(round(y))
    s = max(1, int(round(max(w, h))))
    pad = np.zeros((s, s, 3), np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(img.shape[1], x0 + s), min(img.shape[0], y0 + s)
    if sx1 > sx0 and sy1 > sy0:
        pad[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    Image.fromarray(pad).resize((size, size), Image.BILINEAR)
print(json.dumps({"samples": len(idx), "seconds": time.perf_counter() - t}))
"""


def decord_rate(root: Path, videos: Path, size: int, n: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    t = pq.read_table(sorted((root / "data").glob("*.parquet")), columns=["video", "frame", "box"])
    names = t["video"].to_pylist()
    paths = [str(videos / f"{v}.mp4") for v in names]
    payload = json.dumps([paths, t["frame"].to_pylist(), t["box"].to_pylist(), size, n])
    out = subprocess.run([sys.executable, "-c", DECORD_SNIPPET], input=payload, text=True,
                         capture_output=True, timeout=900, check=True)
    r = json.loads(out.stdout)
    return {"samples_per_s": round(r["samples"] / r["seconds"], 1), "sampled_frames": r["samples"],
            "extrapolated_epoch_s": round(len(names) * r["seconds"] / r["samples"], 1)}


# ----------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=None, help="Folder for the data (reused if present).")
    p.add_argument("--subjects", type=int, default=10)
    p.add_argument("--seconds", type=float, default=100.0)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--decord-frames", type=int, default=100)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-loader-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    root, videos, how = build_export(work, args.subjects, args.seconds)
    build_s = time.perf_counter() - t0

    from affmodels.data import load_manifest

    m = load_manifest(root)
    images = read_images(root)
    bare, bare_runs = median_rate(lambda: bare_decode(images), args.repeat)
    results: dict[str, Any] = {}
    for w in (0, 2):
        results[f"stream_{w}w"] = stream_epochs(root, w, args.batch, args.repeat)
    mapped = MapDataset(root)
    for w in (0, 2):
        results[f"map_{w}w"] = map_epochs(mapped, w, args.batch, args.repeat)
    del mapped
    model, model_runs = model_rate(root, args.batch, args.repeat)
    decord = decord_rate(root, videos, m.image_size, args.decord_frames) if videos is not None else None

    def entry(name: str) -> dict[str, Any]:
        rate, runs = results[name]
        return {"samples_per_s": round(rate), "runs": runs, "vs_bare_decode": round(rate / bare, 3),
                "vs_model_step": round(rate / model, 2)}

    out = {
        "data": {"how": how, "rows": m.rows, "shards": len(m.shards), "row_group_size": m.row_group_size,
                 "image": f"{m.encoding} {m.image_size}x{m.image_size}",
                 "mean_image_bytes": round(float(np.mean([len(b) for b in images]))),
                 "build_s": round(build_s, 1), "work": str(work)},
        "batch": args.batch, "repeat": args.repeat,
        "bare_decode_1proc": {"samples_per_s": round(bare), "runs": bare_runs},
        "stream_0_workers": entry("stream_0w"),
        "stream_2_workers": entry("stream_2w"),
        "map_style_0_workers": entry("map_0w"),
        "map_style_2_workers": entry("map_2w"),
        "decord_random_access": decord if decord else "skipped: no videos (shards synthesised)",
        "cnn_forward_backward": {"samples_per_s": round(model), "runs": model_runs},
    }
    best = max(results["stream_0w"][0], results["stream_2w"][0])
    out["targets"] = {"stream_ge_0.7_bare_decode": best / bare >= 0.7,
                      "stream_faster_than_model_step": best > model}
    if decord:
        out["stream_2_workers"]["vs_decord"] = round(results["stream_2w"][0] / decord["samples_per_s"], 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
