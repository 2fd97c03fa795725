"""The evaluation protocol: figures that cannot leak, with their spread.

1. Data: the synthetic release, by default with the nuisances of the pixels (head pose,
   lighting, occlusions, blur, identity variety: ``--wild-knobs pixels``; chosen on val, see
   docs/synthetic.md), ``--wild`` for every nuisance, ``--no-wild`` for plain data; ingested into a store and
   split by subject into train, val and test (``--ratios``, stratified by expression; ``--stratify
   none``: the split depends on the seed only, so rows with other labels share it), each
   part exported. No subject is in two parts.
2. Per variant (full labels; with ``--scarce-au F`` also AU labels kept on a fraction F of the
   training frames, with and without ``--relations``) and per seed (``--seeds``, at least 3;
   ``--min-seeds 2`` for exploratory sweeps):
   train on train, choose the epoch (``best.pt``) on val only, evaluate that checkpoint once
   on test.
3. Beside them, computed by this script on the same parts: a trivial floor (the training
   mean VA, every AU present, the most frequent training class) and a linear baseline
   (ridge for VA, one logistic regression per AU and a multinomial one for expressions, on
   16x16 RGB thumbnails, standardised and projected on their first 96 principal axes; each
   regularisation chosen on val), both evaluated on test.
4. Reported on test only: per metric, the mean over seeds and a 95 % interval
   (t distribution, n - 1 degrees of freedom: mean +- t * sd / sqrt(n)). The floor and the
   linear baseline are also evaluated on val (``test_baselines.on_val``), for choices such as a
   data preset, which are made on val.

``--models cnn,cnn-gru`` runs every variant with each model (the temporal one with ``--window``
frames a window); a variant's key is its name, followed by ``/MODEL`` for any model but cnn.

Prints one JSON object. Everything is deterministic for its arguments (same seeds, same figures
on the same machine and torch build). Size it with ``--subjects --seconds --size --epochs``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = ("ccc_valence", "ccc_arousal", "ccc_mean", "au_f1_mean", "expr_f1_macro", "expr_accuracy", "score")
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def interval(values: list[float]) -> dict[str, Any]:
    """Mean and 95 % interval (Student t, n - 1 degrees of freedom) of per-seed figures."""
    x = np.asarray([v for v in values if v == v], dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "ci95": None, "n": 0, "values": values}
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": round(mean, 4), "ci95": None, "n": 1, "values": values}
    dof = x.size - 1
    t = T975.get(dof) or T975[max(k for k in T975 if k <= dof)]
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    return {"mean": round(mean, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)], "n": int(x.size),
            "values": [round(v, 4) for v in values]}


def thin_au_labels(files: list[Path], fraction: float, seed: int) -> dict:
    """Thin ABAW AU files in place: each keeps its labels on one random contiguous run holding
    ``fraction`` of its labelled lines (-1 elsewhere). Returns labelled lines before and after."""
    rng = np.random.default_rng([seed, 17])
    before = after = 0
    for path in sorted(files):
        lines = path.read_text().splitlines()
        header, body = lines[0], lines[1:]
        labelled = [i for i, line in enumerate(body) if not line.startswith("-1")]
        keep_n = int(round(fraction * len(labelled)))
        keep: set[int] = set()
        if keep_n:
            start = int(rng.integers(0, len(labelled) - keep_n + 1))
            keep = set(labelled[start:start + keep_n])
        blank = ",".join(["-1"] * len(header.split(",")))
        body = [line if (i in keep or line.startswith("-1")) else blank for i, line in enumerate(body)]
        path.write_text("\n".join([header, *body]) + "\n")
        before += len(labelled)
        after += len(keep)
    return {"labelled_before": before, "labelled_after": after}


# ----------------------------------------------------------------------------- baselines


def _arrays(export: Path, thumb: int = 16) -> dict[str, np.ndarray]:
    """Every row of an export once, as 16x16 RGB thumbnails (flattened, in [0, 1]) and labels."""
    import torch
    import torch.nn.functional as F

    from affmodels.data import make_loader
    from affmodels.evaluate import eval_stream

    stream = eval_stream(export, 512)
    parts: dict[str, list] = {k: [] for k in ("x", "va", "va_mask", "au", "au_mask", "expr", "expr_mask")}
    seen: set[int] = set()
    for batch in make_loader(stream, 512, 0):
        keep = [i for i, r in enumerate(batch["row"].tolist()) if r not in seen]
        seen.update(batch["row"].tolist())
        idx = torch.tensor(keep, dtype=torch.long)
        img = batch["image"][idx].float() / 255
        parts["x"].append(F.interpolate(img, size=(thumb, thumb), mode="bilinear", antialias=True,
                                        align_corners=False).flatten(1).numpy())
        for k in ("va", "va_mask", "au", "au_mask", "expr", "expr_mask"):
            parts[k].append(batch[k][idx].numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


class FixedPredictor:
    """A 'model' for evaluate_model: predictions computed from thumbnails by numpy functions."""

    def __init__(self, va, au, expr) -> None:
        self.va, self.au, self.expr = va, au, expr
        self.training = False

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, images):
        import torch
        import torch.nn.functional as F

        from affmodels.model import Predictions

        x = F.interpolate(images.float() / 255, size=(16, 16), mode="bilinear", antialias=True,
                          align_corners=False).flatten(1).numpy()
        return Predictions(torch.as_tensor(self.va(x), dtype=torch.float32),
                           torch.as_tensor(self.au(x), dtype=torch.float32),
                           torch.as_tensor(self.expr(x), dtype=torch.float32))


def floor_predictor(train: dict[str, np.ndarray], n_classes: int) -> FixedPredictor:
    """Training-set constants: mean VA, every AU present, the most frequent class."""
    va = train["va"][train["va_mask"]].mean(0) if train["va_mask"].any() else np.zeros(2)
    k = train["au"].shape[1]
    counts = np.bincount(train["expr"][train["expr_mask"] & (train["expr"] >= 0)], minlength=n_classes)
    logits = np.full(n_classes, -10.0)
    logits[int(counts.argmax())] = 10.0
    return FixedPredictor(lambda x: np.tile(va, (len(x), 1)), lambda x: np.full((len(x), k), 10.0),
                          lambda x: np.tile(logits, (len(x), 1)))


def linear_predictor(train: dict[str, np.ndarray], val: dict[str, np.ndarray], n_classes: int) -> tuple[FixedPredictor, dict]:
    """Ridge (VA) and logistic regressions (AUs, expressions) on standardised thumbnails, each
    regularisation strength chosen by its metric on val."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from affmodels.metrics import ccc, f1_binary, macro_f1

    mu, sd = train["x"].mean(0), train["x"].std(0) + 1e-6
    # standardised pixels projected on their first 96 principal axes (of train): still linear
    # in the pixels, and fast enough to fit a dozen logistic regressions on a busy CPU
    _, _, vt = np.linalg.svd((train["x"] - mu) / sd, full_matrices=False)
    axes = vt[:96].T
    z = lambda x: ((x - mu) / sd) @ axes  # noqa: E731
    xt, xv = z(train["x"]), z(val["x"])
    chosen: dict[str, Any] = {}
    m = train["va_mask"]
    best = None
    for alpha in (1.0, 10.0, 100.0, 1000.0, 10000.0):
        r = Ridge(alpha=alpha).fit(xt[m], train["va"][m])
        pv = np.clip(r.predict(xv[val["va_mask"]]), -1, 1)
        s = np.mean([ccc(pv[:, j], val["va"][val["va_mask"]][:, j]) for j in (0, 1)])
        if best is None or s > best[0]:
            best = (s, alpha, r)
    chosen["va_alpha"], ridge = best[1], best[2]
    au_models = []
    for j in range(train["au"].shape[1]):
        mt, mv = train["au_mask"][:, j], val["au_mask"][:, j]
        yt = train["au"][mt, j] > 0.5
        if yt.all() or not yt.any():
            au_models.append(float(10.0 if yt.all() else -10.0))
            continue
        best = None
        for c in (0.001, 0.01, 0.1, 1.0):
            lr = LogisticRegression(C=c, max_iter=500, class_weight="balanced").fit(xt[mt], yt)
            s = f1_binary(val["au"][mv, j] > 0.5, lr.predict(xv[mv])) if mv.any() else 0.0
            if best is None or s > best[0]:
                best = (s, c, lr)
        au_models.append(best[2])
        chosen[f"au{j}_C"] = best[1]
    me, mev = train["expr_mask"] & (train["expr"] >= 0), val["expr_mask"] & (val["expr"] >= 0)
    best = None
    for c in (0.001, 0.01, 0.1, 1.0):
        lr = LogisticRegression(C=c, max_iter=500, class_weight="balanced").fit(xt[me], train["expr"][me])
        s = macro_f1(val["expr"][mev], lr.predict(xv[mev])) if mev.any() else 0.0
        if best is None or s > best[0]:
            best = (s, c, lr)
    chosen["expr_C"], expr_model = best[1], best[2]

    def au(x):
        x = z(x)
        cols = [np.full(len(x), m) if isinstance(m, float) else m.decision_function(x) for m in au_models]
        return np.stack(cols, 1)

    def expr(x):
        scores = np.full((len(x), n_classes), -1e4)
        scores[:, expr_model.classes_] = expr_model.decision_function(z(x))
        return scores

    return FixedPredictor(lambda x: np.clip(ridge.predict(z(x)), -1, 1), au, expr), chosen


