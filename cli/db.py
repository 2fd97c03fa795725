"""``affdata db``: the store's schema version."""

from __future__ import annotations

import typer

from cli.common import DbOption, JsonOption, note, open_store, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="The store's schema: current revision and upgrades; the read-only role of affdata sql.")


@app.command()
def current(db: DbOption = None, json: JsonOption = False) -> None:
    """Show the schema revision of the store and the newest one this affdata knows.

    Example: affdata db current --db postgresql+psycopg://postgres@127.0.0.1/affect
    """
    from affdata import migrate
    from affdata.db import Store

    store = Store(db, check_schema=False, create=False)
    with store.connect() as conn:
        rev = migrate.current_revision(conn)
    head = migrate.head_revision()
    info = {"url": store.display_url, "current": rev, "head": head, "up_to_date": rev == head}
    if json:
        print_json(info)
    else:
        print_table(["store", "current", "head", "up to date"],
                    [[info["url"], rev or "(empty)", head, "yes" if rev == head else "no"]])


@app.command()
def upgrade(db: DbOption = None, revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Migrate the store to the newest schema (back up a SQLite file or dump the database first).

    Example: affdata db upgrade --db lab.db
    """
    from affdata import migrate
    from affdata.db import Store

    store = Store(db, check_schema=False)
    before, after = migrate.upgrade(store.engine, revision)
    if before is None and after is not None:
        note(f"created a new affdata store at {store.display_url} (schema {after})")
    elif before == after:
        note(f"{store.display_url} is already at {after}")
    else:
        note(f"upgraded {store.display_url} from {before or '(empty)'} to {after}")


@app.command("grant-reader")
def grant_reader(
    role: str = typer.Argument("affdata_reader", help="The role `affdata sql` runs queries as."),
    db: DbOption = None,
) -> None:
    """Set up the read-only role that `affdata sql` runs queries as (PostgreSQL only).

    Creates ROLE (no login) if it does not exist, lets it read the store's tables and views and
    nothing else, and makes it the store's reader. A new store gets `affdata_reader` by itself
    when the connecting role may create roles; otherwise run this once as one that may.

    Example: affdata db grant-reader affdata_reader --db postgresql+psycopg://postgres@127.0.0.1/affect
    """
    from affdata import reader_role

    store = open_store(db)
    reader_role.grant(store.engine, role)
    note(f"affdata sql on {store.display_url} now runs queries as {role!r}")
