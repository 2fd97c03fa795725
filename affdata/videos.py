"""Registering videos in the store: probe each once, write each in its own transaction.

Identity is the content hash. Ingesting the same file again is a no-op ("present"); the same
content at a new path updates the stored path when the old path is gone ("moved"; when the
old file still exists the new one is a duplicate and is reported as present). A file that fails
to probe is reported with the reason and leaves nothing in the store; the other files go on.

Two processes may ingest into one store at once: on SQLite each video's transaction starts with
``BEGIN IMMEDIATE`` (writers queue), and on both backends the video row is inserted with
``ON CONFLICT (content_hash) DO NOTHING`` (:func:`affdata.bulk.insert_ignore_returning`), so the loser of a race sees the winner's row and
reports "present".
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from affdata import materialized
from affdata.bulk import insert_ignore_returning, insert_rows, upsert_ignore
from affdata.db import Store
from affdata.errors import AffdataError, ConfigError
from affdata.schema import Video, utcnow
from affdata.video import VideoProbe, list_videos, probe
from affdata.executor import Executor, PathMap, PoolExecutor
from affdata.workers import RECYCLE_EVERY

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class IngestOutcome:
    path: str
    status: str  # added | present | moved | failed
    video: str | None = None
    frames: int | None = None
    decoder: str | None = None
    reason: str | None = None


@dataclass
class IngestReport:
    outcomes: list[IngestOutcome] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[IngestOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> dict[str, int]:
        return {s: self.count(s) for s in ("added", "present", "moved", "failed")} | {
            "skipped": len(self.skipped)
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "videos": [asdict(o) for o in self.outcomes],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
        }


class SubjectRule:
    """Names the subject of a video: one fixed name, or a regex on the video name."""

    def __init__(self, subject: str | None = None, pattern: str | None = None) -> None:
        if subject and pattern:
            raise ConfigError("give a subject or a subject pattern, not both")
        self.subject = subject
        try:
            self.pattern = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise ConfigError(f"subject pattern {pattern!r} is not a regular expression: {exc}") from None

    def __call__(self, video_name: str) -> str | None:
        if self.subject:
            return self.subject
        if not self.pattern:
            return None
        match = self.pattern.search(video_name)
        if not match:
            return None
        if "subject" in match.groupdict():
            return match.group("subject")
        return match.group(1) if match.groups() else match.group(0)


def video_name(path: Path) -> str:
    """The name labels refer to: the file stem, or the folder name of a frame folder."""
    return path.name if path.is_dir() else path.stem


def probed_name(info: VideoProbe) -> str:
    """:func:`video_name` of a probed video, without asking the file system again."""
    return info.path.name if info.kind == "frames" else info.path.stem


def ensure_subject(conn: Connection, name: str) -> int:
    upsert_ignore(conn, "subject", {"name": name, "created_at": utcnow()}, ["name"])
    return conn.execute(text("SELECT id FROM subject WHERE name = :n"), {"n": name}).scalar_one()


def ensure_track(conn: Connection, video_id: int, name: str, *, consensus_rows: bool = True) -> int:
    """The id of track ``name`` of a video, created if new (tracks come from labels and boxes).

    A new track gets its rows in the materialised consensus (:mod:`affdata.materialized`) now,
    or, with ``consensus_rows=False``, from the ``labels_changed`` call of the same transaction
    (a label writer: the rows are then written once, with their labels)."""
    created = upsert_ignore(conn, "track", {"video_id": video_id, "name": name}, ["video_id", "name"])
    track_id = conn.execute(text("SELECT id FROM track WHERE video_id = :v AND name = :t"),
                            {"v": video_id, "t": name}).scalar_one()
    if created and consensus_rows:
        materialized.add_track(conn, track_id, video_id)
    return track_id


def register(store: Store, info: VideoProbe, subject: str | None = None, name: str | None = None) -> IngestOutcome:
    """Write one probed video (row, frames) in one transaction; see the module docstring."""
    name = name or probed_name(info)
    path = str(info.path.resolve())
    with store.transaction() as conn:
        rows = conn.execute(text("SELECT id, path, name, content_hash FROM video WHERE content_hash = :h OR name = :n"),
                            {"h": info.content_hash, "n": name}).all()
        found = next((r for r in rows if r.content_hash == info.content_hash), None)
        if found is not None:
            return _known(conn, found, path, info)
        if rows:
            return IngestOutcome(path, "failed", name, reason=(
                f"the name {name!r} is taken by another video with different content "
                f"({rows[0].path}); rename one of them"))
        subject_id = ensure_subject(conn, subject) if subject else None
        row = {
            "name": name, "subject_id": subject_id, "path": path, "kind": info.kind,
            "content_hash": info.content_hash, "size_bytes": info.size_bytes,
            "mtime_ns": info.mtime_ns, "sample_hash": info.sample_hash,
            "container": info.container, "codec": info.codec, "stream_index": info.stream_index,
            "decoder": info.decoder, "fps_num": info.fps_num, "fps_den": info.fps_den,
            "frame_count": info.frame_count, "width": info.width, "height": info.height,
            "sar_num": info.sar_num, "sar_den": info.sar_den, "duration_s": info.duration_s,
            "is_vfr": info.is_vfr, "notes": list(info.notes), "ingested_at": utcnow(),
        }
        video_id = insert_ignore_returning(conn, Video.__table__, row, ["content_hash"], "id")
        if video_id is None:  # another process registered the same content a moment ago
            found = conn.execute(
                text("SELECT id, path, name FROM video WHERE content_hash = :h"), {"h": info.content_hash}
            ).first()
            return _known(conn, found, path, info)
        insert_rows(conn, "frame", ("video_id", "idx", "pts_s", "present"), _frame_rows(video_id, info))
    return IngestOutcome(path, "added", name, info.frame_count, info.decoder)


def _frame_rows(video_id: int, info: VideoProbe) -> Iterator[tuple[int, int, float, bool]]:
    for idx, (pts, present) in enumerate(zip(info.timestamps.tolist(), info.present.tolist())):
        yield video_id, idx, pts, present


def _known(conn: Connection, found: Any, path: str, info: VideoProbe) -> IngestOutcome:
    identity = {"m": info.mtime_ns, "s": info.sample_hash, "i": found.id}
    if found.path == path:
        # the probe hashed it in full: its identity as it is now (a copy's mtime, a row from before 0005)
        conn.execute(text("UPDATE video SET mtime_ns = :m, sample_hash = :s WHERE id = :i "
                          "AND (mtime_ns IS NULL OR mtime_ns <> :m OR sample_hash IS NULL OR sample_hash <> :s)"),
                     identity)
        return IngestOutcome(path, "present", found.name, info.frame_count, info.decoder)
    if Path(found.path).exists():
        return IngestOutcome(path, "present", found.name, info.frame_count, info.decoder,
                             reason=f"same content as {found.path}")
    conn.execute(text("UPDATE video SET path = :p, mtime_ns = :m, sample_hash = :s WHERE id = :i"),
                 {"p": path, **identity})
    return IngestOutcome(path, "moved", found.name, info.frame_count, info.decoder,
                         reason=f"was at {found.path}")


def _probe_one(path: Path, fps: float | None, verify: bool = False,
               path_map: PathMap | None = None) -> VideoProbe:
    """Probe ``path`` as a worker sees it (``path_map``); the result names the client's path."""
    if path_map is None or not path_map.pairs:
        return probe(path, fps=fps, verify=verify)
    info = probe(Path(path_map.to_worker(path)), fps=fps, verify=verify)
    return replace(info, path=Path(path))


