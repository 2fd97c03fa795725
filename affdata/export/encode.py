"""Decode one video in order, crop every wanted (track, frame), encode the crops.

This is the part that runs in worker processes, so it touches no database: a
:class:`VideoJob` carries what decoding needs (the stored video row's fields) and, per track,
the wanted frames and their crop boxes, all decided by the main process.

A video is decoded once, front to back (:func:`affdata.video.iter_frames`, never a seek), and
each decoded frame is cropped for every track that wants it. Export order is track by track,
so a two-person video's second track is produced while the first is still being written:
its crops go to a **spool** file (an Arrow IPC stream of JPEG/raw bytes) in the staging folder
and are read back after the first track, which keeps memory bounded by a chunk, not a video.
In worker processes every track is spooled, and the main process reads the files in order.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from affdata.errors import AffdataError, InputError, VideoError
from affdata.export.crop import crop_resize, one_resize_thread, whole_frame_box
from affdata.faces.align import warp

log = logging.getLogger(__name__)

ENCODINGS = ("jpeg", "raw")
#: chroma subsampling of the JPEG crops (recorded in the manifest)
JPEG_SUBSAMPLING = "420"
#: crops per chunk handed from the decoder to the writer (and per spool batch)
CHUNK = 256
_SPOOL_SCHEMA = pa.schema([pa.field("image", pa.binary(), nullable=False)])


@dataclass(frozen=True)
class VideoSourceRow:
    """The stored video row's fields that :func:`affdata.video.iter_frames` reads."""

    path: str
    kind: str
    decoder: str
    stream_index: int | None
    frame_count: int
    width: int
    height: int
    size_bytes: int | None


@dataclass(frozen=True)
class TrackJob:
    """One track's wanted frames (strictly increasing) and crop boxes (``has_box`` false: policy)."""

    frames: np.ndarray  # int32 (n,)
    boxes: np.ndarray  # int32 (n, 4)
    has_box: np.ndarray  # bool (n,)
    #: float64 (n, 6) frame-to-crop similarity of ``--align`` (affdata.faces.align); NaN rows: box crop
    affine: np.ndarray | None = None


@dataclass(frozen=True)
class VideoJob:
    video: str
    source: VideoSourceRow
    tracks: tuple[TrackJob, ...]
    size: int
    encoding: str
    quality: int
    threads: int | None = None


def encode_image(rgb: np.ndarray, encoding: str, quality: int) -> bytes:
    """JPEG (simplejpeg: libjpeg-turbo, deterministic) or raw row-major RGB bytes."""
    if encoding == "raw":
        return np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    import simplejpeg

    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=quality, colorspace="RGB",
                                  colorsubsampling=JPEG_SUBSAMPLING, fastdct=False)


def binary_array(images: list[bytes]) -> pa.Array:
    """An Arrow binary array of ``images``, built from one joined buffer.

    Cheaper than ``pa.array(images)``, whose first call in a process also imports pandas
    (a quarter of a second in every fresh worker).
    """
    offsets = np.zeros(len(images) + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, images), dtype=np.int64, count=len(images)), out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), len(images),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(images))])


