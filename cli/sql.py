"""``affdata sql``: read-only SQL on the store."""

from __future__ import annotations

from typing import Annotated

import typer

from affdata.sql import DEFAULT_TIMEOUT_S
from cli.common import DbOption, OutputFormat, note, print_rows


def sql(
    query: Annotated[str, typer.Argument(help="One SELECT (or WITH ... SELECT) statement.")],
    db: DbOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, csv or json.")] = OutputFormat.table,
    limit: Annotated[int | None, typer.Option(help="Print at most this many rows (and say how many were left out).")] = None,
    timeout: Annotated[float, typer.Option(
        help="Cancel the query (on the server too) after this many seconds.", min=0.001)] = DEFAULT_TIMEOUT_S,
) -> None:
    """Run one read-only query on the store; writes are refused and change nothing.

    The query runs with the rights to read the store only (on PostgreSQL as the store's reader
    role: see `affdata db grant-reader`) and is cancelled after --timeout seconds.

    Views: frame_labels (one row per track and frame, consensus labels and has_va / has_au /
    has_expr flags) and frame_au_labels (one row per track, frame and AU). See docs/schema.md.

    Example: affdata sql "SELECT video, COUNT(*) FROM frame_labels WHERE has_va = 1 GROUP BY video" -f csv
    """
    from affdata.sql import run_query

    result = run_query(db, query, limit=limit, timeout=timeout)
    print_rows(result.columns, result.rows, format)
    if result.left_out:
        note(f"{result.left_out} more row{'s' if result.left_out != 1 else ''} left out by --limit {limit}")
