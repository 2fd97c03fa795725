"""A smoke run of the multi-task network: a CPU training of at most 10 minutes on the
synthetic dataset, end to end through the library.

Not a result: it chooses the best epoch on the generator's Validation_Set and reports that
same part, so its figures are optimistic by construction (the selection leak of issue 17).
Quality figures come from ``benchmarks/protocol.py`` (train / val / test by subject, selection
on val, test over seeds with intervals, beside a floor and a linear baseline).

Pipeline: generate -> ingest videos, boxes, labels (the release's folders become the
subject-disjoint split `official`) -> export train and val -> train with task-balanced
sampling -> evaluate best.pt on val. Prints one JSON object with the wall times and the
metrics, and a smoke ``bar`` (each metric >= 0.7 on the part it was chosen on, at most 10
minutes of training) that catches a broken pipeline, not a weak model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affdata.boxes import import_boxes  # noqa: E402
from affdata.db import Store  # noqa: E402
from affdata.export import export_part  # noqa: E402
from affdata.labels import import_labels  # noqa: E402
from affdata.synthetic import generate_dataset  # noqa: E402
from affdata.videos import ingest_videos  # noqa: E402
from affmodels.evaluate import evaluate_checkpoint  # noqa: E402
from affmodels.train import TrainConfig, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(".bench/quality"))
    parser.add_argument("--subjects", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--balance", default="1,1,1")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    work = args.work
    times: dict[str, float] = {}
    t = time.perf_counter()
    if not (work / "data" / "dataset.json").is_file():
        generate_dataset(work / "data", subjects=args.subjects, seconds=args.seconds, seed=0)
    times["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    exports = work / f"exports{args.size}"
    if not (exports / "val" / "meta" / "info.json").is_file():
        store = Store(str(work / "affdata.db"))
        ingest_videos(store, [work / "data" / "videos"], subject_pattern=r"^(subj\d+)_")
        import_boxes(store, work / "data" / "boxes.csv", work / "data" / "subjects.csv")
        import_labels(store, [work / "data" / "annotations"], source="synthetic", as_split="official")
        for part in ("train", "val"):
            export_part(store, split="official", part=part, out=exports / part, size=args.size, workers=1)
        store.close()
    times["store_and_export_s"] = time.perf_counter() - t
    run = work / f"run{args.size}"
    shutil.rmtree(run, ignore_errors=True)
    t = time.perf_counter()
    result = train(TrainConfig(data=str(exports / "train"), val=str(exports / "val"), out=str(run), epochs=args.epochs,
                               batch_size=args.batch_size, lr=args.lr, workers=0, threads=args.threads, seed=0,
                               balance=tuple(float(x) for x in args.balance.split(",")), device="cpu"))
    times["train_s"] = time.perf_counter() - t
    final = evaluate_checkpoint(run / "best.pt", exports / "val")
    m = final.metrics
    keys = ("ccc_valence", "ccc_arousal", "ccc_mean", "au_f1_mean", "au_accuracy", "expr_f1_macro",
            "expr_accuracy", "abaw2020_expr", "abaw2020_au", "score", "va_count", "au_frames", "expr_count")
    print(json.dumps({
        "benchmark": "quality", "args": vars(args) | {"work": str(work)}, "times": {k: round(v, 1) for k, v in times.items()},
        "epochs_run": len(result.history), "samples_per_s": [r.samples_per_s for r in result.history],
        "val_per_epoch": [{k: round(r.val.get(k, float("nan")), 3) for k in ("ccc_mean", "au_f1_mean", "expr_f1_macro")}
                          for r in result.history],
        "best": {k: m[k] for k in keys if k in m},
        "reported_on": "val, the part the epoch was chosen on: not a result (benchmarks/protocol.py)",
        "bar": {"ccc_mean>=0.7": m["ccc_mean"] >= 0.7, "au_f1_mean>=0.7": m["au_f1_mean"] >= 0.7,
                "expr_f1_macro>=0.7": m["expr_f1_macro"] >= 0.7, "train_minutes<=10": times["train_s"] <= 600},
    }, indent=2, default=float))


if __name__ == "__main__":
    main()
