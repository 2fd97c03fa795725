"""The PostgreSQL role that ``affdata sql`` runs queries as: it may read the store, nothing else.

Switching to a weaker role with ``SET ROLE`` is not enough on its own: while the *session* user
is a superuser (the usual set-up), a query can switch back with ``set_config('role', ...)`` or
``set_config('session_authorization', ...)`` and then call ``pg_terminate_backend`` or
``COPY ... TO PROGRAM`` through a function. So the query is run by
``affdata_sql_as_reader(text)``, a ``SECURITY DEFINER`` function owned by the reader role:
inside it every privilege check is the reader's, and PostgreSQL refuses to change ``role`` or
``session_authorization`` within a security-definer function.

The reader role (``affdata_reader`` unless ``affdata db grant-reader ROLE`` names another) has
no login, no attributes and no memberships; it is granted USAGE on the store's schema and
SELECT on its tables and views, and nothing else. It is set up when a store is created, where
the connecting role may create roles (a superuser, or CREATEROLE), and again after each
migration; otherwise ``affdata db grant-reader`` (run once by such a role) sets it up, and
``affdata sql`` says so until then.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from affdata.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

DEFAULT_ROLE = "affdata_reader"
FUNCTION = "affdata_sql_as_reader"

# Roles whose members may read or write server files, run programs or signal other sessions:
# a reader role that is one of them would not be least privilege.
_POWERFUL_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program",
                   "pg_signal_backend", "pg_read_all_data", "pg_write_all_data")


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def reader_of(conn: Connection) -> str | None:
    """The role that owns the query function in the store's schema, or None if none is set up."""
    return conn.execute(text(
        "SELECT pg_get_userbyid(p.proowner) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = :f AND n.nspname = current_schema()"), {"f": FUNCTION}).scalar()


def check_reader(conn: Connection, role: str) -> None:
    """Refuse a reader role that may do more than read (superuser, CREATEROLE, writes, ...)."""
    row = conn.execute(text(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
        "FROM pg_roles WHERE rolname = :r"), {"r": role}).one_or_none()
    if row is None:
        raise StoreError(f"role {role!r} does not exist")
    if any(row):
        raise StoreError(f"role {role!r} has SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS or "
                         "REPLICATION: affdata sql needs a role that may only read")
    powerful = conn.execute(text(
        "SELECT p.rolname FROM pg_roles p WHERE p.rolname = ANY(:powerful) "
        "AND pg_has_role(:r, p.oid, 'USAGE') ORDER BY 1"),
        {"r": role, "powerful": list(_POWERFUL_ROLES)}).scalars().all()
    if powerful:
        raise StoreError(f"role {role!r} is a member of {', '.join(powerful)}: affdata sql needs a "
                         "role that may only read")
    writable = conn.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
        "AND has_table_privilege(:r, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') LIMIT 1"),
        {"r": role}).scalar()
    if writable:
        raise StoreError(f"role {role!r} may write table {writable}: affdata sql needs a role that "
                         "may only read")


def grant_reader(conn: Connection, role: str = DEFAULT_ROLE) -> None:
    """Make ``role`` the store's read-only role, creating it (NOLOGIN) if it does not exist.

    Runs in the caller's transaction. Needs a connecting role that may create roles (or an
    existing ``role`` it is a member of) and that owns the store's tables.
    """
    me = conn.execute(text(
        "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")).one()
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    r = _q(conn, role)
    if not exists:
        if not (me.rolsuper or me.rolcreaterole):
            user = conn.execute(text("SELECT current_user")).scalar()
            raise StoreError(
                f"role {role!r} does not exist and {user!r} may not create roles: run `affdata db "
                f"grant-reader {role}` once as a superuser or a role with CREATEROLE")
        # Another store may create the same (cluster-wide) role at the same moment.
        conn.execute(text(
            f"DO $$ BEGIN CREATE ROLE {r} NOLOGIN; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"))
    elif not (me.rolsuper or me.rolcreaterole) and not conn.execute(text(
            "SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": role}).scalar():
        user = conn.execute(text("SELECT current_user")).scalar()
        raise StoreError(
            f"{user!r} is not a member of role {role!r} and may not create roles: run `affdata db "
            f"grant-reader {role}` once as a superuser or a role with CREATEROLE, and `GRANT {role} "
            f"TO {user}` so that {user!r} may run affdata sql")
    check_reader(conn, role)
    schema = _q(conn, conn.execute(text("SELECT current_schema()")).scalar())
    conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {r}"))
    conn.execute(text(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {r}"))
    conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {r}"))
    conn.execute(text(
        f"CREATE OR REPLACE FUNCTION {schema}.{FUNCTION}(query text) RETURNS SETOF record "
        "LANGUAGE plpgsql SECURITY DEFINER AS $f$ BEGIN RETURN QUERY EXECUTE query; END $f$"))
    conn.execute(text(f"REVOKE ALL ON FUNCTION {schema}.{FUNCTION}(text) FROM PUBLIC"))
    if me.rolsuper:
        conn.execute(text(f"ALTER FUNCTION {schema}.{FUNCTION}(text) OWNER TO {r}"))
    else:
        # A non-superuser may hand the function over only to a role it can become and that may
        # create in the schema; the reader keeps neither right afterwards.
        if not conn.execute(text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": role}).scalar():
            conn.execute(text(f"GRANT {r} TO CURRENT_USER"))
        conn.execute(text(f"GRANT CREATE ON SCHEMA {schema} TO {r}"))
        conn.execute(text(f"ALTER FUNCTION {schema}.{FUNCTION}(text) OWNER TO {r}"))
        conn.execute(text(f"REVOKE CREATE ON SCHEMA {schema} FROM {r}"))


def after_migration(conn: Connection) -> None:
    """Grant the reader what a migration made; set it up on a new store where we may.

    Never fails the migration: where the connecting role may not set the reader up, it warns
    and ``affdata sql`` refuses to run until ``affdata db grant-reader`` has been run.
    """
    role = reader_of(conn) or DEFAULT_ROLE
    savepoint = conn.begin_nested()
    try:
        grant_reader(conn, role)
    except Exception as exc:  # noqa: BLE001 - a warning, the store itself is fine
        savepoint.rollback()
        msg = getattr(exc, "orig", None) or exc
        log.warning("affdata sql cannot run on this store until `affdata db grant-reader %s` is "
                    "run by a role that may create roles (%s)", role, str(msg).strip().splitlines()[0])
    else:
        savepoint.commit()


def grant(engine: Engine, role: str = DEFAULT_ROLE) -> None:
    """:func:`grant_reader` in its own transaction; ``affdata db grant-reader``."""
    if engine.dialect.name != "postgresql":
        raise ConfigError("grant-reader is for PostgreSQL stores: on SQLite, affdata sql reads "
                          "through a read-only connection and needs no role")
    try:
        with engine.begin() as conn:
            grant_reader(conn, role)
    except DBAPIError as exc:
        msg = str(exc.orig).strip().splitlines()[0]
        raise StoreError(f"cannot make {role!r} the reader of the store: {msg}") from None
