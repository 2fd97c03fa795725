from __future__ import annotations

import numpy as np
import pytest
import simplejpeg

from affmodels.data.decode import DecodeError, decode_many


def _jpeg(seed: int, size: int = 16) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return simplejpeg.encode_jpeg(img, quality=95, colorspace="RGB")


def test_decode_many_writes_each_image_into_its_slot() -> None:
    images = [_jpeg(i) for i in range(3)]
    out = np.zeros((3, 16, 16, 3), np.uint8)
    decode_many([memoryview(b) for b in images], out, "jpeg")
    for i, b in enumerate(images):
        assert np.array_equal(out[i], simplejpeg.decode_jpeg(b, colorspace="RGB"))


def test_decode_many_names_the_image_it_could_not_decode() -> None:
    out = np.zeros((3, 16, 16, 3), np.uint8)
    with pytest.raises(DecodeError) as bad:
        decode_many([_jpeg(0), _jpeg(1), b"not a jpeg"], out, "jpeg")
    assert bad.value.index == 2
    with pytest.raises(DecodeError) as small:  # a JPEG of another size than the manifest's
        decode_many([_jpeg(0), _jpeg(1, size=8)], out[:2], "jpeg")
    assert small.value.index == 1 and "expected (16, 16, 3)" in small.value.reason
    raw = np.arange(16 * 16 * 3, dtype=np.uint8)
    decode_many([raw.tobytes()], out[:1], "raw")
    assert np.array_equal(out[0].ravel(), raw)
    with pytest.raises(DecodeError) as short:
        decode_many([raw.tobytes(), b"xx"], out[:2], "raw")
    assert short.value.index == 1
