"""Opening containers with PyAV, and the rule that picks a file's video stream.

Stream rule (decided once at probe time, recorded as ``stream_index``, reused at decode time):
among the container's video streams that are not cover art (``attached_pic``), take the one
with the largest picture (width x height), then the most frames the container reports, then
the lowest stream index. Why not ffmpeg's "best stream": its scoring has changed between
ffmpeg releases (decord 0.6 bundles an older ffmpeg than PyAV), so the same file could get a
different stream after an upgrade; a rule written here is stable. For faces the largest picture
is also the useful one, and it is the stream decord picks on the two-stream test file
(torchcodec__nasa_13013.mp4: 480x270 at 29.97, not the first stream, 320x180 at 25).

PyAV (and ffmpeg) are imported lazily so that importing :mod:`affdata.video` stays cheap.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from affdata.errors import VideoError

if TYPE_CHECKING:
    import av.container
    import av.video.stream

_ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC: cover art, a single still, not the video


def ffmpeg_reason(exc: BaseException) -> str:
    """A one-line reason from a PyAV/ffmpeg error, without the repeated file name."""
    strerror = getattr(exc, "strerror", None)
    text = strerror or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def open_container(path: Path) -> av.container.InputContainer:
    """Open a media file for reading; every failure becomes a one-line :class:`VideoError`."""
    import av

    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoError(path, "does not exist") from None
    except OSError as exc:
        raise VideoError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise VideoError(path, "not a regular file")
    if st.st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        truncated = iso_bmff_truncation(path)
        if truncated:
            raise VideoError(path, f"truncated: {truncated}") from None
        raise VideoError(path, f"not a readable video (ffmpeg: {ffmpeg_reason(exc)})") from None
    except OSError as exc:
        raise VideoError(path, f"cannot be read: {exc.strerror or exc}") from None


def iso_bmff_truncation(path: Path) -> str | None:
    """For an MP4/MOV that ffmpeg cannot open: the top-level box that runs past the end, if any.

    ffmpeg's own message for a cut-off download ("Invalid data found") does not say why; the
    usual cause is an ``mdat`` box longer than the rest of the file, its ``moov`` index lost.
    Only box headers are read.
    """
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return None
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            box_size, box_type = struct.unpack(">I4s", f.read(8))
            if box_size == 1:  # 64-bit size follows
                box_size = struct.unpack(">Q", f.read(8))[0]
            elif box_size == 0:  # box runs to end of file: cannot be past it
                return None
            if box_size < 8:
                return None
            name = box_type.decode("latin-1")
            if offset + box_size > size:
                return f"the '{name}' box needs {offset + box_size} bytes, the file has {size}"
            offset += box_size
    return None


def codec_name(stream) -> str:
    """ffmpeg's codec name (``av1``), not the decoder's (``libdav1d``), so it names the format."""
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def candidate_video_streams(container: av.container.InputContainer) -> list[av.video.stream.VideoStream]:
    """The container's video streams, cover art (``attached_pic``) excluded."""
    # int(): older PyAV returns a plain int, newer an IntFlag
    return [s for s in container.streams.video if not int(s.disposition) & _ATTACHED_PIC]


def choose_video_stream(
    container: av.container.InputContainer, path: Path
) -> tuple[av.video.stream.VideoStream, list[str]]:
    """Apply the stream rule of this module; return the stream and notes on the choice."""
    streams = candidate_video_streams(container)
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoError(path, f"no video stream (streams: {', '.join(kinds)})")
    notes: list[str] = []
    chosen = min(
        streams,
        key=lambda s: (-(s.codec_context.width * s.codec_context.height), -(s.frames or 0), s.index),
    )
    if len(streams) > 1:
        listed = "; ".join(
            f"#{s.index} {codec_name(s)} {s.codec_context.width}x{s.codec_context.height} "
            f"{float(s.average_rate or s.guessed_rate or 0):.3f} fps {s.frames} frames"
            for s in streams
        )
        notes.append(
            f"{len(streams)} video streams ({listed}): chose #{chosen.index}, the largest picture"
        )
    return chosen, notes
