"""Benchmark: the same export on today's local pool and on a Dask LocalCluster of 1 and 2 workers.

Variants, each in a fresh child process, timed back to back in every repeat on one store:

* ``inline``: ``--workers 1`` (this process decodes, crops, encodes and writes);
* ``pool2``: ``--workers 2`` (today's forkserver pool);
* ``dask1`` / ``dask2``: ``--cluster local:1`` / ``local:2`` (the client writes, Dask workers crop).

Reported per variant: the export's wall time (the cluster's start-up, with its workers importing
the crop code as long-lived workers have, measured apart), and the
CPU seconds the child and all its descendants spent during the export (psutil, sampled every
0.1 s so short-lived pool workers count), as cores kept busy; and the client's own CPU (with
Dask it plans, receives and writes: its rows per CPU-second bound any cluster's export rate).
Dask's overhead per video is ``(dask1 - inline) / videos``; scaling is ``dask1 / dask2``. On a
2-core machine shared with other work, two workers cannot reach 2x when one already keeps more
than one core busy (the writer and the decoder's threads): the CPU figures say how many.
Prints one JSON object; medians of --repeat.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, threading, time
import psutil
from affdata.db import Store
from affdata.executor import open_executor
from affdata.export import export_part
db, out, cluster, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import torch, decord, affdata.export.encode  # every side starts with the crop code imported


def cpu_seconds():
    me = psutil.Process()
    seen = {}
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            seen[p.pid] = t.user + t.system
        except psutil.Error:
            pass
    return seen


samples, stop = {}, threading.Event()


def sampler():  # the last CPU time seen of every process, the short-lived pool workers included
    while not stop.is_set():
        for pid, cpu in cpu_seconds().items():
            samples[pid] = max(cpu, samples.get(pid, 0.0))
        time.sleep(0.1)


t0 = time.perf_counter()
executor = open_executor(cluster, workers)
if hasattr(executor, "client"):  # long-lived workers have imported the crop code already
    import importlib
    for module in ("torch", "decord", "affdata.export.encode"):
        executor.client.run(importlib.import_module, module)
t1 = time.perf_counter()
start = cpu_seconds()
me = psutil.Process()
client0 = sum(me.cpu_times()[:2])
thread = threading.Thread(target=sampler, daemon=True)
thread.start()
result = export_part(Store(db), split="official", part="train", out=out, workers=workers,
                     executor=executor, shard_size=2048, row_group_size=256)
t2 = time.perf_counter()
client = sum(me.cpu_times()[:2]) - client0
for pid, cpu in cpu_seconds().items():
    samples[pid] = max(cpu, samples.get(pid, 0.0))
stop.set()
thread.join()
executor.close()
cpu = sum(v - start.get(pid, 0.0) for pid, v in samples.items())
print(json.dumps({"startup_s": t1 - t0, "export_s": t2 - t1, "cpu_s": cpu, "client_cpu_s": client, "rows": result.rows,
                  "manifest": result.manifest_sha256}))
"""

VARIANTS = {"inline": ("local", 1), "pool2": ("local", 2), "dask1": ("local:1", 1), "dask2": ("local:2", 1)}


def run(db: str, out: Path, cluster: str, workers: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, db, str(out), cluster, str(workers)],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="per subject")
    args = parser.parse_args()
    from benchmarks.export import synthetic_store

    with tempfile.TemporaryDirectory(prefix="affdata-bench-scale-") as tmp:
        root = Path(tmp)
        store = synthetic_store(root, args.subjects, args.seconds)
        db = store.url
        videos = store.scalar("SELECT COUNT(*) FROM video")
        runs: dict[str, list[dict]] = {k: [] for k in VARIANTS}
        for r in range(args.repeat):
            for name, (cluster, workers) in VARIANTS.items():
                runs[name].append(run(db, root / f"out-{name}-{r}", cluster, workers))
        hashes = {x["manifest"] for v in runs.values() for x in v}
        med = {name: {k: statistics.median(x[k] for x in v) for k in ("export_s", "startup_s", "cpu_s", "client_cpu_s")}
               for name, v in runs.items()}
        for name, m in med.items():
            m["cores_busy"] = m["cpu_s"] / m["export_s"]  # during the export, all processes
        rows = runs["inline"][0]["rows"]
        result = {
            "benchmark": "scale_export", "videos": videos, "rows": rows, "repeat": args.repeat,
            "same_bytes_everywhere": len(hashes) == 1,
            "variants": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in med.items()},
            "rows_per_s": {k: round(rows / v["export_s"], 1) for k, v in med.items()},
            "client_rows_per_cpu_s_dask2": round(rows / med["dask2"]["client_cpu_s"], 1),
            "dask_overhead_per_video_s": round((med["dask1"]["export_s"] - med["inline"]["export_s"]) / videos, 4),
            "dask1_over_inline": round(med["dask1"]["export_s"] / med["inline"]["export_s"], 3),
            "dask2_speedup_over_dask1": round(med["dask1"]["export_s"] / med["dask2"]["export_s"], 3),
            "pool2_speedup_over_inline": round(med["inline"]["export_s"] / med["pool2"]["export_s"], 3),
            "dask2_over_pool2": round(med["dask2"]["export_s"] / med["pool2"]["export_s"], 3),
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
