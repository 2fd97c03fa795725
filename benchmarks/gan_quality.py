"""The GAN's bar: after a short CPU training on the synthetic dataset, do generated faces show
their target expression, as judged by the separately trained multi-task network of
``benchmarks/quality.py``, clearly above chance and better than an untrained generator?

Uses that benchmark's exports and its ``best.pt`` as the evaluator (run it first). Trains the
GAN for ``--steps`` steps, then runs ``evaluate_gan`` on the held-out subjects. Prints JSON.
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

from affmodels.gan.evaluate import evaluate_gan  # noqa: E402
from affmodels.gan.train import GanTrainConfig, train_gan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path(".bench/quality"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=900)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=512, help="faces generated for the evaluation")
    args = parser.parse_args()
    exports, evaluator = args.work / f"exports{args.size}", args.work / f"run{args.size}" / "best.pt"
    if not evaluator.is_file():
        raise SystemExit(f"{evaluator} not found: run benchmarks/quality.py first")
    out = args.work / f"gan{args.size}"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    result = train_gan(GanTrainConfig(data=str(exports / "train"), out=str(out), epochs=100, batch_size=args.batch_size,
                                      workers=0, threads=args.threads, seed=0, device="cpu", max_steps=args.steps))
    train_s = time.perf_counter() - t
    scores = evaluate_gan(out / "last.pt", evaluator, exports / "val", n=args.n, seed=0)
    print(json.dumps({"benchmark": "gan_quality", "args": {k: str(v) for k, v in vars(args).items()},
                      "train_s": round(train_s, 1), "steps": result.steps, **scores}, indent=2, default=float))


if __name__ == "__main__":
    main()
