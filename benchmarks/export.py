"""Benchmark: `affdata export` against a bare in-order decode and against naive random access.

Baselines, measured in the same run on the same frames:

* **decode**: ``iter_frames(video, indices=<the frames the export writes>)``, nothing else (no
  crop, no encode, no Parquet). Target: export >= 0.5x its speed with one worker, and close to
  2x that with ``--workers 2``.
* **random access**: ``decord.VideoReader(path)[i]`` with a fresh reader per frame, the naive way
  to fetch labelled frames; timed on a sample of frames and extrapolated. Target: export >= 30x.
* **peak memory**: a child process exports a small and a 4x larger dataset with the same shard
  size; its peak RSS (VmHWM, reset after start-up) and tracemalloc's peak of Python and numpy
  allocations should not grow with the dataset.
* **parallel capacity**: how much faster two processes do crop work than one, measured in every
  repeat: on a shared machine it bounds what ``--workers 2`` can show.

Sets: a rendered synthetic dataset (256x256 and 384x256 clips, ABAW labels, true face boxes)
and the real 640x360 clips in ../shared/data/videos (Aff-Wild2-like size; labels and a centred
face box written for every frame). Prints one JSON object; medians of --repeat runs (ratios:
medians of the per-repeat ratios, each repeat timing all sides back to back).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from affdata import materialized  # noqa: E402
from affdata.bulk import insert_rows  # noqa: E402
from affdata.db import Store  # noqa: E402
from affdata.export import export_part  # noqa: E402
from affdata.splits import save_split  # noqa: E402
from affdata.video import iter_frames  # noqa: E402
from affdata.videos import ingest_videos  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "videos"
REAL_CLIPS = ("wtomin_mtl__utterance_1.mp4", "pyfeat__WolfgangLanger_Pexels.mp4",
              "face_recognition__short_hamilton_clip.mp4", "pyfeat__single_face.mp4")
VIDEO_COLUMNS = "path, kind, decoder, stream_index, frame_count, width, height, size_bytes"


def synthetic_store(root: Path, subjects: int, seconds: float) -> Store:
    from affdata.labels import import_labels
    from affdata.synthetic import generate_dataset

    ds = generate_dataset(root / "ds", subjects=subjects, seconds=seconds, seed=7)
    store = Store(str(root / "store.db"))
    ingest_videos(store, [ds.paths["videos"]], subject_pattern=r"^(subj\d+)_")
    import_labels(store, [ds.paths["annotations"]], as_split="official")
    with store.transaction() as conn:
        tracks = {(v, t): i for i, v, t in conn.execute(sa.text(
            "SELECT t.id, v.name, t.name FROM track t JOIN video v ON v.id = t.video_id"))}
        with open(ds.paths["boxes"], newline="") as f:
            rows = [(tracks[r["video"], r["track"]], int(r["frame"]), float(r["x"]), float(r["y"]),
                     float(r["w"]), float(r["h"])) for r in csv.DictReader(f)]
        insert_rows(conn, "face_box", ("track_id", "frame_idx", "x", "y", "w", "h"), rows)
        # everything in one part, so the whole dataset is exported
        conn.execute(sa.text("UPDATE split_assignment SET part = 'train'"))
    return store


def real_store(root: Path) -> Store | None:
    paths = [REAL / name for name in REAL_CLIPS if (REAL / name).is_file()]
    if not paths:
        return None
    root.mkdir(parents=True, exist_ok=True)
    store = Store(str(root / "real.db"))
    ingest_videos(store, paths)
    with store.transaction() as conn:
        conn.execute(sa.text("INSERT INTO label_source (kind, name, version, created_at) "
                             "VALUES ('dataset', 'bench', '', CURRENT_TIMESTAMP)"))
        src = conn.execute(sa.text("SELECT id FROM label_source")).scalar_one()
        videos = conn.execute(sa.text("SELECT id, frame_count, width, height FROM video")).all()
        rng = np.random.default_rng(0)
        for vid, n, w, h in videos:
            conn.execute(sa.text("INSERT INTO track (video_id, name) VALUES (:v, 'main')"), {"v": vid})
            tid = conn.execute(sa.text("SELECT id FROM track WHERE video_id = :v"), {"v": vid}).scalar_one()
            va = rng.uniform(-1, 1, (n, 2))
            insert_rows(conn, "va_label", ("track_id", "frame_idx", "source_id", "valence", "arousal"),
                        [(tid, i, src, float(a), float(b)) for i, (a, b) in enumerate(va)])
            side = min(w, h) // 2
            insert_rows(conn, "face_box", ("track_id", "frame_idx", "x", "y", "w", "h"),
                        [(tid, i, (w - side) / 2, (h - side) / 2, side, side) for i in range(n)])
        materialized.rebuild(conn)  # label rows written by hand: bring the consensus up to date
    save_split(store, "official", "video", {v[0]: "train" for v in videos})
    return store


def exported_frames(store: Store) -> list[tuple[object, np.ndarray]]:
    """Per video: the stored row and the frames the export decodes (any track's rows)."""
    with store.connect() as conn:
        videos = conn.execute(sa.text(f"SELECT id, {VIDEO_COLUMNS} FROM video ORDER BY name")).all()
        out = []
        for v in videos:
            frames = [r[0] for r in conn.execute(sa.text(
                "SELECT DISTINCT frame_idx FROM frame_labels WHERE video_id = :v AND present = 1 "
                "AND (has_va = 1 OR has_au = 1 OR has_expr = 1) ORDER BY frame_idx"), {"v": v.id})]
            out.append((v, np.array(frames, dtype=np.int64)))
    return out


def bare_decode(videos: list[tuple[object, np.ndarray]]) -> int:
    n = 0
    for row, frames in videos:
        with contextlib.closing(iter_frames(row, indices=frames)) as it:
            for _ in it:
                n += 1
    return n


def random_access_s_per_frame(videos: list[tuple[object, np.ndarray]], sample: int, seed: int = 0) -> float:
    import decord

    rng = np.random.default_rng(seed)
    picks = [(row, int(rng.choice(frames))) for row, frames in videos if len(frames)]
    picks = [picks[i % len(picks)] for i in range(sample)]
    start = time.perf_counter()
    for row, i in picks:
        reader = decord.VideoReader(str(row.path))  # fresh per frame: the naive way
        reader[i].asnumpy()
        del reader
    return (time.perf_counter() - start) / len(picks)


def export_once(store: Store, out: Path, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    result = export_part(store, split="official", part="train", out=out, workers=workers)
    return time.perf_counter() - start, result.rows


# Peak RSS from /proc (VmHWM), reset after start-up: ru_maxrss would also count the parent's
# pages, which survive fork + exec in the child's high-water mark.
_CHILD = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from affdata.db import Store
from affdata.export import export_part
import affdata.export.encode, affdata.video.decode, decord, simplejpeg
store = Store({db!r})
def peak_kb():
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0])
import tracemalloc
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark to the current RSS
base = peak_kb()
tracemalloc.start()  # Python and numpy allocations (not decoder, Pillow or Arrow buffers)
rows = export_part(store, split="official", part="train", out=Path({out!r}), shard_size=512,
                   row_group_size=128).rows
