"""Opening the store: URL resolution, engine set-up per dialect, schema state.

The default store is ``affdata.db`` in the working directory (SQLite, zero set-up); ``--db URL``
or ``AFFDATA_DB`` name another file or a PostgreSQL database (``postgresql+psycopg://...``;
a plain ``postgresql://`` URL is taken to mean psycopg 3).

Every SQLite connection runs in WAL mode with foreign keys on and a 30 s busy timeout, and every
write transaction (:meth:`Store.transaction`, :func:`begin_write`) opens with ``BEGIN
IMMEDIATE``: a writer takes the write lock up front, so two processes ingesting into one file
queue for it instead of failing half-way with "database is locked" when a read transaction tries
to become a write one. Reads begin deferred and never hold the write lock.

Schema policy (decided here, documented in docs/schema.md): a new, empty database is created at
the newest migration on first use, and says so; a database at an older migration is refused with
a message naming ``affdata db upgrade`` (upgrades of a shared store should be deliberate and
backed up); a database migrated by a newer affdata is refused with a message saying to upgrade
affdata, since this code cannot know what the newer schema means.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from affdata import migrate
from affdata.errors import ConfigError, StoreError
from affdata.location import DEFAULT_FILE, ENV_VAR

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30


def resolve_url(url: str | None = None) -> str:
    """The database URL to use: the argument, else ``$AFFDATA_DB``, else ./affdata.db.

    A bare path means a SQLite file; relative paths are made absolute here so that a store
    opened from another directory later is the same store.
    """
    raw = url or os.environ.get(ENV_VAR) or DEFAULT_FILE
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser().resolve()}"
    if raw.startswith("postgresql://") or raw.startswith("postgres://"):
        raw = "postgresql+psycopg://" + raw.split("://", 1)[1]
    try:
        parsed = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {raw!r} ({exc})") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {parsed.get_backend_name()!r} in {raw!r}: "
            "use a SQLite file or postgresql+psycopg://user@host/db"
        )
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(parsed.database).expanduser().resolve()))
    return parsed.render_as_string(hide_password=False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would defer BEGIN; we issue it ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


WRITE_OPTION = "affdata_write"


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """A connection in one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def make_engine(url: str) -> Engine:
    """An engine with the per-dialect settings described in the module docstring."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            if not folder.is_dir():
                raise ConfigError(f"cannot create a store in {folder}: no such directory")
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """An open store: the engine, a session factory, and the schema check done on opening.

    ``Store()`` opens the default store, creating it at the newest schema if it is new.
    """

    def __init__(self, url: str | None = None, *, check_schema: bool = True) -> None:
        self.url = resolve_url(url)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.created = False
        if check_schema:
            try:
                self.created = migrate.ensure_current(self.engine)
            except OperationalError as exc:
                self.engine.dispose()
                raise StoreError(f"cannot open the store at {self.display_url}: {_first_line(exc)}") from None
            except BaseException:
                self.engine.dispose()
                raise
            if self.created:
                log.info("created a new store at %s", self.display_url)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def session(self) -> Session:
        return self._sessions()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
        with begin_write(self.engine) as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.display_url!r})"


def _first_line(exc: BaseException) -> str:
    msg = str(getattr(exc, "orig", None) or exc)
    return msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
