"""Alembic environment: runs on the connection affdata hands it (see affdata.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from affdata.schema import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode (copy-and-move) for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic -x url=...` use, for developers writing a migration
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass the database as: alembic -x url=sqlite:///path ...")
    with create_engine(url).begin() as conn:
        _run(conn)
