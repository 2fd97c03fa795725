"""The GAN's bar: after a short CPU training on the synthetic dataset, do generated faces show
their target expression, as judged by the separately trained multi-task network of
``benchmarks/quality.py``, clearly above chance and better than an untrained generator?

Uses that benchmark's exports and its ``best.pt`` as the evaluator (run it first). Trains the
GAN for ``--steps`` steps, then runs ``evaluate_gan`` on the held-out subjects. Prints JSON.
The training options are GanTrainConfig's, so one script also compares settings (on a GPU,
several copies side by side with different ``--out``); ``--eval-only`` scores a run's
``last.pt`` again (a run stopped by a time limit still has its last periodic checkpoint).
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

from affmodels.checkpoint import load_checkpoint  # noqa: E402
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
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default WORK/ganSIZE)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--g-task-weight", type=float, default=GanTrainConfig.g_task_weight)
    parser.add_argument("--mask-weight", type=float, default=GanTrainConfig.mask_weight)
    parser.add_argument("--g-width", type=int, default=GanTrainConfig.g_width)
    parser.add_argument("--d-width", type=int, default=GanTrainConfig.d_width)
    parser.add_argument("--d-augment", action="store_true")
    parser.add_argument("--d-warmup-steps", type=int, default=0, help="counted in --steps")
    parser.add_argument("--d-norm", default="group", choices=["group", "none"])
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--eval-only", action="store_true")
    args = parser.parse_args()
    exports, evaluator = args.work / f"exports{args.size}", args.work / f"run{args.size}" / "best.pt"
    if not evaluator.is_file():
        raise SystemExit(f"{evaluator} not found: run benchmarks/quality.py first")
    out = args.out or args.work / f"gan{args.size}"
    train_s, steps = None, None
    if not args.eval_only:
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        result = train_gan(GanTrainConfig(
            data=str(exports / "train"), out=str(out), epochs=1000, batch_size=args.batch_size, lr_g=args.lr,
            lr_d=args.lr, workers=0, threads=args.threads, seed=0, device=args.device, max_steps=args.steps,
            g_task_weight=args.g_task_weight, mask_weight=args.mask_weight, g_width=args.g_width,
            d_width=args.d_width, d_norm=args.d_norm, d_augment=args.d_augment, d_warmup_steps=args.d_warmup_steps,
            checkpoint_every=args.checkpoint_every))
        train_s, steps = round(time.perf_counter() - t, 1), result.steps
    else:
        steps = load_checkpoint(out / "last.pt")["step"]
    scores = evaluate_gan(out / "last.pt", evaluator, exports / "val", n=args.n, seed=0, device=args.device)
    print(json.dumps({"benchmark": "gan_quality", "args": {k: str(v) for k, v in vars(args).items()},
                      "train_s": train_s, "steps": steps, **scores}, indent=2, default=float))


if __name__ == "__main__":
    main()
