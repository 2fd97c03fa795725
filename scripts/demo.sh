#!/usr/bin/env bash
# The main job end to end on the embedded default (SQLite, ./demo/affdata.db) with a generated
# demo dataset: data -> store -> splits -> Parquet export -> multi-task training -> evaluation
# -> a short GAN run and its grid. Run through `make demo` (it puts .venv/bin on PATH).
set -euo pipefail
rm -rf demo && mkdir -p demo && cd demo
step() { printf '\n== %s ==\n' "$*"; }

step "generate a synthetic Aff-Wild-like dataset"
affdata demo generate data --subjects 8 --seconds 30 --seed 0

step "ingest the videos, the face boxes and the labels"
affdata ingest videos data/videos --subject-pattern '^(subj\d+)_'
affdata ingest boxes data/boxes.csv --subjects data/subjects.csv
affdata ingest labels data/annotations --source demo --as-split official

step "what the store holds"
affdata stats
affdata split show official

step "export the official split (subject-disjoint) as Parquet shards of 64x64 face crops"
affdata export --split official --part train --out exports/train --size 64
affdata export --split official --part val --out exports/val --size 64

step "train the multi-task network (CPU, a few minutes)"
affmodels train --data exports/train --val exports/val --out runs/mtl --epochs 6 --batch-size 128 \
    --balance 1,1,1 --workers 0

step "evaluate it on the held-out subjects"
affmodels eval --checkpoint runs/mtl/best.pt --data exports/val

step "a short GAN run: faces drawn for target affects (grid in runs/gan/)"
affmodels train --model gan --data exports/train --val exports/val --out runs/gan --epochs 1 \
    --batch-size 32 --max-steps 60 --workers 0
ls runs/gan/grid-*.png
# one face crop of a held-out subject, saved as a JPEG, to generate from
python -c "import pyarrow.parquet as pq; open('face.jpg', 'wb').write(pq.read_table('exports/val/data/shard-00000.parquet', columns=['image'])['image'][0].as_py())"
affmodels generate --checkpoint runs/gan/last.pt --image face.jpg --out generated \
    --valence 0.7 --arousal 0.3 --au AU12=1 --au AU6=1 --expression happiness
printf '\nDone: curves in demo/runs/mtl/curves.png, GAN grid in demo/runs/gan/.\n'
