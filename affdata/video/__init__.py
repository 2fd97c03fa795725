"""The video layer: find videos, probe them once (exact frame count, timestamps, stream,
decoder), and decode them in order with what the probe recorded. No database here.

- :func:`list_videos` finds video files and numbered-image frame folders;
- :func:`probe` returns a :class:`VideoProbe` (see :mod:`affdata.video.probe` for the method);
- :func:`iter_frames` yields ``(index, rgb)`` in order, never seeking.

Importing this package imports neither decord nor PyAV: both are loaded when first used
(decord imported before torch can hang DataLoader workers; PyAV costs startup time).
"""

from __future__ import annotations

from affdata.video.decode import iter_frames
from affdata.video.discover import VIDEO_EXTENSIONS, is_frame_folder, list_videos
from affdata.video.frames import DEFAULT_FOLDER_FPS
from affdata.video.model import VideoProbe, VideoSource
from affdata.video.probe import probe

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "VIDEO_EXTENSIONS",
    "VideoProbe",
    "VideoSource",
    "is_frame_folder",
    "iter_frames",
    "list_videos",
    "probe",
]
