"""What an export holds: the consensus labels row for row, the crops, the statistics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import simplejpeg
import sqlalchemy as sa
from PIL import Image

from affdata import materialized
from affdata.db import Store
from affdata.export import export_part
from affdata.sql import run_readonly
from affdata.video import iter_frames
from tests.affdata.export.helpers import assert_like_pillow, manifest, read_export, store_aus, store_rows


def test_rows_and_labels_equal_the_consensus_views(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "train"
    result = export_part(loaded, split="official", part="train", out=out, shard_size=64, row_group_size=16)
    table = read_export(out)
    rows = table.to_pylist()
    expected = sorted(r for r in store_rows(loaded) if r[6] or r[7] or r[8])
    assert result.rows == len(rows) == len(expected) > 0
    assert [(r["video"], r["track"], r["frame"]) for r in rows] == [e[:3] for e in expected]
    aus = store_aus(loaded)
    info = manifest(out)
    numbers = info["vocabulary"]["au_numbers"]
    assert numbers == [1, 2, 4, 6, 12, 15, 20, 25]  # the synthetic abaw2020 AU set
    assert info["vocabulary"]["expressions"][:7] == ["Neutral", "Anger", "Disgust", "Fear", "Happiness",
                                                     "Sadness", "Surprise"]
    for row, (_, _, _, valence, arousal, expr, has_va, has_au, has_expr) in zip(rows, expected):
        assert row["has_va"] == bool(has_va) and row["has_expr"] == bool(has_expr)
        assert row["has_au"] == bool(has_au)
        if has_va:
            assert row["valence"] == pytest.approx(valence, abs=1e-6)
            assert row["arousal"] == pytest.approx(arousal, abs=1e-6)
        else:
            assert row["valence"] is None and row["arousal"] is None
        assert row["expr"] == expr  # expression index = canonical id
        truth = aus.get((row["video"], row["track"], row["frame"]), {})
        assert row["au"] == [truth.get(n) for n in numbers]
        assert row["au_mask"] == [n in truth for n in numbers]
    # one video's rows are contiguous; shards hold shard_size rows; row groups row_group_size
    videos = [r["video"] for r in rows]
    assert all(videos.index(v) + videos.count(v) - 1 == len(videos) - 1 - videos[::-1].index(v) for v in set(videos))
    assert [s["rows"] for s in info["shards"]][:-1] == [64] * (len(info["shards"]) - 1)
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(out / info["shards"][0]["path"]).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [16] * 4
    # the store records the export
    with loaded.connect() as conn:
        rec = conn.execute(sa.text("SELECT part, out_dir, format_version, manifest_sha256, n_rows, label_state "
                                   "FROM export")).one()
    blob = (out / "meta" / "info.json").read_bytes()
    assert tuple(rec) == ("train", str(out.resolve()), 1, hashlib.sha256(blob).hexdigest(), len(rows),
                          info["label_state"])


def _hand_crop(store: Store, video: str, frame: int, box: list[float], size: int) -> np.ndarray:
    with store.connect() as conn:
        row = conn.execute(sa.text("SELECT path, kind, decoder, stream_index, frame_count, width, height, "
                                   "size_bytes FROM video WHERE name = :n"), {"n": video}).one()
    (_, rgb), = list(iter_frames(row, indices=[frame]))
    x, y, w, h = (int(v) for v in box)
    return np.asarray(Image.fromarray(rgb).crop((x, y, x + w, y + h)).resize((size, size), Image.Resampling.BILINEAR))


def test_crops_show_the_face_box_region(loaded: Store, tmp_path: Path) -> None:
    size = 48
    export_part(loaded, split="official", part="train", out=tmp_path / "raw", size=size, image="raw")
    export_part(loaded, split="official", part="train", out=tmp_path / "jpg", size=size, image="jpeg")
    raw, jpg = read_export(tmp_path / "raw"), read_export(tmp_path / "jpg")
    assert raw.num_rows == jpg.num_rows
    with loaded.connect() as conn:
        faces = {(v, t, f): (x, y, w, h) for v, t, f, x, y, w, h in conn.execute(sa.text(
            "SELECT v.name, t.name, b.frame_idx, b.x, b.y, b.w, b.h FROM face_box b "
            "JOIN track t ON t.id = b.track_id JOIN video v ON v.id = t.video_id"))}
    picks = sorted({0, 7, raw.num_rows // 2, raw.num_rows - 1})
    for i in picks:
        r, j = raw.slice(i, 1).to_pylist()[0], jpg.slice(i, 1).to_pylist()[0]
        x, y, w, h = faces[r["video"], r["track"], r["frame"]]
        bx, by, bw, bh = r["box"]
        assert bw == bh == max(1, np.floor(max(w, h) * 1.2 + 0.5))  # square, margin 1.2
        assert abs(bx + bw / 2 - (x + w / 2)) <= 1 and abs(by + bh / 2 - (y + h / 2)) <= 1  # centred on the face
        pixels = np.frombuffer(r["image"], dtype=np.uint8).reshape(size, size, 3)
        hand = _hand_crop(loaded, r["video"], r["frame"], r["box"], size)
        assert_like_pillow(pixels, hand)  # raw: the crop done by hand
        decoded = simplejpeg.decode_jpeg(j["image"], colorspace="RGB")
        assert decoded.shape == (size, size, 3)
        assert np.abs(decoded.astype(int) - hand.astype(int)).mean() < 4  # jpeg: the same, lossy


def test_statistics_read_back_with_duckdb_and_pandas(loaded: Store, tmp_path: Path) -> None:
    import duckdb
    import pandas as pd

    out = tmp_path / "train"
    export_part(loaded, split="official", part="train", out=out, shard_size=50)
    info = manifest(out)
    glob = str(out / "data" / "*.parquet")
    with duckdb.connect() as con:
        n, n_va, mean_v, n_expr = con.execute(
            f"SELECT COUNT(*), COUNT(valence), AVG(valence), SUM(has_expr::INT) FROM read_parquet('{glob}')").fetchone()
    truth = run_readonly(loaded, """
        SELECT COUNT(*), SUM(f.has_va), AVG(f.valence), SUM(f.has_expr)
        FROM frame_labels f JOIN split_assignment a ON a.video_id = f.video_id
        JOIN split s ON s.id = a.split_id
        WHERE s.name = 'official' AND a.part = 'train' AND (f.has_va = 1 OR f.has_au = 1 OR f.has_expr = 1)
    """).rows[0]
    assert (n, n_va, n_expr) == (truth[0], truth[1], truth[3]) == (info["counts"]["rows"], info["counts"]["va"],
                                                                   info["counts"]["expr"])
    assert mean_v == pytest.approx(truth[2], abs=1e-5)
    classes = run_readonly(loaded, """
        SELECT f.expression, COUNT(*) FROM frame_labels f JOIN split_assignment a ON a.video_id = f.video_id
        WHERE a.part = 'train' AND f.has_expr = 1 GROUP BY f.expression""").rows
    frame = pd.concat(pd.read_parquet(out / s["path"]) for s in info["shards"])
    assert len(frame) == n
    names = info["vocabulary"]["expressions"]
    by_pandas = {names[int(k)]: int(v) for k, v in frame["expr"].dropna().value_counts().items()}
    assert by_pandas == dict(classes) == {k: v for k, v in info["class_frequencies"].items() if v}
    au12 = info["vocabulary"]["au_names"].index("AU12")
    annotated = frame["au_mask"].map(lambda m: bool(m[au12]))
    positives = frame.loc[annotated, "au"].map(lambda a: int(a[au12])).sum()
    assert info["au_positive_rates"]["AU12"] == pytest.approx(positives / annotated.sum())


def test_tasks_subset_and_named_source(loaded: Store, tmp_path: Path) -> None:
    va_only = export_part(loaded, split="official", part="train", out=tmp_path / "va", tasks=("va",))
    table = read_export(tmp_path / "va")
    assert table.column("has_au").to_pylist() == [False] * table.num_rows
    assert table.column("expr").null_count == table.num_rows
    assert va_only.rows == sum(1 for r in store_rows(loaded) if r[6])
    everything = export_part(loaded, split="official", part="train", out=tmp_path / "all", include_unlabelled=True)
    assert everything.rows == len(store_rows(loaded))  # every frame of every track
    # a second, disagreeing annotator: consensus averages, the named source reads its own rows only
    with loaded.transaction() as conn:
        conn.execute(sa.text("INSERT INTO label_source (kind, name, version, created_at) "
                             "VALUES ('annotator', 'rater2', '', CURRENT_TIMESTAMP)"))
        src = conn.execute(sa.text("SELECT id FROM label_source WHERE name = 'rater2'")).scalar_one()
        track, frame, valence = conn.execute(sa.text(
            "SELECT track_id, frame_idx, valence FROM va_label ORDER BY track_id, frame_idx LIMIT 1")).one()
        conn.execute(sa.text("INSERT INTO va_label (track_id, frame_idx, source_id, valence, arousal) "
                             "VALUES (:t, :f, :s, 1.0, 1.0)"), {"t": track, "f": frame, "s": src})
        materialized.refresh(conn, [track])  # label rows written by hand, not through a library writer
        video, track_name = conn.execute(sa.text(
            "SELECT v.name, t.name FROM track t JOIN video v ON v.id = t.video_id WHERE t.id = :t"), {"t": track}).one()
        part = conn.execute(sa.text("SELECT part FROM split_assignment a JOIN track t ON t.video_id = a.video_id "
                                    "WHERE t.id = :t"), {"t": track}).scalar_one()
    export_part(loaded, split="official", part=part, out=tmp_path / "c")
    export_part(loaded, split="official@1", part=part, out=tmp_path / "r2", source="rater2")
    consensus, rater2 = read_export(tmp_path / "c").to_pylist(), read_export(tmp_path / "r2").to_pylist()
    pick = [r for r in consensus if (r["video"], r["track"], r["frame"]) == (video, track_name, frame)][0]
    assert pick["valence"] == pytest.approx((valence + 1.0) / 2, abs=1e-6)
    assert [(r["video"], r["track"], r["frame"], r["valence"]) for r in rater2] == [(video, track_name, frame, 1.0)]
    assert manifest(tmp_path / "r2")["source"] == "rater2"
