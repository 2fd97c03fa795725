"""Before an export writes a shard: is every video still the file that was ingested?

The store's frame index, timestamps, face boxes and labels describe the bytes that were
ingested. A file edited or replaced since, even at the same size, would be cropped at the
wrong frames without a word. So each video of the part is compared with the identity stored at
ingest (:mod:`affdata.video.identity`):

* a different size, or a different sample hash: changed, refused;
* a different modification time (a copy, a ``touch``), no stored identity (a video ingested
  before migration 0005), or ``verify=True``: the full sha256 decides; when it matches, the
  identity as it is now is stored, so the next export is cheap again.

A file that keeps its size and modification time and changes only bytes between the sampled
blocks is caught by ``--verify`` only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from affdata.errors import VideoChangedError, VideoError
from affdata.export.plan import VideoRef
from affdata.video.hashing import file_sha256, folder_sha256
from affdata.video.identity import Identity, identity

log = logging.getLogger(__name__)


def _full_hash(path: Path, kind: str) -> str:
    if kind == "frames":
        from affdata.video.frames import scan_frame_folder

        folder = scan_frame_folder(path)
        return folder_sha256(folder.path, list(folder.images.values()))
    return file_sha256(path)


def _difference(video: VideoRef, verify: bool) -> tuple[str | None, Identity | None]:
    """What differs (None: unchanged), and the identity to store when it was hashed in full."""
    path, kind = Path(video.source.path), video.source.kind
    try:
        now = identity(path, kind)
    except (FileNotFoundError, NotADirectoryError):
        return "missing", None
    except VideoError as exc:  # a frame folder gone or emptied
        return exc.reason, None
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})", None
    if now.size_bytes != video.source.size_bytes:
        return f"size {now.size_bytes} bytes, {video.source.size_bytes} at ingest", None
    if video.sample_hash is not None and now.sample_hash != video.sample_hash:
        return "same size, but the sampled bytes differ from those at ingest", None
    if not (verify or video.sample_hash is None or now.mtime_ns != video.mtime_ns):
        return None, None
    try:
        full = _full_hash(path, kind)
    except (OSError, VideoError) as exc:
        return f"unreadable ({exc})", None
    if full != video.content_hash:
        return "same size, but the content sha256 differs from the one at ingest", None
    stored = (video.mtime_ns, video.sample_hash) == (now.mtime_ns, now.sample_hash)
    return None, (None if stored else now)


def check_unchanged(videos: list[VideoRef], verify: bool = False) -> list[dict[str, Any]]:
    """:class:`VideoChangedError` naming the first changed video (and how many more);
    otherwise the identities to store (rows for :func:`affdata.export.plan.refresh_identity`)."""
    changed: list[tuple[VideoRef, str]] = []
    refresh: list[dict[str, Any]] = []
    for video in videos:
        what, now = _difference(video, verify)
        if what is not None:
            changed.append((video, what))
        elif now is not None:
            refresh.append({"id": video.id, "mtime_ns": now.mtime_ns, "sample_hash": now.sample_hash})
    if changed:
        video, what = changed[0]
        more = (f" (and {len(changed) - 1} more: "
                f"{', '.join(v.name for v, _ in changed[1:4])}{', ...' if len(changed) > 4 else ''})"
                if len(changed) > 1 else "")
        raise VideoChangedError(video.source.path, (
            f"changed since it was ingested as video {video.name!r}: {what}{more}; nothing was "
            "exported: restore the file, or ingest the new one as a new video"))
    if refresh:
        log.info("hashed %d videos in full (modification time changed, or no identity stored yet)",
                 len(refresh))
    return refresh
