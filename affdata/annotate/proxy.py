"""Browser proxies for videos a browser cannot play: H.264 MP4s with the store's frames and times.

Chromium plays H.264 in MP4 directly. Anything else (HEVC ``.mov``, GIF, VP9 or MPEG-4 part 2
files, frame folders) gets a proxy: the store's own decoder yields its frames in order
(:func:`affdata.video.iter_frames`, the frames export reads), and each frame i is encoded with
presentation time ``frame.pts_s[i]`` exactly (time base 1/90000, no B-frames, so nothing shifts
the first frame), so frame i of the proxy is frame i of the store and variable frame rates stay
variable. A frame folder's missing images repeat the previous image (they keep their slot on
the timeline). Proxies are cached on disk by content hash; they are made on first request or
ahead with ``affdata annotate proxies``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from affdata.db import Store
from affdata.errors import NotFoundError, VideoError
from affdata.video import iter_frames

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90000)
PRESET = "ultrafast"  # a preview: open latency matters more than size (3x veryfast's bytes, 2-3x faster)
_DIRECT_CONTAINERS = ("mp4", "mov,mp4,m4a,3gp,3g2,mj2")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def default_proxy_dir(store: Store) -> Path:
    """Beside a SQLite store (``lab.db`` -> ``lab.db.proxies``); in the user's cache for PostgreSQL."""
    if store.is_sqlite:
        db = store.engine.url.database
        if db and db != ":memory:":
            return Path(db + ".proxies")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "affdata" / "proxies"


def video_row(store: Store, video_id: int) -> Any:
    with store.connect() as conn:
        row = conn.execute(text("SELECT id, name, path, kind, decoder, stream_index, frame_count, width, height, "
                                "size_bytes, container, codec, content_hash FROM video WHERE id = :v"),
                           {"v": int(video_id)}).first()
    if row is None:
        raise NotFoundError(f"no video {video_id}")
    return row


def plays_directly(row: Any) -> bool:
    """H.264 in an MP4 file with an .mp4/.m4v name (what every Chromium build plays) whose first
    frame is at time 0, so that the browser's media time is the store's ``pts_s``."""
    return (row.kind == "file" and row.codec == "h264" and Path(row.path).suffix.lower() in (".mp4", ".m4v")
            and row.container in _DIRECT_CONTAINERS and _starts_at_zero(str(row.path), int(row.size_bytes)))


@lru_cache(maxsize=4096)
def _starts_at_zero(path: str, size_bytes: int) -> bool:
    """The video stream's start time (edit lists applied) is 0; ``size_bytes`` keys the cache."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            start = stream.start_time
            return start is None or abs(float(start * stream.time_base)) < 1e-6
    except (OSError, av.FFmpegError, IndexError):
        return True  # unreadable: serving it fails with a clear error, a proxy would too


def proxy_path(proxy_dir: Path, row: Any) -> Path:
    return Path(proxy_dir) / f"{row.content_hash}.mp4"


def _even(x: int) -> int:
    return max(2, x - x % 2)


def make_proxy(store: Store, video_id: int, proxy_dir: Path, *, crf: int = 23, preset: str = PRESET) -> tuple[Path, bool]:
    """The proxy of a video, encoded now if not cached; returns (path, made now)."""
    import av

    row = video_row(store, video_id)
    out = proxy_path(proxy_dir, row)
    with _locks_guard:
        lock = _locks.setdefault(row.content_hash, threading.Lock())
    with lock:
        if out.is_file():
            return out, False
        out.parent.mkdir(parents=True, exist_ok=True)
        with store.connect() as conn:
            pts = np.array([r[0] for r in conn.execute(text("SELECT pts_s FROM frame WHERE video_id = :v ORDER BY idx"),
                                                       {"v": row.id})], dtype=np.float64)
        tmp = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        w, h = _even(int(row.width)), _even(int(row.height))
        start = time.perf_counter()
        try:
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
                stream = container.add_stream("libx264", rate=30, options={"crf": str(crf), "preset": preset,
                                                                          "bframes": "0", "g": "30"})
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                stream.time_base = TIME_BASE
                stream.codec_context.time_base = TIME_BASE
                last: np.ndarray | None = None
                ticks = np.round(pts / float(TIME_BASE)).astype(np.int64)
                with contextlib.closing(iter_frames(row)) as frames:
                    wanted = 0
                    for index, rgb in frames:
                        while wanted < index:  # a frame folder's missing images keep their slot
                            _encode(container, stream, last if last is not None else np.zeros_like(rgb), ticks[wanted], w, h)
                            wanted += 1
                        _encode(container, stream, rgb, ticks[index], w, h)
                        last, wanted = rgb, index + 1
                    while wanted < len(ticks) and last is not None:
                        _encode(container, stream, last, ticks[wanted], w, h)
                        wanted += 1
                for packet in stream.encode():
                    container.mux(packet)
            tmp.replace(out)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, VideoError):
                raise
            raise VideoError(row.path, f"cannot make a browser proxy: {exc}") from exc
        log.info("proxy of video %s: %d frames in %.1f s", row.name, len(pts), time.perf_counter() - start)
        return out, True


def _encode(container: Any, stream: Any, rgb: np.ndarray, tick: int, w: int, h: int) -> None:
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
        width=w, height=h, format="yuv420p")
    frame.pts = int(tick)
    frame.time_base = TIME_BASE
    for packet in stream.encode(frame):
        container.mux(packet)


def media_path(store: Store, video_id: int, proxy_dir: Path) -> Path:
    """What to send the browser for a video: the file itself or its proxy (made if needed)."""
    row = video_row(store, video_id)
    if plays_directly(row):
        if not Path(row.path).is_file():
            raise VideoError(row.path, "does not exist (moved or deleted since it was ingested?)")
        return Path(row.path)
    return make_proxy(store, video_id, proxy_dir)[0]


def make_proxies(store: Store, proxy_dir: Path, videos: list[str] | None = None) -> list[dict[str, Any]]:
    """Proxies ahead of time for every video (or the named ones) that needs one."""
    with store.connect() as conn:
        rows = conn.execute(text("SELECT id, name FROM video ORDER BY name")).all()
    wanted = set(videos or [])
    unknown = wanted - {r.name for r in rows}
    if unknown:
        raise NotFoundError(f"no video {sorted(unknown)[0]!r} in the store")
    out = []
    for r in rows:
        if wanted and r.name not in wanted:
            continue
        row = video_row(store, r.id)
        if plays_directly(row):
            out.append({"video": r.name, "status": "plays directly"})
            continue
        path, made = make_proxy(store, r.id, proxy_dir)
        out.append({"video": r.name, "status": "made" if made else "cached", "proxy": str(path)})
    return out
