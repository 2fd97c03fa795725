#!/usr/bin/env bash
# The annotation studio on a generated store: two annotators and an admin, a VA campaign (two
# annotators per video) and an expression campaign, then the server on 127.0.0.1:${PORT:-8000}.
# The users' passwords are generated and written once to annotate-demo/passwords.txt (mode 600),
# never passed on a command line. Run through `make annotate-demo`; Ctrl-C stops the server.
set -euo pipefail
rm -rf annotate-demo && mkdir -p annotate-demo && cd annotate-demo
export AFFDATA_DB="$PWD/studio.db"
step() { printf '\n== %s ==\n' "$*"; }

step "generate 3 short synthetic videos (one with two people) and ingest them with their face boxes"
affdata demo generate data --subjects 3 --seconds 8 --seed 1 >/dev/null
affdata ingest videos data/videos --subject-pattern '^(subj\d+)_' >/dev/null
affdata ingest boxes data/boxes.csv --subjects data/subjects.csv >/dev/null
affdata stats

step "users (passwords in annotate-demo/passwords.txt)"
umask 077
: > passwords.txt
for spec in admin:admin alice:annotator bob:annotator; do
  affdata annotate user add "${spec%%:*}" --role "${spec##*:}" | sed -n 's/^user \([^ ]*\) .*password (shown once): /\1 /p' >> passwords.txt
done
affdata annotate user list

step "campaigns"
videos=$(affdata sql "SELECT name FROM video ORDER BY name" -f csv | tail -n +2)
args=(); for v in $videos; do args+=(-v "$v"); done
affdata annotate campaign create va-demo --task va "${args[@]}" --per-item 2
affdata annotate campaign assign va-demo -u alice -u bob
affdata annotate campaign create expr-demo --task expr "${args[@]}" --classes abaw2020
affdata annotate campaign assign expr-demo -u alice -u bob
affdata annotate campaign list

step "the studio: log in as alice, bob or admin with the passwords in $PWD/passwords.txt"
exec affdata annotate serve --port "${PORT:-8000}"