print(base, peak_kb(), rows, tracemalloc.get_traced_memory()[1])
"""


def peak_memory(store: Store, out: Path) -> dict:
    code = _CHILD.format(root=str(ROOT), db=sa.engine.make_url(store.url).database, out=str(out))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    base, peak, rows, traced = (int(v) for v in done.stdout.split())
    return {"rows": rows, "shard_size": 512, "row_group_size": 128,
            "peak_rss_mb": round(peak / 1024, 1), "rss_before_export_mb": round(base / 1024, 1),
            "rss_growth_mb": round((peak - base) / 1024, 1),
            "python_peak_mb": round(traced / 2**20, 2)}


def _crop_work(n: int) -> float:
    """n crops of a 640x360 frame to 112x112 JPEG: the per-row work of an export."""
    from affdata.export.crop import crop_resize, one_resize_thread
    from affdata.export.encode import encode_image

    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    with one_resize_thread():  # as the export's workers resize
        start = time.perf_counter()
        for _ in range(n):
            encode_image(crop_resize(frame, (212, 72, 216, 216), 112), "jpeg", 90)
        return time.perf_counter() - start


def parallel_capacity() -> float:
    """How much faster two processes do two equal shares of crop work than one process does
    both: the best ``--workers 2`` can do on this shared machine at this moment."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    n = 400
    with ProcessPoolExecutor(2, mp_context=get_context("forkserver")) as pool:  # as the export's workers
        list(pool.map(_crop_work, [1, 1]))  # start the processes and import first
        one = pool.submit(_crop_work, 2 * n).result()
        start = time.perf_counter()
        list(pool.map(_crop_work, [n, n]))
        two = time.perf_counter() - start
    return round(one / two, 3)