def crop_video(job: VideoJob) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(track position, encoded crops)`` chunks, each track's crops in frame order.

    Chunks of different tracks interleave (decode order); the frames of each track come out
    in full and in order, or a :class:`VideoError` says which frame was missing.
    """
    from affdata.video import iter_frames

    src = job.source
    folder = src.kind == "frames" or src.decoder == "images"
    wanted = [t.frames for t in job.tracks if len(t.frames)]
    if not wanted:
        return
    union = np.unique(np.concatenate(wanted))
    # plain lists: the per-frame loop below then does no numpy scalar work
    frames_of = [t.frames.tolist() for t in job.tracks]
    boxes_of = [t.boxes.tolist() for t in job.tracks]
    has_box_of = [t.has_box.tolist() for t in job.tracks]
    affine_of = [t.affine for t in job.tracks]
    pos = [0] * len(job.tracks)
    chunks: list[list[bytes]] = [[] for _ in job.tracks]
    # one_resize_thread() imports torch, before iter_frames imports decord (decord first can hang
    # torch's DataLoader workers in this process later)
    with one_resize_thread(), contextlib.closing(iter_frames(src, indices=union, threads=job.threads)) as frames:
        for index, rgb in frames:
            for k, wanted_frames in enumerate(frames_of):
                p = pos[k]
                if p >= len(wanted_frames) or wanted_frames[p] != index:
                    continue
                affine = affine_of[k]
                if affine is not None and not np.isnan(affine[p, 0]):
                    crop = warp(rgb, affine[p], job.size)
                else:
                    box = boxes_of[k][p] if has_box_of[k][p] else whole_frame_box(rgb.shape[1], rgb.shape[0], folder)
                    crop = crop_resize(rgb, box, job.size)
                chunks[k].append(encode_image(crop, job.encoding, job.quality))
                pos[k] = p + 1
                if len(chunks[k]) >= CHUNK:
                    yield k, chunks[k]
                    chunks[k] = []
    for k, track in enumerate(job.tracks):
        if chunks[k]:
            yield k, chunks[k]
        if pos[k] != len(track.frames):
            missing = int(track.frames[pos[k]])
            raise VideoError(src.path, f"frame {missing} of video {job.video!r} was not decoded "
                                       "(image missing from the frame folder?)")


class Spool:
    """An Arrow IPC stream file of encoded crops, written in chunks and read back in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._sink: Any = None
        self._writer: Any = None

    def write(self, images: list[bytes]) -> None:
        if self._writer is None:
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pa.ipc.new_stream(self._sink, _SPOOL_SCHEMA)
        self._writer.write_batch(pa.record_batch([binary_array(images)], schema=_SPOOL_SCHEMA))
        self.rows += len(images)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None


def read_spool(path: Path) -> Iterator[pa.Array]:
    """The spooled chunks of one track, in order; the file is deleted once read."""
    if not path.exists():
        return
    try:
        with pa.memory_map(str(path)) as source:
            for batch in pa.ipc.open_stream(source):
                yield batch.column(0)
    finally:
        path.unlink(missing_ok=True)


def spool_video(job: VideoJob, spool_dir: str, tag: str) -> tuple[str, list[str]] | tuple[str, str, str, str]:
    """Worker entry: crop one video, spool every track; ``("ok", paths)`` or an error tuple.

    Errors travel as plain tuples: the library's error classes take more than a message to
    construct, so they would not survive unpickling in the parent.
    """
    spools = [Spool(Path(spool_dir) / f"{tag}-t{k}.arrow") for k in range(len(job.tracks))]
    try:
        for k, images in crop_video(job):
            spools[k].write(images)
    except InputError as exc:
        return ("error", type(exc).__name__, exc.path, exc.reason)
    except AffdataError as exc:
        return ("error", type(exc).__name__, "", str(exc))
    finally:
        for s in spools:
            s.close()
    return ("ok", [str(s.path) for s in spools])


def crop_video_arrays(job: VideoJob) -> tuple[str, list[pa.Array]] | tuple[str, str, str, str]:
    """Cluster worker entry: crop one video, return each track's crops as one Arrow binary
    array (``("ok", arrays)``) or an error tuple as :func:`spool_video` does.

    Results travel back to the client by value (a cluster's workers may not share its disk):
    about 4 KiB per 112 px JPEG crop, so a 10 000-frame video is about 40 MiB in flight.
    """
    chunks: list[list[pa.Array]] = [[] for _ in job.tracks]
    try:
        for k, images in crop_video(job):
            chunks[k].append(binary_array(images))
    except InputError as exc:
        return ("error", type(exc).__name__, exc.path, exc.reason)
    except AffdataError as exc:
        return ("error", type(exc).__name__, "", str(exc))
    return ("ok", [pa.concat_arrays(c) if c else pa.array([], pa.binary()) for c in chunks])


def raise_worker_error(result: tuple[str, str, str, str]) -> None:
    """Re-raise an error tuple from :func:`spool_video` as the library error it was."""
    _, kind, path, reason = result
    if path:
        raise VideoError(path, reason) if kind == "VideoError" else InputError(path, reason)
    raise AffdataError(reason)
