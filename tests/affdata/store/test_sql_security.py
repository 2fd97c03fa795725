"""Hostile SQL through ``affdata sql``: each case is one line, exit 1, no file written, no row
changed, nothing done outside the store; and every query has a time limit the server enforces.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata import reader_role
from affdata.db import Store
from affdata.errors import QueryTimeoutError, ReadOnlyError, StoreError
from affdata.schema import VALabel
from affdata.sql import run_readonly
from tests.conftest import PG_ADMIN_URL, Backends
from tests.affdata.store.cli_helpers import affdata, row_counts
from tests.affdata.store.test_store import make_source, make_video


@pytest.fixture
def filled(store: Store) -> Store:
    _, track = make_video(store, frames=3)
    src = make_source(store, "ann", "annotator")
    with store.session() as s, s.begin():
        s.add(VALabel(track_id=track, frame_idx=0, source_id=src, valence=0.1, arousal=0.2))
    return store


@pytest.fixture
def pg(filled: Store) -> Store:
    if filled.is_sqlite:
        pytest.skip("PostgreSQL server functions")
    return filled


@pytest.fixture
def lite(filled: Store) -> Store:
    if not filled.is_sqlite:
        pytest.skip("SQLite statements")
    return filled


def _refused(capsys, monkeypatch, store: Store, query: str, *, timeout: str = "30") -> str:
    before = row_counts(store.url)
    outcome = affdata(capsys, monkeypatch, "sql", "--db", store.url, "--timeout", timeout, query)
    line = outcome.one_line_error()
    assert row_counts(store.url) == before
    return line


PG_ATTACKS = {
    "copy to program": "COPY (SELECT 1) TO PROGRAM 'touch {target}'",
    "copy to file": "COPY video TO '{target}'",
    "lo_export": "SELECT lo_export(lo_from_bytea(0, 'x'), '{target}')",
    "pg_read_file": "SELECT pg_read_file('/etc/hostname')",
    "pg_reload_conf": "SELECT pg_reload_conf()",
    "terminate itself": "SELECT pg_terminate_backend(pg_backend_pid())",
    "set_config role": "SELECT set_config('role', 'postgres', true), pg_read_file('/etc/hostname')",
    "set_config session": "SELECT set_config('session_authorization', 'postgres', true)",
    "set_config read-write": "SELECT set_config('transaction_read_only', 'off', true)",
    "data-modifying cte": "WITH d AS (DELETE FROM va_label RETURNING track_id) SELECT * FROM d",
    "two statements": "SELECT 1; DELETE FROM va_label",
    "insert returning": "INSERT INTO subject (name, created_at) VALUES ('x', now()) RETURNING id",
    "explain analyze": "EXPLAIN ANALYZE DELETE FROM frame",
    "plain delete": "DELETE FROM frame",
    "truncate": "TRUNCATE frame CASCADE",
    "for update": "SELECT * FROM video FOR UPDATE",
}


@pytest.mark.parametrize("name", PG_ATTACKS)
def test_postgresql_attacks_are_refused(pg: Store, name: str, tmp_path: Path, capsys, monkeypatch) -> None:
    target = tmp_path / f"written-{uuid.uuid4().hex[:6]}"
    _refused(capsys, monkeypatch, pg, PG_ATTACKS[name].format(target=target))
    assert not target.exists()


def test_a_side_effecting_function_made_beforehand_deletes_nothing(pg: Store, capsys, monkeypatch) -> None:
    with pg.transaction() as conn:
        conn.execute(sa.text(
            "CREATE FUNCTION wipe_labels() RETURNS integer LANGUAGE plpgsql AS "
            "$$ BEGIN DELETE FROM va_label; RETURN 1; END $$"))
    line = _refused(capsys, monkeypatch, pg, "SELECT wipe_labels()")
    assert "read-only" in line
    assert pg.scalar("SELECT COUNT(*) FROM va_label") == 1


def test_another_session_cannot_be_killed(pg: Store, capsys, monkeypatch) -> None:
    other = sa.create_engine(pg.url)
    with other.connect() as victim:
        pid = victim.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        for fn in ("pg_terminate_backend", "pg_cancel_backend"):
            line = _refused(capsys, monkeypatch, pg, f"SELECT {fn}({pid})")
            assert "superuser" in line or "permission" in line
        assert victim.execute(sa.text("SELECT 1")).scalar() == 1  # still alive
    other.dispose()


def test_session_state_does_not_outlive_the_query(pg: Store) -> None:
    """A session lock taken by a query is gone with its connection."""
    run_readonly(pg, "SELECT pg_advisory_lock(4242)")
    with pg.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_try_advisory_lock(4242)")).scalar() is True


def test_postgresql_queries_run_as_the_reader(pg: Store) -> None:
    rows = run_readonly(pg, "SELECT current_user, session_user").rows
    assert rows[0][0] == reader_role.DEFAULT_ROLE
    # information_schema columns are domains: the server describes them as their base type
    assert ("video",) in run_readonly(
        pg, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").rows
    assert run_readonly(pg, "SELECT 1 AS a, 2 AS a").columns == ["a", "a"]
    assert run_readonly(pg, "VALUES (1, 'x')").rows == [(1, "x")]
    assert run_readonly(pg, "SELECT pg_sleep(0)").rows == [("",)]


SQLITE_ATTACKS = {
    "attach": "ATTACH '{target}' AS x",
    "vacuum into": "VACUUM INTO '{target}'",
    "pragma": "PRAGMA journal_mode = DELETE",
    "load_extension": "SELECT load_extension('{target}')",
    "two statements": "SELECT 1; DELETE FROM va_label",
    "delete": "DELETE FROM va_label",
    "begin": "BEGIN IMMEDIATE",
    "data-modifying cte": "WITH d AS (SELECT 1) DELETE FROM va_label",
}


@pytest.mark.parametrize("name", SQLITE_ATTACKS)
def test_sqlite_attacks_are_refused(lite: Store, name: str, tmp_path: Path, capsys, monkeypatch) -> None:
    target = tmp_path / f"written-{uuid.uuid4().hex[:6]}.db"
    _refused(capsys, monkeypatch, lite, SQLITE_ATTACKS[name].format(target=target))
    assert not target.exists()
    with lite.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
    "postgresql": "SELECT pg_sleep(60)",
}


def test_a_slow_query_is_cancelled(filled: Store, capsys, monkeypatch) -> None:
    query = SLOW[filled.dialect]
    start = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="longer than 1 s"):
        run_readonly(filled, query, timeout=1)
    assert time.monotonic() - start < 15
    line = _refused(capsys, monkeypatch, filled, query, timeout="0.5")
    assert "cancelled" in line and "--timeout" in line
    if not filled.is_sqlite:
        with filled.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE '%affdata_sql_as_reader%' AND pid <> pg_backend_pid()")).scalar() == 0


def test_the_server_cancels_a_query_whose_client_died(pg: Store) -> None:
    """The timeout lives on the server: killing the client does not leave the query running."""
    client = subprocess.Popen(
        [sys.executable, "-m", "cli.affdata_app", "sql", "--db", pg.url, "--timeout", "3", "SELECT pg_sleep(60)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def running() -> int:  # the user's query is a parameter of the reader function's call
        with pg.connect() as conn:
            return conn.execute(sa.text(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND datname = current_database() "
                "AND query LIKE '%affdata_sql_as_reader%' AND pid <> pg_backend_pid()")).scalar()

    deadline = time.monotonic() + 60
    while running() == 0:
        assert client.poll() is None and time.monotonic() < deadline, "the query never started"
        time.sleep(0.1)
    client.kill()
    client.wait()
    assert running() == 1  # the server does not notice the client is gone...
    time.sleep(3.5)
    assert running() == 0  # ...but its statement timeout cancels the query


def test_timeout_must_be_positive(filled: Store) -> None:
    with pytest.raises(Exception, match="positive"):
        run_readonly(filled, "SELECT 1", timeout=0)


# --- the reader role when the connecting role is not a superuser -----------------------------


def _owner_db(backends: Backends, backend: str, tmp_path: Path, attributes: str):
    """An empty database owned by a fresh login role (not a superuser); its URL as that role."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL roles")
    owner = f"affdata_test_owner_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{owner}" LOGIN {attributes}')
    url = backends.empty("postgresql", tmp_path)
    name = sa.engine.make_url(url).database
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" OWNER TO "{owner}"')
    yield sa.engine.make_url(url).set(username=owner).render_as_string(hide_password=False), url, owner
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{owner}"')
    admin.dispose()


