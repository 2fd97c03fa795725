"""A cheap identity of a video file or frame folder: size, modification time and a sampled hash.

The content hash (sha256 of every byte) is a video's identity in the store, but reading every
byte of every video before each export costs as much as decoding them. So ingest also stores
this: the size, the newest modification time, and a sha256 over evenly spread blocks (and, for a
frame folder, over every file's name and size and the sampled bytes of evenly spread files).
Export compares it with the file on disk (:mod:`affdata.export.unchanged`): a different size or
sample means changed, a different modification time sends it to the full hash.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: a file is sampled in this many blocks of this many bytes, from first to last (whole when smaller)
SAMPLE_BLOCKS = 16
SAMPLE_BLOCK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Identity:
    size_bytes: int
    mtime_ns: int
    sample_hash: str


def _sample_file(h: hashlib._Hash, path: Path, size: int) -> None:
    h.update(f"{size}\n".encode())
    with open(path, "rb") as f:
        if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK_BYTES:
            h.update(f.read())
            return
        last = size - SAMPLE_BLOCK_BYTES
        for i in range(SAMPLE_BLOCKS):
            f.seek(last * i // (SAMPLE_BLOCKS - 1))
            h.update(f.read(SAMPLE_BLOCK_BYTES))


def file_identity(path: Path) -> Identity:
    st = os.stat(path)
    h = hashlib.sha256(b"file\n")
    _sample_file(h, path, st.st_size)
    return Identity(st.st_size, st.st_mtime_ns, h.hexdigest())


def folder_identity(root: Path, files: Sequence[Path]) -> Identity:
    """Over the frame images ``files`` (those the content hash covers)."""
    listed = sorted((p.relative_to(root).as_posix(), p) for p in files)
    stats = [os.stat(p) for _, p in listed]
    h = hashlib.sha256(b"frames\n")
    for (rel, _), st in zip(listed, stats):
        h.update(rel.encode("utf-8") + b"\0" + str(st.st_size).encode() + b"\n")
    n = len(listed)
    picks = sorted({(n - 1) * i // max(SAMPLE_BLOCKS - 1, 1) for i in range(SAMPLE_BLOCKS)}) if n else []
    for k in picks:
        _sample_file(h, listed[k][1], stats[k].st_size)
    return Identity(sum(st.st_size for st in stats), max((st.st_mtime_ns for st in stats), default=0),
                    h.hexdigest())


def identity(path: Path, kind: str) -> Identity:
    """The identity of a stored video's ``path`` (``kind`` ``file`` or ``frames``) as it is now."""
    if kind == "frames":
        from affdata.video.frames import scan_frame_folder

        folder = scan_frame_folder(path)
        return folder_identity(folder.path, list(folder.images.values()))
    return file_identity(path)
