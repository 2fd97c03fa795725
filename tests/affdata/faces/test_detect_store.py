"""detect faces in the store (both backends): provenance, replacement rules, and the whole
pipeline on a real clip through the command line: ingest, detect, export (box and aligned),
train a tiny model, predict into the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from affdata.boxes import import_boxes
from affdata.db import Store
from affdata.errors import NothingToExportError, NotFoundError
from affdata.export import export_part
from affdata.faces import DetectOptions, detect_faces
from affdata.splits import save_split
from affdata.faces.align import aligned_square, similarity, template, warp
from affdata.schema import LANDMARK_COLUMNS
from affdata.video import iter_frames
from affdata.videos import ingest_videos
from tests.affdata.export.helpers import read_export

CLIP = "pyfeat__single_face.mp4"


@pytest.fixture
def clip_store(store: Store, shared_data: Path) -> Store:
    assert ingest_videos(store, [shared_data / "videos" / CLIP]).ok
    return store


def _boxes(store: Store) -> list:
    with store.connect() as conn:
        return conn.execute(sa.text(
            "SELECT t.name, b.frame_idx, b.origin, b.interpolated, b.source_id, b.leye_x, b.score "
            "FROM face_box b JOIN track t ON t.id = b.track_id ORDER BY t.name, b.frame_idx")).all()


def test_detected_boxes_carry_their_source_and_a_rerun_replaces_only_them(clip_store: Store) -> None:
    report = detect_faces(clip_store, ["pyfeat__single_face"], options=DetectOptions(stride=8))
    (video,) = report.videos
    assert video.status == "detected" and video.tracks == {"main": 72}
    rows = _boxes(clip_store)
    assert len(rows) == 72 and {r.origin for r in rows} == {"detector"}
    assert sum(r.interpolated for r in rows) > 50 and all(r.leye_x is not None for r in rows)
    assert all((r.score is None) == bool(r.interpolated) for r in rows)
    with clip_store.connect() as conn:
        source = conn.execute(sa.text("SELECT kind, name, version, details FROM label_source")).one()
    details = source.details if isinstance(source.details, dict) else json.loads(source.details)
    assert (source.kind, source.name) == ("model", "centerface") and report.source == f"centerface@{source.version}"
    assert details["stride"] == 8 and details["min_score"] == 0.5 and len(details["model_sha256"]) == 64
    # another stride: another source version, and the old boxes are replaced, not added to
    second = detect_faces(clip_store, all_videos=True, options=DetectOptions(stride=4))
    assert second.source != report.source
    rows = _boxes(clip_store)
    assert len(rows) == 72 and len({r.source_id for r in rows}) == 1
    assert sum(not r.interpolated for r in rows) >= 72 // 4


def test_boxes_from_a_file_are_never_replaced(clip_store: Store, tmp_path: Path) -> None:
    csv = tmp_path / "boxes.csv"
    csv.write_text("video,track,frame,x,y,w,h\n" + "".join(
        f"pyfeat__single_face,main,{f},10,20,30,40\n" for f in range(5)))
    import_boxes(clip_store, csv)
    report = detect_faces(clip_store, ["pyfeat__single_face"], options=DetectOptions(stride=8))
    assert report.videos[0].status == "kept" and "5 boxes from a file" in report.videos[0].reason
    rows = _boxes(clip_store)
    assert [(r.origin, r.source_id, r.interpolated) for r in rows] == [("file", None, False)] * 5


def test_unknown_videos_and_missing_arguments_are_errors(clip_store: Store) -> None:
    with pytest.raises(NotFoundError, match="not in the store: nope"):
        detect_faces(clip_store, ["nope"])
    from affdata.errors import ConfigError

    with pytest.raises(ConfigError, match="or ask for all videos"):
        detect_faces(clip_store, [])
    with pytest.raises(ConfigError, match="unknown face detector 'yolo'"):
        detect_faces(clip_store, all_videos=True, options=DetectOptions(detector="yolo"))


def test_export_says_when_a_part_has_no_tracks_and_refuses_an_empty_export(clip_store: Store, tmp_path: Path) -> None:
    labels = tmp_path / "va.csv"
    labels.write_text("video,frame,valence,arousal\n" + "".join(
        f"pyfeat__single_face,{f},0.1,0.2\n" for f in range(72)))
    with clip_store.connect() as conn:
        vid = conn.execute(sa.text("SELECT id FROM video")).scalar_one()
    save_split(clip_store, "s", "video", {vid: "train"})
    with pytest.raises(NothingToExportError, match="1 of 1 videos have no tracks"):
        export_part(clip_store, split="s", part="train", out=tmp_path / "o")
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()
    from affdata.labels import import_labels

    assert import_labels(clip_store, [labels], source="people").ok  # a track 'main', no boxes
    with pytest.raises(NothingToExportError, match="72 labelled rows have no face box"):
        export_part(clip_store, split="s", part="train", out=tmp_path / "o")
    detect_faces(clip_store, all_videos=True, options=DetectOptions(stride=8))
    result = export_part(clip_store, split="s", part="train", out=tmp_path / "o", size=48, align=True,
                         image="raw")
    assert result.rows == 72 and result.warnings == []
    counts = result.manifest["counts"]
    assert counts["crops_aligned"] == 72 and counts["rows_skipped_without_box"] == 0
    assert result.manifest["image"]["align"].startswith("five landmarks")
    # the contract, by hand: similarity from the stored landmarks to the template, Pillow's warp
    with clip_store.connect() as conn:
        marks = conn.execute(sa.text(f"SELECT {', '.join(LANDMARK_COLUMNS)} FROM face_box "
                                     "WHERE frame_idx = 40")).one()
        video = conn.execute(sa.text("SELECT * FROM video")).one()
    m = similarity(np.array(marks, dtype=np.float64).reshape(5, 2), template(48))
    (_, rgb), = list(iter_frames(video, indices=[40]))
    row = read_export(tmp_path / "o").to_pylist()[40]
    assert row["frame"] == 40
    assert np.array_equal(np.frombuffer(row["image"], np.uint8).reshape(48, 48, 3), warp(rgb, m, 48))
    assert row["box"] == list(aligned_square(m, 48))


def _invoke(app, *args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
def test_a_real_clip_from_ingest_to_predictions_in_the_store(shared_data: Path, tmp_path: Path, db_url: str) -> None:
    from cli.affdata_app import app
    from cli.affmodels_app import app as models

    db = ["--db", db_url]
    labels = tmp_path / "va.csv"
    labels.write_text("video,frame,valence,arousal\n" + "".join(
        f"pyfeat__single_face,{f},{(f % 9 - 4) / 5:.2f},{(f % 5 - 2) / 3:.2f}\n" for f in range(72)))
    _invoke(app, "ingest", "videos", str(shared_data / "videos" / CLIP), *db)
    detected = json.loads(_invoke(app, "detect", "faces", "--all", "--stride", "6", "--json", *db))
    assert detected["videos"][0]["tracks"] == {"main": 72}
    _invoke(app, "ingest", "labels", str(labels), "--source", "people", *db)
    _invoke(app, "split", "create", "s", "--by", "video", "--ratios", "1", *db)
    for part in ("train",):
        out = json.loads(_invoke(app, "export", "--split", "s", "--part", part, "--out", str(tmp_path / "x"),
                                 "--size", "32", "--align", "--json", *db))
        assert out["rows"] == 72 and out["counts"]["crops_aligned"] == 72 and out["warnings"] == []
    boxes = pq.read_table(tmp_path / "x" / "data" / "shard-00000.parquet", columns=["box"]).column("box").to_pylist()
    assert all(b is not None and 60 < b[2] < 400 for b in boxes)  # face-sized squares, not the frame
    sheet = tmp_path / "sheet.png"
    _invoke(app, "faces", "show", "pyfeat__single_face", "--out", str(sheet), "--frames", "4", *db)
    assert sheet.stat().st_size > 10_000
    _invoke(models, "train", "--data", str(tmp_path / "x"), "--out", str(tmp_path / "run"), "--epochs", "1",
            "--batch-size", "16", "--workers", "0", "--device", "cpu", "--threads", "1")
    _invoke(models, "predict", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--data", str(tmp_path / "x"),
            "--out", str(tmp_path / "pred"), "--into-store", "--source", "tiny", *db)
    store = Store(db_url)
    with store.connect() as conn:
        n = conn.execute(sa.text("SELECT COUNT(*) FROM va_label v JOIN label_source s ON s.id = v.source_id "
                                 "WHERE s.name = 'tiny' AND s.kind = 'model'")).scalar_one()
    store.close()
    assert n == 72


def test_worker_processes_store_the_same_boxes(store: Store, shared_data: Path) -> None:
    clips = [shared_data / "videos" / n for n in (CLIP, "pyfeat__no_face.mp4")]
    assert ingest_videos(store, clips).ok
    options = DetectOptions(stride=12)
    one = detect_faces(store, all_videos=True, options=options)
    first = _boxes(store)
    two = detect_faces(store, all_videos=True, options=options, workers=2)
    assert [(v.video, v.status, v.tracks) for v in two.videos] == [(v.video, v.status, v.tracks) for v in one.videos]
    assert _boxes(store) == first and len(first) == 72


def test_the_command_line_warns_and_fails_where_nothing_can_be_exported(clip_store: Store, db_url: str,
                                                                         tmp_path: Path) -> None:
    from cli.affdata_app import app

    with clip_store.connect() as conn:
        vid = conn.execute(sa.text("SELECT id FROM video")).scalar_one()
    save_split(clip_store, "s", "video", {vid: "train"})
    runner = CliRunner()
    empty = runner.invoke(app, ["export", "--split", "s", "--part", "train", "--out", str(tmp_path / "o"),
                                "--db", db_url])
    # (main() prints a library error as one line and exits 1; the runner hands back the error)
    assert isinstance(empty.exception, NothingToExportError) and "have no tracks" in str(empty.exception)
    assert not (tmp_path / "o").exists()
    labels = tmp_path / "va.csv"
    labels.write_text("video,frame,valence,arousal\n" + "".join(
        f"pyfeat__single_face,{f},0.1,0.2\n" for f in range(72)))
    _invoke(app, "ingest", "labels", str(labels), "--source", "people", "--db", db_url)
    with clip_store.transaction() as conn:  # a detector-made box on the first ten frames only
        track = conn.execute(sa.text("SELECT id FROM track")).scalar_one()
        for f in range(10):
            conn.execute(sa.text("INSERT INTO face_box (track_id, frame_idx, x, y, w, h, origin) "
                                 "VALUES (:t, :f, 200, 60, 150, 190, 'detector')"), {"t": track, "f": f})
    some = runner.invoke(app, ["export", "--split", "s", "--part", "train", "--out", str(tmp_path / "o"),
                               "--db", db_url, "--json"])
    assert some.exit_code == 0, some.output
    assert "62 labelled rows have no face box and were skipped" in some.output
    whole = runner.invoke(app, ["export", "--split", "s", "--part", "train", "--out", str(tmp_path / "w"),
                                "--whole-frame", "--db", db_url, "--json"])
    assert whole.exit_code == 0 and "62 rows have no face box and were cut as the centred square" in whole.output


def test_the_contact_sheet_draws_each_box_where_it_is(clip_store: Store, tmp_path: Path) -> None:
    from PIL import Image

    from affdata.faces.show import COLOURS, contact_sheet

    detect_faces(clip_store, all_videos=True, options=DetectOptions(stride=8))
    with clip_store.connect() as conn:
        box = conn.execute(sa.text("SELECT x, y, w, h FROM face_box WHERE frame_idx = 0")).one()
    out = contact_sheet(clip_store, "pyfeat__single_face", tmp_path / "s.png", frames=2, columns=2,
                        width=640, track="main")  # scale 1: sheet pixels are frame pixels
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape == (360 + 16, 2 * 640, 3)
    x0, y0, x1 = round(box.x), round(box.y), round(box.x + box.w)
    edge = sheet[y0 + 5:y0 + 40, x0 - 1:x0 + 2]  # the left side of frame 0's box, 3 px thick
    assert (np.abs(edge.astype(int) - COLOURS[0]).sum(axis=2) < 30).mean() > 0.5
    assert (np.abs(sheet[y0 + 5:y0 + 40, (x0 + x1) // 2].astype(int) - COLOURS[0]).sum(axis=1) < 30).mean() < 0.2
    with pytest.raises(NotFoundError, match="tracks with boxes: main"):
        contact_sheet(clip_store, "pyfeat__single_face", tmp_path / "t.png", track="left")
