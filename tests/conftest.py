"""Fixtures shared by every test: store backends and real test material.

Every test that takes ``db_url`` or ``store`` runs once per backend in
``$AFFDATA_TEST_BACKENDS`` (default ``sqlite,postgresql``). PostgreSQL tests each get a fresh
database cloned from a template migrated once per session (``CREATE DATABASE ... TEMPLATE``),
and SQLite tests a copy of a migrated file, so a test costs milliseconds, not a migration.
A backend that is asked for but unreachable fails the run: it never skips quietly.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata.db import Store

BACKENDS = [b.strip() for b in os.environ.get("AFFDATA_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()]
PG_ADMIN_URL = os.environ.get("AFFDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(name: str) -> str:
    return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


class Backends:
    """Makes fresh databases: empty ones, and ones at the newest schema (from a template)."""

    def __init__(self, tmp_root: Path) -> None:
        self.tmp_root = tmp_root
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._pg_dbs: list[str] = []

    def empty(self, backend: str, tmp_path: Path) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'empty-{uuid.uuid4().hex[:8]}.db'}"
        name = f"affdata_test_{uuid.uuid4().hex[:12]}"
        with _pg_admin().connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self._pg_dbs.append(name)
        return _pg_url(name)

    def migrated(self, backend: str, tmp_path: Path) -> str:
        if backend == "sqlite":
            if self._sqlite_template is None:
                self._sqlite_template = self.tmp_root / "template.db"
                Store(str(self._sqlite_template)).close()
            target = tmp_path / f"store-{uuid.uuid4().hex[:8]}.db"
            shutil.copy(self._sqlite_template, target)  # WAL is checkpointed on close
            return f"sqlite:///{target}"
        if self._pg_template is None:
            url = self.empty("postgresql", tmp_path)
            Store(url).close()
            self._pg_template = sa.engine.make_url(url).database
        name = f"affdata_test_{uuid.uuid4().hex[:12]}"
        with _pg_admin().connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self._pg_template}"')
        self._pg_dbs.append(name)
        return _pg_url(name)

    def drop_all(self) -> None:
        if not self._pg_dbs:
            return
        with _pg_admin().connect() as conn:
            for name in reversed(self._pg_dbs):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    if "postgresql" in BACKENDS:
        try:
            with _pg_admin().connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sa.exc.OperationalError as exc:
            pytest.exit(
                f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc.orig}); start it or set "
                "AFFDATA_TEST_BACKENDS=sqlite",
                returncode=3,
            )
    made = Backends(tmp_path_factory.mktemp("backends"))
    yield made
    made.drop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backends: Backends, backend: str, tmp_path: Path) -> str:
    """URL of a fresh store at the newest schema, once per backend."""
    return backends.migrated(backend, tmp_path)


@pytest.fixture
def empty_db_url(backends: Backends, backend: str, tmp_path: Path) -> str:
    """URL of a fresh, empty database (no schema), once per backend."""
    return backends.empty(backend, tmp_path)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test material not found at {SHARED_DATA}")
    return SHARED_DATA