# ----------------------------------------------------------------------------- the protocol


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    from affdata.boxes import import_boxes
    from affdata.db import Store
    from affdata.export import export_part
    from affdata.labels import import_labels
    from affdata.splits import create_split
    from affdata.synthetic import generate_dataset
    from affdata.videos import ingest_videos

    work = args.work
    info: dict[str, Any] = {}
    data = work / "data"
    if not (data / "dataset.json").is_file():
        generate_dataset(data, subjects=args.subjects, seconds=args.seconds, seed=args.data_seed, wild=wild_of(args))
    exports = work / f"exports{args.size}"
    done = exports / "test" / "meta" / "info.json"
    if not done.is_file():
        store = Store(str(work / "affdata.db"))
        ingest_videos(store, [data / "videos"], subject_pattern=r"^(subj\d+)_")
        import_boxes(store, data / "boxes.csv", data / "subjects.csv")
        import_labels(store, [data / "annotations"], source="synthetic")
        create_split(store, "protocol", by="subject", ratios=args.ratios, seed=args.data_seed,
                     stratify=None if args.stratify == "none" else args.stratify)
        for part in ("train", "val", "test"):
            export_part(store, split="protocol", part=part, out=exports / part, size=args.size, source="synthetic")
        if args.scarce_au < 1:
            # the release's own folders are Training_Set / Validation_Set; thin every AU file of
            # the videos in our train part (the test and val parts are exported from the full source)
            thinned = work / f"annotations_au{args.scarce_au:g}"
            shutil.rmtree(thinned, ignore_errors=True)
            info["scarce_au"] = {"fraction": args.scarce_au}
            train_videos = _part_videos(store, "protocol", "train")
            info["scarce_au"] |= _thin_train(data / "annotations", thinned, train_videos, args.scarce_au,
                                             args.data_seed)
            import_labels(store, [thinned], source="synthetic-scarce")
            export_part(store, split="protocol", part="train", out=exports / "train-scarce", size=args.size,
                        source="synthetic-scarce")
        store.close()
    for part in ("train", "val", "test") + (("train-scarce",) if (exports / "train-scarce").is_dir() else ()):
        counts = json.loads((exports / part / "meta" / "info.json").read_text())["counts"]
        info[part] = {k: counts[k] for k in ("rows", "subjects", "va", "au", "expr")}
    info["exports"] = str(exports)
    return info