def _probes(paths: Sequence[Path], executor: Executor, fps: float | None,
            verify: bool) -> Iterator[tuple[Path, VideoProbe | None, str | None]]:
    """Probe with ``executor`` (:mod:`affdata.executor`: this process, the local pool, whose
    dead workers fail only their own video, or a Dask cluster, which reruns them).

    Any error probing one file (a typed one, or an unexpected crash inside a decoder) is that
    file's failure; the other files go on.
    """
    # _probe_one as this module has it now (tests replace it)
    mapped = {"path_map": executor.path_map} if executor.path_map.pairs else {}
    task = partial(_probe_one, fps=fps, verify=verify, **mapped)
    for p, info, error in executor.map(task, paths):
        yield p, info, None if error is None else _reason(error, p)


def _reason(exc: BaseException, path: Path) -> str:
    if not isinstance(exc, AffdataError):  # an unexpected crash: say what it was
        log.debug("probing %s failed", path, exc_info=exc)
        return f"{type(exc).__name__}: {exc}"
    reason = getattr(exc, "reason", None)
    return reason if reason else str(exc).replace(f"{path}: ", "", 1)


class _Registrar(threading.Thread):
    """Writes probed videos to the store in a thread of its own, while the caller probes the
    next ones: PyAV's demux and SQLite's statements both release the GIL, so the two overlap
    (about 0.7 ms per video on a short clip, a third of the whole). Each video is still its own
    transaction, in probe order; outcomes and progress come from this thread alone.
    An unexpected error stops the registering and is re-raised by :func:`ingest_videos`; the
    queue is drained meanwhile, so the probing side never blocks on it.
    """

    def __init__(self, store: Store, rule: SubjectRule, report: IngestReport, progress: Progress | None) -> None:
        super().__init__(name="affdata-register", daemon=True)
        self.store, self.rule, self.report, self.progress = store, rule, report, progress
        self.queue: queue.Queue[tuple[Path, VideoProbe | None, str | None] | None] = queue.Queue(maxsize=8)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.handle(*item)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                    self.error = exc

    def handle(self, path: Path, info: VideoProbe | None, error: str | None) -> None:
        if info is None:
            outcome = IngestOutcome(str(path), "failed", video_name(path), reason=error)
        else:
            try:
                name = probed_name(info)
                outcome = register(self.store, info, self.rule(name), name)
            except AffdataError as exc:
                outcome = IngestOutcome(str(path), "failed", video_name(path), reason=str(exc))
        self.report.outcomes.append(outcome)
        if self.progress:
            self.progress(1)


