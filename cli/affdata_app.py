"""The ``affdata`` command: composes the command groups; holds no logic of its own."""

from __future__ import annotations

import logging

import typer

from cli import annotate, db, demo, export, faces, ingest, labels, split, sql, stats
from cli.common import run

app = typer.Typer(
    name="affdata",
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="A store for face videos and their per-frame affect labels (valence-arousal, action "
    "units, expressions). SQLite in ./affdata.db by default; --db or AFFDATA_DB for another "
    "file or PostgreSQL.",
)
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(ingest.app, name="ingest")
app.add_typer(split.app, name="split")
app.add_typer(labels.app, name="labels")
app.add_typer(export.app, name="export")
app.add_typer(faces.detect_app, name="detect")
app.add_typer(faces.app, name="faces")
app.add_typer(annotate.app, name="annotate")
app.command()(sql.sql)
app.command()(stats.stats)


@app.callback()
def _root() -> None:
    """Keeps the app a command group (Typer would collapse a one-command app)."""


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run(app)


if __name__ == "__main__":
    main()
