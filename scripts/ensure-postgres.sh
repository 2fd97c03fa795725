#!/usr/bin/env bash
# Start the local PostgreSQL server if the tests want it and it is down.
# Skipped when AFFDATA_TEST_BACKENDS does not name postgresql.
set -euo pipefail
case "${AFFDATA_TEST_BACKENDS:-sqlite,postgresql}" in *postgresql*) ;; *) exit 0 ;; esac
host=127.0.0.1 port=5432
if command -v pg_isready >/dev/null && pg_isready -q -h "$host" -p "$port"; then exit 0; fi
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "starting PostgreSQL $version" >&2
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do
        pg_isready -q -h "$host" -p "$port" && exit 0
        sleep 1
    done
fi
echo "PostgreSQL is not reachable at $host:$port; start it, or run the SQLite tests alone with AFFDATA_TEST_BACKENDS=sqlite" >&2
exit 1
