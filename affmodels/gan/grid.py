"""A PNG of generated faces: one row per source face, column 0 the source, then one column
per (fixed) target, each with a text label on top, faces enlarged to be judged by eye. PIL
only (no matplotlib figure state)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from affmodels.gan.generator import to_uint8
from affmodels.gan.targets import Target

PAD = 4  # pixels between and around cells
MIN_CELL = 128  # a face is drawn at least this many pixels high (upscaled by a whole factor)
FONT_SIZE = 13
LINE = FONT_SIZE + 4  # pixels per label line
BG = (255, 255, 255)


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font (Pillow >= 10.1 with FreeType); else its bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # an older Pillow, or one built without FreeType
        return ImageFont.load_default()


def cell_scale(h: int, min_cell: int = MIN_CELL) -> int:
    """The whole factor that draws an ``h``-pixel face at least ``min_cell`` pixels high."""
    return max(1, -(-min_cell // h))


def target_label(
    target: Target,
    i: int,
    class_names: Sequence[str] | None = None,
    au_names: Sequence[str] | None = None,
) -> str:
    """e.g. ``"Happy v+0.62 a+0.30 AU6 AU12"``: the text of one target for the grid."""
    e = int(target.expr[i])
    name = (class_names[e] if class_names else f"expr{e}") if target.n_classes else ""
    v, a = (float(x) for x in target.va[i])
    on = torch.nonzero(target.au[i] > 0.5).flatten().tolist()
    aus = " ".join(au_names[j] if au_names else f"AU{j}" for j in on)
    return " ".join(p for p in (name, f"v{v:+.2f} a{a:+.2f}", aus) if p)


def _wrap(text: str, width: int, draw: ImageDraw.ImageDraw,
          font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> list[str]:
    """Greedy word wrap to ``width`` pixels; a word longer than a line is cut."""
    lines: list[str] = []
    for word in text.split():
        while len(word) > 1 and draw.textlength(word, font=font) > width:
            cut = 1
            while cut < len(word) - 1 and draw.textlength(word[: cut + 1], font=font) <= width:
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def grid_size(n: int, n_targets: int, h: int, w: int, label_lines: int, scale: int = 1,
              title_lines: int = 0) -> tuple[int, int]:
    """(width, height) in pixels of :func:`save_grid`'s image (``h``, ``w`` before scaling)."""
    cols = 1 + n_targets
    h, w = h * scale, w * scale
    header = (title_lines + label_lines) * LINE + PAD
    return cols * w + (cols + 1) * PAD, header + n * h + (n + 1) * PAD


def save_grid(
    path: str | Path,
    sources: Tensor,
    generated: Sequence[Tensor],
    target_labels: Sequence[str],
    *,
    title: str | None = None,
    min_cell: int = MIN_CELL,
) -> tuple[int, int]:
    """Write the grid PNG; returns its (width, height).

    ``sources`` uint8 (N, 3, H, W); ``generated`` one (N, 3, H, W) tensor per target, uint8
    or float in [0, 1]; ``target_labels`` one string per target (see :func:`target_label`),
    word-wrapped to the column width; ``title`` an optional line above everything (what the
    grid shows, e.g. the step). Faces are enlarged by a whole factor (nearest neighbour: every
    generated pixel stays visible as it is) to at least ``min_cell`` pixels, so a 64-pixel
    export still gives faces one can judge.
    """
    if len(generated) != len(target_labels):
        raise ValueError(f"{len(generated)} generated columns but {len(target_labels)} labels")
    n, _, h, w = sources.shape
    cols = [sources, *generated]
    for g in generated:
        if g.shape != sources.shape:
            raise ValueError(f"generated column of shape {tuple(g.shape)}, sources {tuple(sources.shape)}")
    scale = cell_scale(h, min_cell)
    sh, sw = h * scale, w * scale
    font = _font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [_wrap(t, sw, measure, font) for t in ["source", *target_labels]]
    n_lines = max(len(lines) for lines in labels)
    width = grid_size(n, len(generated), h, w, n_lines, scale)[0]
    title_lines = _wrap(title, width - 2 * PAD, measure, font) if title else []
    size = grid_size(n, len(generated), h, w, n_lines, scale, title_lines=len(title_lines))
    canvas = Image.new("RGB", size, BG)
    draw = ImageDraw.Draw(canvas)
    top = PAD
    for line in title_lines:
        draw.text((PAD, top), line, fill=(0, 0, 0), font=font)
        top += LINE
    faces_top = top + n_lines * LINE
    for c, (col, lines) in enumerate(zip(cols, labels)):
        x = PAD + c * (sw + PAD)
        for li, line in enumerate(lines):
            draw.text((x, top + li * LINE), line, fill=(0, 0, 0), font=font)
        pixels = (col if col.dtype == torch.uint8 else to_uint8(col)).detach().cpu()
        for r in range(n):
            tile = Image.fromarray(np.ascontiguousarray(pixels[r].permute(1, 2, 0).numpy()), "RGB")
            if scale > 1:
                tile = tile.resize((sw, sh), Image.NEAREST)
            canvas.paste(tile, (x, faces_top + PAD + r * (sh + PAD)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG")
    return size


__all__ = ["cell_scale", "grid_size", "save_grid", "target_label"]
