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
from affdata.errors import NoStoreError, SchemaOutdatedError, SchemaTooNewError, StoreError
from affdata.transactions import begin_write

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


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


# Tables every affdata schema has had: a revision stamped in a database without them was
# written by another application's Alembic history, not by a newer affdata.
_CORE_TABLES = {"video", "label_source"}


def refuse_unless_store(where: str, tables: set[str], rev: str | None, *, allow_empty: bool) -> None:
    """Refuse a database that is not an affdata store (or, unless ``allow_empty``, an empty one).

    ``tables`` are the database's table names and ``rev`` its Alembic revision, if any.
    """
    others = set(tables) - {"alembic_version"}
    if rev is None and others:
        shown = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
        raise StoreError(f"{where} holds tables ({shown}) but no affdata schema version: "
                         "it is not an affdata store")
    if rev is not None and not _CORE_TABLES <= others:
        raise StoreError(f"{where} is stamped with revision {rev} but has no affdata tables: "
                         "it is not an affdata store")
    if rev is None and not allow_empty:
        raise NoStoreError(f"there is no affdata store at {where} (the database is empty); a "
                           "command that writes (affdata ingest ..., affdata db upgrade) creates one")


def _state(conn: Connection) -> tuple[set[str], str | None]:
    return set(inspect(conn).get_table_names()), current_revision(conn)


def check_is_store(engine: Engine, *, allow_empty: bool) -> None:
    """Refuse a database that is not an affdata store, at whatever revision; writes nothing."""
    with engine.connect() as conn:
        refuse_unless_store(_where(engine), *_state(conn), allow_empty=allow_empty)


def ensure_current(engine: Engine, *, create: bool = True) -> bool:
    """Create an empty database at head (if ``create``), or check that an existing one is at head.

    Returns True when the store was created now. Raises :class:`NoStoreError` for an empty
    database when ``create`` is false, :class:`SchemaOutdatedError` or
    :class:`SchemaTooNewError` with the command that fixes it.
    """
    head = head_revision()
    with engine.connect() as conn:
        tables, rev = _state(conn)
    refuse_unless_store(_where(engine), tables, rev, allow_empty=create)
    if rev == head:
        return False
    if rev is None:
        with begin_write(engine) as conn:
            _lock(conn)
            tables, rev = _state(conn)
            refuse_unless_store(_where(engine), tables, rev, allow_empty=True)
            if rev is None:
                from alembic import command

                command.upgrade(alembic_config(conn), "head")
                _after_upgrade(conn)
                return True
    if rev == head:
        return False
    known = _known_revisions()
    if rev in known:
        raise SchemaOutdatedError(
            f"the store at {_where(engine)} is at schema revision {rev}, this affdata expects "
            f"{head}: run `affdata db upgrade` (back up the database first)"
        )
    raise SchemaTooNewError(
        f"the store at {_where(engine)} is at schema revision {rev}, which this affdata does "
        f"not know (its newest is {head}): it was migrated by a newer affdata; upgrade affdata"
    )


def _known_revisions() -> set[str]:
    return set(revisions())


def _check_current(engine: Engine, current: str | None) -> None:
    if current is not None and current not in _known_revisions():
        raise SchemaTooNewError(
            f"the store at {_where(engine)} is at schema revision {current}, which this affdata "
            f"does not know (its newest is {head_revision()}): it was migrated by a newer "
            "affdata; upgrade affdata, not the store")


def _run(engine: Engine, step: str, conn: Connection, revision: str) -> None:
    """Run an Alembic command (``upgrade`` / ``downgrade``); a revision it cannot resolve is one
    line, not a traceback."""
    from alembic import command
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        getattr(command, step)(alembic_config(conn), revision)
    except (CommandError, RevisionError) as exc:
        known = ", ".join(sorted(_known_revisions()))
        raise StoreError(f"cannot migrate {_where(engine)} to {revision!r}: {exc} "
                         f"(this affdata knows {known}, head and base)") from None


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns (revision before, revision after).

    An empty database is created; one that holds another application's tables is refused (as
    every other command refuses it), and so is a store stamped by a newer affdata.
    """
    with begin_write(engine) as conn:
        _lock(conn)
        tables, before = _state(conn)
        refuse_unless_store(_where(engine), tables, before, allow_empty=True)
        _check_current(engine, before)
        _run(engine, "upgrade", conn, revision)
        after = current_revision(conn)
        if after != before:
            _after_upgrade(conn)
    return before, after


def downgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    with begin_write(engine) as conn:
        _lock(conn)
        tables, before = _state(conn)
        refuse_unless_store(_where(engine), tables, before, allow_empty=True)
        _check_current(engine, before)
        _run(engine, "downgrade", conn, revision)
        after = current_revision(conn)
    return before, after


def _after_upgrade(conn: Connection) -> None:
    """On PostgreSQL, let the read-only role (``affdata sql``) read what the migration made."""
    if conn.dialect.name == "postgresql":
        from affdata import reader_role

        reader_role.after_migration(conn)


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
