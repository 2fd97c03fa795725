"""Start-up: a command imports only what it uses. Alembic (about half a second), SQLAlchemy, pandas
and torch stay out of ``--help``, and out of ``affdata sql`` on an existing SQLite store, whose
read-only guarantees hold on that path too (checked in a fresh interpreter each time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.errors import ReadOnlyError, SchemaOutdatedError
from affdata.sql import run_query, run_readonly

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "pandas", "alembic", "sqlalchemy", "numpy", "pyarrow")

_PROBE = """
import json, sys
sys.argv = {argv!r}
from cli.{tool}_app import app
try:
    app()
except SystemExit:
    pass
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})), file=sys.stderr)
"""


def _modules_after(tool: str, *args: str, cwd: Path) -> tuple[set[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AFFDATA_DB", None)
    done = subprocess.run([sys.executable, "-c", _PROBE.format(argv=[tool, *args], tool=tool)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return set(json.loads(done.stderr.strip().splitlines()[-1])), done.stdout


@pytest.mark.parametrize("tool", ["affdata", "affmodels"])
def test_help_imports_no_library_it_does_not_use(tool: str, tmp_path: Path) -> None:
    modules, out = _modules_after(tool, "--help", cwd=tmp_path)
    assert "Usage" in out
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_sql_on_an_existing_sqlite_store_needs_no_sqlalchemy(tmp_path: Path) -> None:
    Store(str(tmp_path / "affdata.db")).close()
    modules, out = _modules_after("affdata", "sql", "SELECT name FROM expression WHERE id = 4", "-f", "csv",
                                  cwd=tmp_path)
    assert out.splitlines() == ["name", "Happiness"]
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_run_query_answers_like_the_store_path(db_url: str) -> None:
    store = Store(db_url)
    sql = "SELECT id, name FROM action_unit ORDER BY id"
    assert run_query(db_url, sql) == run_readonly(store, sql)
    cut = run_query(db_url, sql, limit=3)
    assert len(cut.rows) == 3 and cut.left_out == len(run_readonly(store, sql).rows) - 3
    with pytest.raises(ReadOnlyError):
        run_query(db_url, "DELETE FROM action_unit")
    with pytest.raises(ReadOnlyError):
        run_query(db_url, "SELECT 1; DELETE FROM action_unit")
    assert store.scalar("SELECT COUNT(*) FROM action_unit") == len(run_readonly(store, sql).rows) > 0
    store.close()


def test_run_query_on_an_outdated_sqlite_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = Store(str(path))
    with store.transaction() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    store.close()
    with pytest.raises(SchemaOutdatedError, match="affdata db upgrade"):
        run_query(str(path), "SELECT 1")
    with pytest.raises(SchemaOutdatedError):  # a sqlite:/// URL takes the same path
        run_query(f"sqlite:///{path}", "SELECT 1")
