"""Alembic, driven from the library: the migrations ship in the ``migrations`` package.

Nobody runs ``alembic`` by hand: :func:`ensure_current` creates a new store at the newest
revision and checks an existing one, and ``affdata db upgrade`` / ``affdata db current`` call
:func:`upgrade` / :func:`current_revision`. One history serves both dialects (``env.py``
runs with ``render_as_batch=True`` so that ALTERs work on SQLite).

Alembic is imported only to migrate: importing it costs about half a second, more than most
commands take. Checking a store at open needs only its ``alembic_version`` row and the newest
revision, which :func:`head_revision` reads from the migration files' own text
(:mod:`affdata.revisions`; a test checks that it is Alembic's single head).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from affdata import revisions as revision_files
from affdata.errors import SchemaOutdatedError, SchemaTooNewError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Any constant will do: it names the advisory lock that serialises first-use creation on
# PostgreSQL (SQLite serialises it with BEGIN IMMEDIATE).
_PG_LOCK_KEY = 0x61666664


def migrations_dir() -> Path:
    """Where the migration scripts are: the installed ``migrations`` package."""
    return revision_files.migrations_dir()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the installed ``migrations`` package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def revisions() -> dict[str, tuple[str, ...]]:
    """Every revision and the revisions it follows (see :mod:`affdata.revisions`)."""
    return revision_files.revisions(migrations_dir())


def head_revision() -> str:
    heads = revision_files.heads(migrations_dir())
    if len(heads) != 1:
        raise StoreError(f"the migrations have {len(heads)} heads ({', '.join(heads)}); expected 1")
    return heads[0]


def current_revision(conn: Connection) -> str | None:
    """The store's revision, from its ``alembic_version`` table (None for an empty database)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def begin_write(engine: Engine):  # noqa: ANN201 - see affdata.db.begin_write
    from affdata.db import begin_write as _begin_write

    return _begin_write(engine)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def ensure_current(engine: Engine) -> bool:
    """Create an empty database at head, or check that an existing one is at head.

    Returns True when the store was created now. Raises :class:`SchemaOutdatedError` or
    :class:`SchemaTooNewError` with the command that fixes it.
    """
    head = head_revision()
    with engine.connect() as conn:
        rev = current_revision(conn)
    if rev == head:
        return False
    with begin_write(engine) as conn:
        _lock(conn)
        rev = current_revision(conn)
        if rev is None:
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
            if tables:
                raise StoreError(
                    f"{_where(engine)} holds tables ({', '.join(sorted(tables)[:5])}...) "
                    "but no affdata schema version: it is not an affdata store"
                )
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
            return True
    if rev == head:
        return False
    if rev in revisions():
        raise SchemaOutdatedError(
            f"the store at {_where(engine)} is at schema revision {rev}, this affdata expects "
            f"{head}: run `affdata db upgrade` (back up the database first)"
        )
    raise SchemaTooNewError(
        f"the store at {_where(engine)} is at schema revision {rev}, which this affdata does "
        f"not know (its newest is {head}): it was migrated by a newer affdata; upgrade affdata"
    )


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns (revision before, revision after)."""
    with begin_write(engine) as conn:
        _lock(conn)
        before = current_revision(conn)
        from alembic import command

        command.upgrade(alembic_config(conn), revision)
        after = current_revision(conn)
    return before, after


def downgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    with begin_write(engine) as conn:
        _lock(conn)
        before = current_revision(conn)
        from alembic import command

        command.downgrade(alembic_config(conn), revision)
        after = current_revision(conn)
    return before, after


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
