"""Frame-sequence folders: a video given as numbered images, as ABAW's ``cropped_aligned/``.

Layout: ``<folder>/00001.jpg, 00002.jpg, ...`` (jpg, jpeg or png, any zero padding). Number
``k`` is frame index ``k - 1``, so line ``k + 1`` of an ABAW annotation file (after its header)
labels the image numbered ``k``. Numbers start at 1; a number missing below the highest one is a
frame the face detector skipped (``present[i]`` is False), not the end of the video, so
``frame_count`` is the highest number. A 0 or two files with the same number (``00001.jpg`` and
``1.png``) are refused: either would shift every label by one or make a frame ambiguous.

Other files in the folder (``Thumbs.db``, ``.DS_Store``) are ignored and noted. Only the first
image's header is read at probe time (no pixel decoding); every image is checked against that
size when decoded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from affdata.errors import VideoError
from affdata.video.hashing import folder_sha256
from affdata.video.identity import folder_identity
from affdata.video.model import VideoProbe

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
NUMBERED_IMAGE = re.compile(r"^(\d+)\.(jpe?g|png)$", re.IGNORECASE)
DEFAULT_FOLDER_FPS = 30
CONTAINER = "image2"  # ffmpeg's name for a numbered image sequence
_CODEC_OF_EXT = {".jpg": "mjpeg", ".jpeg": "mjpeg", ".png": "png"}  # ffmpeg codec names


@dataclass(frozen=True)
class FrameFolder:
    """The numbered images of a folder: ``images[k]`` is the file numbered ``k`` (from 1)."""

    path: Path
    images: dict[int, Path]
    ignored: tuple[str, ...]

    @property
    def frame_count(self) -> int:
        return max(self.images)


def numbered_image_number(name: str) -> int | None:
    """The frame number of a file name like ``00042.jpg``, or None if it is not one."""
    m = NUMBERED_IMAGE.match(name)
    return int(m.group(1)) if m else None


def scan_frame_folder(path: Path) -> FrameFolder:
    """List a frame folder's numbered images; :class:`VideoError` if it is not a usable one."""
    path = Path(path)
    if not path.is_dir():
        raise VideoError(path, "not a folder")
    images: dict[int, Path] = {}
    ignored: list[str] = []
    for entry in sorted(path.iterdir()):
        number = numbered_image_number(entry.name) if entry.is_file() else None
        if number is None:
            ignored.append(entry.name)
            continue
        if number == 0:
            raise VideoError(
                path, f"frame numbers start at 1 (00001.jpg is the first frame); found {entry.name}"
            )
        if number in images:
            raise VideoError(path, f"two images numbered {number}: {images[number].name} and {entry.name}")
        images[number] = entry
    if not images:
        raise VideoError(path, "folder has no numbered images (expected 00001.jpg, 00002.jpg, ... or .png)")
    return FrameFolder(path=path, images=dict(sorted(images.items())), ignored=tuple(ignored))


def probe_frame_folder(path: Path, fps: float | None = None) -> VideoProbe:
    """Probe a frame folder: count from the highest number, size from the first image's header."""
    from PIL import Image, UnidentifiedImageError

    folder = scan_frame_folder(path)
    notes: list[str] = []
    if fps is None:
        rate = Fraction(DEFAULT_FOLDER_FPS)
        notes.append(f"frame folder: no fps given, assuming {DEFAULT_FOLDER_FPS}")
    else:
        if not fps > 0:
            raise VideoError(path, f"fps must be positive, got {fps}")
        rate = Fraction(fps).limit_denominator(1001)
        notes.append(f"frame folder: fps {float(rate):g} from the caller")
    count = folder.frame_count
    present = np.zeros(count, dtype=bool)
    present[[k - 1 for k in folder.images]] = True
    missing = count - int(present.sum())
    if missing:
        notes.append(f"{missing} of {count} frame numbers missing (frames without a face): present=False")
    if folder.ignored:
        shown = ", ".join(folder.ignored[:5]) + (", ..." if len(folder.ignored) > 5 else "")
        notes.append(f"ignored {len(folder.ignored)} entries that are not numbered images: {shown}")

    first = next(iter(folder.images.values()))
    try:
        with Image.open(first) as im:  # lazy: reads the header only
            width, height = im.size
    except (UnidentifiedImageError, OSError) as exc:
        raise VideoError(first, f"not a readable image: {exc}") from None
    codecs = sorted({_CODEC_OF_EXT[p.suffix.lower()] for p in folder.images.values()})
    if len(codecs) > 1:
        notes.append(f"mixed image formats: {', '.join(codecs)}")
    notes.append(f"size {width}x{height} from the first image ({first.name}); checked per image at decode")

    files = list(folder.images.values())
    ident = folder_identity(folder.path, files)
    timestamps = np.arange(count, dtype=np.float64) * (rate.denominator / rate.numerator)
    return VideoProbe(
        path=folder.path,
        kind="frames",
        content_hash=folder_sha256(folder.path, files),
        size_bytes=sum(p.stat().st_size for p in files),
        container=CONTAINER,
        codec="+".join(codecs),
        stream_index=None,
        decoder="images",
        fps_num=rate.numerator,
        fps_den=rate.denominator,
        frame_count=count,
        width=width,
        height=height,
        sar_num=1,
        sar_den=1,
        duration_s=count * rate.denominator / rate.numerator,
        is_vfr=False,
        timestamps=timestamps,
        present=present,
        notes=tuple(notes),
        mtime_ns=ident.mtime_ns,
        sample_hash=ident.sample_hash,
    )


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 HxWx3.

    JPEGs go through simplejpeg when it is installed (libjpeg-turbo, about 1.5x faster than
    PIL and pixel-identical to it on the test images), everything else through PIL.
    """
    if path.suffix.lower() in (".jpg", ".jpeg"):
        try:
            import simplejpeg
        except ImportError:
            simplejpeg = None
        if simplejpeg is not None:
            try:
                return simplejpeg.decode_jpeg(path.read_bytes(), colorspace="RGB")
            except ValueError:
                pass  # e.g. CMYK or a damaged file: PIL gets its chance and its error message
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise VideoError(path, f"not a readable image: {exc}") from None


def iter_folder_frames(
    path: Path,
    wanted: Sequence[int] | range,
    *,
    frame_count: int,
    expected_size: tuple[int, int] | None,
    size: tuple[int, int] | None,
    present: np.ndarray | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, rgb)`` for the wanted indices whose image exists (missing ones skipped)."""
    folder = scan_frame_folder(path)
    changed = folder.frame_count != frame_count
    if not changed and present is not None:
        changed = len(present) != frame_count or any(not present[k - 1] for k in folder.images)
        changed = changed or int(np.count_nonzero(present)) != len(folder.images)
    if changed:
        raise VideoError(
            path,
            f"folder now has {len(folder.images)} images up to number {folder.frame_count}, "
            f"unlike when it was probed ({frame_count} frames): probe it again",
        )
    for index in wanted:
        file = folder.images.get(index + 1)
        if file is None:
            continue
        image = read_image(file)
        if expected_size is not None and (image.shape[1], image.shape[0]) != expected_size:
            raise VideoError(
                file,
                f"image is {image.shape[1]}x{image.shape[0]}, the folder's first image is "
                f"{expected_size[0]}x{expected_size[1]}",
            )
        if size is not None and (image.shape[1], image.shape[0]) != size:
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        yield index, image
