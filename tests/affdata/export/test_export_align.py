"""--align and the face detector on the synthetic set, whose boxes come from the generator
(drawn faces: the real-face detector is not meant for them, docs/faces.md)."""

from __future__ import annotations

from pathlib import Path

from affdata.db import Store
from affdata.export import export_part
from affdata.faces import DetectOptions, detect_faces
from tests.affdata.export.helpers import read_export


def test_generator_boxes_are_kept_by_detect_and_align_without_landmarks_says_so(loaded: Store, tmp_path: Path) -> None:
    report = detect_faces(loaded, all_videos=True, options=DetectOptions(stride=25))
    assert report.videos and {v.status for v in report.videos} == {"kept"}
    assert loaded.scalar("SELECT COUNT(*) FROM face_box WHERE origin <> 'file'") == 0
    plain = export_part(loaded, split="official", part="train", out=tmp_path / "plain", size=32, image="raw")
    aligned = export_part(loaded, split="official", part="train", out=tmp_path / "al", size=32, image="raw",
                          align=True)
    assert plain.warnings == []
    assert aligned.rows == plain.rows and aligned.manifest["counts"]["crops_aligned"] == 0
    assert aligned.warnings == [f"{plain.rows} rows have a face box but no landmarks and were cut by the box, "
                                "not aligned"]
    a, b = read_export(tmp_path / "plain"), read_export(tmp_path / "al")
    assert a.column("image").equals(b.column("image")) and a.column("box").equals(b.column("box"))
