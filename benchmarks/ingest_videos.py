"""Benchmark: `affdata ingest videos` against the bare cost of demuxing the same files.

Baseline (same run, same files): open each file with PyAV and read every packet of its video
stream, nothing else. Ours: a full ingest into a fresh SQLite store (hash, probe with decoder
checks, frame rows, one transaction per video). Target: ingest costs at most twice the bare
demux. Runs on the real clips in ../shared/data/videos and on a generated dataset.

Prints one JSON object. Medians of --repeat runs; ratios are what to quote.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affdata.db import Store  # noqa: E402
from affdata.video import list_videos  # noqa: E402
from affdata.videos import ingest_videos  # noqa: E402


def bare_demux(paths: list[Path]) -> int:
    import av

    frames = 0
    for path in paths:
        if path.is_dir():
            continue
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size:
                    frames += 1
    return frames


def ingest_once(paths: list[Path], workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.db"))
        start = time.perf_counter()
        report = ingest_videos(store, paths, workers=workers)
        elapsed = time.perf_counter() - start
        store.close()
    if not report.ok:
        raise SystemExit(f"ingest failed: {[o.reason for o in report.failed]}")
    return elapsed, sum(o.frames or 0 for o in report.outcomes)


def measure(name: str, paths: list[Path], repeat: int) -> dict:
    demux_times, ingest_times, ingest2_times = [], [], []
    frames = 0
    bare_demux(paths)  # warm the page cache for both sides
    for _ in range(repeat):
        t = time.perf_counter()
        bare_demux(paths)
        demux_times.append(time.perf_counter() - t)
        elapsed, frames = ingest_once(paths, workers=1)
        ingest_times.append(elapsed)
        ingest2_times.append(ingest_once(paths, workers=2)[0])
    demux, ingest, ingest2 = (statistics.median(x) for x in (demux_times, ingest_times, ingest2_times))
    return {
        "set": name,
        "videos": len(paths),
        "frames": frames,
        "bare_demux_s": round(demux, 4),
        "ingest_s": round(ingest, 4),
        "ingest_workers2_s": round(ingest2, 4),
        "ingest_videos_per_s": round(len(paths) / ingest, 2),
        "ingest_frames_per_s": round(frames / ingest, 1),
        "ratio_ingest_to_demux": round(ingest / demux, 3),
        "ratio_ingest_workers2_to_demux": round(ingest2 / demux, 3),
        "target_ratio_at_most": 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    parser.add_argument("--subjects", type=int, default=8, help="generated dataset size")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    results = []
    if args.real.is_dir():
        real, _ = list_videos([args.real], recursive=False)
        results.append(measure("real clips", real, args.repeat))
    with tempfile.TemporaryDirectory() as tmp:
        from affdata.synthetic import generate_dataset

        generate_dataset(Path(tmp) / "gen", subjects=args.subjects, seconds=args.seconds, seed=0)
        generated, _ = list_videos([Path(tmp) / "gen" / "videos"], recursive=False)
        results.append(measure("generated", generated, args.repeat))
    print(json.dumps({"benchmark": "ingest_videos", "results": results}, indent=2))


if __name__ == "__main__":
    main()
