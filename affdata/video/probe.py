"""Probing: the exact frame count, timestamps, stream and decoder of a video, decided once.

Labels (Aff-Wild2 / ABAW) are one line per decoded frame, so ``frame_count`` must be the number
of frames that in-order decoding yields, not what the container claims. The method, cheapest
exact one first:

1. **Demux, no pixel decoding** (PyAV ``container.demux(stream)``, about 5 ms for 1000 frames).
   Each packet of the chosen stream carries one coded frame; the sorted packet pts are the
   presentation timestamps (B-frames make decode order differ from presentation order, which is
   why they are sorted; it does not change the count). The packet count is taken as the frame
   count only when it provably is one, that is when all of these hold:

   - the codec emits exactly one frame per packet: h264, hevc, mjpeg, png, gif, and mpeg4 (Part 2)
     when it has no B-frames and no tiny packets (packed-B-frame / N-VOP placeholders);
   - every packet has a pts, all distinct, none negative, none before the first packet, and the
     first packet is a keyframe (otherwise an edit list or an open GOP makes the decoder drop
     frames: pyfeat__no_face.mp4 starts with 3 packets at -125 ms that ffmpeg decodes and drops);
   - no packet carries the discard flag (set by ffmpeg's mov demuxer for edit-list cuts) or the
     corrupt flag;
   - the container's own frame count, where it has one, equals the packet count.

   An edit list that only trims the start is the one exception to the discard rule: see
   :func:`_after_leading_trim` (the kept packets are counted).

   Codec delay (``has_b_frames``) needs no special case: the decoder holds frames back but
   flushes them all at end of stream, so the count is unchanged; only the order differs.

2. **Full decode, no colour conversion** (PyAV), where any condition fails: the count and the
   timestamps are those of the frames the decoder returns, in output order: by definition what
   in-order decoding with PyAV yields (decord is checked against it, below). It costs a decode
   of the whole stream (pyfeat__no_face.mp4: 60 ms for 95 frames at 960x540, against 4 ms to
   demux), so it runs only for the files that need it.

A file whose index points past its end (a truncated download) is refused rather than counted.
No pixel is decoded by default: ingest should cost about a demux. With ``verify`` the first frame
is decoded once (it confirms that the stream decodes and gives the real frame size and the
display rotation) and decord is checked against PyAV, as below.

Decoder: chosen in :mod:`affdata.video.decoder` (by rule by default; against PyAV with ``verify``).

Timestamps are rebased so that the first presented frame is at 0.0 s (decord does the same; an
ABAW label line refers to a frame index, not to a stream time); the original offset is noted.
``fps`` is the container's nominal rate when it matches the frame steps within 0.1 %, else the
rate measured from them; for variable frame rate (steps differing by more than one time-base
tick and 0.5 %) it is the average, ``frame_count / duration_s``. ``duration_s`` is the
presentation span plus the last frame's duration. ``container`` is ffmpeg's demuxer name as
ffprobe prints it (``mov,mp4,m4a,3gp,3g2,mj2``), ``codec`` ffmpeg's codec name (``av1``, not the
``libdav1d`` decoder that happens to read it).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from affdata.errors import VideoError
from affdata.video.decoder import choose_decoder, decoder_by_rule
from affdata.video.frames import probe_frame_folder
from affdata.video.hashing import file_sha256
from affdata.video.identity import file_identity
from affdata.video.model import VideoProbe
from affdata.video.streams import (
    candidate_video_streams,
    choose_video_stream,
    codec_name,
    ffmpeg_reason,
    open_container,
)

if TYPE_CHECKING:
    import av.video.stream

log = logging.getLogger(__name__)

#: Codecs whose packets are exactly one frame each (see the module docstring).
ONE_FRAME_PER_PACKET = frozenset({"h264", "hevc", "mjpeg", "png", "gif", "mpeg4"})
#: An MPEG-4 Part 2 packet this small is a "not coded" placeholder, not a picture.
_TINY_PACKET_BYTES = 8


@dataclass(frozen=True)
class _Packets:
    """The chosen stream's packets, one array per field (a Python object per packet would
    cost as much as demuxing it)."""

    pts: np.ndarray  # int64, 0 where a packet has none
    has_pts: np.ndarray  # bool
    duration: np.ndarray  # int64, 0 where unknown
    keyframe: np.ndarray  # bool
    discard: np.ndarray  # bool
    corrupt: np.ndarray  # bool
    size: np.ndarray  # int64

    @classmethod
    def of(cls, rows: list[tuple]) -> _Packets:
        """From ``(pts, duration, keyframe, discard, corrupt, size)`` tuples."""
        if not rows:
            empty_i, empty_b = np.zeros(0, np.int64), np.zeros(0, bool)
            return cls(empty_i, empty_b, empty_i, empty_b, empty_b, empty_b, empty_i)
        pts, duration, key, discard, corrupt, size = zip(*rows)
        has = np.array([p is not None for p in pts], dtype=bool)
        if not has.all():
            pts = [p if p is not None else 0 for p in pts]
        return cls(
            pts=np.array(pts, dtype=np.int64),
            has_pts=has,
            duration=np.array([d or 0 for d in duration], dtype=np.int64),
            keyframe=np.array(key, dtype=bool),
            discard=np.array(discard, dtype=bool),
            corrupt=np.array(corrupt, dtype=bool),
            size=np.array(size, dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.pts)

    def take(self, mask: np.ndarray) -> _Packets:
        return _Packets(*(getattr(self, f)[mask] for f in
                          ("pts", "has_pts", "duration", "keyframe", "discard", "corrupt", "size")))

    def last_duration(self) -> int:
        """The duration of the packet presented last."""
        return int(self.duration[int(np.argmax(self.pts))])


@dataclass(frozen=True)
class FirstFrame:
    width: int
    height: int
    rotation: int
    interlaced: bool
    rgb: np.ndarray


def probe(path: Path, *, fps: float | None = None, verify: bool = False) -> VideoProbe:
    """Probe a video file or a numbered-image folder; see the module docstring for the method.

    ``fps`` is the frame rate of a frame folder (default 30, noted). For a file it is only a
    cross-check: the file's own timestamps win, and a disagreement is noted. ``verify`` also
    decodes the first frame and checks decord against PyAV (see "Decoder" above).
    """
    path = Path(path)
    started = time.perf_counter()
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        raise VideoError(path, "does not exist") from None
    except OSError as exc:
        raise VideoError(path, f"cannot be read: {exc.strerror or exc}") from None
    try:
        result = probe_frame_folder(path, fps) if is_dir else _probe_file(path, fps, verify)
    except OSError as exc:  # the file (or a frame image) went away or broke while we read it
        raise VideoError(path, _os_reason(path, exc)) from None
    log.debug(
        "probed %s in %.3f s: %d frames, decoder %s",
        path, time.perf_counter() - started, result.frame_count, result.decoder,
    )
    return result


def _os_reason(path: Path, exc: OSError) -> str:
    gone = exc.filename if exc.filename and Path(exc.filename) != path else None
    what = f"{gone} " if gone else ""
    if isinstance(exc, FileNotFoundError):
        return f"{what}disappeared while it was being probed"
    return f"{what}could not be read while it was being probed: {exc.strerror or exc}"


def _probe_file(path: Path, fps_hint: float | None, verify: bool) -> VideoProbe:
    with open_container(path) as container:  # checks existence and zero size first
        size_bytes = path.stat().st_size
        stream, notes = choose_video_stream(container, path)
        codec = codec_name(stream)
        packets, first = _demux(container, stream, path, size_bytes, decode_first=verify)
        others = [  # plain values: stream objects must not outlive their container
            (s.index, s.codec_context.width, s.codec_context.height)
            for s in candidate_video_streams(container)
            if s.index != stream.index
        ]
        info = StreamFacts.of(stream, container.format.name)
    ident = file_identity(path)  # before the full hash: a change in between shows at export
    content_hash = file_sha256(path)
    if not packets:
        raise VideoError(path, "the video stream has no frames")
    if info.codec == "gif" and not _gif_complete(path):
        # ffmpeg reads a cut-off GIF without complaint, as a shorter animation
        raise VideoError(
            path, f"truncated: the GIF lacks its trailer byte (only {len(packets)} frames readable)"
        )

    reasons = _demux_not_exact(info, packets)
    kept = _after_leading_trim(info, packets) if reasons else None
    if kept is not None:
        ticks = np.sort(kept.pts)
        last_duration = kept.last_duration()
        method = (f"frame count by demux: {len(kept)} of {len(packets)} packets; the first "
                  f"{len(packets) - len(kept)} are flagged discard by the edit list, which the decoder "
                  f"decodes and drops ({codec})")
        if info.container_frames and info.container_frames != len(kept):
            notes.append(f"container reports {info.container_frames} frames, "
                         f"decoding yields {len(kept)}: using {len(kept)}")
    elif reasons:
        ticks, last_duration = _decode_timestamps(path, info.index)
        method = f"frame count by full decode ({'; '.join(reasons)})"
        if info.container_frames and info.container_frames != len(ticks):
            notes.append(
                f"container reports {info.container_frames} frames, "
                f"decoding yields {len(ticks)}: using {len(ticks)}"
            )
    else:
        ticks = np.sort(packets.pts)
        last_duration = packets.last_duration()
        method = f"frame count by demux: {len(packets)} packets, one frame each ({codec})"
    notes.insert(0, method)
    count = len(ticks)
    if count == 0:
        raise VideoError(path, "no frame could be decoded")

    timestamps, rate, is_vfr, duration_s, rate_notes = _timing(ticks, last_duration, info, count, fps_hint)
    notes.extend(rate_notes)

    width, height = info.width, info.height
    if first is not None and (first.width, first.height) != (width, height):
        notes.append(
            f"stream header says {width}x{height}, decoded frames are "
            f"{first.width}x{first.height}: using the decoded size"
        )
        width, height = first.width, first.height
    sar = info.sar
    if sar != 1:
        notes.append(
            f"sample aspect ratio {sar.numerator}/{sar.denominator}: "
            "frames are returned at coded size, not stretched"
        )
    if first is not None and first.rotation:
        notes.append(f"display rotation {first.rotation} degrees: frames are returned as coded, not rotated")
    if first is not None and first.interlaced:
        notes.append("interlaced: frames are returned as coded, not deinterlaced")

    if verify or others:
        decoder, decoder_note = choose_decoder(path, info, others, count, timestamps, first)
    else:
        decoder, decoder_note = decoder_by_rule(info, reasons)
    notes.append(decoder_note)

    return VideoProbe(
        path=path,
        kind="file",
        content_hash=content_hash,
        size_bytes=size_bytes,
        container=info.container,
        codec=codec,
        stream_index=info.index,
        decoder=decoder,
        fps_num=rate.numerator,
        fps_den=rate.denominator,
        frame_count=count,
        width=width,
        height=height,
        sar_num=sar.numerator,
        sar_den=sar.denominator,
        duration_s=duration_s,
        is_vfr=is_vfr,
        timestamps=timestamps,
        present=np.ones(count, dtype=bool),
        notes=tuple(notes),
        mtime_ns=ident.mtime_ns,
        sample_hash=ident.sample_hash,
    )


@dataclass(frozen=True)
class StreamFacts:
    """What the probe needs of the stream once the container is closed."""

    index: int
    container: str
    codec: str
    width: int
    height: int
    sar: Fraction
    time_base: Fraction
    container_frames: int
    has_b_frames: bool
    nominal_rates: tuple[Fraction, ...]
    average_rate: Fraction | None

    @classmethod
    def of(cls, stream: av.video.stream.VideoStream, container_name: str) -> StreamFacts:
        cc = stream.codec_context
        sar = stream.sample_aspect_ratio or cc.sample_aspect_ratio
        sar = Fraction(sar) if sar else Fraction(1)
        rates = tuple(
            Fraction(r) for r in (stream.guessed_rate, stream.base_rate, stream.average_rate) if r
        )
        return cls(
            index=stream.index,
            container=container_name,
            codec=codec_name(stream),
            width=cc.width,
            height=cc.height,
            sar=sar if sar > 0 else Fraction(1),
            time_base=Fraction(stream.time_base),
            container_frames=int(stream.frames or 0),
            has_b_frames=bool(cc.has_b_frames),
            nominal_rates=rates,
            average_rate=Fraction(stream.average_rate) if stream.average_rate else None,
        )


def _demux(container, stream, path: Path, file_size: int,
           decode_first: bool = True) -> tuple[_Packets, FirstFrame | None]:
    """All packets of ``stream`` (no pixel decoding), decoding the first frame if asked."""
    import av

    rows: list[tuple] = []
    ends: list[int] = []  # byte offset just past each packet, where the demuxer knows it
    first: FirstFrame | None = None
    codec = stream.codec_context
    try:
        for packet in container.demux(stream):
            size = packet.size
            if size == 0:  # the flush packet PyAV appends at end of stream
                continue
            rows.append((packet.pts, packet.duration, packet.is_keyframe, packet.is_discard,
                         packet.is_corrupt, size))
            pos = packet.pos
            ends.append(pos + size if pos is not None and pos >= 0 else 0)
            if decode_first and first is None:
                for frame in codec.decode(packet):
                    first = _first_frame_of(frame)
                    break
        if decode_first and first is None:
            for frame in codec.decode(None):  # flush: a short clip may end before any output
                first = _first_frame_of(frame)
                break
    except av.error.FFmpegError as exc:
        _refuse_past_end(path, ends, file_size)
        raise VideoError(
            path, f"damaged: reading failed after {len(rows)} frames (ffmpeg: {ffmpeg_reason(exc)})"
        ) from None
    _refuse_past_end(path, ends, file_size)
    if decode_first and first is None:
        raise VideoError(path, f"no frame of the {codec_name(stream)} stream could be decoded")
    reported = int(stream.frames or 0)
    if reported > len(rows) and _index_past_end(stream, file_size):
        raise VideoError(
            path, f"truncated: the index lists {reported} frames, only {len(rows)} are in the file"
        )
    return _Packets.of(rows), first


def _refuse_past_end(path: Path, ends: list[int], file_size: int) -> None:
    """A packet that the index places past the end of the file: a truncated download."""
    past = np.flatnonzero(np.array(ends, dtype=np.int64) > file_size)
    if past.size:
        raise VideoError(path, f"truncated: frame {int(past[0]) + 1} lies past the end of the file")


def _gif_complete(path: Path) -> bool:
    """A complete GIF ends with the trailer byte 0x3B (';')."""
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b";"


def _index_past_end(stream, file_size: int) -> bool:
    """True if the container's sample index points past the end of the file."""
    try:
        entries = stream.index_entries
        return any(e.pos + e.size > file_size for e in entries)
    except (AttributeError, TypeError):  # older PyAV without index_entries: be conservative
        return True


