""":func:`detect_faces`: registered videos -> face tracks with boxes and landmarks in the store.

Per video: one pass of decoding, cut finding and detection (:mod:`affdata.faces.scan`), linking
and naming (:mod:`affdata.faces.track`), then one transaction that swaps the video's detector
boxes for the new ones (:mod:`affdata.faces.store`). With ``workers > 1`` the passes run in
worker processes (one video each, one detector per process, its ONNX threads shared out) and the
main process writes the results in order. A video that fails to decode is reported and the
others go on; a video with boxes from a file or a person is not touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import text

from affdata.db import Store
from affdata.errors import AffdataError, ConfigError, NotFoundError
from affdata.executor import Executor
from affdata.export.encode import VideoSourceRow
from affdata.faces.detector import make_detector
from affdata.faces.scan import scan_video
from affdata.faces.store import detector_source, kept_boxes, replace_detected
from affdata.faces.track import Track, TrackingParams, link, name_tracks
from affdata.workers import recycled_pool, threads_per_process, worker_context

log = logging.getLogger(__name__)
Progress = Callable[[int], None]


@dataclass(frozen=True)
class DetectOptions:
    detector: str = "centerface"
    stride: int = 5
    min_score: float = 0.5
    min_detections: int = 3
    max_side: int | None = None

    def check(self) -> None:
        if self.stride < 1:
            raise ConfigError(f"stride must be at least 1, got {self.stride}")
        if self.min_detections < 1:
            raise ConfigError(f"min detections must be at least 1, got {self.min_detections}")

    def tracking(self) -> TrackingParams:
        return TrackingParams(stride=self.stride, min_detections=self.min_detections,
                              min_score=self.min_score)


@dataclass
class VideoResult:
    video: str
    status: str  # detected | kept (boxes from a file or person) | failed
    frames: int = 0
    tracks: dict[str, int] = field(default_factory=dict)  # name -> frames with a box
    reason: str = ""


@dataclass
class DetectReport:
    source: str  # the detector's label source, NAME@VERSION
    videos: list[VideoResult]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "videos": [asdict(v) for v in self.videos], "seconds": self.seconds}

    @property
    def failed(self) -> list[VideoResult]:
        return [v for v in self.videos if v.status == "failed"]


@dataclass(frozen=True)
class _Job:
    name: str
    source: VideoSourceRow
    fps: float
    options: DetectOptions
    threads: int | None


_DETECTORS: dict[tuple[Any, ...], Any] = {}


def _detector(options: DetectOptions, threads: int | None) -> Any:
    """One detector per process and settings (an ONNX session costs about 0.1 s to load)."""
    key = (options.detector, options.min_score, options.max_side, threads)
    if key not in _DETECTORS:
        _DETECTORS[key] = make_detector(options.detector, min_score=options.min_score,
                                        max_side=options.max_side, threads=threads)
    return _DETECTORS[key]


def track_one(job: _Job, on_frame: Progress | None = None) -> tuple[int, list[Track], dict[str, float]]:
    """Scan, link and name one video's faces (what a worker runs)."""
    scan = scan_video(job.source, _detector(job.options, job.threads), job.options.stride,
                      threads=job.threads, on_frame=on_frame)
    tracks = name_tracks(link(scan.observations, scan.shot_starts, job.fps, job.options.tracking()))
    return scan.frames, tracks, scan.seconds


def _worker(job: _Job) -> tuple[str, Any]:
    try:
        return "ok", track_one(job)
    except AffdataError as exc:
        return "error", str(exc)


def _resolve(conn: Any, names: Sequence[str], all_videos: bool) -> list[Any]:
    rows = conn.execute(text(
        "SELECT id, name, path, kind, decoder, stream_index, frame_count, width, height, size_bytes, "
        "fps_num, fps_den FROM video")).all()
    if all_videos:
        if names:
            raise ConfigError("give video names or ask for all videos, not both")
        return sorted(rows, key=lambda r: r.name)
    if not names:
        raise ConfigError("name the videos to detect faces in, or ask for all videos")
    by_name = {r.name: r for r in rows}
    by_path = {str(Path(r.path)): r for r in rows}
    chosen, missing = [], []
    for name in names:
        row = by_name.get(name) or by_path.get(str(Path(name).resolve()))
        (chosen.append(row) if row is not None else missing.append(name))
    if missing:
        raise NotFoundError(f"not in the store: {', '.join(missing)} (ingest them first: affdata ingest "
                            f"videos; names are file stems, see affdata sql \"SELECT name FROM video\")")
    return list({r.id: r for r in chosen}.values())


