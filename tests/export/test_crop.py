"""Crop geometry and pixels against PIL done by hand, for any box (property tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from affdata.export.crop import crop_boxes, crop_resize, whole_frame_box


@settings(max_examples=60, deadline=None)
@given(w=st.integers(1, 80), h=st.integers(1, 80), x=st.integers(-100, 100), y=st.integers(-100, 100),
       side=st.integers(1, 160), size=st.sampled_from([8, 16, 37]), seed=st.integers(0, 3))
def test_crop_resize_equals_pil_crop_then_resize(w: int, h: int, x: int, y: int, side: int, size: int,
                                                 seed: int) -> None:
    frame = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    hand = np.asarray(Image.fromarray(frame).crop((x, y, x + side, y + side))
                      .resize((size, size), Image.Resampling.BILINEAR))
    assert np.array_equal(crop_resize(frame, (x, y, side, side), size), hand)


@given(st.lists(st.tuples(st.floats(-50, 500), st.floats(-50, 500), st.floats(1, 300), st.floats(1, 300)),
                min_size=1, max_size=20), st.floats(0.5, 2.0))
def test_crop_boxes_are_squares_centred_on_the_face(boxes: list, margin: float) -> None:
    arr = np.array(boxes, dtype=np.float64)
    arr[::3] = np.nan  # every third frame has no box
    out, has = crop_boxes(arr, margin)
    assert np.array_equal(has, ~np.isnan(arr).any(axis=1))
    assert (out[~has] == 0).all()
    for (x, y, w, h), (cx, cy, s1, s2) in zip(arr[has], out[has]):
        assert s1 == s2 == max(1, np.floor(max(w, h) * margin + 0.5))
        assert abs(cx + s1 / 2 - (x + w / 2)) <= 0.5 + 1e-9
        assert abs(cy + s2 / 2 - (y + h / 2)) <= 0.5 + 1e-9


def test_whole_frame_policy() -> None:
    assert whole_frame_box(640, 360, folder=False) == (140, 0, 360, 360)
    assert whole_frame_box(360, 640, folder=False) == (0, 140, 360, 360)
    assert whole_frame_box(112, 100, folder=True) == (0, 0, 112, 100)
