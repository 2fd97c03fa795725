"""Helpers for the annotation-format tests: where the real files are, and writing test files."""

from __future__ import annotations

from pathlib import Path

# The real files live next to the checkout (../shared/data from the repository root).
ANNOTATIONS = Path(__file__).resolve().parents[4] / "shared" / "data" / "annotations"


def write(path: Path, text: str, *, newline: str = "\n") -> Path:
    """Write ``text`` (with ``\\n`` line ends) using ``newline`` as the line end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path
