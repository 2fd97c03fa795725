"""The GAN judged on test subjects that neither it nor its judges saw.

1. Data (``benchmarks/protocol.py``'s ``prepare``): the synthetic release (plain by default:
   at this size the multi-task evaluator reads nothing on ``--wild`` data), split by subject
   into train / val / test. A second release drawn with another seed (``--id-seed``): other
   people altogether, for the identity embedding.
2. Judges: the multi-task evaluator, trained on train and selected on val (the protocol's
   settings, one seed); the identity embedding (``affmodels.gan.identity``), trained on the
   other release's train people and selected on its val people.
3. The GAN, trained on train for ``--steps`` steps.
4. ``evaluate_gan`` on test: the trained generator, an untrained one and the copy-the-input
   baseline on the same sources and targets; target-affect figures by the evaluator, identity
   by the embedding (checked first on real test faces), KID (identity features and a fixed
   random network's) against real test faces that are not sources.
5. Then ``benchmarks/gan_augment.py``: the paper's loop on the same work folder.

Stages are kept in ``--work`` and reused (``--retrain`` redoes the networks). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from affmodels.checkpoint import load_checkpoint  # noqa: E402
from affmodels.gan.evaluate import evaluate_gan  # noqa: E402
from affmodels.gan.train import GanTrainConfig, train_gan  # noqa: E402


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def data(args: argparse.Namespace) -> dict:
    from benchmarks.protocol import prepare

    common = dict(wild=False, wild_knobs=None, ratios=(0.6, 0.2, 0.2), size=args.size, scarce_au=1.0)
    main = prepare(argparse.Namespace(work=args.work / "main", subjects=args.subjects, seconds=args.seconds,
                                      data_seed=args.data_seed, **common))
    ids = prepare(argparse.Namespace(work=args.work / "ids", subjects=args.id_subjects, seconds=args.id_seconds,
                                     data_seed=args.id_seed, **common))
    main["test-full"] = full_label_part(args.work / "main", args.subjects, args.seconds, args.data_seed, "test",
                                        args.size)
    ids["val-full"] = full_label_part(args.work / "ids", args.id_subjects, args.id_seconds, args.id_seed, "val",
                                      args.size)
    return {"main": main, "ids": ids}


def full_label_part(work: Path, subjects: int, seconds: float, seed: int, part: str, size: int) -> dict:
    """``part`` exported again with every frame's expression and AUs labelled (the release's own
    labels cover 25 % and 20 % of frames: too few people share an expression to check identity).
    Same store, same split, same pixels: only the annotation files are written anew, from the
    release's plan and seed (no rendering), and imported as another source."""
    from affdata.db import Store
    from affdata.export import export_part
    from affdata.labels import import_labels
    from affdata.synthetic.dataset import write_full_labels

    out = work / f"exports{size}" / f"{part}-full"
    if not (out / "meta" / "info.json").is_file():
        notes = work / "annotations_full"
        shutil.rmtree(notes, ignore_errors=True)
        write_full_labels(notes, subjects, seconds, seed)
        store = Store(str(work / "affdata.db"))
        import_labels(store, [notes], source="synthetic-full")
        export_part(store, split="protocol", part=part, out=out, size=size, source="synthetic-full")
        store.close()
    counts = json.loads((out / "meta" / "info.json").read_text())["counts"]
    return {k: counts[k] for k in ("rows", "subjects", "va", "au", "expr")}


def evaluator(args: argparse.Namespace, exports: Path) -> tuple[Path, dict]:
    from affmodels.train import TrainConfig, train

    out = args.work / "evaluator"
    if not (out / "best.pt").is_file() or args.retrain:
        shutil.rmtree(out, ignore_errors=True)
        t, c = time.perf_counter(), cpu_s()
        train(TrainConfig(data=str(exports / "train"), val=str(exports / "val"), out=str(out), epochs=args.eval_epochs,
                          batch_size=128, lr=3e-3, workers=0, threads=args.threads, seed=0, device="cpu",
                          balance=(1.0, 1.0, 1.0)))
        (out / "timing.json").write_text(json.dumps({"wall_s": round(time.perf_counter() - t, 1),
                                                     "cpu_s": round(cpu_s() - c, 1)}))
    from affmodels.evaluate import evaluate_checkpoint

    test = evaluate_checkpoint(out / "best.pt", exports / "test", batch_size=512)
    keys = ("ccc_mean", "au_f1_mean", "expr_f1_macro", "expr_accuracy")
    return out / "best.pt", {"test": {k: test.metrics.get(k) for k in keys},
                             "timing": json.loads((out / "timing.json").read_text())}


