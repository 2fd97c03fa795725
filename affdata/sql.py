"""Read-only SQL on the store, read-only by construction rather than by inspection of the text.

* SQLite: a separate connection opened with ``mode=ro``, ``PRAGMA query_only``, and an
  authorizer that allows reads and functions only; the driver runs one statement per call.
* PostgreSQL: a separate psycopg connection in a ``READ ONLY`` transaction that is always
  rolled back; the statement is sent as a server-side prepared statement, which the server
  accepts only as one statement (so no ``COMMIT; DELETE ...`` can follow it).

Any attempt to write fails with :class:`ReadOnlyError` and changes nothing. When ``limit``
cuts the answer, :attr:`QueryResult.left_out` says how many rows were not returned.

:func:`run_query` opens the store itself: an existing SQLite file at the newest schema is read
through the stdlib driver alone, the same read-only connection as above, without importing
SQLAlchemy (a quarter of a second of start-up); anything else goes through :class:`Store`. On PostgreSQL a
read-only transaction still lets a query call server functions with effects outside the tables
(``pg_cancel_backend`` and the like) where the role may: teams that share a server should point
``affdata sql`` at a role with SELECT rights only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affdata import revisions
from affdata.errors import AffdataError, ReadOnlyError
from affdata.location import existing_sqlite_file

if TYPE_CHECKING:
    from affdata.db import Store

_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}

_PG_READONLY_CODES = {"25006"}  # read_only_sql_transaction


class SQLError(AffdataError):
    """The statement is not valid SQL for this store (syntax, unknown table...)."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    #: rows of the answer that ``limit`` left out
    left_out: int = 0

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def run_readonly(store: Store, sql: str, params: Sequence[Any] | None = None,
                 limit: int | None = None) -> QueryResult:
    """Run one query and return its columns and rows (at most ``limit`` rows)."""
    statement = _statement(sql)
    if store.is_sqlite:
        from sqlalchemy.engine import make_url

        return _sqlite(make_url(store.url).database, statement, params or (), limit)
    return _postgresql(store, statement, params or (), limit)


def run_query(db: str | None, sql: str, params: Sequence[Any] | None = None,
              limit: int | None = None) -> QueryResult:
    """:func:`run_readonly` on the store ``db`` names (as :class:`Store` resolves it)."""
    statement = _statement(sql)
    path = existing_sqlite_file(db)
    if path is not None and [_sqlite_revision(path)] == revisions.heads():
        return _sqlite(str(path), statement, params or (), limit)
    from affdata.db import Store

    with Store(db) as store:
        return run_readonly(store, statement, params, limit)


def _statement(sql: str) -> str:
    statement = sql.strip().rstrip(";").strip()
    if not statement:
        raise SQLError("empty statement")
    return statement


def _sqlite_revision(path: Path) -> str | None:
    """The schema revision of a SQLite store, read-only; None if it has none or is unreadable."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _sqlite_authorizer(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _SQLITE_ALLOWED else sqlite3.SQLITE_DENY


def _sqlite(path: str, statement: str, params: Sequence[Any], limit: int | None) -> QueryResult:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.set_authorizer(_sqlite_authorizer)
        try:
            cur = conn.execute(statement, tuple(params))
            rows = cur.fetchmany(limit) if limit is not None else cur.fetchall()
            left_out = sum(1 for _ in cur) if limit is not None else 0
        except sqlite3.DatabaseError as exc:
            msg = str(exc)
            if "not authorized" in msg or "readonly" in msg or "read-only" in msg:
                raise ReadOnlyError(
                    f"affdata sql is read-only: only queries (SELECT, WITH) may run ({msg})"
                ) from None
            if "one statement at a time" in msg:
                raise ReadOnlyError("affdata sql runs one statement at a time") from None
            raise SQLError(msg) from None
        columns = [d[0] for d in cur.description or ()]
        return QueryResult(columns, [tuple(r) for r in rows], left_out)
    finally:
        conn.rollback()
        conn.close()


def _postgresql(store: Store, statement: str, params: Sequence[Any], limit: int | None) -> QueryResult:
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(store.url).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.read_only = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, tuple(params) if params else None, prepare=True)
                rows = cur.fetchmany(limit) if limit is not None else cur.fetchall()
                left_out = max(cur.rowcount - len(rows), 0) if limit is not None else 0
                columns = [d.name for d in cur.description or ()]
        except psycopg.Error as exc:
            msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if getattr(exc, "sqlstate", None) in _PG_READONLY_CODES:
                raise ReadOnlyError(f"affdata sql is read-only: {msg}") from None
            if "multiple commands" in msg:
                raise ReadOnlyError("affdata sql runs one statement at a time") from None
            if "didn't produce records" in msg:
                raise SQLError("not a query: affdata sql runs SELECT statements") from None
            raise SQLError(msg) from None
        finally:
            conn.rollback()
    return QueryResult(columns, [tuple(r) for r in rows], left_out)
