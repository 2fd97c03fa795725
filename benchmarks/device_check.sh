#!/usr/bin/env bash
# The GPU check, for a session that is lent a GPU machine: one short prepared run.
#
#  1. benchmarks/train_step.py: the multi-task network's optimisation step alone (cnn and vgg,
#     64 and 112 px, fp32 and bf16), against its own forward pass.
#  2. `affmodels train` end to end for one epoch with 0, 4 and 8 loader workers: whether the
#     streaming loader keeps the GPU fed (samples/s of the whole loop, loader included).
#  3. benchmarks/gan_quality.py for several GAN settings side by side, each stopped by a time
#     limit (periodic checkpoints), then each last.pt scored by the evaluator.
#
# Needs, in the repository: .bench/quality (benchmarks/quality.py makes the exports and the
# evaluator; WORK names another such folder) and, where simplejpeg is missing there, its wheel in .whl/. Results go to $OUT.
# Usage: bash benchmarks/device_check.sh [GAN_SECONDS] [all|gan|throughput]
# (at most 8 files come back from a device run: the GAN results are one JSON file)
set -u
OUT=${OUT:-.bench/device}
GAN_SECONDS=${1:-240}
mkdir -p "$OUT"
if ! python3 -c "import simplejpeg" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
nproc | tee -a "$OUT/gpu.txt"

W=${WORK:-.bench/quality}  # benchmarks/quality.py --work
MODE=${2:-all}

run_gan() {  # name, extra args: train until --steps or the time limit, then score last.pt
  local name=$1; shift
  timeout "$GAN_SECONDS" python3 benchmarks/gan_quality.py --work "$W" --device cuda --threads 1 \
    --checkpoint-every 200 --out "$W/sweep/$name" --n 1024 "$@" > "$W/sweep/$name.json" 2> "$W/sweep/$name.err"
  if [ ! -s "$W/sweep/$name.json" ] && [ -f "$W/sweep/$name/last.pt" ]; then  # stopped by the limit
    python3 benchmarks/gan_quality.py --work "$W" --device cuda --eval-only --out "$W/sweep/$name" --n 1024 "$@" \
      > "$W/sweep/$name.json" 2>> "$W/sweep/$name.err"
  fi
  tail -2 "$W/sweep/$name.err" >&2
}

if [ "$MODE" = all ] || [ "$MODE" = gan ]; then  # first: the longest part, and one a time-out must not lose
  rm -rf "$W/sweep"; mkdir -p "$W/sweep"
  run_gan none1800 --d-norm none --steps 1800 &
  run_gan gn1800 --steps 1800 &
  run_gan warm --d-warmup-steps 600 --steps 2400 &
  run_gan warm_aug --d-warmup-steps 600 --steps 2400 --d-augment &
  run_gan warm_mask1 --d-warmup-steps 600 --steps 2400 --mask-weight 1.0 &
  run_gan warm_task10 --d-warmup-steps 600 --steps 2400 --g-task-weight 10 &
  run_gan warm_task1 --d-warmup-steps 600 --steps 2400 --g-task-weight 1 &
  run_gan warm_long --d-warmup-steps 600 --steps 6000 &
  wait
  python3 - "$W/sweep" > "$OUT/gan_sweep.json" <<'PY'
import json, pathlib, sys
out = {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    try:
        out[f.stem] = json.loads(f.read_text())
    except ValueError:
        out[f.stem] = {"error": (f.with_suffix(".err").read_text()[-500:] if f.with_suffix(".err").exists() else "")}
print(json.dumps(out, indent=1, default=str))
PY
  echo "gan done $(date +%T)"
fi

if [ "$MODE" = all ] || [ "$MODE" = throughput ]; then
  timeout 150 python3 benchmarks/train_step.py --trunks cnn,vgg --sizes 64,112 --batch 256 --steps 10 --repeat 5 \
    > "$OUT/train_step.json" 2> "$OUT/train_step.err"
  for w in 0 4 8; do
    timeout 100 python3 -m cli.affmodels_app train --data "$W/exports64/train" --out "/tmp/e2e$w" --epochs 1 \
      --batch-size 256 --workers "$w" --device cuda --json > "$OUT/e2e_workers$w.json" 2>> "$OUT/train_step.err"
  done
  echo "throughput done $(date +%T)"
fi
