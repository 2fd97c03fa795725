"""Label-safe augmentations on uint8 pixels, seeded per sample by (seed, epoch, position).

Horizontal flip is label-safe here: VA and expression do not depend on the side, and the
exported AUs are bilateral/symmetric units (no L/R split). A random square crop (scale jitter,
resized back with nearest-neighbour indexing), brightness and contrast are one gather and one
256-entry lookup table per image; even so, in numpy they cost about as much as the JPEG decode
(docs/models.md), so training on a GPU does them there. Randomness comes from a
counter-based hash of (seed, epoch, position in the epoch's sequence, parameter), not from a
stateful generator, so a resumed epoch reproduces every augmentation exactly. The same
parameters drive :meth:`Augment.apply` (numpy, in the loader's workers) and
:meth:`Augment.apply_torch` (batched on the training device): the results are equal bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)
N_PARAMS = 6  # flip, scale, y, x, brightness, contrast


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLD
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniforms(seed: int, epoch: int, positions: np.ndarray, n: int = N_PARAMS) -> np.ndarray:
    """(len(positions), n) floats in [0, 1): a pure function of (seed, epoch, position, column)."""
    with np.errstate(over="ignore"):
        key = _splitmix(_splitmix(np.array([seed], np.uint64)) ^ np.uint64(epoch))
        x = _splitmix(key ^ positions.astype(np.uint64)[:, None] * np.uint64(n)
                      + np.arange(n, dtype=np.uint64)[None, :])
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class Augment:
    """``hflip``: probability; ``scale``: crop side range as a fraction of the image side;
    ``brightness``: shift in [-b, b] x 255; ``contrast``: factor in [1 - c, 1 + c] about 128."""

    hflip: float = 0.5
    scale: tuple[float, float] = (0.85, 1.0)
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.hflip <= 1:
            raise ValueError(f"hflip must be a probability in [0, 1], got {self.hflip}")
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi <= 1, got {self.scale}")
        if not 0 <= self.brightness <= 1 or not 0 <= self.contrast < 1:
            raise ValueError(f"brightness must be in [0, 1] and contrast in [0, 1), got "
                             f"{self.brightness}, {self.contrast}")

    def plan(self, h: int, w: int, seed: int, epoch: int,
             positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """What :meth:`apply` does to each image, as arrays: (changed (n,) bool: needs the gather,
        ys (n, h) and xs (n, w) source rows and columns, luts (n, 256) uint8 or None)."""
        n = len(positions)
        u = uniforms(seed, epoch, np.asarray(positions))
        lo, hi = self.scale
        side = np.maximum(1, np.round((lo + (hi - lo) * u[:, 1]) * min(h, w))).astype(np.int64)
        y0 = np.floor(u[:, 2] * (h - side + 1)).astype(np.int64)
        x0 = np.floor(u[:, 3] * (w - side + 1)).astype(np.int64)
        ys = y0[:, None] + (np.arange(h)[None, :] * side[:, None]) // h
        xs = x0[:, None] + (np.arange(w)[None, :] * side[:, None]) // w
        flip = u[:, 0] < self.hflip
        xs[flip] = xs[flip, ::-1]
        changed = (side != min(h, w)) | flip
        luts = None
        if self.brightness or self.contrast:
            c = 1 + self.contrast * (2 * u[:, 5:6] - 1)
            b = 255 * self.brightness * (2 * u[:, 4:5] - 1)
            levels = np.arange(256, dtype=np.float64)[None, :]
            luts = np.clip((levels - 128) * c + 128 + b, 0, 255).round().astype(np.uint8)
        assert ys.shape == (n, h) and xs.shape == (n, w)
        return changed, ys, xs, luts

    def apply(self, images: np.ndarray, seed: int, epoch: int, positions: np.ndarray) -> None:
        """Augment (n, H, W, 3) uint8 ``images`` in place; sample i is keyed by ``positions[i]``.

        The whole batch's parameters are computed at once; per image there are two C calls
        (rows and pixels gathered as 3-byte items, then the brightness/contrast table)."""
        n, h, w, _ = images.shape
        if len(positions) != n:
            raise ValueError(f"{n} images but {len(positions)} positions")
        changed, ys, xs, luts = self.plan(h, w, seed, epoch, positions)
        pix = images.view(np.dtype((np.void, 3))).reshape(n, h, w)  # one item per RGB pixel
        for i in np.flatnonzero(changed).tolist():
            np.take(np.take(pix[i], ys[i], axis=0), xs[i], axis=1, out=pix[i])
        if luts is not None:
            for i in range(n):
                np.take(luts[i], images[i], out=images[i])

    def apply_torch(self, images: Tensor, seed: int, epoch: int, positions: np.ndarray | Tensor) -> Tensor:
        """:meth:`apply` on a (n, 3, H, W) uint8 tensor on any device (the GPU: ``--augment-on
        device``), batched; returns a new tensor, channels-last, equal to what :meth:`apply` makes."""
        n, _, h, w = images.shape
        if torch.is_tensor(positions):
            positions = positions.cpu().numpy()
        if len(positions) != n:
            raise ValueError(f"{n} images but {len(positions)} positions")
        _, ys, xs, luts = self.plan(h, w, seed, epoch, positions)
        dev = images.device
        iy = torch.from_numpy(ys).to(dev, non_blocking=True)
        ix = torch.from_numpy(xs).to(dev, non_blocking=True)
        nhwc = images.permute(0, 2, 3, 1)
        out = nhwc[torch.arange(n, device=dev)[:, None, None], iy[:, :, None], ix[:, None, :]]
        if luts is not None:
            lut = torch.from_numpy(luts).to(dev, non_blocking=True)
            out = torch.gather(lut, 1, out.reshape(n, -1).long()).view(n, h, w, 3)
        return out.permute(0, 3, 1, 2)


__all__ = ["Augment", "uniforms"]