def _first_frame_of(frame) -> FirstFrame:
    return FirstFrame(
        width=frame.width,
        height=frame.height,
        rotation=int(getattr(frame, "rotation", 0) or 0),
        interlaced=bool(getattr(frame, "interlaced_frame", False)),
        rgb=frame.to_ndarray(format="rgb24"),
    )


def _after_leading_trim(info: StreamFacts, packets: _Packets) -> _Packets | None:
    """The packets an edit list keeps, where it only trims the start; None where it does more.

    An MP4 edit list that starts a video late makes ffmpeg's demuxer flag the packets before the
    start as discard: the decoder decodes them (later frames may refer to them) and drops their
    frames. When those packets all come first in presentation order and the kept ones pass every
    demux check, the decoded count is the kept packets' count (pyfeat__no_face.mp4: 98 packets, 3
    discarded at -125 ms, 95 frames; the decoded count is checked against it in the tests).
    """
    kept_mask = ~packets.discard
    if kept_mask.all() or not kept_mask.any() or not packets.keyframe[0] or not packets.has_pts.all():
        return None
    kept = packets.take(kept_mask)
    if packets.pts[packets.discard].max() >= kept.pts.min():
        return None
    if info.container_frames not in (0, len(packets)):
        return None
    if (kept.pts < packets.pts[0]).any():  # the GOP starts at the (trimmed) keyframe
        return None
    # the kept packets' own order is checked against the first packet overall (just above)
    waived = ("first packet is not a keyframe", "frames presented before the first packet (open GOP)")
    rest = [r for r in _demux_not_exact(replace(info, container_frames=0), kept) if r not in waived]
    return kept if not rest else None


