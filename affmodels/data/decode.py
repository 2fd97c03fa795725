"""Image bytes -> uint8 RGB pixels, written straight into a batch slot (no float, no copy).

simplejpeg (libjpeg-turbo) decodes into a caller's buffer and releases the GIL. A slot is an
(H, W, 3) view of the batch's NHWC storage; the batch exposes it as (B, 3, H, W) in
channels_last memory format, which is what the model's first layer wants anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simplejpeg


class DecodeError(ValueError):
    """Image ``index`` (of the ones given to :func:`decode_many`) could not be decoded."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index, self.reason = index, reason


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


def decode_many(images: Sequence[object], out: np.ndarray, encoding: str) -> None:
    """Decode ``images`` (bytes-like) into ``out[0], out[1], ...`` ((n, H, W, 3) uint8, C-contiguous).

    The loader's inner loop: one C call a sample and a shape check, nothing else per sample (a
    Python helper call, the buffer check of :func:`decode_into` and a numpy view per encoded
    image cost a few microseconds a sample on a 70 us decode, and a worker does little else).
    Whether simplejpeg wrote into the buffer is checked on the first image, not on every one."""
    if encoding != "jpeg":
        for i, data in enumerate(images):
            try:
                decode_into(data, out[i], encoding)
            except (ValueError, RuntimeError) as e:
                raise DecodeError(i, str(e)) from e
        return
    dec, shape, i = simplejpeg.decode_jpeg, out.shape[1:], -1
    try:
        for i, data in enumerate(images):
            img = dec(data, colorspace="RGB", buffer=out[i])
            if img.shape != shape:
                raise ValueError(f"JPEG of shape {img.shape}, expected {shape} (the manifest's size)")
            if i == 0 and img.__array_interface__["data"][0] != out.__array_interface__["data"][0]:
                for j in range(len(images)):  # a simplejpeg that ignores buffer=: one at a time
                    i = j
                    decode_into(images[j], out[j], encoding)
                return
    except (ValueError, RuntimeError) as e:
        raise DecodeError(i, str(e)) from e


def decode(data: bytes, size: int, encoding: str) -> np.ndarray:
    """Decode one image into a new (size, size, 3) uint8 array."""
    out = np.empty((size, size, 3), dtype=np.uint8)
    decode_into(data, out, encoding)
    return out


__all__ = ["DecodeError", "decode", "decode_into", "decode_many"]