def detect_faces(store: Store, videos: Sequence[str] = (), *, all_videos: bool = False,
                 options: DetectOptions = DetectOptions(), workers: int = 1,
                 progress: Progress | None = None, on_total: Progress | None = None,
                 executor: Executor | None = None) -> DetectReport:
    """Detect, track and store the faces of registered videos (docs/faces.md).

    ``videos`` are store names (or paths of registered files); ``all_videos`` takes every
    video. ``progress(n)`` hears of decoded frames, ``on_total(n)`` is told their number first.
    A Dask ``executor`` (:mod:`affdata.executor`) runs the passes on its workers, one video per
    task; this process writes each result in its own transaction, as they arrive.
    """
    options.check()
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    detector = _detector(options, None)  # fails early on a bad name or setting
    with store.connect() as conn:
        rows = _resolve(conn, videos, all_videos)
    with store.transaction() as conn:
        source_id = detector_source(conn, detector.name, detector.version, detector.params()
                                    | {"stride": options.stride, "min_detections": options.min_detections,
                                       "tracker": "bytetrack (supervision)"})
        source = conn.execute(text("SELECT name, version FROM label_source WHERE id = :i"),
                              {"i": source_id}).one()
    results: dict[str, VideoResult] = {}
    todo = []
    with store.connect() as conn:
        for r in rows:
            kept = kept_boxes(conn, r.id)
            if kept:
                results[r.name] = VideoResult(r.name, "kept", r.frame_count,
                                              reason=f"{kept} boxes from a file or a person; not replaced")
            else:
                todo.append(r)
    if on_total is not None:
        on_total(sum(r.frame_count for r in todo))
    tick = progress or (lambda n: None)
    seconds = {"detector": 0.0, "other": 0.0}
    threads = threads_per_process(workers) if workers > 1 else None

    def job(r: Any) -> _Job:
        src = VideoSourceRow(r.path, r.kind, r.decoder, r.stream_index, int(r.frame_count),
                             int(r.width), int(r.height), r.size_bytes)
        return _Job(r.name, src, r.fps_num / r.fps_den, options, threads)

    def write(r: Any, outcome: tuple[str, Any]) -> None:
        if outcome[0] != "ok":
            results[r.name] = VideoResult(r.name, "failed", r.frame_count, reason=outcome[1])
            log.warning("%s: %s", r.name, outcome[1])
            return
        frames, tracks, spent = outcome[1]
        for k in seconds:
            seconds[k] += spent.get(k, 0.0)
        with store.transaction() as conn:
            if kept_boxes(conn, r.id):  # a file's boxes arrived meanwhile: they win
                results[r.name] = VideoResult(r.name, "kept", frames, reason="boxes from a file arrived")
                return
            counts = replace_detected(conn, r.id, tracks, source_id)
        results[r.name] = VideoResult(r.name, "detected", frames, counts)

    if executor is not None and executor.remote:
        by_name = {r.name: r for r in todo}
        jobs = [replace(j, threads=None, source=replace(j.source, path=executor.path_map.to_worker(j.source.path)))
                for j in map(job, todo)]
        for j, outcome, error in executor.map(_worker, jobs):
            write(by_name[j.name], outcome if error is None else ("error", f"{type(error).__name__}: {error}"))
            tick(by_name[j.name].frame_count)
    elif workers == 1:
        for r in todo:
            try:
                outcome: tuple[str, Any] = ("ok", track_one(job(r), on_frame=tick))
            except AffdataError as exc:
                outcome = ("error", str(exc))
            write(r, outcome)
    else:
        ctx = worker_context()
        with recycled_pool(workers, ctx) as pool:
            futures: list[tuple[Any, Future]] = [(r, pool.submit(_worker, job(r))) for r in todo]
            for r, fut in futures:
                write(r, fut.result())
                tick(r.frame_count)
    ordered = [results[r.name] for r in rows]
    return DetectReport(f"{source.name}@{source.version}", ordered,
                        {k: round(v, 3) for k, v in seconds.items()})


