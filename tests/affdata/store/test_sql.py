"""``affdata sql`` is read-only by construction on both backends."""

from __future__ import annotations

import pytest

from affdata.db import Store
from affdata.errors import ReadOnlyError
from affdata.sql import SQLError, run_readonly
from tests.affdata.store.test_store import make_source, make_video

WRITES = [
    "DELETE FROM label_source",
    "UPDATE label_source SET name = 'x'",
    "INSERT INTO subject (name, created_at) VALUES ('x', '2020-01-01')",
    "DROP VIEW frame_labels",
    "CREATE TABLE t (a INTEGER)",
    "SELECT 1; DELETE FROM label_source",
    "ALTER TABLE subject ADD COLUMN z INTEGER",
]


def test_queries_return_columns_and_rows(store: Store) -> None:
    make_video(store, frames=3)
    result = run_readonly(store, "SELECT video, frame_idx, has_va FROM frame_labels ORDER BY frame_idx;")
    assert result.columns == ["video", "frame_idx", "has_va"]
    assert result.rows == [("v1", 0, 0), ("v1", 1, 0), ("v1", 2, 0)]
    assert run_readonly(store, "SELECT name FROM action_unit WHERE name LIKE 'AU2%' ORDER BY id").rows == [
        ("AU2",), ("AU20",), ("AU22",), ("AU23",), ("AU24",), ("AU25",), ("AU26",), ("AU27",), ("AU28",)]
    assert len(run_readonly(store, "SELECT * FROM frame", limit=2).rows) == 2


@pytest.mark.parametrize("statement", WRITES)
def test_writes_are_refused_and_change_nothing(store: Store, statement: str) -> None:
    make_source(store, "keep", "annotator")
    before = run_readonly(store, "SELECT id, name FROM label_source").rows
    with pytest.raises(ReadOnlyError):
        run_readonly(store, statement)
    assert run_readonly(store, "SELECT id, name FROM label_source").rows == before
    assert "t" not in {r[0] for r in run_readonly(
        store, "SELECT name FROM sqlite_master" if store.is_sqlite else
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").rows}


def test_writing_cte_is_refused(store: Store) -> None:
    make_source(store, "keep", "annotator")
    with pytest.raises((ReadOnlyError, SQLError)):
        run_readonly(store, "WITH d AS (DELETE FROM label_source RETURNING id) SELECT * FROM d")
    assert run_readonly(store, "SELECT COUNT(*) FROM label_source").rows == [(1,)]


def test_bad_sql_is_one_clear_error(store: Store) -> None:
    with pytest.raises(SQLError, match="no_such_table|does not exist"):
        run_readonly(store, "SELECT * FROM no_such_table")
    with pytest.raises(SQLError, match="empty"):
        run_readonly(store, "  ;")


def test_limit_says_how_many_rows_it_left_out(store: Store) -> None:
    make_video(store, frames=7)
    cut = run_readonly(store, "SELECT * FROM frame ORDER BY idx", limit=3)
    assert [r[1] for r in cut.rows] == [0, 1, 2] and cut.left_out == 4
    whole = run_readonly(store, "SELECT * FROM frame", limit=7)
    assert len(whole.rows) == 7 and whole.left_out == 0
    assert run_readonly(store, "SELECT * FROM frame").left_out == 0
