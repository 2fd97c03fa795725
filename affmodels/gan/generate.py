"""Generating faces for target affects from a photo or a crop, with a trained GAN."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from affdata.export.crop import crop_resize, whole_frame_box
from affmodels.errors import ModelError
from affmodels.gan.generator import to_uint8
from affmodels.gan.grid import save_grid, target_label
from affmodels.gan.targets import Target
from affmodels.gan.train import load_gan


class TargetError(ModelError, ValueError):
    """A target affect that the GAN's vocabulary cannot express."""


def load_face(path: Path, size: int) -> torch.Tensor:
    """The centred square of an image, resized to ``size``: the export's whole-frame crop, with
    the export's resize, so a generator sees the pixels it was trained on."""
    frame = np.asarray(Image.open(path).convert("RGB"))
    height, width = frame.shape[:2]
    face = crop_resize(frame, whole_frame_box(width, height, folder=False), size)
    return torch.from_numpy(np.ascontiguousarray(face)).permute(2, 0, 1).unsqueeze(0).contiguous()


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
        except (ValueError, TargetError) as exc:
            raise TargetError(f"{path}:{line}: {exc}") from None
    return targets


@torch.no_grad()
def generate(checkpoint: Path, image: Path, targets: list[tuple[list[float], list[float], int]], out: Path,
             device: str = "cpu") -> list[Path]:
    """One PNG per target (``<image>_tNN.png``) and ``<image>_grid.png`` with all of them."""
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
    save_grid(out / f"{image.stem}_grid.png", face, [f.unsqueeze(0) for f in fakes], labels)
    return paths + [out / f"{image.stem}_grid.png"]
