"""Finding videos: files by extension and numbered-image frame folders, nothing opened.

A frame folder (ABAW ``cropped_aligned/<video>/``) is a folder holding at least one numbered
image (``00001.jpg``) and no video file; it is one video and is never descended into. A folder
passed directly is that video if it is a frame folder, else its entries are listed: video
files, frame folders among its subfolders (so ``cropped_aligned/`` lists every video in it
without ``recursive``), and, with ``recursive``, everything below. Whether a file actually
decodes is :func:`affdata.video.probe`'s business, not this listing's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from affdata.video.frames import numbered_image_number

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif"})


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def is_frame_folder(path: Path) -> bool:
    """True if ``path`` (a folder) is a frame folder: numbered images and no video file."""
    has_image = False
    for entry in path.iterdir():
        if not entry.is_file():
            continue
        if is_video_file(entry):
            return False
        if numbered_image_number(entry.name) is not None:
            has_image = True
    return has_image


def list_videos(paths: Sequence[Path], recursive: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Videos (files and frame folders) under ``paths``, and what was skipped with the reason.

    Both lists are sorted and free of duplicates. Hidden entries (``.name``) are ignored
    silently; a path that does not exist, an unreadable folder, a file that is not a video and
    (without ``recursive``) a subfolder that is not a frame folder are reported in ``skipped``.
    """
    videos: set[Path] = set()
    skipped: dict[Path, str] = {}

    def visit_dir(folder: Path, top: bool) -> None:
        try:
            if is_frame_folder(folder):
                videos.add(folder)
                return
            entries = sorted(folder.iterdir())
        except OSError as exc:
            skipped[folder] = f"cannot be read: {exc.strerror or exc}"
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if recursive:
                    visit_dir(entry, top=False)
                elif _is_frame_folder_safe(entry):
                    videos.add(entry)
                elif top:
                    skipped[entry] = "folder, not a frame folder (use recursive to look inside)"
            elif is_video_file(entry):
                videos.add(entry)
            elif numbered_image_number(entry.name) is not None:
                skipped[entry] = "numbered image beside video files: the folder is not a frame folder"
            else:
                skipped[entry] = f"not a video ({entry.suffix.lower() or 'no extension'})"

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            skipped[path] = "does not exist"
        elif path.is_dir():
            visit_dir(path, top=True)
        elif is_video_file(path):
            videos.add(path)
        else:
            known = ", ".join(sorted(VIDEO_EXTENSIONS))
            skipped[path] = f"not a video ({path.suffix.lower() or 'no extension'}; expected one of {known})"
    for video in videos:
        skipped.pop(video, None)
    log.debug("found %d videos, skipped %d paths", len(videos), len(skipped))
    return sorted(videos), sorted(skipped.items())


def _is_frame_folder_safe(path: Path) -> bool:
    try:
        return is_frame_folder(path)
    except OSError:
        return False
