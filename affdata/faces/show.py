"""A contact sheet of a video's face tracks: boxes, landmarks and names on sampled frames.

For a person to check a detection run in seconds. Frames are sampled evenly over the video,
decoded in order with the stored decoder, scaled to ``width`` and laid out in ``columns``.
Detections are drawn with a thick outline, boxes the tracker interpolated with a thin one;
landmarks are dots (eyes, nose, mouth corners); each box carries its track's name, each frame
its index and time, and frames without any box say so.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
from sqlalchemy import text

from affdata.db import Store
from affdata.errors import NotFoundError
from affdata.export.encode import VideoSourceRow
from affdata.schema import LANDMARK_COLUMNS

COLOURS = [(255, 64, 64), (64, 200, 255), (255, 210, 0), (120, 255, 120), (255, 120, 255),
           (255, 150, 60), (170, 140, 255), (0, 230, 200)]


def contact_sheet(store: Store, video: str, out: Path, *, frames: int = 12, columns: int = 4,
                  width: int = 320, track: str | None = None) -> Path:
    """Write the sheet of ``video`` to ``out`` (PNG) and return the path.

    ``track``: only that track, on frames sampled among those where it has a box.
    """
    from PIL import Image, ImageDraw

    from affdata.video import iter_frames

    with store.connect() as conn:
        v = conn.execute(text(
            "SELECT id, path, kind, decoder, stream_index, frame_count, width, height, size_bytes "
            "FROM video WHERE name = :n"), {"n": video}).first()
        if v is None:
            raise NotFoundError(f"no video named {video!r} in the store")
        pts = dict(conn.execute(text("SELECT idx, pts_s FROM frame WHERE video_id = :v AND present"),
                                {"v": v.id}).all())
        boxes = conn.execute(text(
            f"SELECT t.name, b.frame_idx, b.x, b.y, b.w, b.h, b.interpolated, b.origin, "
            f"{', '.join('b.' + c for c in LANDMARK_COLUMNS)} FROM face_box b "
            "JOIN track t ON t.id = b.track_id WHERE t.video_id = :v"), {"v": v.id}).all()
        names = sorted({b.name for b in boxes})
        if track is not None:
            if track not in names:
                raise NotFoundError(f"video {video!r} has no boxes on a track {track!r}; tracks with "
                                    f"boxes: {', '.join(names) or 'none'}")
            boxes = [b for b in boxes if b.name == track]
        present = np.array(sorted(pts) if track is None else sorted({int(b.frame_idx) for b in boxes}))
        n = min(frames, len(present))
        wanted = present[np.unique(np.linspace(0, len(present) - 1, n).round().astype(int))] if n \
            else np.zeros(0, int)
    by_frame: dict[int, list] = {}
    for b in boxes:
        by_frame.setdefault(int(b.frame_idx), []).append(b)
    colour = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}
    source = VideoSourceRow(v.path, v.kind, v.decoder, v.stream_index, int(v.frame_count),
                            int(v.width), int(v.height), v.size_bytes)
    scale = width / v.width
    height = max(1, round(v.height * scale))
    caption = 16
    rows = max(1, -(-len(wanted) // columns))
    sheet = Image.new("RGB", (columns * width, rows * (height + caption)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    with contextlib.closing(iter_frames(source, indices=wanted)) as decoded:
        for k, (index, rgb) in enumerate(decoded):
            x0, y0 = (k % columns) * width, (k // columns) * (height + caption)
            sheet.paste(Image.fromarray(rgb).resize((width, height), Image.BILINEAR), (x0, y0))
            here = by_frame.get(int(index), [])
            for b in here:
                c = colour[b.name]
                rect = [x0 + b.x * scale, y0 + b.y * scale, x0 + (b.x + b.w) * scale, y0 + (b.y + b.h) * scale]
                draw.rectangle(rect, outline=c, width=1 if b.interpolated else 3)
                marks = [getattr(b, col) for col in LANDMARK_COLUMNS]
                for px, py in zip(marks[0::2], marks[1::2]):
                    if px is not None and py is not None:
                        cx, cy = x0 + px * scale, y0 + py * scale
                        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=c)
                label = b.name + (" (interp.)" if b.interpolated else "") + ("" if b.origin == "detector" else f" [{b.origin}]")
                draw.text((rect[0] + 2, max(y0, rect[1] - 12)), label, fill=c)
            note = f"frame {index}  {pts.get(int(index), 0.0):.2f}s" + ("" if here else "  no face box")
            draw.text((x0 + 4, y0 + height + 2), note, fill=(230, 230, 230))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out
