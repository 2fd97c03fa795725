"""What every command shares: reusable options, output (rich table or JSON), errors, progress."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from affdata.errors import AffdataError
from affdata.strict_json import json_safe

if TYPE_CHECKING:  # rich.progress and rich.table are imported where used: start-up stays fast
    from rich.progress import Progress

DEBUG_VAR = "AFFDATA_DEBUG"

out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="AFFDATA_DB",
        help="Store: a SQLite file or postgresql+psycopg://user@host/db. "
        "Default: ./affdata.db, or $AFFDATA_DB.",
        show_default=False,
    ),
]
ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        envvar="AFFDATA_CLUSTER",
        help="Where per-video work runs: local (--workers processes here), local:N (a Dask "
        "LocalCluster of N workers) or a Dask scheduler address such as tcp://host:8786. "
        "Default: local, or $AFFDATA_CLUSTER. docs/scale.md.",
        show_default=False,
    ),
]
PathMapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--path-map",
        help="OLD=NEW: workers see this host's OLD/... as NEW/... (repeatable; default "
        "$AFFDATA_PATH_MAP, ';'-separated).",
        show_default=False,
    ),
]
DATA_HELP = " A folder, or an fsspec URL such as s3://bucket/exports/train (docs/scale.md)."
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="With --data URL: this host's shard cache, shared by its ranks and loader workers "
        "(default $AFFMODELS_SHARD_CACHE or ~/.cache/affmodels/shards).",
        show_default=False,
    ),
]
CacheSizeOption = Annotated[
    str | None,
    typer.Option(
        "--cache-size",
        help="With --data URL: at most this much in the cache, e.g. 200G (least recently used "
        "shards go first; default $AFFMODELS_SHARD_CACHE_SIZE, else unbounded).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
NoVerifyOption = Annotated[bool, typer.Option(
    "--no-verify", help="Do not check the export's shards against the sha256 in its manifest (checked once "
    "per file version by default; a warm run only stats the files).")]


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def open_store(db: str | None, *, create: bool = False):
    """The store; only commands that write pass ``create=True``, and then a new one is announced."""
    from affdata.db import Store

    store = Store(db, create=create)
    if store.created:
        note(f"created a new affdata store at {store.display_url}")
    return store


@contextmanager
def open_executor(cluster: str | None, workers: int, path_map: list[str] | None) -> Iterator[Any]:
    """The executor of ``--cluster``/``--workers``/``--path-map``, closed on the way out."""
    from affdata.executor import open_executor as _open

    executor = _open(cluster, workers, path_map)
    try:
        yield executor
    finally:
        executor.close()


def data_location(text: str | None) -> str | Path | None:
    """``--data``: a URL stays a string (``Path`` would fold its ``//``), anything else a Path."""
    if text is None:
        return None
    return text if "://" in text else Path(text)


def use_shard_cache(cache: Path | None, size: str | None) -> None:
    """Pass ``--cache``/``--cache-size`` on through the environment, which the loader's worker
    processes inherit (:mod:`affmodels.data.remote`)."""
    if cache is not None:
        os.environ["AFFMODELS_SHARD_CACHE"] = str(cache)
    if size is not None:
        from affmodels.data.remote import parse_size

        parse_size(size)  # a bad size is an error now, not in a worker later
        os.environ["AFFMODELS_SHARD_CACHE_SIZE"] = size


def _default(obj: Any) -> Any:
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (bytes, memoryview)):
        return bytes(obj).hex()
    return str(obj)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(json_safe(obj), default=_default, indent=2, allow_nan=False) + "\n")


def print_json_line(obj: Any) -> None:
    """One compact JSON object per line (records streamed while work goes on, e.g. epochs)."""
    sys.stdout.write(json.dumps(json_safe(obj), default=_default, allow_nan=False) + "\n")
    sys.stdout.flush()


def shown_path(path: str | Path) -> str:
    """A path as people read it in a table: relative to the working folder when inside it
    (a URL as it is)."""
    if "://" in str(path):
        return str(path)
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(p)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``"1 face"``, ``"3 faces"``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


#: Width of tables written to a file or a pipe (no terminal to fit): wide enough that a table
#: stays one row per line instead of folding every cell at 80 columns.
FILE_WIDTH = 200


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        table.add_column(str(col), overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else _cell(v) for v in row))
    console = out
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(file=out.file, width=FILE_WIDTH, color_system=None)
    console.print(table)


