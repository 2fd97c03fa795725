"""Bulk loading rows inside the caller's transaction; the one place where dialects differ.

SQLite: ``executemany`` on the driver's cursor (what sqlite-utils does; the ORM would cost a
Python object per row). PostgreSQL: ``COPY ... FROM STDIN`` through psycopg 3, several times
faster than multi-row INSERTs. Both run inside the transaction the caller opened, so a failure
anywhere rolls the whole file back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table


def insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table`` in the open transaction.

    The driver is called directly, past SQLAlchemy's error handling: a full disk or a damaged
    store is turned into its typed error here (:func:`affdata.db.store_error_for`).
    """
    try:
        _insert_rows(conn, table, columns, rows)
    except Exception as exc:
        from affdata.db import store_error_for

        typed = store_error_for(exc, conn.engine.url.render_as_string(hide_password=True))
        if typed is None:
            raise
        raise typed from None


def _insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    driver = conn.connection.driver_connection
    cols = ", ".join(columns)
    if conn.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        cur = driver.cursor()
        try:
            cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        finally:
            cur.close()
        return
    with driver.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def upsert_ignore(conn: Connection, table: str, values: dict[str, Any], conflict: Sequence[str]) -> bool:
    """INSERT one row unless a row with the same ``conflict`` columns exists (both dialects);
    True when the row was inserted."""
    cols = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    from sqlalchemy import text

    result = conn.execute(
        text(f"INSERT INTO {table} ({cols}) VALUES ({params}) "
             f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"),
        values,
    )
    return result.rowcount == 1


def insert_ignore_returning(conn: Connection, table: Table, values: dict[str, Any], conflict: Sequence[str],
                            returning: str) -> Any:
    """INSERT one row unless a row with the same ``conflict`` columns exists, through the
    table's column types (JSON, booleans); the new row's ``returning`` column, or None when a
    row was there already (another process won the race)."""
    return conn.execute(_insert_ignore(conn.dialect.name, table, tuple(conflict), returning), values).scalar()


@lru_cache(maxsize=16)
def _insert_ignore(dialect: str, table: Table, conflict: tuple[str, ...], returning: str) -> Any:
    """INSERT ... ON CONFLICT (...) DO NOTHING RETURNING, built once per dialect and table."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c[returning])
