"""Benchmark: SQL on labels at Aff-Wild2 scale (a 1,000,000-frame labels-only release).

Builds the store from the generator's labels-only release (videos registered from
``videos.csv`` with their subjects, the release imported as one ``dataset`` source with its
folders as split ``official``, and a tenth of its files imported again as a second annotator
and as a model, so that the per-source questions have rows to compare). Then, in the same run:

* the write path: the release imported into two fresh stores, once as affdata does it and once
  with the consensus maintenance switched off (``affdata.materialized`` patched to do nothing):
  the ratio is what keeping the consensus current costs the import;
* every example query of docs/schema.md and the questions of issue 20, through the library
  (``run_readonly``) and through the CLI (``affdata sql``, a fresh process each time, start-up
  included), each beside the same query on plain tables holding the same rows as the views
  (``CREATE TABLE plain_frame_labels AS SELECT * FROM frame_labels``, the views' keys indexed),
  made in this run;
* the CLI's start-up: ``affdata --help`` and ``affdata sql "SELECT 1"`` on the store.

Goals (issue 20): every example query under 0.5 s on SQLite at 1M frames and within 1.5x of the
plain tables; start-up under 0.3 s; the import with the maintenance at most 1.3x the import
without. Medians of ``--repeat`` runs. Prints one JSON object. ``--frames`` makes it smaller for
a quick look (the goals are stated for 1M).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affdata import materialized  # noqa: E402
from affdata.db import Store  # noqa: E402
from affdata.labels import import_labels  # noqa: E402
from affdata.sql import run_readonly  # noqa: E402
from affdata.synthetic import generate_labels_only  # noqa: E402
from benchmarks.ingest_labels import drop as drop_database  # noqa: E402
from benchmarks.ingest_labels import fresh_url  # noqa: E402
from benchmarks.ingest_labels import register_videos  # noqa: E402

DOC_QUERIES = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "schema.md").read_text(), re.S)
DOC_NAMES = ["va_and_au_per_track", "class_balance_per_split", "valence_per_subject",
             "annotator_differences", "model_au12_vs_consensus"]
ISSUE_QUERIES = {
    "va_frames_per_video": "SELECT video, COUNT(*) AS frames FROM frame_labels WHERE has_va = 1 GROUP BY video",
    "expression_counts": "SELECT expression, COUNT(*) AS frames FROM frame_labels WHERE has_expr = 1 "
                         "GROUP BY expression",
    "happiness_with_au12_per_video": "SELECT f.video, COUNT(*) AS frames FROM frame_labels f "
                                     "JOIN frame_au_labels a ON a.track_id = f.track_id AND a.frame_idx = f.frame_idx "
                                     "WHERE f.expression = 'Happiness' AND a.au = 'AU12' AND a.present = 1 "
                                     "GROUP BY f.video",
    "one_video_mean_va": "SELECT AVG(valence) AS valence, AVG(arousal) AS arousal FROM frame_labels "
                         "WHERE video = '{video}' AND has_va = 1",
}
GOALS = {"example_query_s": 0.5, "ratio_to_plain": 1.5, "cli_startup_s": 0.3, "write_ratio": 1.3}


@contextmanager
def maintenance_off():
    """Today's import without the consensus upkeep: the three calls made into no-ops."""
    saved = (materialized.labels_changed, materialized.add_track, materialized.update_statistics)
    materialized.labels_changed = lambda *a, **k: None
    materialized.add_track = lambda *a, **k: None
    materialized.update_statistics = lambda *a, **k: None
    try:
        yield
    finally:
        materialized.labels_changed, materialized.add_track, materialized.update_statistics = saved


def timed_import(url: str, release: Path, maintain: bool) -> tuple[float, int]:
    store = Store(url)
    register_videos(store, release, subjects=True)
    start = time.perf_counter()
    if maintain:
        report = import_labels(store, [release / "annotations"], source="bench", as_split="official")
    else:
        with maintenance_off():
            report = import_labels(store, [release / "annotations"], source="bench", as_split="official")
    elapsed = time.perf_counter() - start
    assert report.ok, report.failed[:3]
    store.close()
    return elapsed, report.rows


def subset(release: Path, out: Path, share: float) -> Path:
    """The annotation files of the first ``share`` of the videos, in the same folder layout."""
    with open(release / "videos.csv", newline="") as f:
        names = [r["video"] for r in csv.DictReader(f)]
    keep = set(names[: max(1, int(len(names) * share))])
    root = release / "annotations"
    for path in root.rglob("*.txt"):
        stem = re.sub(r"_(left|right)$", "", path.stem)
        if stem in keep:
            target = out / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return out


def drop(url: str) -> None:
    """Remove a store: the PostgreSQL database, or the SQLite file and its WAL."""
    if url.startswith("postgresql"):
        drop_database(url)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(url + suffix).unlink(missing_ok=True)


def plain(sql: str) -> str:
    """The same query on the plain tables."""
    return re.sub(r"\b(frame_labels|frame_au_labels)\b", r"plain_\1", sql)


def seconds(fn, repeat: int, fastest: bool = False) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times) if fastest else statistics.median(times), 4)


def cli_seconds(args: list[str], repeat: int, fastest: bool = False) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AFFDATA_DB", None)
    cmd = [sys.executable, "-m", "cli.affdata_app", *args]

    def once() -> None:
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert done.returncode == 0, done.stderr

    return seconds(once, repeat, fastest)


