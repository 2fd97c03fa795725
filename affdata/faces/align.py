"""Five-point face alignment: the similarity transform that ``affdata export --align`` crops by.

The way ABAW's ``cropped_aligned`` frames and ArcFace / InsightFace crops are made: find the
similarity transform (rotation, uniform scale, translation; no reflection, no shear) that maps
a face's five landmarks onto a fixed template in least squares (Umeyama 1991, the estimator
scikit-image's ``SimilarityTransform`` and InsightFace's ``norm_crop`` use), and resample the
frame through it.

The template is ArcFace's five points for a 112 x 112 crop (:data:`ARCFACE_112`: eye on the
image's left, other eye, nose tip, left and right mouth corners), scaled by ``size / 112`` for
other sizes. Resampling: Pillow's ``Image.transform(AFFINE, BILINEAR)`` with the inverse
transform and black outside the frame.
"""

from __future__ import annotations

import numpy as np

#: ArcFace's five-point template for 112 x 112 crops, (x, y) pixels
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])


#: what the manifest says about ``--align``
ALIGN_POLICY = ("five landmarks -> ArcFace 112 template scaled by size/112, least-squares similarity "
                "(Umeyama), Pillow AFFINE bilinear, black outside; rows without landmarks: box crop")


def template(size: int) -> np.ndarray:
    """The template for a ``size x size`` crop."""
    return ARCFACE_112 * (size / 112.0)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the least-squares similarity mapping points ``src`` onto ``dst``."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) > 0 else -1.0])
    rot = u @ np.diag(sign) @ vt
    var = (s ** 2).sum() / len(src)
    scale = float((sig * sign).sum() / var) if var > 0 else 1.0
    shift = mu_d - scale * rot @ mu_s
    return np.column_stack([scale * rot, shift])


def similarities(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Per row of (n, 5, 2) landmarks, the frame-to-crop matrix flattened to 6 numbers.

    Rows with any NaN landmark, or whose five points are degenerate (all in one place),
    come out NaN.
    """
    marks = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    out = np.full((len(marks), 6), np.nan)
    dst = template(size)
    for k in np.flatnonzero(~np.isnan(marks).any(axis=(1, 2))):
        if np.ptp(marks[k], axis=0).max() < 1e-6:
            continue
        out[k] = similarity(marks[k], dst).reshape(6)
    return out


def inverse(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 inverse of a 2x3 affine matrix."""
    m = np.vstack([np.asarray(matrix, np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)[:2]


def aligned_square(matrix: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The crop as a square in frame pixels, rotation left out: ``(x, y, side, side)``.

    Centre: the crop's centre mapped back into the frame; side: ``size`` over the scale.
    Whole pixels, rounded half up (what the export's ``box`` column holds for aligned rows).
    """
    inv = inverse(matrix)
    cx, cy = inv @ np.array([size / 2.0, size / 2.0, 1.0])
    side = max(1.0, np.floor(size * np.sqrt(abs(np.linalg.det(inv[:, :2]))) + 0.5))
    return (int(np.floor(cx - side / 2 + 0.5)), int(np.floor(cy - side / 2 + 0.5)), int(side), int(side))


def warp(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size x size`` aligned crop of an RGB frame (black where it leaves the frame)."""
    from PIL import Image

    inv = inverse(matrix)
    image = Image.fromarray(np.ascontiguousarray(frame))
    out = image.transform((size, size), Image.AFFINE, data=tuple(inv.reshape(6)),
                          resample=Image.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(out)
