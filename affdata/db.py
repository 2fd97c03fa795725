"""Opening the store: URL resolution, engine set-up per dialect, schema state.

The default store is ``affdata.db`` in the working directory (SQLite, zero set-up); ``--db URL``
or ``AFFDATA_DB`` name another file or a PostgreSQL database (``postgresql+psycopg://...``;
a plain ``postgresql://`` URL is taken to mean psycopg 3).

Every SQLite connection runs in WAL mode with foreign keys on and a 30 s busy timeout, and every
write transaction (:meth:`Store.transaction`, :func:`affdata.transactions.begin_write`) opens with ``BEGIN
IMMEDIATE``: a writer takes the write lock up front, so two processes ingesting into one file
queue for it instead of failing half-way with "database is locked" when a read transaction tries
to become a write one. Reads begin deferred and never hold the write lock.

Schema policy (decided here, documented in docs/schema.md): a new, empty database is created at
the newest migration on first use by a command that writes (``Store(create=True)``), and says so;
a command that only reads (``create=False``) never creates one and says there is none. A file or
database that is not an affdata store is refused before anything is written to it (a SQLite file
is inspected read-only first, so its journal mode stays as it was). A database at an older
migration is refused with
a message naming ``affdata db upgrade`` (upgrades of a shared store should be deliberate and
backed up); a database migrated by a newer affdata is refused with a message saying to upgrade
affdata, since this code cannot know what the newer schema means.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from affdata import migrate
from affdata.errors import ConfigError, NoStoreError, StoreError, StoreFullError
from affdata.location import DEFAULT_FILE, ENV_VAR
from affdata.transactions import begin_write, configure_sqlite

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


def make_engine(url: str) -> Engine:
    """An engine with the per-dialect settings described in the module docstring."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            if not folder.is_dir():
                raise ConfigError(f"cannot create a store in {folder}: no such directory")
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        configure_sqlite(engine, SQLITE_BUSY_TIMEOUT_S)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _translate_errors(engine)
    return engine


_FULL_SQLSTATES = {"53100"}  # disk_full
_DAMAGED_SQLSTATES = {"XX001", "XX002"}  # data_corrupted, index_corrupted


def store_error_for(exc: BaseException, where: str) -> StoreError | None:
    """The typed error for a driver error that is about the store itself, not the statement.

    A full disk (SQLite's "database or disk is full", also hit at ``max_page_count``;
    PostgreSQL's ``disk_full``) and a damaged file are the store's condition: the CLI prints
    them as one line. Anything else (constraint violations, syntax) is left to the caller.
    """
    orig = getattr(exc, "orig", None) or exc
    if not (isinstance(orig, sqlite3.Error) or type(orig).__module__.startswith("psycopg")):
        return None
    msg = _first_line(orig)
    state = getattr(orig, "sqlstate", None)
    if state in _FULL_SQLSTATES or "database or disk is full" in msg or "No space left" in msg:
        return StoreFullError(f"the store at {where} is full ({msg}): the write was rolled back; "
                              "free disk space and run the command again")
    if state in _DAMAGED_SQLSTATES or "database disk image is malformed" in msg \
            or "file is not a database" in msg:
        return StoreError(f"the store at {where} is damaged ({msg}): restore it from a backup")
    return None


def _translate_errors(engine: Engine) -> None:
    where = engine.url.render_as_string(hide_password=True)

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        typed = store_error_for(ctx.original_exception, where)
        if typed is not None:
            raise typed from None


def _sqlite_state(path: Path) -> tuple[set[str], str | None] | None:
    """The tables and schema revision of a SQLite file, read without changing it; None if absent.

    Run before any engine touches the file, so that a file which is then refused (someone
    else's database, a text file, a cut-off copy, a folder) is left exactly as it was: the
    engine's connections would switch it to WAL.
    """
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a SQLite store file: give the path of a file")
    if not path.exists():
        return None
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size == 0:
        return set(), None
    if not header.startswith(b"SQLite format 3\x00"):
        raise StoreError(f"{path} is not a SQLite database (it does not start with the SQLite header)")
    if len(header) < 100:
        raise StoreError(f"{path} is cut off: {size} bytes, shorter than a SQLite header")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when its "version valid for" matches the change counter.
    if header[24:28] == header[92:96] and size < pages * page_size:
        raise StoreError(f"{path} is cut off: its header says {pages * page_size} bytes, the file "
                         f"has {size}; restore it from a backup")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from None
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rev = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            rev = row[0] if row else None
        return tables, rev
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path} as a SQLite database: {exc}") from None
    finally:
        conn.close()


class Store:
    """An open store: the engine, a session factory, and the schema check done on opening.

    ``Store()`` opens the default store, creating it at the newest schema if it is new;
    ``Store(create=False)`` (what read commands use) raises :class:`NoStoreError` instead.
    ``check_schema=False`` skips the revision check (``affdata db current`` / ``upgrade``) but
    still refuses a database that is not an affdata store.
    """

    def __init__(self, url: str | None = None, *, check_schema: bool = True, create: bool = True) -> None:
        self.url = resolve_url(url)
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            path = Path(parsed.database)
            state = _sqlite_state(path)
            if state is None and not create:
                raise NoStoreError(f"there is no affdata store at {path} (no such file); a command "
                                   "that writes (affdata ingest ..., affdata db upgrade) creates one")
            if state is not None:
                migrate.refuse_unless_store(self.display_url, *state, allow_empty=create)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.created = False
        try:
            if check_schema:
                self.created = migrate.ensure_current(self.engine, create=create)
            else:
                migrate.check_is_store(self.engine, allow_empty=create)
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