def num(value: Any, digits: int = 3) -> str:
    """A score or loss as people compare them: ``digits`` decimals; "-" where it is undefined
    (None, or NaN: e.g. a task without a labelled frame)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: OutputFormat,
               title: str | None = None) -> None:
    if fmt is OutputFormat.json:
        print_json([dict(zip(columns, r)) for r in rows])
    elif fmt is OutputFormat.csv:
        print_csv(columns, rows)
    else:
        print_table(columns, rows, title)


def note(message: str) -> None:
    """A side remark for people: on stderr so that stdout stays clean for scripts."""
    err.print(message, highlight=False, soft_wrap=True)


class GrowingTable:
    """A table printed a row at a time under one header (e.g. epochs as they finish), aligned
    without knowing the rows to come: each column is as wide as its header or ``width``."""

    def __init__(self, columns: Sequence[str], width: int = 7) -> None:
        self.widths = [max(len(c), width) for c in columns]
        self.columns = list(columns)
        self._header_printed = False

    def add(self, values: Sequence[Any]) -> None:
        if not self._header_printed:
            self._print(self.columns, style="bold")
            self._header_printed = True
        self._print(["-" if v is None else _cell(v) for v in values])

    def _print(self, cells: Sequence[str], style: str | None = None) -> None:
        line = "  ".join(c.rjust(w) for c, w in zip(cells, self.widths))
        out.print(line, style=style, highlight=False, soft_wrap=True)


class Bar:
    """The callbacks the library is given: ``bar(n)`` advances, ``bar.total(n)`` sets the size."""

    def __init__(self, progress: Progress | None, task: Any = None) -> None:
        self._progress, self._task = progress, task

    def __call__(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def total(self, n: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, total=n)


@contextmanager
def progress_bar(description: str, total: int | None = None, enabled: bool = True) -> Iterator[Bar]:
    """A rich progress bar on stderr (hidden when ``enabled`` is false, e.g. with --json).

    If the work fails, the bar is cleared rather than left above the one-line error."""
    if not enabled:
        yield Bar(None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # stdout is drawn above the bar only when it is the terminal too (never into a file)
    with Progress(*columns, console=err, transient=False, redirect_stdout=out.is_terminal) as progress:
        task = progress.add_task(description, total=total)
        try:
            yield Bar(progress, task)
        except BaseException:
            _erase(progress)
            raise
        if progress.tasks[0].completed == 0:  # "0/0": nothing was there to do; say nothing
            _erase(progress)


def _erase(progress: Progress) -> None:
    progress.live.transient = True  # stopping now erases the bar (and writes nothing to a file)
    progress.live.stop()
    progress.disable = True  # so that leaving the block adds no blank line either


def user_errors() -> tuple[type[Exception], ...]:
    """The typed errors a user can cause: affdata's, and affmodels' once it is loaded (an
    affmodels error cannot have been raised before, and importing it would load torch)."""
    errors: tuple[type[Exception], ...] = (AffdataError,)
    model_errors = sys.modules.get("affmodels.errors")
    if model_errors is not None:
        errors += (model_errors.ModelError,)
    sa_errors = sys.modules.get("sqlalchemy.exc")
    if sa_errors is not None:  # a database that cannot be reached or refuses the login
        errors += (sa_errors.OperationalError,)
    return errors


def error_line(exc: BaseException) -> str:
    """The one line a user sees for a library error (no traceback)."""
    sa_errors = sys.modules.get("sqlalchemy.exc")
    if sa_errors is not None and isinstance(exc, sa_errors.OperationalError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
        return f"cannot use the database: {reason}"
    return " ".join(str(exc).split()) or type(exc).__name__


def run(app: typer.Typer) -> None:
    """Entry point, and the one place errors become exit statuses.

    A library error (:func:`user_errors`) prints one line on stderr and exits with status 1;
    wrong usage is Typer's own usage message and status 2; Ctrl-C exits with 130. Set
    ``AFFDATA_DEBUG=1`` for the traceback.
    """
    debug = os.environ.get(DEBUG_VAR, "") not in ("", "0")
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if debug or not isinstance(exc, user_errors()):
            raise
        err.print(f"[red]error:[/red] {escape(error_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