def _demux_not_exact(info: StreamFacts, packets: _Packets) -> list[str]:
    """Why the packet count is not provably the decoded frame count (empty: it is)."""
    reasons: list[str] = []
    if info.codec not in ONE_FRAME_PER_PACKET:
        reasons.append(f"codec {info.codec} is not known to give one frame per packet")
    elif info.codec == "mpeg4" and (info.has_b_frames or (packets.size <= _TINY_PACKET_BYTES).any()):
        reasons.append("mpeg4 with B-frames or placeholder packets")
    missing = int((~packets.has_pts).sum())
    if missing:
        reasons.append(f"{missing} packets without pts")
    else:
        pts = packets.pts
        if pts.min() < 0:
            first_s = float(int(pts.min()) * info.time_base)
            reasons.append(f"negative timestamps (edit list), first at {first_s:.3f} s")
        if len(np.unique(pts)) != len(pts):
            reasons.append("duplicate packet timestamps")
        if (pts < pts[0]).any():
            reasons.append("frames presented before the first packet (open GOP)")
    if not packets.keyframe[0]:
        reasons.append("first packet is not a keyframe")
    discard = int(packets.discard.sum())
    if discard:
        reasons.append(f"{discard} packets flagged discard (edit list)")
    corrupt = int(packets.corrupt.sum())
    if corrupt:
        reasons.append(f"{corrupt} packets flagged corrupt")
    if info.container_frames and info.container_frames != len(packets):
        reasons.append(f"container reports {info.container_frames} frames, demux finds {len(packets)}")
    return reasons


