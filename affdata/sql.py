"""Read-only SQL on the store, read-only by construction rather than by inspection of the text.

Nothing runs unless it is one statement that the database compiles as a query returning rows,
and what runs has only the rights to read the store. Every query has a time limit
(``timeout``, 30 s by default) that the database itself enforces.

* SQLite: a separate connection opened with ``mode=ro`` and ``PRAGMA query_only``; an
  authorizer, consulted while the statement is compiled (before any step), allows reading
  tables and calling functions only (no ATTACH, PRAGMA, writes, transactions); the driver
  compiles one statement per call. The time limit is a progress handler that interrupts the
  statement.
* PostgreSQL: a dedicated connection in a ``READ ONLY`` transaction that is always rolled back
  and then closed, with ``SET LOCAL statement_timeout`` (the server cancels the statement even
  if this process dies). The statement is parsed and described by the server first (protocol
  Parse + Describe, which run nothing): one statement only, and it must return rows. It then
  runs as the store's reader role (``SET LOCAL ROLE``), through the reader-owned
  ``SECURITY DEFINER`` function described in :mod:`affdata.reader_role`, which may only SELECT
  the store's tables and views and cannot switch back to the connecting role. (What that
  function runs is the query as a subquery, each column cast to the type the server described:
  so only a real query, one that can be a subquery, ever gets that far.)

Any attempt to write or to act outside the store fails with :class:`ReadOnlyError` and changes
nothing. When ``limit`` cuts the answer, :attr:`QueryResult.left_out` says how many rows were not
returned.

:func:`run_query` opens the store itself: an existing SQLite file at the newest schema is read
through the stdlib driver alone, on the same read-only connection as above, without importing
SQLAlchemy (a quarter of a second of start-up); anything else goes through :class:`Store`.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from affdata import revisions
from affdata.errors import AffdataError, ConfigError, QueryTimeoutError, ReadOnlyError, StoreError
from affdata.location import existing_sqlite_file

if TYPE_CHECKING:
    from affdata.db import Store

DEFAULT_TIMEOUT_S = 30.0

_SQLITE_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
}
_SQLITE_PROGRESS_STEPS = 10_000  # VM instructions between two looks at the clock

_PG_READONLY_CODES = {"25006", "42501"}  # read_only_sql_transaction, insufficient_privilege
_PG_CANCELED = "57014"


class SQLError(AffdataError):
    """The statement is not valid SQL for this store (syntax, unknown table...)."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    left_out: int = 0  #: rows the query returned beyond ``limit``

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def run_readonly(store: Store, sql: str, *, limit: int | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT_S) -> QueryResult:
    """Run one query and return its columns and rows (at most ``limit`` rows).

    ``timeout`` is in seconds (None: no limit); a query that runs longer is cancelled with
    :class:`QueryTimeoutError`.
    """
    statement = _statement(sql, timeout)
    if store.is_sqlite:
        from sqlalchemy.engine import make_url

        return _sqlite(make_url(store.url).database, statement, limit, timeout)
    return _postgresql(store, statement, limit, timeout)


def run_query(db: str | None, sql: str, *, limit: int | None = None,
              timeout: float | None = DEFAULT_TIMEOUT_S) -> QueryResult:
    """:func:`run_readonly` on the store ``db`` names (as :class:`Store` resolves it); never
    creates a store."""
    statement = _statement(sql, timeout)
    path = existing_sqlite_file(db)
    if path is not None and [_sqlite_revision(path)] == revisions.heads():
        return _sqlite(str(path), statement, limit, timeout)
    from affdata.db import Store

    with Store(db, create=False) as store:
        return run_readonly(store, statement, limit=limit, timeout=timeout)


def _statement(sql: str, timeout: float | None) -> str:
    statement = sql.strip().rstrip(";").strip()
    if not statement:
        raise SQLError("empty statement")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"the timeout must be a positive number of seconds, not {timeout}")
    return statement


