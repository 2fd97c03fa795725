"""Benchmark: `affdata ingest labels` on a 1,000,000-frame VA + AU + EXPR release.

The release comes from the generator's labels-only mode; its videos are registered from
``videos.csv`` (there are no pixels). Measured in the same run, on the same rows:

* ours: ``import_labels`` on the release folder (parse, validate, check against the videos,
  one transaction per file, provenance rows);
* baseline, SQLite: the same label rows, already parsed and built as tuples, inserted with a raw
  ``sqlite3`` ``executemany`` into a store with the same schema (foreign keys on);
* baseline, PostgreSQL: the same rows loaded with a raw ``COPY`` through psycopg.

Target: ours at least 0.5 of the raw rate on both. Peak memory of the import (max RSS of a
child process) on a 250,000- and a 1,000,000-frame release shows it does not grow with the
dataset. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affdata.db import Store  # noqa: E402
from affdata.formats import read_abaw_task_file, scan_abaw  # noqa: E402
from affdata.labels import import_labels  # noqa: E402
from affdata.synthetic import generate_labels_only  # noqa: E402
from affdata.video import VideoProbe  # noqa: E402
from affdata.videos import ensure_track, register  # noqa: E402

PG_ADMIN = os.environ.get("AFFDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def register_videos(store: Store, release: Path, *, subjects: bool = False) -> None:
    """Videos of a labels-only release, from videos.csv, through the library's register();
    with ``subjects``, each with the subject its name starts with (``subjNN``)."""
    with open(release / "videos.csv", newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["frames"])
            fps = int(row["fps"])
            probe = VideoProbe(
                path=release / "videos" / f"{row['video']}.mp4", kind="file",
                content_hash=hashlib.sha256(row["video"].encode()).hexdigest(), size_bytes=0,
                container="none", codec="h264", stream_index=0, decoder="pyav", fps_num=fps, fps_den=1,
                frame_count=n, width=int(row["width"]), height=int(row["height"]), sar_num=1, sar_den=1,
                duration_s=n / fps, is_vfr=False, timestamps=np.arange(n) / fps, present=np.ones(n, bool))
            subject = re.match(r"^(subj\d+)", row["video"]) if subjects else None
            register(store, probe, subject=subject.group(1) if subject else None)


def built_rows(store: Store, release: Path) -> dict[str, list[tuple]]:
    """The label rows the import would write, parsed and built ahead of the raw baselines."""
    from sqlalchemy import text

    rows: dict[str, list[tuple]] = {"va_label": [], "au_label": [], "expr_label": []}
    with store.transaction() as conn:
        source = conn.execute(text("INSERT INTO label_source (kind, name, version, created_at) "
                                   "VALUES ('dataset', 'raw', '', CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        videos = dict(conn.execute(text("SELECT name, id FROM video")).all())
        for f in scan_abaw(release / "annotations"):
            t = read_abaw_task_file(f.path, f.task)
            track = ensure_track(conn, videos[f.video], f.track)
            if f.task == "va":
                keep = ~np.isnan(t.valence)
                rows["va_label"] += [(track, fr, source, v, a) for fr, v, a in zip(
                    t.frames[keep].tolist(), t.valence[keep].tolist(), t.arousal[keep].tolist())]
            elif f.task == "expr":
                keep = t.expr >= 0
                rows["expr_label"] += [(track, fr, source, e) for fr, e in zip(t.frames[keep].tolist(), t.expr[keep].tolist())]
            else:
                r, c = np.nonzero(t.au_present >= 0)
                aus = np.asarray(t.au_numbers)[c]
                rows["au_label"] += [(track, fr, source, au, p) for fr, au, p in zip(
                    t.frames[r].tolist(), aus.tolist(), t.au_present[r, c].tolist())]
    return rows


COLUMNS = {"va_label": ("track_id", "frame_idx", "source_id", "valence", "arousal"),
           "expr_label": ("track_id", "frame_idx", "source_id", "expr_id"),
           "au_label": ("track_id", "frame_idx", "source_id", "au_id", "present")}


def raw_insert(store: Store, rows: dict[str, list[tuple]]) -> float:
    """Seconds to load the pre-built rows with the driver alone (executemany / COPY)."""
    raw = store.engine.raw_connection()
    driver = raw.driver_connection
    start = time.perf_counter()
    if store.is_sqlite:
        driver.execute("BEGIN IMMEDIATE")
        for table, data in rows.items():
            cols = COLUMNS[table]
            driver.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", data)
        driver.execute("COMMIT")
    else:
        with driver.cursor() as cur:
            for table, data in rows.items():
                with cur.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
        driver.commit()
    elapsed = time.perf_counter() - start
    raw.close()
    return elapsed


def fresh_url(backend: str, tmp: Path, tag: str) -> str:
    if backend == "sqlite":
        return str(tmp / f"{tag}.db")
    import sqlalchemy as sa

    name = f"affdata_bench_{tag}_{os.getpid()}"
    with sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        import sqlalchemy as sa

        name = sa.engine.make_url(url).database
        with sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(backend: str, release: Path, tmp: Path) -> dict:
    ours_url, raw_url = fresh_url(backend, tmp, "ours"), fresh_url(backend, tmp, "raw")
    try:
        ours, raw = Store(ours_url), Store(raw_url)
        register_videos(ours, release)
        register_videos(raw, release)
        rows = built_rows(raw, release)
        n_rows = sum(len(v) for v in rows.values())
        raw_s = raw_insert(raw, rows)
        del rows
        start = time.perf_counter()
        report = import_labels(ours, [release / "annotations"], source="bench")
        ours_s = time.perf_counter() - start
        assert report.ok and report.rows == n_rows, (report.rows, n_rows)
        ours.close()
        raw.close()
    finally:
        drop(ours_url)
        drop(raw_url)
    return {"backend": backend, "label_rows": n_rows, "raw_s": round(raw_s, 3), "ours_s": round(ours_s, 3),
            "raw_rows_per_s": round(n_rows / raw_s), "ours_rows_per_s": round(n_rows / ours_s),
            "ratio_ours_to_raw": round(raw_s / ours_s, 3), "target_ratio_at_least": 0.5}


def peak_memory(release: Path, tmp: Path) -> dict[str, int]:
    """Peak bytes allocated during the import (tracemalloc, numpy included), in a child process."""
    code = (
        "import sys, tracemalloc; from pathlib import Path; sys.path.insert(0, %r)\n"
        "from benchmarks.ingest_labels import register_videos\n"
        "from affdata.db import Store; from affdata.labels import import_labels\n"
        "s = Store(%r); register_videos(s, Path(%r))\n"
        "tracemalloc.start()\n"
        "r = import_labels(s, [Path(%r) / 'annotations'], source='mem'); assert r.ok\n"
        "print(tracemalloc.get_traced_memory()[1], r.rows)\n"
    ) % (str(ROOT), str(tmp / f"mem-{release.name}.db"), str(release), str(release))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"label_rows": int(out[1]), "peak_traced_mib": round(int(out[0]) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results: dict = {"benchmark": "ingest_labels", "frames": args.frames}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        release = tmp / "big"
        generate_labels_only(release, videos=args.videos, frames=args.frames, seed=0)
        results["runs"] = [measure(b, release, tmp) for b in args.backends.split(",")]
        small = tmp / "small"
        generate_labels_only(small, videos=max(args.videos // 4, 1), frames=args.frames // 4, seed=0)
        results["peak_memory"] = {"quarter_release": peak_memory(small, tmp), "full_release": peak_memory(release, tmp)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