def _decode_timestamps(path: Path, stream_index: int) -> tuple[np.ndarray, int]:
    """Decode the whole stream without colour conversion; frame pts in output order."""
    import av

    ticks: list[int | None] = []
    last_duration = 0
    with open_container(path) as container:
        stream = container.streams[stream_index]
        stream.thread_type = "AUTO"  # frame threading: same frames, faster (checked on the test clips)
        try:
            for frame in container.decode(stream):
                ticks.append(frame.pts)
                last_duration = int(frame.duration or 0)
        except av.error.FFmpegError as exc:
            raise VideoError(
                path, f"damaged: decoding failed after {len(ticks)} frames (ffmpeg: {ffmpeg_reason(exc)})"
            ) from None
    if any(t is None for t in ticks):
        raise VideoError(path, "decoded frames without timestamps: cannot place them in time")
    return np.array(ticks, dtype=np.int64), last_duration


def _timing(
    ticks: np.ndarray,
    last_duration: int,
    info: StreamFacts,
    count: int,
    fps_hint: float | None,
) -> tuple[np.ndarray, Fraction, bool, float, list[str]]:
    """Timestamps (rebased), frame rate, VFR flag and duration from the frame pts."""
    notes: list[str] = []
    tb = info.time_base
    if np.any(np.diff(ticks) <= 0):
        notes.append("decoded frame timestamps are not strictly increasing: kept in decoding order")
    if ticks[0] != 0:
        notes.append(f"first frame at {float(ticks[0] * tb):.3f} s in the stream: timestamps rebased to 0")
    rel = ticks - ticks[0]
    timestamps = rel.astype(np.float64) * float(tb)
    steps = np.diff(rel)
    span = int(rel[-1])
    is_vfr = False
    if len(steps):
        spread = int(steps.max() - steps.min())
        mean_step = span / (count - 1)
        is_vfr = spread > 1 and spread > 0.005 * mean_step
    if last_duration <= 0:
        last_duration = round(span / (count - 1)) if count > 1 else 0
    duration_ticks = span + last_duration

    if is_vfr:
        rate = Fraction(count) / (duration_ticks * tb)
        smin, smax = float(steps.min() * tb), float(steps.max() * tb)
        notes.append(
            f"variable frame rate: frame steps {smin * 1000:.1f} to {smax * 1000:.1f} ms; "
            f"fps is the average {float(rate):.3f}"
        )
    elif count > 1 and span > 0:
        measured = Fraction(count - 1) / (span * tb)
        rate = next(
            (r for r in info.nominal_rates if abs(r - measured) / measured < Fraction(1, 1000)),
            measured.limit_denominator(100_000),
        )
        if rate not in info.nominal_rates:
            notes.append(f"fps {float(rate):.3f} measured from the frame steps (container rates disagree)")
    else:
        rate = info.nominal_rates[0] if info.nominal_rates else Fraction(25)
        notes.append(f"single frame: fps {float(rate):g} from the container")
    if (
        not is_vfr
        and info.average_rate
        and abs(info.average_rate - rate) / rate >= Fraction(1, 1000)
    ):
        notes.append(
            f"container average rate {float(info.average_rate):.3f} differs from "
            f"the frame steps' {float(rate):.3f}"
        )
    if fps_hint is not None and abs(float(rate) - fps_hint) / float(rate) > 0.001:
        notes.append(
            f"fps {fps_hint:g} was given but the file's timestamps say {float(rate):.3f}: using the file's"
        )
    duration_s = float(duration_ticks * tb) if duration_ticks > 0 else float(count / rate)
    return timestamps, rate, is_vfr, duration_s, notes
