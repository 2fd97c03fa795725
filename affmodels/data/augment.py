"""Label-safe augmentations on uint8 pixels, seeded per sample by (seed, epoch, position).

Horizontal flip is label-safe here: VA and expression do not depend on the side, and the
exported AUs are bilateral/symmetric units (no L/R split). A random square crop (scale jitter,
resized back with nearest-neighbour indexing), brightness and contrast are one gather and one
256-entry lookup table per image: cheap next to the JPEG decode. Randomness comes from a
counter-based hash of (seed, epoch, position in the epoch's sequence, parameter), not from a
stateful generator, so a resumed epoch reproduces every augmentation exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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

    def apply(self, images: np.ndarray, seed: int, epoch: int, positions: np.ndarray) -> None:
        """Augment (n, H, W, 3) uint8 ``images`` in place; sample i is keyed by ``positions[i]``."""
        n, h, w, _ = images.shape
        if len(positions) != n:
            raise ValueError(f"{n} images but {len(positions)} positions")
        u = uniforms(seed, epoch, positions)
        lo, hi = self.scale
        levels = np.arange(256, dtype=np.float32)
        for i in range(n):
            flip, s, uy, ux, ub, uc = u[i]
            side = max(1, int(round((lo + (hi - lo) * s) * min(h, w))))
            y0, x0 = int(uy * (h - side + 1)), int(ux * (w - side + 1))
            ys = y0 + (np.arange(h) * side) // h
            xs = x0 + (np.arange(w) * side) // w
            if flip < self.hflip:
                xs = xs[::-1]
            if side != min(h, w) or flip < self.hflip:
                images[i] = images[i][ys[:, None], xs[None, :]]
            if self.brightness or self.contrast:
                c = 1 + self.contrast * (2 * uc - 1)
                b = 255 * self.brightness * (2 * ub - 1)
                lut = np.clip((levels - 128) * c + 128 + b, 0, 255).round().astype(np.uint8)
                np.take(lut, images[i], out=images[i])


__all__ = ["Augment", "uniforms"]