def _part_videos(store, split: str, part: str) -> set[str]:
    from sqlalchemy import text

    with store.connect() as conn:
        return set(conn.execute(text(
            "SELECT v.name FROM split_assignment a JOIN split s ON s.id = a.split_id JOIN video v ON v.id = a.video_id "
            "WHERE s.name = :n AND a.part = :p"), {"n": split, "p": part}).scalars())


def _thin_train(annotations: Path, out: Path, videos: set[str], fraction: float, seed: int) -> dict:
    """A copy of the annotation folder with the AU files of ``videos`` thinned (whatever
    release folder they sit in); every other file unchanged."""
    from affdata.formats.table import split_track

    shutil.copytree(annotations, out)
    files = [p for p in (out / "AU_Set").rglob("*.txt") if split_track(p.stem)[0] in videos]
    return thin_au_labels(files, fraction, seed)


def run_seed(args: argparse.Namespace, exports: Path, train_part: str, relations: bool, seed: int, name: str,
             model: str = "cnn") -> dict:
    from affmodels.evaluate import evaluate_checkpoint
    from affmodels.train import TrainConfig, train

    out = args.work / "runs" / f"{name.replace('/', '-')}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    result = train(TrainConfig(data=str(exports / train_part), val=str(exports / "val"), out=str(out),
                               epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, workers=0,
                               threads=args.threads, seed=seed, relations=relations, device="cpu",
                               model=model, window=args.window,
                               balance=tuple(float(x) for x in args.balance.split(","))))
    seconds = time.perf_counter() - t
    best_epoch = max(range(len(result.history)), key=lambda i: _score(result.history[i].val))
    test = evaluate_checkpoint(out / "best.pt", exports / "test", batch_size=512)
    assert test.data["part"] == "test" and not test.data["selected_on"]
    return {"seed": seed, "train_s": round(seconds, 1), "best_epoch": best_epoch + 1,
            "val_at_best": {k: round(result.history[best_epoch].val.get(k, float("nan")), 4) for k in KEYS},
            "test": {k: test.metrics.get(k) for k in KEYS}}


