"""Faces in real video: detection, tracks, landmarks, alignment (docs/faces.md).

- :mod:`~affdata.faces.detector`: the detector interface and CenterFace (weights shipped);
- :mod:`~affdata.faces.cuts`: shot cuts;
- :mod:`~affdata.faces.scan`: one decoding pass per video, detecting every Nth frame;
- :mod:`~affdata.faces.track`: ByteTrack linking, interpolation, naming (main, left/right, faceN);
- :mod:`~affdata.faces.store`: boxes' provenance and the rules for replacing them;
- :mod:`~affdata.faces.run`: :func:`detect_faces`, the whole thing over registered videos;
- :mod:`~affdata.faces.align`: the five-point similarity alignment of ``export --align``;
- :mod:`~affdata.faces.show`: contact sheets to check the result by eye.

Importing this package loads neither onnxruntime nor supervision (they load on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DetectOptions", "DetectReport", "detect_faces"]


def __getattr__(name: str) -> Any:
    # lazy: the export's workers import affdata.faces.align without the detection pipeline
    if name in __all__:
        from affdata.faces import run

        return getattr(run, name)
    raise AttributeError(name)
