"""Frame folders, frames without boxes, bad names, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
import sqlalchemy as sa
import typer
from PIL import Image
from typer.testing import CliRunner

from affdata import materialized
from affdata.db import Store
from affdata.errors import ConfigError, NotFoundError
from affdata.export import export_part
from affdata.splits import save_split
from affdata.video import iter_frames
from tests.affdata.export.helpers import assert_like_pillow, manifest, read_export


def _frame_folder(root: Path, n: int = 10, missing: int = 5, size: tuple[int, int] = (40, 36)) -> Path:
    folder = root / "clipA"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(1, n + 1):
        if k != missing:
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            (folder / f"{k:05d}.jpg").write_bytes(simplejpeg.encode_jpeg(pixels, quality=95))
    return folder


def test_frame_folder_exports_whole_images(store: Store, tmp_path: Path) -> None:
    from affdata.videos import ingest_videos

    folder = _frame_folder(tmp_path / "cropped_aligned")
    assert ingest_videos(store, [folder]).ok
    with store.transaction() as conn:
        video = conn.execute(sa.text("SELECT id FROM video")).scalar_one()
        conn.execute(sa.text("INSERT INTO track (video_id, name) VALUES (:v, 'main')"), {"v": video})
        track = conn.execute(sa.text("SELECT id FROM track")).scalar_one()
        conn.execute(sa.text("INSERT INTO label_source (kind, name, version, created_at) "
                             "VALUES ('dataset', 'manual', '', CURRENT_TIMESTAMP)"))
        src = conn.execute(sa.text("SELECT id FROM label_source")).scalar_one()
        for f in range(10):  # frame 4 (image 00005.jpg) is labelled but has no image
            conn.execute(sa.text("INSERT INTO expr_label (track_id, frame_idx, source_id, expr_id) "
                                 "VALUES (:t, :f, :s, :e)"), {"t": track, "f": f, "s": src, "e": f % 8})
        materialized.rebuild(conn)  # label rows written by hand, not through a library writer
    save_split(store, "official", "video", {video: "train"})
    out = tmp_path / "out"
    result = export_part(store, split="official", part="train", out=out, size=32, image="raw")
    table = read_export(out).to_pylist()
    assert result.rows == 9 and [r["frame"] for r in table] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    info = manifest(out)
    assert info["counts"]["labelled_frames_without_image"] == 1
    assert info["counts"]["crops_whole_frame"] == 9
    assert len(info["vocabulary"]["expressions"]) == 8  # Other (7) occurs: 8 classes
    assert [r["expr"] for r in table] == [0, 1, 2, 3, 5, 6, 7, 0, 1]
    for row in table:
        assert row["box"] is None and row["has_expr"] and not row["has_va"] and row["valence"] is None
        image = simplejpeg.decode_jpeg((folder / f"{row['frame'] + 1:05d}.jpg").read_bytes(), colorspace="RGB")
        hand = np.asarray(Image.fromarray(image).resize((32, 32), Image.Resampling.BILINEAR))
        assert_like_pillow(np.frombuffer(row["image"], np.uint8).reshape(32, 32, 3), hand)


def test_frames_without_a_box_are_skipped_with_a_warning_or_cut_whole_when_asked(loaded: Store, tmp_path: Path) -> None:
    with loaded.transaction() as conn:
        video, track, path = conn.execute(sa.text(
            "SELECT v.name, t.name, v.path FROM track t JOIN video v ON v.id = t.video_id "
            "JOIN split_assignment a ON a.video_id = v.id WHERE a.part = 'train' AND t.name = 'left'")).one()
        conn.execute(sa.text("DELETE FROM face_box WHERE track_id IN (SELECT t.id FROM track t "
                             "JOIN video v ON v.id = t.video_id WHERE v.name = :v AND t.name = 'left') "
                             "AND frame_idx < 10"), {"v": video})
        row = conn.execute(sa.text("SELECT path, kind, decoder, stream_index, frame_count, width, height, "
                                   "size_bytes FROM video WHERE name = :v"), {"v": video}).one()
    skipped = export_part(loaded, split="official", part="train", out=tmp_path / "s", size=40, image="raw")
    kept = [r for r in read_export(tmp_path / "s").to_pylist() if (r["video"], r["track"]) == (video, "left")]
    assert kept[0]["frame"] == 10 and all(r["box"] is not None for r in kept)
    assert manifest(tmp_path / "s")["counts"]["rows_skipped_without_box"] == 10
    assert any("10 labelled rows have no face box and were skipped" in w for w in skipped.warnings)
    whole = export_part(loaded, split="official", part="train", out=tmp_path / "o", size=40, image="raw",
                        whole_frame=True)
    assert whole.rows == skipped.rows + 10
    assert any("10 rows have no face box and were cut as the centred square" in w for w in whole.warnings)
    rows = [r for r in read_export(tmp_path / "o").to_pylist() if (r["video"], r["track"]) == (video, "left")]
    first = rows[0]
    assert first["frame"] == 0 and first["box"] is None
    assert rows[-1]["box"] is not None
    (_, rgb), = list(iter_frames(row, indices=[0]))
    side = min(row.width, row.height)
    x0, y0 = (row.width - side) // 2, (row.height - side) // 2
    hand = np.asarray(Image.fromarray(rgb).crop((x0, y0, x0 + side, y0 + side)).resize((40, 40), Image.Resampling.BILINEAR))
    assert_like_pillow(np.frombuffer(first["image"], np.uint8).reshape(40, 40, 3), hand)


def test_unknown_names_say_what_exists(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "o"
    with pytest.raises(NotFoundError, match=r"unknown split 'offical'; splits in the store: official@1"):
        export_part(loaded, split="offical", part="train", out=out)
    with pytest.raises(NotFoundError, match=r"has no part 'test'; parts: train \(\d+ videos?\), val \(\d+ videos?\)"):
        export_part(loaded, split="official", part="test", out=out)
    with pytest.raises(NotFoundError, match=r"split 'official' has no version '7'; versions: 1"):
        export_part(loaded, split="official@7", part="train", out=out)
    with pytest.raises(NotFoundError, match=r"unknown label source 'nobody'; use 'consensus' or one of: annotations"):
        export_part(loaded, split="official", part="train", out=out, source="nobody")
    with pytest.raises(ConfigError, match="unknown task"):
        export_part(loaded, split="official", part="train", out=out, tasks=("va", "pose"))
    assert not out.exists() and not (tmp_path / "o.partial").exists()


def _cli() -> typer.Typer:
    from cli import export

    root = typer.Typer()
    root.add_typer(export.app, name="export")  # as cli/affdata_app.py wires it

    @root.callback()
    def _root() -> None:
        """Keeps the app a group."""

    return root


def test_command_line(loaded: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    app = _cli()
    help_ = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert help_.exit_code == 0
    assert "Example: affdata export --split official --part train --out exports/train" in help_.output
    assert runner.invoke(app, ["export"]).exit_code == 0  # no --split: the help
    out = tmp_path / "cli"
    result = runner.invoke(app, ["export", "--db", loaded.url, "--split", "official", "--part", "val",
                                 "--out", str(out), "--tasks", "va,expr", "--size", "64", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows"] == manifest(out)["counts"]["rows"] > 0
    assert manifest(out)["tasks"] == ["va", "expr"] and manifest(out)["image"]["size"] == 64
    bad = runner.invoke(app, ["export", "--db", loaded.url, "--split", "official", "--part", "val"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("workers", [1, 2])
def test_a_video_that_changed_since_ingest_is_a_video_error(loaded: Store, tmp_path: Path, workers: int) -> None:
    from affdata.errors import VideoError

    with loaded.transaction() as conn:
        path = conn.execute(sa.text(
            "SELECT v.path FROM video v JOIN split_assignment a ON a.video_id = v.id "
            "WHERE a.part = 'train' ORDER BY v.name LIMIT 1 OFFSET 1")).scalar_one()
        conn.execute(sa.text("UPDATE video SET size_bytes = size_bytes + 1 WHERE path = :p"), {"p": path})
    with pytest.raises(VideoError, match=r"changed since it was ingested .*: size \d+ bytes, \d+ at ingest") as caught:
        export_part(loaded, split="official", part="train", out=tmp_path / "o", workers=workers)
    assert caught.value.path == path
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()
