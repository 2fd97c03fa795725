"""Where the store is, answered without SQLAlchemy: the default file, the environment variable,
and the SQLite file a ``--db`` value names. The read path of ``affdata sql`` uses it to skip
importing SQLAlchemy (a quarter of a second) for an existing SQLite store.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_FILE = "affdata.db"
ENV_VAR = "AFFDATA_DB"


def raw_location(url: str | None = None) -> str:
    """The argument, else ``$AFFDATA_DB``, else ./affdata.db (not yet resolved)."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_FILE


def existing_sqlite_file(url: str | None = None) -> Path | None:
    """The SQLite file ``url`` names (a path or a plain ``sqlite:///`` URL), if it exists;
    None for PostgreSQL, URLs with options, in-memory databases and files not yet created."""
    raw = raw_location(url)
    if "://" in raw:
        if not raw.startswith("sqlite:///") or "?" in raw:
            return None
        raw = raw[len("sqlite:///"):]
    if not raw or raw == ":memory:":
        return None
    path = Path(raw).expanduser().resolve()
    return path if path.is_file() else None