def ingest_videos(
    store: Store,
    paths: Sequence[Path],
    *,
    recursive: bool = False,
    subject: str | None = None,
    subject_pattern: str | None = None,
    workers: int = 1,
    fps: float | None = None,
    verify: bool = False,
    progress: Progress | None = None,
    on_found: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> IngestReport:
    """Find, probe and register every video under ``paths``; never stops at a bad file.

    ``fps`` is the frame rate of frame folders (which carry none). ``verify`` decodes each
    video's first frame and checks decord against PyAV instead of choosing the decoder by rule
    (see :mod:`affdata.video.decoder`). ``on_found(n)`` is told how
    many videos were found before probing starts; ``progress(1)`` after each video.
    ``executor`` probes (:mod:`affdata.executor`; default: ``workers`` local processes);
    the registering stays in this process, one transaction per video.
    """
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}")
    rule = SubjectRule(subject, subject_pattern)
    inputs = [Path(p) for p in paths]
    found, skipped = list_videos(inputs, recursive=recursive)
    report = IngestReport()
    for p, reason in skipped:
        if reason == "does not exist":  # asked for by name: a failure, not a note
            report.outcomes.append(IngestOutcome(str(p), "failed", reason="does not exist"))
        else:
            report.skipped.append((str(p), reason))
    for folder in (p for p in inputs if p.is_dir()):
        if not any(v == folder or folder in v.parents for v in found):
            report.outcomes.append(IngestOutcome(str(folder), "failed", reason="no videos in this folder"))
    if on_found:
        on_found(len(found))
    registrar = _Registrar(store, rule, report, progress)
    executor = executor or PoolExecutor(workers, recycle_every=RECYCLE_EVERY)  # read now: tests set it
    if store.engine.url.database in (None, "", ":memory:"):  # one connection per thread there
        for item in _probes(found, executor, fps, verify):
            registrar.handle(*item)
    else:
        registrar.start()
        try:
            for item in _probes(found, executor, fps, verify):
                if registrar.error is not None:
                    break
                registrar.queue.put(item)
        finally:
            registrar.queue.put(None)
            registrar.join()
        if registrar.error is not None:
            raise registrar.error
    report.outcomes.sort(key=lambda o: o.path)
    return report


def frame_counts(store: Store) -> dict[str, int]:
    """Each stored video's verified frame count, by name (what ABAW files are written against)."""
    with store.connect() as conn:
        return {name: n for name, n in conn.execute(text("SELECT name, frame_count FROM video"))}
