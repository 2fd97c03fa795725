"""Content hashes of videos and frame folders: a video's identity, independent of its path."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from affdata.hashing import file_sha256

__all__ = ["file_sha256", "folder_sha256"]


def folder_sha256(root: Path, files: Iterable[Path]) -> str:
    """sha256 over the sorted relative names (POSIX form) and each file's sha256.

    Each file contributes ``<relative name>\\0<file sha256 hex>\\n``, so renaming a frame
    changes the hash as much as changing its pixels does.
    """
    h = hashlib.sha256()
    for rel in sorted(p.relative_to(root).as_posix() for p in files):
        h.update(rel.encode("utf-8") + b"\0" + file_sha256(root / rel).encode("ascii") + b"\n")
    return h.hexdigest()
