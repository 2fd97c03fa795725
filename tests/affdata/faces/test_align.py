"""The alignment transform on known landmark sets, and the aligned crop's pixels."""

from __future__ import annotations

import numpy as np
import pytest

from affdata.faces.align import ARCFACE_112, aligned_square, inverse, similarities, similarity, template, warp


def _similar(points: np.ndarray, angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return scale * points @ np.array([[c, -s], [s, c]]).T + np.array(shift)


def test_the_template_maps_onto_itself() -> None:
    m = similarity(ARCFACE_112, ARCFACE_112)
    assert np.allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    assert np.allclose(template(224), ARCFACE_112 * 2)


@pytest.mark.parametrize("angle,scale,shift", [(0.3, 2.5, (400.0, 120.0)), (-1.2, 0.7, (-30.0, 55.0)),
                                               (np.pi, 4.0, (900.0, 700.0))])
def test_a_rotated_scaled_shifted_face_is_brought_back_exactly(angle: float, scale: float,
                                                               shift: tuple[float, float]) -> None:
    face = _similar(ARCFACE_112, angle, scale, shift)  # the template placed in a frame
    m = similarity(face, ARCFACE_112)
    back = face @ m[:, :2].T + m[:, 2]
    assert np.allclose(back, ARCFACE_112, atol=1e-9)
    assert np.isclose(np.sqrt(abs(np.linalg.det(m[:, :2]))), 1 / scale)
    side = aligned_square(m.reshape(6), 112)[2]
    assert side == int(np.floor(112 * scale + 0.5))


def test_least_squares_on_noisy_points_and_no_reflection() -> None:
    rng = np.random.default_rng(0)
    face = _similar(ARCFACE_112, 0.2, 3.0, (100, 100)) + rng.normal(0, 0.5, (5, 2))
    m = similarity(face, ARCFACE_112)
    assert np.linalg.det(m[:, :2]) > 0
    assert np.abs(face @ m[:, :2].T + m[:, 2] - ARCFACE_112).max() < 1.0
    mirrored = face * [-1, 1]  # a mirrored face is not un-mirrored by a similarity
    assert np.linalg.det(similarity(mirrored, ARCFACE_112)[:, :2]) > 0


def test_rows_without_landmarks_or_degenerate_come_out_nan() -> None:
    marks = np.stack([_similar(ARCFACE_112, 0.1, 2, (5, 5)), np.full((5, 2), np.nan), np.ones((5, 2))])
    out = similarities(marks, 112)
    assert not np.isnan(out[0]).any() and np.isnan(out[1:]).all()


def test_warp_puts_the_landmarks_on_the_template() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    face = _similar(ARCFACE_112, 0.4, 2.0, (250, 60))
    for x, y in face.round().astype(int):
        frame[y - 2:y + 3, x - 2:x + 3] = 255
    m = similarity(face, ARCFACE_112)
    crop = warp(frame, m, 112)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_112:  # each bright dot lands within a pixel of its template point
        patch = crop[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4, 0].astype(float)
        yy, xx = np.mgrid[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4]
        assert patch.sum() > 0
        cx, cy = (patch * xx).sum() / patch.sum(), (patch * yy).sum() / patch.sum()
        assert abs(cx - x) < 1.0 and abs(cy - y) < 1.0
    assert np.allclose(inverse(inverse(m)), m)
