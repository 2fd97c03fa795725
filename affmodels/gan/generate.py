"""Generating faces for target affects from a photo or a crop, with a trained GAN."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from affdata.errors import AffdataError
from affdata.export.crop import crop_resize, whole_frame_box
from affmodels.errors import InputFileError, MissingFileError, TargetError
from affmodels.gan.generator import to_uint8
from affmodels.gan.grid import save_grid, target_label
from affmodels.gan.targets import Target
from affmodels.checkpoint import load_gan


def load_face(path: Path, size: int) -> torch.Tensor:
    """The centred square of an image, resized to ``size``: the export's whole-frame crop, with
    the export's resize, so a generator sees the pixels it was trained on."""
    if not Path(path).is_file():
        raise MissingFileError(f"{path}: no such image file")
    try:
        frame = np.asarray(Image.open(path).convert("RGB"))
    except (OSError, ValueError) as exc:  # Pillow's UnidentifiedImageError is an OSError
        raise InputFileError(f"{path}: not an image Pillow can read ({exc})") from None
    height, width = frame.shape[:2]
    face = crop_resize(frame, whole_frame_box(width, height, folder=False), size)
    return torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1).unsqueeze(0).contiguous()


def parse_aus(items: list[str]) -> dict[str, int]:
    """``["AU12=1", "AU6=0"]`` (the CLI's ``--au NAME=0|1``) as ``{"AU12": 1, "AU6": 0}``.

    The value is required: a bare ``AU12`` is refused rather than guessed."""
    aus: dict[str, int] = {}
    for item in items:
        name, eq, value = (part.strip() for part in item.partition("="))
        if not eq or value not in ("0", "1") or not name:
            raise TargetError(f"--au {item!r}: write NAME=1 (present) or NAME=0 (absent), e.g. AU12=1")
        aus[name] = int(value)
    return aus


def make_target(au_names: list[str], classes: list[str], *, valence: float = 0.0, arousal: float = 0.0,
                aus: dict[str, int] | None = None, expression: str | None = None) -> tuple[list[float], list[float], int]:
    """One target as (va, au vector, class index); AUs not named are 0."""
    from affdata.vocab import au_number, expression_id

    if not (-1 <= valence <= 1 and -1 <= arousal <= 1):
        raise TargetError(f"valence and arousal must be in [-1, 1], got {valence}, {arousal}")
    numbers = {au_number(a): i for i, a in enumerate(au_names)}
    au = [0.0] * len(au_names)
    for name, value in (aus or {}).items():
        n = au_number(name)
        if n not in numbers:
            raise TargetError(f"{name} is not one of this GAN's AUs ({', '.join(au_names)})")
        if value not in (0, 1):
            raise TargetError(f"{name}={value}: AU values are 0 or 1")
        au[numbers[n]] = float(value)
    expr = 0
    if expression is not None:
        wanted = expression_id(expression)
        ids = [expression_id(c) for c in classes]
        if wanted not in ids:
            raise TargetError(f"expression {expression!r} is not one of this GAN's classes ({', '.join(classes)})")
        expr = ids.index(wanted)
    return [valence, arousal], au, expr


def read_targets(path: Path, au_names: list[str], classes: list[str]) -> list[tuple[list[float], list[float], int]]:
    """A CSV with columns valence, arousal, expression and any AU columns (AU12 or AU12=...)."""
    if not Path(path).is_file():
        raise MissingFileError(f"{path}: no such targets file")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise TargetError(f"{path}: no targets")
    targets = []
    for line, row in enumerate(rows, start=2):
        try:
            aus = {k: int(float(v)) for k, v in row.items() if k.upper().startswith("AU") and v not in ("", None)}
            targets.append(make_target(au_names, classes, valence=float(row.get("valence") or 0),
                                       arousal=float(row.get("arousal") or 0), aus=aus,
                                       expression=row.get("expression") or None))
        except (ValueError, AffdataError) as exc:  # TargetError is a ValueError
            raise TargetError(f"{path}:{line}: {exc}") from None
    return targets


@torch.no_grad()
def generate(checkpoint: Path, image: Path, targets: list[tuple[list[float], list[float], int]], out: Path,
             device: str = "cpu") -> list[Path]:
    """One PNG per target (``<image>_tNN.png``, at the GAN's own size) and ``<image>_grid.png``
    with the source and all of them, enlarged to be looked at (:func:`save_grid`)."""
    G, _, state = load_gan(checkpoint, device)
    vocab = state["vocabulary"]
    size = state["image_size"]
    face = load_face(image, size)
    target = Target(torch.tensor([t[0] for t in targets], dtype=torch.float32),
                    torch.tensor([t[1] for t in targets], dtype=torch.float32).reshape(len(targets), -1),
                    torch.tensor([t[2] for t in targets], dtype=torch.int64), len(vocab["expressions"]))
    cond = target.condition().to(device)
    fakes = to_uint8(G(face.expand(len(targets), -1, -1, -1).to(device), cond).image).cpu()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, fake in enumerate(fakes):
        path = out / f"{image.stem}_t{i:02d}.png"
        Image.fromarray(fake.permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
    labels = [target_label(target, i, vocab["expressions"], vocab["au_names"]) for i in range(len(targets))]
    save_grid(out / f"{image.stem}_grid.png", face, [f.unsqueeze(0) for f in fakes], labels,
              title=f"{Path(checkpoint).name} after {state['step']} steps")
    return paths + [out / f"{image.stem}_grid.png"]
