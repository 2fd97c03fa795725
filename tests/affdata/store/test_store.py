"""Opening stores, connection settings, integrity, and the consensus views."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from affdata import materialized
from affdata.db import Store, resolve_url
from affdata.errors import ConfigError, StoreError
from affdata.schema import AULabel, ExprLabel, Frame, LabelSource, Track, VALabel, Video


def test_default_store_is_affdata_db_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFFDATA_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_url() == f"sqlite:///{tmp_path / 'affdata.db'}"
    with Store() as store:
        assert store.created
    assert (tmp_path / "affdata.db").is_file()


def test_url_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFDATA_DB", str(tmp_path / "env.db"))
    assert resolve_url() == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_url("x.db").endswith("/x.db") and resolve_url("x.db").startswith("sqlite:////")
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ConfigError, match="unsupported database"):
        resolve_url("mysql://u@h/db")
    with pytest.raises(ConfigError, match="no such directory"):
        Store(str(tmp_path / "missing" / "a.db"))


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    with Store(str(tmp_path / "s.db")) as store, store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_unreachable_postgresql_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open the store at postgresql"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        with store.session() as s, s.begin():
            s.add(Track(video_id=424242, name="main"))


def test_label_ranges_are_checked_by_the_database(store: Store) -> None:
    video, track = make_video(store, frames=2)
    src = make_source(store, "a", "annotator")
    with pytest.raises(sa.exc.IntegrityError):
        with store.session() as s, s.begin():
            s.add(VALabel(track_id=track, frame_idx=0, source_id=src, valence=1.5, arousal=0.0))


def make_video(store: Store, name: str = "v1", frames: int = 4, tracks=("main",)) -> tuple[int, int]:
    with store.session() as s, s.begin():
        v = Video(
            name=name, path=f"/data/{name}.mp4", kind="file", content_hash=name.ljust(64, "0"),
            size_bytes=1, container="mp4", codec="h264", stream_index=0, decoder="decord",
            fps_num=25, fps_den=1, frame_count=frames, width=64, height=64, duration_s=frames / 25,
        )
        s.add(v)
        s.flush()
        s.add_all(Frame(video_id=v.id, idx=i, pts_s=i / 25) for i in range(frames))
        ts = [Track(video_id=v.id, name=t) for t in tracks]
        s.add_all(ts)
        s.flush()
        for t in ts:  # what ensure_track does for a new track
            materialized.add_track(s.connection(), t.id, v.id)
        return v.id, ts[0].id


def rebuild(store: Store) -> None:
    """After label rows written by hand (not through a library writer), recompute the
    materialised consensus the views read, as migration 0002 does."""
    with store.transaction() as conn:
        materialized.rebuild(conn)


def make_source(store: Store, name: str, kind: str) -> int:
    with store.session() as s, s.begin():
        src = LabelSource(kind=kind, name=name)
        s.add(src)
        s.flush()
        return src.id


def _rows(store: Store, sql: str) -> list[tuple]:
    with store.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def test_frame_labels_view_consensus_rules(store: Store) -> None:
    _, track = make_video(store, frames=4)
    a = make_source(store, "ann_a", "annotator")
    b = make_source(store, "ann_b", "annotator")
    model = make_source(store, "openface", "model")
    with store.session() as s, s.begin():
        s.add_all([
            # frame 0: two annotators -> mean VA; frame 1: one annotator; model never counts
            VALabel(track_id=track, frame_idx=0, source_id=a, valence=0.2, arousal=-0.4),
            VALabel(track_id=track, frame_idx=0, source_id=b, valence=0.6, arousal=0.0),
            VALabel(track_id=track, frame_idx=1, source_id=a, valence=-0.5, arousal=0.5),
            VALabel(track_id=track, frame_idx=2, source_id=model, valence=0.9, arousal=0.9),
            # expressions: agreement on frame 0, disagreement on frame 1
            ExprLabel(track_id=track, frame_idx=0, source_id=a, expr_id=4),
            ExprLabel(track_id=track, frame_idx=0, source_id=b, expr_id=4),
            ExprLabel(track_id=track, frame_idx=1, source_id=a, expr_id=4),
            ExprLabel(track_id=track, frame_idx=1, source_id=b, expr_id=5),
            # AU12: 2 of 2 say present on frame 0; a tie on frame 1; model only on frame 3
            AULabel(track_id=track, frame_idx=0, source_id=a, au_id=12, present=1),
            AULabel(track_id=track, frame_idx=0, source_id=b, au_id=12, present=1),
            AULabel(track_id=track, frame_idx=1, source_id=a, au_id=12, present=1),
            AULabel(track_id=track, frame_idx=1, source_id=b, au_id=12, present=0),
            AULabel(track_id=track, frame_idx=3, source_id=model, au_id=12, present=1),
        ])
    rebuild(store)
    rows = _rows(store, "SELECT frame_idx, valence, arousal, has_va, expr_id, expression, has_expr, has_au "
                        "FROM frame_labels ORDER BY frame_idx")
    assert len(rows) == 4  # one row per (track, frame), labelled or not
    f0, f1, f2, f3 = rows
    assert f0[1] == pytest.approx(0.4) and f0[2] == pytest.approx(-0.2) and f0[3] == 1
    assert f0[4:7] == (4, "Happiness", 1)
    assert f1[1] == pytest.approx(-0.5) and f1[3] == 1
    assert f1[4:7] == (None, None, 0)  # disagreement waits for a consensus
    assert f2[3] == 0 and f2[1] is None  # the model's label is not a human label
    assert (f0[7], f3[7]) == (1, 0)
    au = _rows(store, "SELECT frame_idx, au, present FROM frame_au_labels ORDER BY frame_idx")
    assert au == [(0, "AU12", 1)]  # the tie on frame 1 stays unlabelled

    # a consensus source takes precedence over the human sources
    c = make_source(store, "consensus", "consensus")
    with store.session() as s, s.begin():
        s.add_all([
            VALabel(track_id=track, frame_idx=0, source_id=c, valence=0.1, arousal=0.1),
            ExprLabel(track_id=track, frame_idx=1, source_id=c, expr_id=5),
            AULabel(track_id=track, frame_idx=1, source_id=c, au_id=12, present=0),
        ])
    rebuild(store)
    rows = _rows(store, "SELECT frame_idx, valence, expr_id FROM frame_labels ORDER BY frame_idx")
    assert rows[0][1] == pytest.approx(0.1)
    assert rows[1][2] == 5
    au = _rows(store, "SELECT frame_idx, present FROM frame_au_labels ORDER BY frame_idx")
    assert au == [(0, 1), (1, 0)]


def test_two_tracks_give_two_rows_per_frame(store: Store) -> None:
    make_video(store, frames=3, tracks=("left", "right"))
    rows = _rows(store, "SELECT track, COUNT(*) FROM frame_labels GROUP BY track ORDER BY track")
    assert rows == [("left", 3), ("right", 3)]


def test_deleting_a_video_removes_its_frames_tracks_and_labels(store: Store) -> None:
    video, track = make_video(store, frames=2)
    src = make_source(store, "a", "annotator")
    with store.session() as s, s.begin():
        s.add(VALabel(track_id=track, frame_idx=0, source_id=src, valence=0.0, arousal=0.0))
    with store.session() as s, s.begin():
        s.delete(s.get(Video, video))
    for table in ("frame", "track", "va_label"):
        assert store.scalar(f"SELECT COUNT(*) FROM {table}") == 0