@pytest.fixture
def owner_db(backends: Backends, backend: str, tmp_path: Path):
    yield from _owner_db(backends, backend, tmp_path, "")


@pytest.fixture
def createrole_owner_db(backends: Backends, backend: str, tmp_path: Path):
    yield from _owner_db(backends, backend, tmp_path, "CREATEROLE")


def test_an_owner_with_createrole_gets_the_reader_on_creation(createrole_owner_db) -> None:
    as_owner, _, owner = createrole_owner_db
    with Store(as_owner) as store:
        assert store.created
        assert run_readonly(store, "SELECT current_user, session_user").rows == [
            (reader_role.DEFAULT_ROLE, owner)]
        with pytest.raises(ReadOnlyError):
            run_readonly(store, "SELECT set_config('role', session_user, true)")
        with store.connect() as conn:  # the reader was lent CREATE to take the function over, not kept
            assert conn.execute(sa.text("SELECT has_schema_privilege(:r, 'public', 'CREATE')"),
                                {"r": reader_role.DEFAULT_ROLE}).scalar() is False


def test_a_role_that_may_not_create_roles_gets_a_clear_way_forward(owner_db, capsys, monkeypatch) -> None:
    as_owner, as_admin, owner = owner_db
    with Store(as_owner) as store:  # created, with a warning that sql needs grant-reader
        assert store.created
        with pytest.raises(StoreError, match="grant-reader"):
            run_readonly(store, "SELECT 1")
    line = affdata(capsys, monkeypatch, "db", "grant-reader", "--db", as_owner).one_line_error()
    assert "may not create roles" in line or "grant-reader" in line
    # a superuser sets the reader up once; then the owner needs membership, and is told so
    assert affdata(capsys, monkeypatch, "db", "grant-reader", "--db", as_admin).code == 0
    with Store(as_owner) as store:
        with pytest.raises(StoreError, match=f"GRANT {reader_role.DEFAULT_ROLE} TO {owner}"):
            run_readonly(store, "SELECT 1")
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'GRANT {reader_role.DEFAULT_ROLE} TO "{owner}"')
    admin.dispose()
    with Store(as_owner) as store:
        assert run_readonly(store, "SELECT current_user, COUNT(*) FROM video GROUP BY 1").rows == []
        assert run_readonly(store, "SELECT current_user").rows == [(reader_role.DEFAULT_ROLE,)]
        with pytest.raises(ReadOnlyError):
            run_readonly(store, f"SELECT set_config('role', '{owner}', true)")


