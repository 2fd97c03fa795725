#!/usr/bin/env bash
# The main job end to end on the embedded default (SQLite) with a generated demo dataset.
# Run through `make demo`, which puts the project's virtual environment first on PATH.
set -euo pipefail
rm -rf demo && mkdir -p demo && cd demo
echo "== a new store (./demo/affdata.db) =="
affdata db current
echo "== what it holds =="
affdata stats
