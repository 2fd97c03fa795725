"""Image bytes -> uint8 RGB pixels, written straight into a batch slot (no float, no copy).

simplejpeg (libjpeg-turbo) decodes into a caller's buffer and releases the GIL. A slot is an
(H, W, 3) view of the batch's NHWC storage; the batch exposes it as (B, 3, H, W) in
channels_last memory format, which is what the model's first layer wants anyway.
"""

from __future__ import annotations

import numpy as np
import simplejpeg


def decode_into(data: bytes, out: np.ndarray, encoding: str) -> None:
    """Decode one image of the export's ``encoding`` into ``out`` ((H, W, 3) uint8, C-contiguous)."""
    if encoding == "jpeg":
        img = simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)
        if img.shape != out.shape:
            raise ValueError(f"JPEG of shape {img.shape}, expected {out.shape} (the manifest's size)")
        if img is not out and img.base is not out:  # a simplejpeg that ignored the buffer
            out[...] = img
    elif encoding == "raw":
        if len(data) != out.size:
            raise ValueError(f"raw image of {len(data)} bytes, expected {out.size} ({out.shape})")
        out[...] = np.frombuffer(data, dtype=np.uint8).reshape(out.shape)
    else:
        raise ValueError(f"unknown image encoding {encoding!r}; known: jpeg, raw")


def decode(data: bytes, size: int, encoding: str) -> np.ndarray:
    """Decode one image into a new (size, size, 3) uint8 array."""
    out = np.empty((size, size, 3), dtype=np.uint8)
    decode_into(data, out, encoding)
    return out


__all__ = ["decode", "decode_into"]