def test_grant_reader_refuses_a_powerful_role(pg: Store, capsys, monkeypatch) -> None:
    line = affdata(capsys, monkeypatch, "db", "grant-reader", "postgres", "--db", pg.url).one_line_error()
    assert "may only read" in line
    assert run_readonly(pg, "SELECT current_user").rows == [(reader_role.DEFAULT_ROLE,)]


def test_grant_reader_is_for_postgresql(lite: Store, capsys, monkeypatch) -> None:
    line = affdata(capsys, monkeypatch, "db", "grant-reader", "--db", lite.url).one_line_error()
    assert "PostgreSQL" in line


def test_a_reader_that_may_do_more_is_refused(pg: Store, capsys, monkeypatch) -> None:
    powerful = f"affdata_test_files_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{powerful}" NOLOGIN IN ROLE pg_read_server_files')
    try:
        line = affdata(capsys, monkeypatch, "db", "grant-reader", powerful, "--db", pg.url).one_line_error()
        assert "member of pg_read_server_files" in line
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE "{powerful}"')
        admin.dispose()
    # a reader that someone later lets write is refused before any query runs
    with pg.transaction() as conn:
        conn.execute(sa.text(f"GRANT INSERT ON video TO {reader_role.DEFAULT_ROLE}"))
    with pytest.raises(StoreError, match="may write table video"):
        run_readonly(pg, "SELECT 1")


def test_grant_reader_default_role_is_the_librarys() -> None:
    """The command's default (kept literal so the CLI imports no SQLAlchemy) is the library's."""
    import typer

    from affdata import reader_role
    from cli.affdata_app import app

    cmd = typer.main.get_command(app).commands["db"].commands["grant-reader"]
    assert [p.default for p in cmd.params if p.name == "role"] == [reader_role.DEFAULT_ROLE]
