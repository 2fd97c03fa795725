#!/usr/bin/env bash
# The GPU check, for a session that is lent a GPU machine: one short prepared run (issue 19).
#
#  1. data: synthetic exports at 64 and 112 px under $WORK (made by benchmarks/loader.py
#     --build-only when missing, which needs affdata's dependencies there; or make them here with
#     `python benchmarks/loader.py --work .bench/loader --subjects 10 --seconds 50 --build-only 64,112`
#     and carry .bench/loader/export-train and .bench/loader/export-train-64; mind the carry limit);
#  2. the step alone: benchmarks/train_step.py, cnn, batch 256, at 64 and 112 px, fp32 and bf16
#     (fused AdamW, as `affmodels train` uses on CUDA; for cnn it keeps fp32 by default);
#  3. end to end: `affmodels train` (cnn, batch 256, defaults: fp32, fused AdamW, augmentation
#     on the GPU, pinned memory) for EPOCHS epochs with 4, 8 and 16 loader workers at 64 and
#     112 px, plus 8 workers with the augmentation left in the loader (--augment-on loader);
#     samples/s of the epochs after the first (worker start-up excluded); COMPILE=1 adds a run
#     with --compile;
#  4. $OUT/device_check.json: per size and worker count, end to end against the step alone
#     (fp32, as trained), and the goal (end to end >= 0.9 of the step alone).
#
# Usage: bash benchmarks/device_check.sh [loader|gan [GAN_SECONDS]]   (default: loader)
# gan: the GAN settings sweep of an earlier session (gan_quality.py prepares its data and judges in WORK).
set -u
OUT=${OUT:-.bench/device}
MODE=${1:-loader}
mkdir -p "$OUT"
if ! python3 -c "import simplejpeg" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
nproc | tee -a "$OUT/gpu.txt"

if [ "$MODE" = loader ]; then
  WORK=${WORK:-.bench/loader}
  EPOCHS=${EPOCHS:-4}
  timeout 300 python3 benchmarks/loader.py --work "$WORK" --subjects 10 --seconds 50 --export-workers 8 \
    --build-only 64,112 > "$OUT/build.txt" 2> "$OUT/build.err" || { tail -5 "$OUT/build.err"; exit 1; }
  timeout 120 python3 benchmarks/train_step.py --trunks cnn --sizes 64,112 --batch 256 --steps 20 --repeat 5 \
    > "$OUT/train_step.json" 2> "$OUT/train_step.err"
  e2e() {  # size workers name [extra args]
    local size=$1 w=$2 name=$3; shift 3
    local data="$WORK/export-train"; [ "$size" = 112 ] || data="$WORK/export-train-$size"
    rm -rf "/tmp/e2e-$name"
    timeout 150 python3 -m cli.affmodels_app train --data "$data" --out "/tmp/e2e-$name" --epochs "$EPOCHS" \
      --batch-size 256 --workers "$w" --device cuda --no-verify --json "$@" > "$OUT/e2e-$name.jsonl" 2>> "$OUT/e2e.err"
  }
  for size in 64 112; do
    for w in 4 8 16; do e2e "$size" "$w" "${size}px-${w}w"; done
  done
  e2e 112 8 "112px-8w-augment-in-loader" --augment-on loader
  if [ "${COMPILE:-0}" = 1 ]; then e2e 112 8 "112px-8w-compile" --compile; fi  # about a minute more
  python3 - "$OUT" > "$OUT/device_check.json" <<'PY'
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
step = {}
try:
    for r in json.loads((out / "train_step.json").read_text())["runs"]:
        step[(r["size"], r["bf16"])] = r["train_samples_per_s"]
except (OSError, ValueError, KeyError) as e:
    step_error = str(e)
result = {"step_alone_samples_per_s": {f"{s}px_{'bf16' if b else 'fp32'}": v for (s, b), v in sorted(step.items())},
          "end_to_end": {}}
for f in sorted(out.glob("e2e-*.jsonl")):
    records = [json.loads(line) for line in f.read_text().splitlines() if line.startswith("{")]
    rates = [r["samples_per_s"] for r in records[1:]] or [r["samples_per_s"] for r in records]
    name = f.stem[4:]
    size = int(name.split("px")[0])
    entry = {"epochs": len(records), "samples_per_s_per_epoch": [r["samples_per_s"] for r in records]}
    if rates:
        entry["samples_per_s"] = statistics.median(rates)
        if (size, False) in step:
            entry["vs_step_alone_fp32"] = round(entry["samples_per_s"] / step[(size, False)], 3)
            entry["goal_ge_0.9"] = entry["vs_step_alone_fp32"] >= 0.9
    result["end_to_end"][name] = entry
print(json.dumps(result, indent=1))
PY
  cat "$OUT/device_check.json"
  echo "loader check done $(date +%T)"
fi

if [ "$MODE" = gan ]; then
  GAN_SECONDS=${2:-240}
  W=${WORK:-.bench/quality}  # benchmarks/quality.py --work
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
