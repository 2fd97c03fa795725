"""The materialised consensus is never stale: after every kind of write, the views answer
exactly what the consensus rules (the v1 views, which work them out from the label tables on
every query) answer on the same store. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from affdata.boxes import import_boxes
from affdata.db import Store
from affdata.formats import LabelTable
from affdata.labels import import_labels
from affdata.labels.consensus import build_consensus
from affdata.labels.importer import import_predictions, store_tables
from affdata.views import VIEWS_V1

ORDER = {"frame_labels": "track_id, frame_idx", "frame_au_labels": "track_id, frame_idx, au_id"}


@pytest.fixture
def store_with_rules(with_videos: Store) -> Store:
    """The store plus the v1 views under other names: the rules, computed on every query."""
    with with_videos.transaction() as conn:
        for name, sql in VIEWS_V1:
            conn.execute(sa.text(sql.replace(f"CREATE VIEW {name} AS", f"CREATE VIEW rules_{name} AS")))
    return with_videos


def _rows(store: Store, sql: str) -> list[tuple]:
    def norm(v: object) -> object:
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, float):
            return round(v, 9)
        return v

    with store.connect() as conn:
        return [tuple(norm(v) for v in r) for r in conn.execute(sa.text(sql))]


def assert_current(store: Store) -> dict[str, int]:
    """The views equal the rules; returns the labelled-frame counts (so callers can check the
    write did something)."""
    for view, order in ORDER.items():
        got = _rows(store, f"SELECT * FROM {view} ORDER BY {order}")
        want = _rows(store, f"SELECT * FROM rules_{view} ORDER BY {order}")
        assert len(got) == len(want), view
        assert got == want, view
    # no consensus AU row outlives the labels it was derived from
    assert _rows(store, "SELECT COUNT(*) FROM consensus_au c WHERE NOT EXISTS (SELECT 1 FROM au_label a "
                        "WHERE a.track_id = c.track_id AND a.frame_idx = c.frame_idx AND a.au_id = c.au_id)") == [(0,)]
    # no consensus row outlives its track (no foreign key since 0008: a trigger on track), and
    # every track has one row per frame of its video
    for table in ("consensus_frame", "consensus_au"):
        assert _rows(store, f"SELECT COUNT(*) FROM {table} c WHERE NOT EXISTS "
                            "(SELECT 1 FROM track t WHERE t.id = c.track_id)") == [(0,)], table
    assert _rows(store, "SELECT COUNT(*) FROM consensus_frame") == _rows(
        store, "SELECT COUNT(*) FROM track t JOIN frame f ON f.video_id = t.video_id")
    va, au, expr = _rows(store, "SELECT SUM(has_va), SUM(has_au), SUM(has_expr) FROM frame_labels")[0]
    return {"va": va or 0, "au": au or 0, "expr": expr or 0,
            "au_rows": _rows(store, "SELECT COUNT(*) FROM frame_au_labels")[0][0]}


def _edit(path: Path, line: int, value: str) -> None:
    lines = path.read_text().splitlines()
    lines[line] = value
    path.write_text("\n".join(lines) + "\n")


def test_import_and_replace_are_seen_at_once(store_with_rules: Store, annotations: Path) -> None:
    store = store_with_rules
    assert assert_current(store) == {"va": 0, "au": 0, "expr": 0, "au_rows": 0}
    report = import_labels(store, [annotations], source="aff")
    assert report.ok
    counts = assert_current(store)
    assert counts["va"] > 0 and counts["au"] > 0 and counts["expr"] > 0 and counts["au_rows"] > 0
    # --replace: new values for frame 0 of one VA file and one AU file
    va_file = sorted((annotations / "VA_Set" / "Training_Set").glob("*.txt"))[0]
    au_file = sorted((annotations / "AU_Set" / "Training_Set").glob("*.txt"))[0]
    _edit(va_file, 1, "0.5,-0.25")
    n_aus = len(au_file.read_text().splitlines()[0].split(","))
    _edit(au_file, 1, ",".join(["1"] * n_aus))
    swapped = import_labels(store, [annotations], source="aff", replace=True)
    assert swapped.count("replaced") == 2
    assert_current(store)
    video = va_file.stem
    got = _rows(store, f"SELECT valence, arousal FROM frame_labels WHERE video = '{video}' AND track = 'main' "
                       "AND frame_idx = 0")
    assert got == [(0.5, -0.25)]


def test_a_failed_import_changes_nothing(store_with_rules: Store, annotations: Path) -> None:
    store = store_with_rules
    import_labels(store, [annotations], source="aff")
    before = _rows(store, "SELECT * FROM frame_labels ORDER BY track_id, frame_idx")
    bad = sorted((annotations / "VA_Set" / "Training_Set").glob("*.txt"))[0]
    _edit(bad, 1, "0.9,0.9")
    _edit(bad, 5, "7,7")  # out of range: the whole file is refused
    report = import_labels(store, [annotations], source="aff", replace=True)
    assert len(report.failed) == 1
    assert_current(store)
    assert _rows(store, "SELECT * FROM frame_labels ORDER BY track_id, frame_idx") == before


def test_a_second_annotator_and_the_consensus(store_with_rules: Store, annotations: Path) -> None:
    store = store_with_rules
    import_labels(store, [annotations], source="ann_a", kind="annotator")
    for task in ("VA_Set", "EXPR_Set", "AU_Set"):  # a second annotator who differs on frame 0 and 1
        for f in sorted((annotations / task).rglob("*.txt")):
            width = len(f.read_text().splitlines()[0].split(","))
            first = {"VA_Set": "-0.5,0.75", "EXPR_Set": "6", "AU_Set": ",".join(["0"] * width)}[task]
            _edit(f, 1, first)
            _edit(f, 2, first)
    import_labels(store, [annotations], source="ann_b", kind="annotator")
    mixed = assert_current(store)
    assert mixed["expr"] > 0
    # the two annotators disagree on some expressions: those frames wait for a consensus
    disagree = _rows(store, "SELECT COUNT(*) FROM expr_label a JOIN expr_label b ON b.track_id = a.track_id "
                            "AND b.frame_idx = a.frame_idx AND b.source_id > a.source_id WHERE a.expr_id <> b.expr_id")[0][0]
    assert disagree > 0
    build_consensus(store, name="consensus")
    assert assert_current(store) == mixed  # two raters: the consensus keeps their ties out too
    assert _rows(store, "SELECT COUNT(*) FROM va_label l JOIN label_source s ON s.id = l.source_id "
                        "WHERE s.kind = 'consensus'")[0][0] == mixed["va"]
    # a consensus built again from one annotator only replaces the previous one
    build_consensus(store, name="consensus", sources=["ann_b"])
    assert_current(store)
    assert _rows(store, "SELECT DISTINCT valence, arousal FROM frame_labels WHERE frame_idx = 0 AND has_va = 1") == [
        (-0.5, 0.75)]


def test_model_predictions_never_enter_the_consensus(store_with_rules: Store, annotations: Path) -> None:
    store = store_with_rules
    import_labels(store, [annotations], source="aff")
    before = _rows(store, "SELECT * FROM frame_labels ORDER BY track_id, frame_idx")
    video, frames = _rows(store, "SELECT name, frame_count FROM video ORDER BY name LIMIT 1")[0]
    n = frames
    table = LabelTable(path="predictions", video=video, track="main", frames=np.arange(n), lines=np.arange(n) + 1,
                       valence=np.full(n, 0.9), arousal=np.full(n, 0.9), au_numbers=(12,),
                       au_present=np.ones((n, 1), np.int8), expr=np.full(n, 3, np.int16), kind="model")
    face = LabelTable(path="predictions", video=video, track="face0", frames=np.arange(n), lines=np.arange(n) + 1,
                      valence=np.full(n, -0.9), arousal=np.full(n, 0.1), kind="model")
    status, rows = import_predictions(store, [table, face], source="mtl-run", version="1", key="preds", path="preds",
                                      digest="0" * 64)
    assert status == "imported" and rows == 4 * n
    assert_current(store)
    # the model's new track is listed, unlabelled; the labelled frames are as before
    assert _rows(store, "SELECT COUNT(*), SUM(has_va) FROM frame_labels WHERE track = 'face0'") == [(n, 0)]
    assert _rows(store, "SELECT * FROM frame_labels WHERE track <> 'face0' ORDER BY track_id, frame_idx") == before


def test_a_new_track_gets_its_frames(store_with_rules: Store, tmp_path: Path) -> None:
    store = store_with_rules
    video, frames = _rows(store, "SELECT name, frame_count FROM video ORDER BY name LIMIT 1")[0]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("video,track,frame,x,y,w,h\n" + f"{video},guest,0,1,1,10,10\n")
    import_boxes(store, boxes)
    assert_current(store)
    assert _rows(store, f"SELECT COUNT(*) FROM frame_labels WHERE video = '{video}' AND track = 'guest'") == [(frames,)]


def test_one_file_with_every_task_for_a_new_track(store_with_rules: Store, annotations: Path) -> None:
    """A new track's rows are written from the tasks of the write that made it: a file holding
    all three tasks (as the studio's submissions can) gets all three at once."""
    store = store_with_rules
    import_labels(store, [annotations], source="aff")
    (video, video_id, frames), = _rows(store, "SELECT name, id, frame_count FROM video ORDER BY name LIMIT 1")
    n = frames // 2
    table = LabelTable(path="all.csv", video=video, track="second", frames=np.arange(n), lines=np.arange(n) + 1,
                       valence=np.linspace(-1, 1, n), arousal=np.full(n, 0.25), au_numbers=(1, 12),
                       au_present=np.tile(np.array([[1, 0]], np.int8), (n, 1)), expr=np.full(n, 4, np.int16))
    status, rows = store_tables(store, [(table, video_id)], source="aff", version="", kind="dataset", key="all.csv",
                                path="all.csv", fmt="csv", digest="1" * 64)
    assert status == "imported" and rows == 4 * n
    counts = assert_current(store)
    got = _rows(store, "SELECT COUNT(*), SUM(has_va), SUM(has_au), SUM(has_expr) FROM frame_labels "
                       f"WHERE video = '{video}' AND track = 'second'")
    assert got == [(frames, n, n, n)]
    assert counts["au_rows"] >= 2 * n


@pytest.mark.parametrize("how", ["track", "video", "detector"])
def test_a_deleted_track_takes_its_consensus_rows(store_with_rules: Store, annotations: Path, tmp_path: Path,
                                                  how: str) -> None:
    """The trigger on track does what the foreign keys' ON DELETE CASCADE did: a track deleted
    by itself, through its video, or by a new detector run leaves no consensus row behind."""
    store = store_with_rules
    import_labels(store, [annotations], source="aff")
    video, video_id = _rows(store, "SELECT name, id FROM video ORDER BY name LIMIT 1")[0]
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("video,track,frame,x,y,w,h\n" + f"{video},guest,0,1,1,10,10\n")
    import_boxes(store, boxes)
    guest = _rows(store, f"SELECT id FROM track WHERE video_id = {video_id} AND name = 'guest'")[0][0]
    labelled = _rows(store, f"SELECT id FROM track WHERE video_id = {video_id} AND name = 'main'")[0][0]
    assert _rows(store, f"SELECT COUNT(*) FROM consensus_au WHERE track_id = {labelled}")[0][0] > 0
    with store.transaction() as conn:
        if how == "track":
            conn.execute(sa.text(f"DELETE FROM track WHERE id IN ({guest}, {labelled})"))
        elif how == "video":
            conn.execute(sa.text(f"DELETE FROM video WHERE id = {video_id}"))
        else:
            from affdata.faces.store import replace_detected
            conn.execute(sa.text(f"DELETE FROM face_box WHERE track_id = {guest}"))
            replace_detected(conn, video_id, [], source_id=1)
    gone = [guest] if how == "detector" else [guest, labelled]
    for table in ("consensus_frame", "consensus_au"):
        left = _rows(store, f"SELECT COUNT(*) FROM {table} WHERE track_id IN ({', '.join(map(str, gone))})")
        assert left == [(0,)], table
    assert_current(store)
