"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

Why: the generator learns to show a target affect from the discriminator's task heads. A few
thousand steps on a few thousand faces let those heads (and the realness head) latch on to
exact pixel positions, and the generator then satisfies them with small, position-exact
perturbations that another recogniser does not read as the affect. Shifting every image that
D sees by a few pixels and blanking a small random square, on real and generated faces alike
and differentiably (so G's gradients pass through), makes D judge the shape of a face rather
than where its pixels are.

The transforms keep a face's affect: a shift of at most ``shift`` of the side, and a cutout of
``cutout`` of the side (a quarter by default: a brow or a mouth corner, never the whole
mouth). Randomness comes from torch's global generator, which checkpoints save and resume
restores, so a resumed run draws the same shifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class DiffAugment:
    """``augment(images) -> images``: random per-image translation then cutout, float in, float out."""

    shift: float = 0.125  # the largest shift, as a fraction of the side (DiffAugment's 1/8)
    cutout: float = 0.25  # side of the blanked square, as a fraction of the side (0 = none)

    def __call__(self, images: Tensor) -> Tensor:
        if not images.is_floating_point():
            raise TypeError(f"DiffAugment takes float images, got {images.dtype}")
        out = translate(images, self.shift) if self.shift > 0 else images
        return cut_out(out, self.cutout) if self.cutout > 0 else out


def translate(images: Tensor, ratio: float) -> Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its side in x and y; the border
    that comes in is zero (black after the discriminator's normalisation: a plain edge)."""
    b, _, h, w = images.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b, 1, 1), device=images.device)
    dx = torch.randint(-sx, sx + 1, (b, 1, 1), device=images.device)
    n = torch.arange(b, device=images.device)[:, None, None]
    rows = (torch.arange(h, device=images.device)[None, :, None] + dy + sy).expand(b, h, w)
    cols = (torch.arange(w, device=images.device)[None, None, :] + dx + sx).expand(b, h, w)
    padded = F.pad(images, (sx, sx, sy, sy))  # (B, C, H + 2sy, W + 2sx)
    return padded.permute(0, 2, 3, 1)[n, rows, cols].permute(0, 3, 1, 2)


def cut_out(images: Tensor, ratio: float) -> Tensor:
    """Blank one square of side ``ratio`` of the image's, at a random place (it may be cut by
    the border), in each image."""
    b, _, h, w = images.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    cy = torch.randint(0, h, (b, 1, 1), device=images.device)
    cx = torch.randint(0, w, (b, 1, 1), device=images.device)
    ys = torch.arange(h, device=images.device)[None, :, None]
    xs = torch.arange(w, device=images.device)[None, None, :]
    top, left = cy - ch // 2, cx - cw // 2
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)  # (B, H, W)
    return images * (~inside).unsqueeze(1).to(images.dtype)


__all__ = ["DiffAugment", "cut_out", "translate"]
