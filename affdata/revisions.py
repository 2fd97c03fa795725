"""The migration history, read from the migration files' text: which revisions exist and which
one is the newest. Checking a store's revision at open needs no more, and importing Alembic for
it would cost about half a second on every command (:mod:`affdata.migrate` migrates).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path


def migrations_dir() -> Path:
    """Where the migration scripts are: the installed ``migrations`` package."""
    import migrations

    return Path(migrations.__file__).parent


def revisions(folder: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Every revision and the revisions it follows, from the files' ``revision`` and
    ``down_revision`` assignments."""
    return _revisions(folder or migrations_dir())


@lru_cache(maxsize=4)
def _revisions(folder: Path) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for path in sorted((folder / "versions").glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision") and node.value is not None:
                values[target.id] = ast.literal_eval(node.value)
        revision, down = values.get("revision"), values.get("down_revision")
        if isinstance(revision, str):
            found[revision] = tuple(down) if isinstance(down, (tuple, list)) else ((down,) if down else ())
    return found


def heads(folder: Path | None = None) -> list[str]:
    """Revisions no other revision follows (a sound history has exactly one)."""
    revs = revisions(folder)
    return sorted(set(revs) - {d for downs in revs.values() for d in downs})