def _score(val: dict) -> float:
    from affmodels.evaluate import score

    return score(val) if val else -math.inf


def _baselines(args, exports: Path, arrays: dict, n_classes: int, baselines: dict) -> None:
    from affmodels.evaluate import evaluate_model

    floor = floor_predictor(arrays["train"], n_classes)
    baselines["floor"] = {k: evaluate_model(floor, exports / "test", batch_size=512).get(k) for k in KEYS}
    linear, chosen = linear_predictor(arrays["train"], arrays["val"], n_classes)
    baselines["linear"] = {k: evaluate_model(linear, exports / "test", batch_size=512).get(k) for k in KEYS}
    # the same predictors on val: a choice made from these runs (a data preset) is made on val
    baselines["on_val"] = {name: {k: evaluate_model(p, exports / "val", batch_size=512).get(k) for k in KEYS}
                        for name, p in (("floor", floor), ("linear", linear))}
    baselines["linear_chosen_on_val"] = chosen
    if (exports / "train-scarce").is_dir():
        scarce = _arrays(exports / "train-scarce")
        lin, _ = linear_predictor(scarce, arrays["val"], n_classes)
        baselines["linear_scarce_au"] = {k: evaluate_model(lin, exports / "test", batch_size=512).get(k) for k in KEYS}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(".bench/protocol"))
    parser.add_argument("--subjects", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--wild", action=argparse.BooleanOptionalAction, default=None,
                        help="every nuisance of the wild (affdata demo generate --wild); --no-wild: plain data; "
                             "neither (and no --wild-knobs): the pixel nuisances only (--wild-knobs pixels)")
    parser.add_argument("--wild-knobs", default=None, help="as affdata demo generate --wild-knobs")
    parser.add_argument("--ratios", type=lambda s: tuple(float(x) for x in s.split(",")), default=(0.6, 0.2, 0.2))
    parser.add_argument("--stratify", choices=("expression", "none"), default="expression",
                        help="none: the subject split depends on the seed only, so rows that differ in their "
                             "labels (wild knobs) share their train, val and test subjects")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--balance", default="1,1,1")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per training (1: on a shared, oversubscribed CPU 2 threads ran about 8x slower)")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    parser.add_argument("--min-seeds", type=int, default=3,
                        help="refuse fewer seeds than this (2: exploratory sweeps, e.g. one row per wild knob; "
                             "their intervals are t(1 dof) wide)")
    parser.add_argument("--scarce-au", type=float, default=1.0,
                        help="also train with AU labels on this fraction of the training frames, with and without --relations")
    parser.add_argument("--models", default="cnn", help="comma list of networks to run each variant with: cnn, cnn-gru, ...")
    parser.add_argument("--window", type=int, default=16, help="frames a window for the temporal models (cnn-gru)")
    parser.add_argument("--skip-baselines", action="store_true", help="networks only (the baselines come from another run)")
    parser.add_argument("--variants", default=None,
                        help="comma list among full, full+relations, scarce, scarce+relations (default: full, and the scarce pair with --scarce-au)")
    args = parser.parse_args(argv)
    if len(args.seeds) < max(2, args.min_seeds):
        parser.error(f"--seeds: at least {max(2, args.min_seeds)} seeds (an interval needs them)")
    return args