def measure(backend: str, release: Path, tmp: Path, repeat: int, share: float, write_rounds: int) -> dict:
    result: dict = {"backend": backend}
    off_url, on_url = fresh_url(backend, tmp, "sql_off"), fresh_url(backend, tmp, "sql_on")
    try:
        offs, ons = [], []
        for round_ in range(write_rounds):  # alternating; the last store with the upkeep is kept
            if round_:
                drop(on_url)
                off_url, on_url = fresh_url(backend, tmp, f"sql_off{round_}"), fresh_url(backend, tmp, f"sql_on{round_}")
            off_s, rows = timed_import(off_url, release, maintain=False)
            drop(off_url)
            on_s, _ = timed_import(on_url, release, maintain=True)
            offs.append(off_s)
            ons.append(on_s)
        if not write_rounds:  # queries only: the store, built once
            on_s, rows = timed_import(on_url, release, maintain=True)
            ons.append(on_s)
        result["write"] = {"label_rows": rows, "import_without_upkeep_s": [round(x, 2) for x in offs],
                           "import_with_upkeep_s": [round(x, 2) for x in ons],
                           "ratio": round(statistics.median(ons) / statistics.median(offs), 3) if offs else None,
                           "goal_at_most": GOALS["write_ratio"]}
        store = Store(on_url)
        extra = subset(release, tmp / f"subset-{backend}", share)
        assert import_labels(store, [extra], source="ann_b", kind="annotator").ok
        assert import_labels(store, [extra], source="model_x", kind="model").ok
        with store.transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE plain_frame_labels AS SELECT * FROM frame_labels")
            conn.exec_driver_sql("CREATE TABLE plain_frame_au_labels AS SELECT * FROM frame_au_labels")
            # the views' keys, indexed: a join of two plain tables is not left to a nested scan
            conn.exec_driver_sql("CREATE INDEX plain_frame_labels_key ON plain_frame_labels (track_id, frame_idx)")
            conn.exec_driver_sql("CREATE INDEX plain_frame_au_labels_key ON plain_frame_au_labels "
                                 "(track_id, frame_idx, au_id)")
            materialized.update_statistics(conn)
        db_arg = on_url
        video = run_readonly(store, "SELECT name FROM video ORDER BY name LIMIT 1 OFFSET 10").rows[0][0]
        queries = dict(zip(DOC_NAMES, DOC_QUERIES)) | {k: v.format(video=video) for k, v in ISSUE_QUERIES.items()}
        result["frames"] = store.scalar("SELECT COUNT(*) FROM frame_labels")
        result["queries"] = {}
        for name, sql in queries.items():
            rows_view = run_readonly(store, sql).rows
            rows_plain = run_readonly(store, plain(sql)).rows
            assert _same(rows_view, rows_plain), name
            lib = seconds(lambda q=sql: run_readonly(store, q), repeat)
            base = seconds(lambda q=plain(sql): run_readonly(store, q), repeat)
            cli = cli_seconds(["sql", sql, "--db", db_arg, "-f", "csv"], repeat)
            result["queries"][name] = {"rows": len(rows_view), "library_s": lib, "plain_table_s": base,
                                       "ratio_to_plain": round(lib / base, 2) if base > 0 else None, "cli_s": cli}
        result["cli_startup"] = {"help_s": cli_seconds(["--help"], repeat),
                                 "sql_select_1_s": cli_seconds(["sql", "SELECT 1", "--db", db_arg], repeat),
                                 "help_fastest_s": cli_seconds(["--help"], repeat, fastest=True),
                                 "sql_select_1_fastest_s": cli_seconds(["sql", "SELECT 1", "--db", db_arg], repeat,
                                                                       fastest=True)}
        store.close()
    finally:
        drop(off_url)
        drop(on_url)
    return result


def _same(a: list[tuple], b: list[tuple]) -> bool:
    def norm(rows: list[tuple]) -> list[tuple]:
        return sorted(tuple(round(v, 6) if isinstance(v, float) else int(v) if isinstance(v, bool) else v
                            for v in r) for r in rows)

    return norm(a) == norm(b)


def verdict(run: dict) -> dict:
    """The goals, met or not (the query-time goal applies to SQLite only)."""
    out = {"write_ratio_ok": run["write"]["ratio"] is not None and run["write"]["ratio"] <= GOALS["write_ratio"]}
    queries = run["queries"].values()
    out["ratio_to_plain_ok"] = all(q["ratio_to_plain"] is None or q["ratio_to_plain"] <= GOALS["ratio_to_plain"]
                                   for q in queries)
    if run["backend"] == "sqlite":
        out["under_half_a_second_ok"] = all(q["library_s"] < GOALS["example_query_s"] for q in queries)
        startup = run["cli_startup"]
        out["cli_startup_ok"] = max(startup["help_s"], startup["sql_select_1_s"]) < GOALS["cli_startup_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--videos", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (the median is reported)")
    parser.add_argument("--write-rounds", type=int, default=1,
                        help="imports with and without the upkeep, alternating (the median ratio is reported); "
                        "0: build the store once and measure the queries only")
    parser.add_argument("--second-source-share", type=float, default=0.1,
                        help="share of the videos imported again as a second annotator and as a model")
    args = parser.parse_args()
    results: dict = {"benchmark": "sql", "frames": args.frames, "videos": args.videos, "goals": GOALS, "runs": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        release = tmp / "release"
        generate_labels_only(release, videos=args.videos, frames=args.frames, seed=0)
        for backend in args.backends.split(","):
            run = measure(backend, release, tmp, args.repeat, args.second_source_share, args.write_rounds)
            run["goals_met"] = verdict(run)
            results["runs"].append(run)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
