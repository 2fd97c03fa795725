"""The result of probing a video: :class:`VideoProbe`, and what decoding needs of it.

A probe is the one place where facts about a video are decided (which stream, which decoder,
how many frames, their timestamps). Decoding later reads only what the probe recorded, so the
frame index a label refers to means the same frame at probe time and at export time.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

Kind = Literal["file", "frames"]
Decoder = Literal["decord", "pyav", "images"]

KINDS: tuple[str, ...] = ("file", "frames")
DECODERS: tuple[str, ...] = ("decord", "pyav", "images")


class VideoSource(Protocol):
    """What :func:`affdata.video.iter_frames` needs: a :class:`VideoProbe` or a stored row.

    ``width``, ``height`` and ``size_bytes`` are read with ``getattr`` when present, to check
    that the file did not change since it was probed.
    """

    path: Any
    kind: str
    decoder: str
    stream_index: int | None
    frame_count: int


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class VideoProbe:
    """Everything known about one video file or frame folder, decided once at probe time.

    ``timestamps`` (float64, seconds) has one entry per frame in presentation order, rebased so
    the first frame is at 0.0 (the original offset is in ``notes``). ``present`` is False where a
    frame folder lacks that number (a frame without a face); always all True for files. Both
    arrays are read-only. ``eq=False``: two probes compare by identity; compare
    ``content_hash`` (or :meth:`to_dict`) to compare contents.
    """

    path: Path
    kind: Kind
    content_hash: str
    size_bytes: int
    container: str
    codec: str
    stream_index: int | None
    decoder: Decoder
    fps_num: int
    fps_den: int
    frame_count: int
    width: int
    height: int
    sar_num: int
    sar_den: int
    duration_s: float
    is_vfr: bool
    timestamps: np.ndarray = field(repr=False)
    present: np.ndarray = field(repr=False)
    notes: tuple[str, ...] = ()
    #: the cheap identity export checks the file against (:mod:`affdata.video.identity`)
    mtime_ns: int | None = None
    sample_hash: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "timestamps", _readonly(np.asarray(self.timestamps, dtype=np.float64)))
        object.__setattr__(self, "present", _readonly(np.asarray(self.present, dtype=bool)))
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, not {self.decoder!r}")
        if len(self.timestamps) != self.frame_count or len(self.present) != self.frame_count:
            raise ValueError(
                f"{self.path}: {len(self.timestamps)} timestamps and {len(self.present)} present "
                f"flags for {self.frame_count} frames"
            )

    @property
    def fps(self) -> Fraction:
        """The frame rate as an exact fraction (the average rate for VFR)."""
        return Fraction(self.fps_num, self.fps_den)

    @property
    def present_count(self) -> int:
        """Frames that exist (that :func:`iter_frames` yields when asked for all)."""
        return int(self.present.sum())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the path as a string, arrays as lists, notes as a list."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoProbe:
        """The inverse of :meth:`to_dict` (keys not in the dataclass are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
