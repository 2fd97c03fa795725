"""``export_part``: one part of a split as Parquet shards of face crops with their labels.

The main process plans (reads labels, chooses crop boxes, counts), writes the shards in
order, and keeps the staging folder's record; decoding, cropping and encoding run here
(``workers=1``) or in worker processes, one video per task, at most ``2 * workers`` videos
ahead of the writer. Workers spool their crops to files in the staging folder, so neither side
ever holds more than a chunk of images: peak memory follows the shard and chunk sizes and the
longest video's labels, not the dataset.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import shutil
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection

from affdata.db import Store
from affdata.errors import ConfigError, DiskFullError, NothingToExportError
from affdata.export import plan as planning
from affdata.export.crop import CROP_POLICY, CROP_POLICY_NO_WHOLE_FRAME, crop_boxes
from affdata.export.encode import (
    ENCODINGS,
    JPEG_SUBSAMPLING,
    Spool,
    TrackJob,
    VideoJob,
    binary_array,
    crop_video,
    crop_video_arrays,
    raise_worker_error,
    read_spool,
    spool_video,
)
from affdata.export.lock import export_lock
from affdata.export.publish import RECORD, publish
from affdata.export.manifest import Stats, build_manifest, fingerprint, manifest_bytes
from affdata.export.plan import TASKS, Scope, TrackLabels, VideoRef, Vocabulary
from affdata.export.rows import FORMAT_VERSION, build_batch, export_schema
from affdata.export.shards import ShardWriter, Staging
from affdata.export.unchanged import check_unchanged
from affdata.executor import Executor
from affdata.storage import check_url, is_url, redact, staging_root
from affdata.faces.align import ALIGN_POLICY, aligned_square, similarities
from affdata.workers import RECYCLE_EVERY, recycled_pool, threads_per_process, worker_context

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportResult:
    out: Path | str  # a folder, or the URL it was published to
    rows: int
    shards: int
    resumed_shards: int
    manifest: dict[str, Any] = field(repr=False)
    manifest_sha256: str
    export_id: int
    label_state: str
    #: what a person should know: videos without tracks, rows skipped without a box...
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "rows": self.rows, "shards": self.shards,
                "resumed_shards": self.resumed_shards, "manifest_sha256": self.manifest_sha256,
                "export_id": self.export_id, "label_state": self.label_state,
                "counts": self.manifest["counts"], "warnings": self.warnings}


@dataclass
class _TrackPlan:
    name: str
    subject: str | None
    rows: TrackLabels  # the rows still to write (after resuming)
    boxes: np.ndarray
    has_box: np.ndarray
    frames: int  # all of the track's frames, for progress
    affine: np.ndarray | None = None  # --align: (n, 6) frame-to-crop similarity, NaN rows: box crop


def _check(size: int, tasks: Sequence[str], image: str, quality: int, margin: float,
           shard_size: int, row_group_size: int, workers: int) -> list[str]:
    chosen = [t.strip().lower() for t in tasks if t.strip()]
    unknown = sorted(set(chosen) - set(TASKS))
    if unknown or not chosen:
        raise ConfigError(f"unknown task(s) {', '.join(unknown) or '(none given)'}; use va, au, expr")
    if image not in ENCODINGS:
        raise ConfigError(f"unknown image encoding {image!r}; use jpeg or raw")
    checks = [(size >= 8, f"size must be at least 8, got {size}"),
              (1 <= quality <= 100, f"quality must be in 1..100, got {quality}"),
              (margin > 0, f"margin must be positive, got {margin}"),
              (shard_size >= 1, f"shard size must be at least 1, got {shard_size}"),
              (row_group_size >= 1, f"row group size must be at least 1, got {row_group_size}"),
              (workers >= 1, f"workers must be at least 1, got {workers}")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    return [t for t in TASKS if t in chosen]


def _versions() -> dict[str, str]:
    import PIL
    import simplejpeg

    from importlib.metadata import version

    return {"pyarrow": pa.__version__, "simplejpeg": simplejpeg.__version__, "pillow": PIL.__version__,
            "torch": version("torch")}  # torch resizes the crops (affdata.export.crop)


def export_part(store: Store, *, split: str, part: str, out: Path | str, size: int = 112,
                tasks: Sequence[str] = TASKS, source: str = planning.CONSENSUS, image: str = "jpeg",
                quality: int = 90, margin: float = 1.2, shard_size: int = 8192,
                row_group_size: int = 512, workers: int = 1, include_unlabelled: bool = False,
                verify: bool = False, align: bool = False, whole_frame: bool = False,
                progress: Progress | None = None, on_total: Progress | None = None,
                executor: Executor | None = None) -> ExportResult:
    """Export one part of a split (docs/export-format.md); resumes an interrupted identical run.

    ``split`` is ``NAME`` (newest version) or ``NAME@VERSION``; ``source`` is ``consensus``
    (the views) or one label source's name (``NAME@VERSION`` where it has several).
    ``progress(n)`` hears of track-frames done (written, skipped as unlabelled, or resumed);
    ``on_total(n)`` is told their number first. Records the run in the store's ``export``.

    Holds ``OUT.lock`` throughout (:class:`BusyError` when another export holds it). Before any
    shard is written, every video is compared with what was ingested (size, modification time,
    sampled bytes; the full sha256 with ``verify``) and a changed one is refused
    (:class:`VideoChangedError`). A full disk is a :class:`DiskFullError` that keeps the complete
    shards to resume from and removes the rest.

    Rows of a video frame without a face box are skipped, and counted in the warnings, unless
    ``whole_frame`` (then they are cut as the centred square); frame folders' images without a
    box are taken whole (they are face crops already). ``align`` cuts rows with five landmarks
    by the similarity transform to the ArcFace template (:mod:`affdata.faces.align`). An export
    with no row at all raises :class:`NothingToExportError` and leaves nothing behind.

    ``out`` may be an fsspec URL (``s3://bucket/prefix``): the export is built in a local
    staging folder (:func:`affdata.storage.staging_root`), then its shards are uploaded and
    its manifest last (:mod:`affdata.export.publish`).

    ``executor`` (:mod:`affdata.executor`): a Dask one crops and encodes each video on the
    cluster and sends the crops back; this process alone writes shards and the manifest, so the
    output is byte-identical to a local run. Default: ``workers`` local processes.
    """
    task_list = _check(size, tasks, image, quality, margin, shard_size, row_group_size, workers)
    url = None
    if is_url(out):  # built in a local staging folder, then published (affdata.export.publish)
        url = check_url(str(out))
        root = staging_root(url)
        root.mkdir(parents=True, exist_ok=True)
        out = root / "export"
    elif str(out).startswith("file://"):
        out = Path(urlsplit(str(out)).path)
    out = Path(out).resolve()
    args = {"split": split, "part": part, "source": source, "tasks": task_list, "size": size,
            "image": image, "quality": quality, "margin": margin, "shard_size": shard_size,
            "row_group_size": row_group_size, "include_unlabelled": include_unlabelled,
            "align": align, "whole_frame": whole_frame}
    with _one_line_when_disk_full(out, None), export_lock(out):
        if url is None:
            return _export_locked(store, out, args, workers, verify, progress, on_total, executor)
        result = _export_locked(store, out, args, workers, verify, progress, on_total, executor,
                                publish_to=url)
        shutil.rmtree(out, ignore_errors=True)  # published: the local copy was only a staging area
        (out.parent / RECORD).unlink(missing_ok=True)
        return result


def _export_locked(store: Store, out: Path, args: dict[str, Any], workers: int, verify: bool,
                   progress: Progress | None, on_total: Progress | None,
                   executor: Executor | None, publish_to: str | None = None) -> ExportResult:
    task_list, image, size, quality = args["tasks"], args["image"], args["size"], args["quality"]
    margin, shard_size, row_group_size = args["margin"], args["shard_size"], args["row_group_size"]
    align, whole_frame = args["align"], args["whole_frame"]
    with store.connect() as conn:
        if not store.is_sqlite:  # one snapshot for the whole export (SQLite: the read transaction)
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        ref, scope = planning.resolve(conn, args["split"], args["part"], args["source"])
        videos = planning.part_videos(conn, ref)
        refresh = check_unchanged(videos, verify=verify)
        if refresh:
            with store.transaction() as wconn:
                planning.refresh_identity(wconn, refresh)
        vocab = planning.vocabularies(conn, scope)
        state = planning.label_state(conn, scope, ref, task_list)
        staging = Staging(out)
        with _one_line_when_disk_full(out, staging):
            kept = staging.prepare(fingerprint({
                "format_version": FORMAT_VERSION, "args": args, "versions": _versions(),
                "split": [ref.id, ref.version, ref.content_hash], "scope": [scope.name, scope.version, scope.source_ids],
                "vocabulary": vocab.to_json(), "label_state": state, "boxes": planning.box_state(conn, ref),
                "videos": [[v.id, v.name, v.content_hash, v.source.frame_count, v.source.size_bytes,
                            [[t.id, t.name, t.subject] for t in v.tracks]] for v in videos]}))
            if on_total is not None:
                on_total(sum(v.source.frame_count * len(v.tracks) for v in videos))
            writer = ShardWriter(staging.dir, export_schema(len(vocab.au_numbers)), shard_size,
                                 row_group_size, start_index=len(kept), on_shard=staging.add)
            stats = Stats(vocab)
            run = _Run(conn, scope, vocab, task_list, args["include_unlabelled"], margin, stats,
                       skip=sum(s.rows for s in kept), progress=progress,
                       crop=_CropRule(size, align, whole_frame))
            job_args = {"size": size, "encoding": image, "quality": quality}
            try:
                if executor is not None and executor.remote:
                    _export_cluster(run, videos, writer, job_args, executor)
                elif workers == 1:
                    _export_inline(run, videos, writer, staging, job_args)
                else:
                    _export_pool(run, videos, writer, staging, job_args, workers)
                writer.close()
            except BaseException:
                writer.abort()
                raise
            warnings = _warnings(videos, stats, align, whole_frame)
            for message in warnings:  # (the command line prints them from the result)
                log.info("%s", message)
            if stats.rows == 0:
                shutil.rmtree(staging.dir, ignore_errors=True)
                reasons = list(warnings)
                if not stats.skipped_without_box and any(v.tracks for v in videos):
                    reasons.append(f"no frame of the part's tracks has a {'/'.join(task_list)} label from "
                                   f"{args['source']!r} (--include-unlabelled exports every frame with a box)")
                raise NothingToExportError(f"nothing to export from {args['split']} part {args['part']!r}: "
                                           + "; ".join(reasons))
            image_info = {"encoding": image, "size": size, "quality": quality if image == "jpeg" else None,
                          "channels": 3, "margin": margin,
                          "crop_policy": CROP_POLICY if whole_frame else CROP_POLICY_NO_WHOLE_FRAME,
                          "subsampling": JPEG_SUBSAMPLING if image == "jpeg" else None,
                          "align": ALIGN_POLICY if align else None}
            manifest = build_manifest(
                format_version=FORMAT_VERSION, split=ref,
                source=scope.name if scope.consensus else args["source"], tasks=task_list,
                image=image_info, vocab=vocab, stats=stats, shards=staging.shards,
                shard_size=shard_size, row_group_size=row_group_size, label_state=state, args=args)
            blob = manifest_bytes(manifest)
            digest = hashlib.sha256(blob).hexdigest()
            staging.finish(blob)
    if publish_to is not None:
        publish(out, publish_to, out.parent / RECORD)
    with store.transaction() as wconn:
        export_id = planning.record_export(wconn, ref, publish_to or str(out), FORMAT_VERSION, state,
                                           args, digest, stats.rows)
    log.info("exported %d rows in %d shards to %s", stats.rows, len(staging.shards),
             redact(publish_to) if publish_to else out)
    return ExportResult(publish_to or out, stats.rows, len(staging.shards), len(kept), manifest, digest,
                        export_id, state, warnings)


def _warnings(videos: list[VideoRef], stats: Stats, align: bool, whole_frame: bool) -> list[str]:
    """Sentences for a person: what the export left out, or cut another way than asked."""
    out = []
    bare = [v.name for v in videos if not v.tracks]
    if bare:
        shown = ", ".join(bare[:5]) + (f" and {len(bare) - 5} more" if len(bare) > 5 else "")
        out.append(f"{len(bare)} of {len(videos)} videos have no tracks, so no rows: {shown} "
                   "(run affdata detect faces, or ingest boxes or labels for them)")
    if stats.skipped_without_box:
        out.append(f"{stats.skipped_without_box} labelled rows have no face box and were skipped "
                   "(affdata detect faces finds boxes; --whole-frame cuts the centred square instead)")
    if whole_frame and stats.whole_frame:
        out.append(f"{stats.whole_frame} rows have no face box and were cut as the centred square "
                   "(--whole-frame)")
    if align and stats.box_without_landmarks:
        out.append(f"{stats.box_without_landmarks} rows have a face box but no landmarks and were cut "
                   "by the box, not aligned")
    return out


@dataclass(frozen=True)
class _CropRule:
    size: int
    align: bool
    whole_frame: bool


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@contextmanager
def _one_line_when_disk_full(out: Path, staging: Staging | None) -> Iterator[None]:
    """``ENOSPC``/``EDQUOT`` become a :class:`DiskFullError`; what cannot be resumed is removed."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        folder = out.parent if staging is None else staging.dir
        if staging is not None:
            kept, size = staging.drop_unresumable()
            if kept:
                what = (f"kept the {kept} complete shards ({_mib(size)}) in {staging.dir}: free space "
                        f"and run the same command again to resume, or remove {staging.dir}")
            else:
                what = f"removed {staging.dir} (no complete shard to resume from)"
        else:
            what = "nothing was written"
        try:
            free = f"{_mib(shutil.disk_usage(folder if folder.exists() else out.parent).free)} free"
        except OSError:
            free = "free space unknown"
        raise DiskFullError(f"{out}: no space left on the device while exporting ({free} after "
                            f"clean-up; {exc.strerror or exc}); {what}") from None


class _Run:
    """Per-export state of the main process: planning each video and writing its rows."""

    def __init__(self, conn: Connection, scope: Scope, vocab: Vocabulary, tasks: list[str],
                 include_unlabelled: bool, margin: float, stats: Stats, skip: int,
                 progress: Progress | None, crop: _CropRule) -> None:
        self.conn, self.scope, self.vocab, self.tasks = conn, scope, vocab, tasks
        self.include_unlabelled, self.margin, self.stats = include_unlabelled, margin, stats
        self.skip = skip  # rows already in resumed shards
        self.progress = progress or (lambda n: None)
        self.crop = crop

    def plan(self, video: VideoRef) -> list[_TrackPlan]:
        """Read, select and count each track's rows; drop the ones already written."""
        plans = []
        for track in video.tracks:
            labels = planning.track_labels(self.conn, self.scope, self.vocab, video, track)
            n_frames = len(labels.frames)
            rows = planning.select_rows(labels, self.tasks, self.include_unlabelled)
            labelled = labels.has_va | labels.has_expr | labels.has_au
            boxes, has_box = crop_boxes(rows.boxes, self.margin)
            folder = video.source.kind == "frames" or video.source.decoder == "images"
            if not self.crop.whole_frame and not folder and not has_box.all():
                self.stats.skipped_without_box += int((~has_box).sum())
                keep = np.flatnonzero(has_box)
                rows, boxes, has_box = rows.take(keep), boxes[keep], has_box[keep]
            affine = self._align(rows, boxes, has_box) if self.crop.align else None
            self.stats.add(video.name, track.name, track.subject, rows, has_box,
                           int((labelled & ~labels.present).sum()))
            cut = min(self.skip, len(rows.frames))
            self.skip -= cut
            if cut:
                self.progress(cut)
                idx = np.arange(cut, len(rows.frames))
                rows, boxes, has_box = rows.take(idx), boxes[idx], has_box[idx]
                affine = None if affine is None else affine[idx]
            plans.append(_TrackPlan(track.name, track.subject, rows, boxes, has_box, n_frames - cut, affine))
        return plans

    def _align(self, rows: TrackLabels, boxes: np.ndarray, has_box: np.ndarray) -> np.ndarray:
        """--align: each row's frame-to-crop similarity (NaN: no box or no landmarks), and the
        ``box`` column of aligned rows set to the aligned crop's square (docs/export-format.md)."""
        affine = similarities(rows.landmarks.reshape(-1, 5, 2), self.crop.size)
        affine[~has_box] = np.nan
        aligned = ~np.isnan(affine[:, 0])
        for k in np.flatnonzero(aligned):
            boxes[k] = aligned_square(affine[k], self.crop.size)
        self.stats.aligned += int(aligned.sum())
        self.stats.box_without_landmarks += int((has_box & ~aligned).sum())
        return affine

    def job(self, video: VideoRef, plans: list[_TrackPlan], job_args: dict[str, Any],
            threads: int | None) -> VideoJob:
        tracks = tuple(TrackJob(p.rows.frames, p.boxes, p.has_box, p.affine) for p in plans)
        return VideoJob(video.name, video.source, tracks, threads=threads, **job_args)

    def write(self, writer: ShardWriter, video: VideoRef, plans: list[_TrackPlan],
              chunks: Iterator[tuple[int, pa.Array]]) -> None:
        """Write the video's rows from ``chunks`` (track by track, frames in order)."""
        pos = [0] * len(plans)
        for k, images in chunks:
            p, a, b = plans[k], pos[k], pos[k] + len(images)
            rows = p.rows.take(np.arange(a, b))
            writer.write(build_batch(writer.schema, video.name, video.id, p.name, p.subject, rows,
                                     p.boxes[a:b], p.has_box[a:b], images))
            pos[k] = b
            self.progress(len(images))
        for k, p in enumerate(plans):
            if pos[k] != len(p.rows.frames):
                raise RuntimeError(f"{video.name}/{p.name}: {pos[k]} crops for {len(p.rows.frames)} rows")
            self.progress(p.frames - pos[k])


def _export_inline(run: _Run, videos: list[VideoRef], writer: ShardWriter, staging: Staging,
                   job_args: dict[str, Any]) -> None:
    for i, video in enumerate(videos):
        plans = run.plan(video)
        run.write(writer, video, plans, _inline_chunks(run.job(video, plans, job_args, None),
                                                       staging.spool_dir / f"v{i}"))


def _inline_chunks(job: VideoJob, spool_stem: Path) -> Iterator[tuple[int, pa.Array]]:
    """The first track with rows goes straight to the writer; later tracks via spool files."""
    live = next((k for k, t in enumerate(job.tracks) if len(t.frames)), None)
    if live is None:
        return
    spools: dict[int, Spool] = {}
    try:
        for k, images in crop_video(job):
            if k == live:
                yield k, binary_array(images)
            else:
                spools.setdefault(k, Spool(Path(f"{spool_stem}-t{k}.arrow"))).write(images)
    finally:
        for s in spools.values():
            s.close()
    for k in sorted(spools):
        for images in read_spool(spools[k].path):
            yield k, images


def _export_cluster(run: _Run, videos: list[VideoRef], writer: ShardWriter,
                    job_args: dict[str, Any], executor: Any) -> None:
    """Videos cropped on a Dask cluster, at most ``2 * slots`` ahead of the writer; results
    written in order. A task rerun after its worker died gives the same crops, used once."""
    window: deque[tuple[VideoRef, list[_TrackPlan], Any]] = deque()
    todo = iter(videos)
    try:
        while True:
            while len(window) < executor.window:
                video = next(todo, None)
                if video is None:
                    break
                plans = run.plan(video)
                job = run.job(video, plans, job_args, None)
                job = replace(job, source=replace(job.source, path=executor.path_map.to_worker(job.source.path)))
                task = executor.submit(crop_video_arrays, job) if any(len(t.frames) for t in job.tracks) else None
                window.append((video, plans, task))
            if not window:
                return
            video, plans, task = window.popleft()
            arrays: list[pa.Array] = []
            if task is not None:
                result = task.result()
                if result[0] != "ok":  # the error names the path this host knows
                    raise_worker_error((*result[:2], executor.path_map.to_client(result[2]) if result[2] else "",
                                        result[3]))
                arrays = result[1]
            run.write(writer, video, plans, ((k, a) for k, a in enumerate(arrays) if len(a)))
    except BaseException:
        for _, _, task in window:
            if task is not None:
                task.cancel()
        raise


def _export_pool(run: _Run, videos: list[VideoRef], writer: ShardWriter, staging: Staging,
                 job_args: dict[str, Any], workers: int) -> None:
    ctx = worker_context()
    if ctx.get_start_method() == "forkserver":  # workers start from a server that has these loaded
        ctx.set_forkserver_preload(["numpy", "numpy.ma", "pyarrow", "PIL.Image", "PIL.ImageFile",
                                    "simplejpeg", "torch", "decord", "av", "affdata.video",
                                    "affdata.export.encode"])
    threads = threads_per_process(workers)
    window: deque[tuple[VideoRef, list[_TrackPlan], Future | None]] = deque()
    todo = iter(enumerate(videos))
    # Workers are recycled every RECYCLE_EVERY videos each, by a fresh pool (affdata.workers).
    more = True
    while more:
        with recycled_pool(workers, ctx) as pool:
            more = _pool_round(run, pool, todo, window, writer, staging, job_args, threads, workers)


def _pool_round(run: _Run, pool: Any, todo: Any, window: deque, writer: ShardWriter, staging: Staging,
                job_args: dict[str, Any], threads: int, workers: int) -> bool:
    """Submit up to ``workers * RECYCLE_EVERY`` videos to ``pool`` and write every result in
    order; True when videos may remain for another pool."""
    budget, exhausted = workers * RECYCLE_EVERY, False
    try:
        while True:
            while len(window) < 2 * workers and budget > 0 and not exhausted:
                nxt = next(todo, None)
                if nxt is None:
                    exhausted = True
                    break
                budget -= 1
                i, video = nxt
                plans = run.plan(video)
                job = run.job(video, plans, job_args, threads)
                fut = (pool.submit(spool_video, job, str(staging.spool_dir), f"v{i}")
                       if any(len(t.frames) for t in job.tracks) else None)
                window.append((video, plans, fut))
            if not window:
                return not exhausted
            video, plans, fut = window.popleft()
            paths: list[str] = []
            if fut is not None:
                result = fut.result()
                if result[0] != "ok":
                    raise_worker_error(result)  # type: ignore[arg-type]
                paths = result[1]  # type: ignore[assignment]
            run.write(writer, video, plans,
                      ((k, images) for k, p in enumerate(paths) for images in read_spool(Path(p))))
    except BaseException:
        for _, _, fut in window:
            if fut is not None:
                fut.cancel()
        raise
