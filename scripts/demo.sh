#!/usr/bin/env bash
# The main job end to end on the embedded default (SQLite, ./demo/affdata.db) with a generated
# demo dataset: data -> store -> a subject-disjoint split -> Parquet export -> multi-task
# training -> evaluation on people it never saw -> a GAN smoke run and a generated face.
# Run through `make demo` (it puts .venv/bin on PATH). README.md says what each step shows.
set -euo pipefail
rm -rf demo && mkdir -p demo && cd demo
start=$SECONDS
step() { printf '\n== [%3ds] %s ==\n' $((SECONDS - start)) "$*"; }

step "generate 12 people, 10 s each, alone or in pairs (expressions labelled on 80 % of frames, AUs on 40 %: a small demo that still holds every class in both parts)"
affdata demo generate data --subjects 12 --seconds 10 --seed 0 --au-coverage 0.4 --expr-coverage 0.8

step "ingest the videos, the face boxes and the labels into the store"
affdata ingest videos data/videos --subject-pattern '^(subj\d+)_'
affdata ingest boxes data/boxes.csv --subjects data/subjects.csv
affdata ingest labels data/annotations --source demo

step "split by subject (no person in both parts), every expression class in each part"
affdata split create demo --by subject --ratios 0.75,0.25 --parts train,val --stratify expression --seed 0

step "export each part as Parquet shards of 64x64 face crops"
affdata export --split demo --part train --out exports/train --size 64
affdata export --split demo --part val --out exports/val --size 64

step "train the multi-task network: VA, AUs and expressions at once (CPU)"
affmodels train --data exports/train --val exports/val --out runs/mtl --epochs 8 --batch-size 64 \
    --balance 1,1,1 --workers 0

step "evaluate the best epoch on the held-out people"
affmodels eval --checkpoint runs/mtl/best.pt --data exports/val

step "GAN smoke run: 10 steps show the commands work, not a trained GAN (its faces are near copies of the input; faces that show their targets take about 1,200 steps, 21 min: benchmarks/gan_quality.py)"
affmodels train --model gan --data exports/train --out runs/gan --epochs 1 --batch-size 8 --max-steps 10 \
    --workers 0
# one face crop of a held-out person, saved as a JPEG, to generate from
python -c "import pyarrow.parquet as pq; open('face.jpg', 'wb').write(pq.read_table('exports/val/data/shard-00000.parquet', columns=['image'])['image'][0].as_py())"
affmodels generate --checkpoint runs/gan/last.pt --image face.jpg --out generated \
    --valence 0.7 --arousal 0.3 --au AU12=1 --au AU6=1 --expression happiness

printf '\nDone in %d s. Look at: demo/runs/mtl/curves.png (losses and validation scores per epoch),\n' $((SECONDS - start))
printf 'demo/runs/gan/grid-epoch001.png and demo/generated/face_grid.png (the smoke run: near copies of the input).\n'
