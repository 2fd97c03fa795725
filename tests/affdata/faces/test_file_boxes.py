"""Face rectangles in model files (py-feat FaceRect*, OpenFace's 2D landmarks) kept as boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

from affdata.db import Store
from affdata.faces import DetectOptions, detect_faces
from affdata.formats import read_labels
from affdata.labels import import_labels
from affdata.videos import ingest_videos


def test_readers_carry_the_files_face_rectangles(shared_data: Path) -> None:
    path = shared_data / "annotations" / "pyfeat__001.csv"
    (table,) = read_labels(path, "pyfeat", video="v")
    raw = pacsv.read_csv(path).select(["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"])
    expect = np.column_stack([raw.column(i).to_numpy() for i in range(4)])
    assert table.boxes is not None and np.allclose(table.boxes, expect[table.lines - 2], equal_nan=True)
    (face,) = read_labels(shared_data / "annotations" / "pyfeat__OpenFace_Test.csv", "openface", video="v")
    assert face.boxes is not None and (face.boxes[:, 2] > 20).all() and (face.boxes[:, 3] > 20).all()
    # OpenFace files reduced to AUs (no landmarks) carry no box
    (clean,) = read_labels(shared_data / "annotations" / "facsvatar__openface_clean_demo.csv", "openface", video="v")
    assert clean.boxes is None


def test_imported_rectangles_are_file_boxes_of_the_model_source(store: Store, shared_data: Path) -> None:
    assert ingest_videos(store, [shared_data / "videos" / "pyfeat__single_face.mp4"]).ok
    detect_faces(store, all_videos=True, options=DetectOptions(stride=12))  # detector boxes first
    report = import_labels(store, [shared_data / "annotations" / "pyfeat__001.csv"], source="pyfeat-run",
                           parser_options={"video": "pyfeat__single_face"}, length_policy="truncate")
    assert report.ok, report.failed
    rows = store.scalar("SELECT COUNT(*) FROM face_box b JOIN label_source s ON s.id = b.source_id "
                        "WHERE s.name = 'pyfeat-run' AND b.origin = 'file'")
    assert rows > 0
    assert store.scalar("SELECT COUNT(*) FROM face_box WHERE origin = 'detector'") == 0  # replaced by the file's
    # and a later detector run leaves the file's boxes alone
    again = detect_faces(store, all_videos=True, options=DetectOptions(stride=12))
    assert again.videos[0].status == "kept"
    assert store.scalar("SELECT COUNT(*) FROM face_box WHERE origin = 'file'") == rows


def test_a_boxes_file_replaces_detector_boxes_but_not_a_persons(store: Store, shared_data: Path, tmp_path: Path) -> None:
    from affdata.boxes import import_boxes

    assert ingest_videos(store, [shared_data / "videos" / "pyfeat__single_face.mp4"]).ok
    detect_faces(store, all_videos=True, options=DetectOptions(stride=12))
    with store.transaction() as conn:  # a person corrected frame 3
        import sqlalchemy as sa

        conn.execute(sa.text("UPDATE face_box SET origin = 'person', source_id = NULL, x = 1 WHERE frame_idx = 3"))
    csv = tmp_path / "boxes.csv"
    csv.write_text("video,track,frame,x,y,w,h\n" + "".join(
        f"pyfeat__single_face,main,{f},10,20,30,40\n" for f in range(6)))
    import_boxes(store, csv)
    rows = store.scalar("SELECT COUNT(*) FROM face_box")
    assert rows == 6
    assert store.scalar("SELECT COUNT(*) FROM face_box WHERE origin = 'file' AND x = 10") == 5
    assert store.scalar("SELECT x FROM face_box WHERE frame_idx = 3 AND origin = 'person'") == 1
