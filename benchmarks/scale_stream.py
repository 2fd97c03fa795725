"""Benchmark: training's loader reading shards from a loopback S3 server against the local disk.

One synthetic export, exported twice (a folder, and ``s3://`` on a moto server in its own
process on 127.0.0.1, over HTTP); ``AffectStream(batch_size=256)`` read for one whole epoch,
in this process (no DataLoader workers), three ways in every repeat:

* **local**: the export folder;
* **s3 cold**: an empty shard cache (every shard downloaded, hashed, renamed into place);
* **s3 warm**: the same cache again (a stat per shard, nothing downloaded).

Prints one JSON object: samples per second (medians of --repeat) and the ratios to local.
Loopback has no network latency or bandwidth limit: on a real network the cold figure is the
bandwidth's, and the warm one stays what it is here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def epoch(path: str, cache: Path) -> tuple[float, int]:
    from affmodels.data import AffectStream

    os.environ["AFFMODELS_SHARD_CACHE"] = str(cache)
    t0 = time.perf_counter()
    ds = AffectStream(path, shuffle=True, seed=1, batch_size=256, rank=0, world_size=1)
    n = sum(len(b["frame"]) for b in ds)
    return time.perf_counter() - t0, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    from affdata.export import export_part
    from benchmarks.export import synthetic_store
    from tests.s3server import LoopbackS3

    server = LoopbackS3()
    try:
        os.environ.update(server.env())
        server.create_bucket("bench")
        with tempfile.TemporaryDirectory(prefix="affdata-bench-stream-") as tmp:
            root = Path(tmp)
            os.environ["AFFDATA_STAGING"] = str(root / "staging")
            store = synthetic_store(root, args.subjects, args.seconds)
            kw = {"split": "official", "part": "train", "shard_size": 1024, "row_group_size": 256}
            local = export_part(store, out=root / "local", **kw)
            url = "s3://bench/train"
            export_part(store, out=url, **kw)
            times: dict[str, list[float]] = {"local": [], "s3_cold": [], "s3_warm": []}
            rows = 0
            for r in range(args.repeat):
                cache = root / f"cache{r}"
                for name, path in (("local", str(root / "local")), ("s3_cold", url), ("s3_warm", url)):
                    seconds, rows = epoch(path, cache)
                    times[name].append(seconds)
                shutil.rmtree(cache)
            med = {k: statistics.median(v) for k, v in times.items()}
            print(json.dumps({
                "benchmark": "scale_stream", "rows": rows, "shards": local.shards,
                "bytes": sum(s["bytes"] for s in local.manifest["shards"]), "repeat": args.repeat,
                "samples_per_s": {k: round(rows / v, 1) for k, v in med.items()},
                "s3_cold_over_local": round(med["local"] / med["s3_cold"], 3),
                "s3_warm_over_local": round(med["local"] / med["s3_warm"], 3),
            }, indent=1))
    finally:
        server.close()


if __name__ == "__main__":
    main()
