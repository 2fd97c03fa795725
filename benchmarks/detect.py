"""Benchmark: `affdata detect faces` against the bare detector, and stride 5 against every frame.

Measured in the same run, on the same real clip (../shared/data/videos):

* **bare inference**: the clip decoded into memory first, then ``detector.detect(rgb)`` on every
  frame (the network with its pre- and post-processing, nothing else);
* **pipeline, stride 1**: ``detect_faces`` on the registered clip with ``--stride 1``: decoding,
  cut finding, detection on every frame, tracking, naming and the store write. Goal: at most
  15 % slower than the bare inference (``overhead`` = pipeline / bare - 1);
* **pipeline, stride 5**: the same with ``--stride 5``; ``speedup_stride5`` = stride-1 time /
  stride-5 time, and ``mean_iou_stride5_vs_1`` the mean IoU of the two runs' boxes on every
  frame both have for the same track (the price of interpolating between detections).

Prints one JSON object; times are medians of --repeat runs, the ratios medians of the
per-repeat ratios. One detector thread per run (``threads``), so the figures do not depend on
what else the shared machine runs on its other core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from affdata.db import Store  # noqa: E402
from affdata.faces import DetectOptions, detect_faces  # noqa: E402
from affdata.faces import run as face_run  # noqa: E402
from affdata.faces.detector import make_detector  # noqa: E402
from affdata.video import iter_frames, probe  # noqa: E402
from affdata.videos import ingest_videos  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "videos"


def _boxes(store: Store) -> dict[tuple[str, int], np.ndarray]:
    with store.connect() as conn:
        rows = conn.execute(sa.text("SELECT t.name, b.frame_idx, b.x, b.y, b.w, b.h FROM face_box b "
                                    "JOIN track t ON t.id = b.track_id")).all()
    return {(r[0], int(r[1])): np.array(r[2:], dtype=np.float64) for r in rows}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default="wtomin_mtl__utterance_1.mp4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    path = DATA / args.clip
    clip = probe(path)
    with contextlib.closing(iter_frames(clip)) as frames:
        decoded = [rgb for _, rgb in frames]
    detector = make_detector(threads=args.threads)
    detector.detect(decoded[0])  # warm-up
    # detect_faces builds its own detector; give it the same thread count
    face_run._DETECTORS[("centerface", 0.5, None, None)] = detector
    bare, one, five, ratios, speedups, ious = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.db"))
        assert ingest_videos(store, [path]).ok
        for _ in range(args.repeat):
            t = time.perf_counter()
            for rgb in decoded:
                detector.detect(rgb)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            detect_faces(store, all_videos=True, options=DetectOptions(stride=1))
            one.append(time.perf_counter() - t)
            every = _boxes(store)
            t = time.perf_counter()
            detect_faces(store, all_videos=True, options=DetectOptions(stride=5))
            five.append(time.perf_counter() - t)
            strided = _boxes(store)
            ratios.append(one[-1] / bare[-1])
            speedups.append(one[-1] / five[-1])
            shared = sorted(set(every) & set(strided))
            ious.append(float(np.mean([_iou(every[k], strided[k]) for k in shared])) if shared else 0.0)
        store.close()
    n = len(decoded)
    print(json.dumps({
        "clip": args.clip, "frames": n, "size": [clip.width, clip.height], "threads": args.threads,
        "repeat": args.repeat,
        "bare_fps": round(n / statistics.median(bare), 2),
        "pipeline_stride1_fps": round(n / statistics.median(one), 2),
        "pipeline_stride5_fps": round(n / statistics.median(five), 2),
        "overhead": round(statistics.median(ratios) - 1, 4),
        "overhead_goal": 0.15,
        "speedup_stride5": round(statistics.median(speedups), 2),
        "mean_iou_stride5_vs_1": round(statistics.median(ious), 4),
        "boxes_stride1": len(every), "boxes_stride5": len(strided),
    }))


if __name__ == "__main__":
    main()