def wild_of(args: argparse.Namespace):
    """The generator's nuisances for these arguments: the pixel preset when neither ``--wild``,
    ``--no-wild`` nor ``--wild-knobs`` is given (the default); ``--wild-knobs`` over the full
    preset with ``--wild``, over all-off otherwise; None for plain data (``--no-wild`` alone)."""
    from affdata.synthetic import Wild

    if args.wild is None and args.wild_knobs is None:
        return Wild.pixels()
    return Wild.parse(args.wild_knobs, preset=bool(args.wild)) if (args.wild or args.wild_knobs) else None


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    data_info = prepare(args)
    exports = Path(data_info["exports"])
    times = {"prepare_s": round(time.perf_counter() - t0, 1)}

    from affmodels.data import AffectStream
    from affmodels.evaluate import evaluate_model

    n_classes = AffectStream(exports / "train", shuffle=False).n_classes
    baselines: dict[str, Any] = {}
    t = time.perf_counter()
    arrays = {} if args.skip_baselines else {p: _arrays(exports / p) for p in ("train", "val")}
    if args.skip_baselines:
        pass
    else:
        _baselines(args, exports, arrays, n_classes, baselines)
    times["baselines_s"] = round(time.perf_counter() - t, 1)

    names = args.variants.split(",") if args.variants else (
        ["full"] + (["scarce", "scarce+relations"] if args.scarce_au < 1 else []))
    variants: dict[str, Any] = {}
    wild = wild_of(args)

    def report() -> str:
        return json.dumps({"benchmark": "protocol", "wild": wild.to_json() if wild else None,
                           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                           "data": data_info, "times": times, "test_baselines": baselines, "variants": variants},
                          indent=2, default=float)

    for name in names:
        for model in args.models.split(","):
            part = "train-scarce" if name.startswith("scarce") else "train"
            key = name if model == "cnn" else f"{name}/{model}"
            runs = [run_seed(args, exports, part, name.endswith("+relations"), seed, key, model) for seed in args.seeds]
            variants[key] = {"train_part": part, "relations": name.endswith("+relations"), "model": model,
                             "test": {k: interval([r["test"][k] for r in runs]) for k in KEYS}, "runs": runs}
            # what is done so far, in case a long run is stopped before the end
            (args.work / "protocol-partial.json").write_text(report() + "\n")
    times["total_s"] = round(time.perf_counter() - t0, 1)
    print(report())


if __name__ == "__main__":
    main()