def _sqlite_revision(path: Path) -> str | None:
    """The schema revision of a SQLite store, read-only; None if it has none or is unreadable."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def _timeout_error(timeout: float | None) -> QueryTimeoutError:
    return QueryTimeoutError(f"the query ran longer than {timeout:g} s and was cancelled; "
                             "give --timeout SECONDS to allow it longer")


def _sqlite_authorizer(action: int, *_args: Any) -> int:
    return sqlite3.SQLITE_OK if action in _SQLITE_ALLOWED else sqlite3.SQLITE_DENY


def _sqlite(path: str, statement: str, limit: int | None, timeout: float | None) -> QueryResult:
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True,
                           timeout=min(timeout or 30.0, 30.0))
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.set_authorizer(_sqlite_authorizer)
        if timeout is not None:
            deadline = time.monotonic() + timeout
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
        try:
            cur = conn.execute(statement)
            rows = cur.fetchmany(limit) if limit is not None else cur.fetchall()
            left_out = sum(1 for _ in cur) if limit is not None else 0
        except (sqlite3.DatabaseError, sqlite3.ProgrammingError) as exc:
            msg = str(exc)
            if msg == "interrupted" and timeout is not None:
                raise _timeout_error(timeout) from None
            if "not authorized" in msg or "authorization denied" in msg or "readonly" in msg \
                    or "read-only" in msg:
                raise ReadOnlyError(
                    f"affdata sql is read-only: only queries (SELECT, WITH) may run ({msg})"
                ) from None
            if "one statement at a time" in msg:
                raise ReadOnlyError("affdata sql runs one statement at a time") from None
            raise SQLError(msg) from None
        columns = [d[0] for d in cur.description or ()]
        if not columns:
            raise ReadOnlyError("affdata sql is read-only: only a query that returns rows may run")
        return QueryResult(columns, [tuple(r) for r in rows], left_out)
    finally:
        conn.rollback()
        conn.close()


def _pg_error(sqlstate: str | None, msg: str, timeout: float | None) -> AffdataError:
    if sqlstate == _PG_CANCELED and "timeout" in msg:
        return _timeout_error(timeout)
    if sqlstate in _PG_READONLY_CODES:
        return ReadOnlyError(f"affdata sql is read-only and may only read the store's tables: {msg}")
    if "multiple commands" in msg:
        return ReadOnlyError("affdata sql runs one statement at a time")
    if sqlstate is None or sqlstate.startswith("08") or sqlstate.startswith("57P"):
        return SQLError(f"the connection to the server was lost: {msg}")
    return SQLError(msg)


def _describe(raw: Any, statement: str, timeout: float | None) -> tuple[list[str], list[int], list[int]]:
    """Column names, type oids and modifiers of ``statement``, parsed by the server, not run."""
    from psycopg import pq

    enc = raw.info.encoding
    pg = raw.pgconn
    for res in (pg.prepare(b"", statement.encode(enc)), pg.describe_prepared(b"")):
        if res.status != pq.ExecStatus.COMMAND_OK:
            state = res.error_field(pq.DiagnosticField.SQLSTATE)
            primary = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or res.error_message
            raise _pg_error(state.decode() if state else None,
                            primary.decode(enc, "replace").strip(), timeout)
    if res.nfields == 0:
        raise ReadOnlyError("affdata sql is read-only: only a query that returns rows (SELECT, "
                            "WITH ... SELECT, VALUES) may run, and this statement returns none")
    if res.nparams:
        raise SQLError("the query has parameters ($1 ...): write the values into the query")
    n = range(res.nfields)
    return ([res.fname(i).decode(enc) for i in n], [res.ftype(i) for i in n], [res.fmod(i) for i in n])


def _set_role(conn: Any, role: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"SET LOCAL ROLE {conn.dialect.identifier_preparer.quote_identifier(role)}")
    except DBAPIError as exc:
        user = conn.execute(text("SELECT current_user")).scalar()
        msg = str(exc.orig).strip().splitlines()[0]
        raise StoreError(f"cannot run the query as the store's read-only role {role!r} ({msg}): an "
                         f"administrator can allow it with `GRANT {role} TO {user}`") from None


def _postgresql(store: Store, statement: str, limit: int | None, timeout: float | None) -> QueryResult:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from affdata import reader_role

    ms = 0 if timeout is None else max(1, int(timeout * 1000))
    with store.engine.connect() as conn:
        tx = conn.begin()
        try:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            role = reader_role.reader_of(conn)
            if role is None:
                raise StoreError(
                    f"the store at {store.display_url} has no read-only role for affdata sql: run "
                    f"`affdata db grant-reader {reader_role.DEFAULT_ROLE}` once as a role that may "
                    "create roles (a superuser or CREATEROLE)")
            reader_role.check_reader(conn, role)
            schema = conn.execute(text("SELECT quote_ident(current_schema())")).scalar()
            _set_role(conn, role)
            names, oids, mods = _describe(conn.connection.driver_connection, statement, timeout)
            # Pseudo-types (void, record) cannot be a column of the function's result: as text.
            types = conn.execute(text(
                "SELECT CASE WHEN y.typtype = 'p' THEN 'text' ELSE format_type(t, NULLIF(m, -1)) END "
                "FROM unnest(CAST(:t AS oid[]), CAST(:m AS int[])) WITH ORDINALITY AS x(t, m, i) "
                "JOIN pg_type y ON y.oid = x.t ORDER BY i"), {"t": oids, "m": mods}).scalars().all()
            # The function's rows must match its column list type for type; the server describes
            # a domain (information_schema's) as its base type, so the query is read through a
            # subquery that casts each column to the type described. That text is parsed and
            # described too before it runs, and runs with the reader's rights like any other.
            aliases = ", ".join(f"c{i}" for i in range(len(types)))
            wrapped = (f"SELECT {', '.join(f'CAST(q.c{i} AS {t})' for i, t in enumerate(types))} "
                       f"FROM ({statement}\n) AS q({aliases})")
            try:
                _describe(conn.connection.driver_connection, wrapped, timeout)
            except (SQLError, ReadOnlyError) as exc:
                raise ReadOnlyError(
                    "affdata sql runs queries only (SELECT, WITH ... SELECT, VALUES, TABLE): this "
                    f"statement returns rows but is not one ({exc})") from None
            shape = ", ".join(f"c{i} {t}" for i, t in enumerate(types))
            result = conn.exec_driver_sql(
                f"SELECT * FROM {schema}.{reader_role.FUNCTION}(%s) AS r({shape})", (wrapped,))
            rows = result.fetchmany(limit) if limit is not None else result.fetchall()
            left_out = sum(1 for _ in result) if limit is not None else 0
        except DBAPIError as exc:
            orig = exc.orig
            msg = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
            raise _pg_error(getattr(orig, "sqlstate", None), msg, timeout) from None
        finally:
            if tx.is_active:
                try:
                    tx.rollback()
                except DBAPIError:
                    pass
            # Whatever the query did to its session (advisory locks, settings) ends with it.
            conn.invalidate()
    return QueryResult(names, [tuple(r) for r in rows], left_out)
