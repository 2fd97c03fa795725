"""The paper's loop: do generated faces raise the multi-task network's test figures when
labels are scarce?

Uses ``benchmarks/gan_quality.py``'s work folder (its exports and its GAN; run it first).
1. ``train-low``: the training export with each task's labels kept on ``--fraction`` of its
   labelled frames (per track, one contiguous run; ``affmodels.gan.derive``).
2. ``train-low+gan``: the same plus ``--generated`` faces drawn by the GAN from training faces
   (any training face, labelled or not) for targets drawn from the kept labels, each labelled
   with its target. ``train-low+copy`` (with ``--variants``): the same rows with the source face
   copied unchanged, a control for "more rows with labels" without the GAN's edits.
   With ``--gan-steps N`` the GAN is first trained on ``train-low`` itself (it then sees no
   label the network does not); without it, the GAN of gan_quality.py, trained with all the
   training labels, is used (it has seen labels the low-data network has not: say so).
3. Per variant and seed: train on it, choose the epoch on val, evaluate once on test; report
   the mean and 95 % interval over seeds, and the paired per-seed differences to ``low``.
Prints JSON; each finished run goes to stderr and WORK/augment-partial.json as it ends.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.protocol import KEYS, interval  # noqa: E402


def build(args: argparse.Namespace, exports: Path) -> dict:
    import pyarrow as pa
    import torch

    from affmodels.checkpoint import load_gan
    from affmodels.data import load_manifest
    from affmodels.gan.derive import generated_table, read_export, thin_table, write_export
    from affmodels.gan.evaluate import CopyGenerator, generate_faces
    from affmodels.gan.identity import load_faces
    from affmodels.gan.targets import TargetSampler, label_arrays, observed_classes, sample_targets
    from affmodels.gan.train import GanTrainConfig, train_gan

    tag = f"{args.fraction:g}"
    low = args.work / f"train-low{tag}"
    info: dict = {}
    if not low.is_dir():
        table, like = read_export(exports / "train")
        write_export(thin_table(table, args.fraction, args.data_seed), like, low, source=f"synthetic-low{tag}")
    gan_path = args.gan
    if args.gan_steps:
        out = args.work / f"gan-low{tag}"
        if not (out / "last.pt").is_file():
            t = time.perf_counter()
            train_gan(GanTrainConfig(data=str(low), out=str(out), epochs=1000, batch_size=32, workers=0,
                                     threads=args.threads, seed=0, device="cpu", max_steps=args.gan_steps,
                                     checkpoint_every=100))
            info["gan_low_train_s"] = round(time.perf_counter() - t, 1)
        gan_path = out / "last.pt"
    info["gan"] = str(gan_path)
    info["gan_saw_all_training_labels"] = not args.gan_steps
    m = load_manifest(low)
    labels = label_arrays(m)
    sampler = TargetSampler(labels["va"], labels["au"], labels["au_mask"], labels["expr"], labels["expr_mask"],
                            n_classes=m.n_classes, va_mask=labels["va_mask"])
    g = torch.Generator().manual_seed(args.data_seed)
    n = args.generated or m.counts["rows"]
    faces = load_faces(exports / "train")
    sources = faces.take(np.random.default_rng(args.data_seed).choice(len(faces), n, replace=n > len(faces)))
    target = sample_targets(sampler, n, observed_classes(labels), g)
    thin, like = read_export(low)
    for name, G in (("gan", None), ("copy", CopyGenerator())):
        out = args.work / f"train-low{tag}+{name}"
        if out.is_dir():
            continue
        if G is None:
            G = load_gan(gan_path)[0]
        with torch.no_grad():
            images = generate_faces(G, sources.images, target)
        write_export(pa.concat_tables([thin, generated_table(images, sources, target, thin.schema)]), like, out,
                     source=f"synthetic-low{tag}+{name}")
    for part in (low, args.work / f"train-low{tag}+gan"):
        info[part.name] = {k: load_manifest(part).counts[k] for k in ("rows", "va", "au", "expr")}
    return info


def run_seed(args: argparse.Namespace, exports: Path, data: Path, seed: int) -> dict:
    from affmodels.evaluate import evaluate_checkpoint
    from affmodels.train import TrainConfig, train

    out = args.work / "augment-runs" / f"{data.name}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    train(TrainConfig(data=str(data), val=str(exports / "val"), out=str(out), epochs=args.epochs, batch_size=128,
                      lr=3e-3, workers=0, threads=args.threads, seed=seed, device="cpu", balance=(1.0, 1.0, 1.0)))
    test = evaluate_checkpoint(out / "best.pt", exports / "test", batch_size=512)
    assert test.data["part"] == "test" and not test.data["selected_on"]
    return {"seed": seed, "train_s": round(time.perf_counter() - t, 1), "test": {k: test.metrics.get(k) for k in KEYS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(".bench/gan"))
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--fraction", type=float, default=0.15, help="share of each task's training labels kept")
    parser.add_argument("--generated", type=int, default=0, help="generated rows (default: as many as train-low has)")
    parser.add_argument("--gan", type=Path, default=None, help="GAN checkpoint (default WORK/gan/last.pt)")
    parser.add_argument("--gan-steps", type=int, default=0, help="train a GAN on train-low first, for this many steps")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--variants", default="low,low+gan", help="among low, low+gan, low+copy")
    args = parser.parse_args()
    if len(args.seeds) < 3:
        parser.error("--seeds: at least 3 seeds (an interval needs them)")
    args.gan = args.gan or args.work / "gan" / "last.pt"
    exports = args.work / "main" / f"exports{args.size}"
    if not args.gan_steps and not Path(args.gan).is_file():
        raise SystemExit(f"{args.gan} not found: run benchmarks/gan_quality.py first (or pass --gan-steps)")
    t0 = time.perf_counter()
    info = build(args, exports)
    tag = f"{args.fraction:g}"
    names = args.variants.split(",")
    runs: dict = {name: [] for name in names}
    partial = args.work / "augment-partial.json"
    for s in args.seeds:  # seeds outer: a run cut short still leaves paired seeds
        for name in names:
            runs[name].append(run_seed(args, exports, args.work / ("train-low" + tag + name[len("low"):]), s))
            print(json.dumps({"variant": name, **runs[name][-1]}, default=float), file=sys.stderr, flush=True)
            partial.write_text(json.dumps({"data": info, "runs": runs}, indent=2, default=float))
    variants: dict = {}
    for name in names:
        variants[name] = {"data": "train-low" + tag + name[len("low"):],
                          "test": {k: interval([r["test"][k] for r in runs[name]]) for k in KEYS}, "runs": runs[name]}
    for name in variants:
        if name != "low" and "low" in variants:
            variants[name]["minus_low_paired"] = {
                k: interval([a["test"][k] - b["test"][k] for a, b in zip(variants[name]["runs"], variants["low"]["runs"])])
                for k in KEYS}
    print(json.dumps({"benchmark": "gan_augment", "args": {k: str(v) for k, v in vars(args).items()}, "data": info,
                      "variants": variants, "total_s": round(time.perf_counter() - t0, 1)}, indent=2, default=float))


if __name__ == "__main__":
    main()
