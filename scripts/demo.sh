#!/usr/bin/env bash
# The main job end to end on the embedded default (SQLite, ./demo/affdata.db) with a generated
# demo dataset. Run through `make demo`, which puts the project's virtual environment on PATH.
set -euo pipefail
rm -rf demo && mkdir -p demo && cd demo
step() { printf '\n== %s ==\n' "$*"; }

step "generate a synthetic Aff-Wild-like dataset"
affdata demo generate data --subjects 6 --seconds 24 --seed 0

step "ingest the videos, the face boxes and the labels"
affdata ingest videos data/videos --subject-pattern '^(subj\d+)_'
affdata ingest boxes data/boxes.csv --subjects data/subjects.csv
affdata ingest labels data/annotations --source demo --as-split official

step "a subject-disjoint split of our own"
affdata split create s1 --by subject --ratios 0.67,0.33 --seed 1

step "what the store holds"
affdata stats
affdata sql "SELECT video, track, COUNT(*) AS frames, SUM(has_va) AS va, SUM(has_au) AS au, SUM(has_expr) AS expr FROM frame_labels GROUP BY video, track ORDER BY video, track" --limit 8
