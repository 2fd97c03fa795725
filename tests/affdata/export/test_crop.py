"""Crop geometry and pixels against PIL done by hand, for any box (property tests).

The resize is torch's port of Pillow's antialiased BILINEAR filter: within one grey level of
Pillow's pixels (its rounding differs), the crop itself exact."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from affdata.export.crop import crop_boxes, crop_resize, resize_square, whole_frame_box


@settings(max_examples=60, deadline=None)
@given(w=st.integers(1, 80), h=st.integers(1, 80), x=st.integers(-100, 100), y=st.integers(-100, 100),
       side=st.integers(1, 160), size=st.sampled_from([8, 16, 37]), seed=st.integers(0, 3))
def test_crop_resize_matches_pil_crop_then_resize(w: int, h: int, x: int, y: int, side: int, size: int,
                                                  seed: int) -> None:
    frame = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    crop = Image.fromarray(frame).crop((x, y, x + side, y + side))
    hand = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR)).astype(int)
    ours = crop_resize(frame, (x, y, side, side), size)
    assert ours.shape == (size, size, 3) and ours.dtype == np.uint8 and ours.flags.c_contiguous
    assert np.abs(ours.astype(int) - hand).max() <= 1
    if side == size:  # no resize: the crop exactly
        assert np.array_equal(ours, np.asarray(crop))


def test_resize_of_a_non_square_image_and_of_a_photo_like_one() -> None:
    yy, xx = np.mgrid[0:90, 0:160]
    smooth = np.stack([xx * 1.5, yy * 2.5, (xx + yy) % 256], axis=2).astype(np.uint8)
    hand = np.asarray(Image.fromarray(smooth).resize((64, 64), Image.Resampling.BILINEAR)).astype(int)
    ours = resize_square(smooth, 64)
    assert ours.shape == (64, 64, 3) and np.abs(ours.astype(int) - hand).max() <= 1


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


def test_exporting_in_a_process_leaves_its_forks_usable(tmp_path) -> None:
    """After crops were resized in a process, a forked child can still use torch: the resize
    runs on one thread, so torch's OpenMP pool (which does not survive a fork) never starts.
    In a fresh interpreter, since this one may have started the pool in other tests."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import multiprocessing as mp
        import numpy as np
        from affdata.export.crop import crop_resize, one_resize_thread

        def child(q):
            import torch
            big = torch.rand(1, 3, 512, 512)
            q.put(float(torch.nn.functional.interpolate(big, size=(300, 300), mode="bilinear",
                                                        antialias=True).sum()))

        if __name__ == "__main__":
            frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
            with one_resize_thread():
                for _ in range(20):
                    crop_resize(frame, (100, 50, 200, 200), 112)
            q = mp.get_context("fork").Queue()
            p = mp.get_context("fork").Process(target=child, args=(q,))
            p.start()
            print(q.get(timeout=60) > 0)
            p.join(10)
    """)
    path = tmp_path / "fork_after_resize.py"
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]
