"""Content hashes: the identity of videos, annotation files, export shards and checkpoints.

The one streaming sha256 of both packages (affmodels verifies shards and names checkpoints with
it; hashlib releases the GIL, so threads hash in parallel). The export contract test keeps its
own on purpose: it checks the format from outside.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20  # 1 MiB: streamed, so a multi-GB file never sits in memory


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()
