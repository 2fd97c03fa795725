"""``affdata db``: the store's schema version."""

from __future__ import annotations

import typer

from cli.common import DbOption, JsonOption, note, print_json, print_table

app = typer.Typer(no_args_is_help=True, help="The store's schema: current revision and upgrades.")


@app.command()
def current(db: DbOption = None, json: JsonOption = False) -> None:
    """Show the schema revision of the store and the newest one this affdata knows.

    Example: affdata db current --db postgresql+psycopg://postgres@127.0.0.1/affect
    """
    from affdata import migrate
    from affdata.db import Store

    store = Store(db, check_schema=False)
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
    if before == after:
        note(f"{store.display_url} is already at {after}")
    else:
        note(f"upgraded {store.display_url} from {before or '(empty)'} to {after}")