def _noop(x: int) -> int:
    return x


def pool_start_s(workers: int = 2) -> float:
    """Starting the workers an export with ``--workers`` starts (fork server already running):
    each re-imports the main module, as multiprocessing does outside plain fork."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("forkserver")) as pool:
        list(pool.map(_noop, range(workers * 4)))
    return time.perf_counter() - start


def measure(name: str, store: Store, tmp: Path, repeat: int, sample: int) -> dict:
    """Each repeat measures every side back to back, so they share the machine's load."""
    videos = exported_frames(store)
    bare_decode(videos)  # warm the page cache for every side
    start = time.perf_counter()
    export_once(store, tmp / f"{name}-warm", 2)  # starts the fork server (once per process)
    first_pool_s = time.perf_counter() - start
    runs: dict[str, list[float]] = {k: [] for k in ("decode", "export", "export2", "random", "capacity",
                                                    "pool_start")}
    rows = frames = 0
    for r in range(repeat):
        t = time.perf_counter()
        frames = bare_decode(videos)
        runs["decode"].append(time.perf_counter() - t)
        elapsed, rows = export_once(store, tmp / f"{name}-w1-{r}", 1)
        runs["export"].append(elapsed)
        runs["export2"].append(export_once(store, tmp / f"{name}-w2-{r}", 2)[0])
        runs["random"].append(random_access_s_per_frame(videos, max(1, sample // repeat), seed=r))
        runs["capacity"].append(parallel_capacity())
        runs["pool_start"].append(pool_start_s())
    decode, export1, export2, random_s, capacity, start_s = (statistics.median(v) for v in runs.values())
    ratios = {  # medians of the per-repeat ratios (robust to the load changing between repeats)
        "ratio_export_to_decode": [d / e * rows / frames for d, e in zip(runs["decode"], runs["export"])],
        "ratio_export_workers2_to_decode": [d / e * rows / frames for d, e in zip(runs["decode"], runs["export2"])],
        "speedup_workers2": [e1 / e2 for e1, e2 in zip(runs["export"], runs["export2"])],
        "speedup_workers2_after_pool_start": [e1 / max(1e-9, e2 - p) for e1, e2, p in
                                               zip(runs["export"], runs["export2"], runs["pool_start"])],
        "ratio_export_to_random_access": [rows / e * s for e, s in zip(runs["export"], runs["random"])],
        "ratio_export_workers2_to_random_access": [rows / e * s for e, s in zip(runs["export2"], runs["random"])],
    }
    return {
        "set": name, "videos": len(videos), "decoded_frames": frames, "exported_rows": rows,
        "decode_frames_per_s": round(frames / decode, 1),
        "export_rows_per_s": round(rows / export1, 1),
        "export_workers2_rows_per_s": round(rows / export2, 1),
        "random_access_frames_per_s": round(1 / random_s, 2),
        **{k: round(statistics.median(v), 3) for k, v in ratios.items()},
        "parallel_capacity_2_processes": round(capacity, 3),
        "pool_start_s": round(start_s, 3),
        "first_workers2_export_s": round(first_pool_s, 3),
        "targets": {"ratio_export_to_decode_at_least": 0.5, "speedup_workers2_near": 2.0,
                    "ratio_export_to_random_access_at_least": 30},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="per subject, large synthetic set")
    parser.add_argument("--sample", type=int, default=20, help="frames fetched by random access")
    args = parser.parse_args()
    report: dict = {"repeat": args.repeat, "sets": [], "memory": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        small = synthetic_store(tmp / "small", args.subjects, args.seconds / 4)
        large = synthetic_store(tmp / "large", args.subjects, args.seconds)
        report["sets"].append(measure("synthetic", large, tmp, args.repeat, args.sample))
        real = real_store(tmp / "real")
        if real is not None:
            report["sets"].append(measure("real_640x360", real, tmp, args.repeat, args.sample))
        for label, store in (("small", small), ("large", large)):
            report["memory"].append({"dataset": label, **peak_memory(store, tmp / f"mem-{label}")})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