def identity(args: argparse.Namespace, ids: Path) -> tuple[Path, dict]:
    from affmodels.gan.identity import Faces, IdentityConfig, load_faces, train_identity

    out = args.work / "identity.pt"
    info = args.work / "identity.json"
    if not out.is_file() or args.retrain:
        t, c = time.perf_counter(), cpu_s()
        people = Faces.concat([load_faces(ids / "train"), load_faces(ids / "test")])  # all but val: selection
        result = train_identity(people, load_faces(ids / "val-full"), out,
                                IdentityConfig(epochs=args.id_epochs, threads=args.threads))
        info.write_text(json.dumps({**result.to_dict(), "wall_s": round(time.perf_counter() - t, 1),
                                    "cpu_s": round(cpu_s() - c, 1)}, default=float))
    return out, json.loads(info.read_text())


def gan(args: argparse.Namespace, exports: Path) -> tuple[Path, dict]:
    out = args.out or args.work / "gan"
    if args.eval_only and not (out / "last.pt").is_file():
        raise SystemExit(f"--eval-only: {out / 'last.pt'} not found")
    if not args.eval_only and (not (out / "last.pt").is_file() or args.retrain):
        shutil.rmtree(out, ignore_errors=True)
        t, c = time.perf_counter(), cpu_s()
        result = train_gan(GanTrainConfig(
            data=str(exports / "train"), out=str(out), epochs=1000, batch_size=args.batch_size, lr_g=args.lr,
            lr_d=args.lr, workers=0, threads=args.threads, seed=0, device=args.device, max_steps=args.steps,
            g_task_weight=args.g_task_weight, mask_weight=args.mask_weight, g_width=args.g_width,
            d_width=args.d_width, d_norm=args.d_norm, d_augment=args.d_augment, d_warmup_steps=args.d_warmup_steps,
            checkpoint_every=args.checkpoint_every))
        (out / "timing.json").write_text(json.dumps({"wall_s": round(time.perf_counter() - t, 1),
                                                     "cpu_s": round(cpu_s() - c, 1), "steps": result.steps}))
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").is_file() else {}
    return out / "last.pt", {**timing, "steps": load_checkpoint(out / "last.pt")["step"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(".bench/gan"))
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=24)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--id-subjects", type=int, default=24)
    parser.add_argument("--id-seconds", type=float, default=10)
    parser.add_argument("--id-seed", type=int, default=1, help="seed of the identity release: other people")
    parser.add_argument("--id-epochs", type=int, default=6)
    parser.add_argument("--eval-epochs", type=int, default=4)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=512, help="source faces generated from (the rest of test: reference)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="GAN run folder (default WORK/gan)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--g-task-weight", type=float, default=GanTrainConfig.g_task_weight)
    parser.add_argument("--mask-weight", type=float, default=GanTrainConfig.mask_weight)
    parser.add_argument("--g-width", type=int, default=GanTrainConfig.g_width)
    parser.add_argument("--d-width", type=int, default=GanTrainConfig.d_width)
    parser.add_argument("--d-norm", default="group", choices=["group", "none"])
    parser.add_argument("--d-augment", action="store_true")
    parser.add_argument("--d-warmup-steps", type=int, default=0, help="counted in --steps")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--eval-only", action="store_true", help="score the GAN run's last.pt; never train it")
    parser.add_argument("--retrain", action="store_true", help="train the networks again even if their files exist")
    parser.add_argument("--stage", default="all", choices=["data", "judges", "gan", "all"],
                        help="stop after this stage (each is kept in --work)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    info = data(args)
    main_exports, ids_exports = Path(info["main"]["exports"]), Path(info["ids"]["exports"])
    report: dict = {"benchmark": "gan_quality", "args": {k: str(v) for k, v in vars(args).items()}, "data": info}
    if args.stage != "data":
        e_path, report["evaluator"] = evaluator(args, main_exports)
        id_path, report["identity_training"] = identity(args, ids_exports)
    if args.stage in ("gan", "all"):
        g_path, report["gan_training"] = gan(args, main_exports)
    if args.stage == "all":
        t, c = time.perf_counter(), cpu_s()
        scores = evaluate_gan(g_path, e_path, main_exports / "test-full", identity=id_path, n=args.n, seed=0,
                              device=args.device)
        report["evaluation"] = scores.to_dict()
        report["evaluation_s"] = {"wall_s": round(time.perf_counter() - t, 1), "cpu_s": round(cpu_s() - c, 1)}
    report["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2, default=float))


if __name__ == "__main__":
    main()
