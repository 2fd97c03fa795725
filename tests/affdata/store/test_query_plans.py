"""The example questions of docs/schema.md are answered through indexes, on both backends.

A store shaped like a release (many frames, few videos; one dataset source, a second annotator
and a model on a few videos), with the planner's statistics refreshed as the label writers do.
Whole-release questions read the consensus track by track in key order; the per-source questions
(two annotators, a model against the consensus) read only those sources' rows. On SQLite,
``EXPLAIN QUERY PLAN`` must show no full scan of a label or consensus table and no automatic
index; on PostgreSQL, with sequential scans and hash / merge joins switched off, every read of
those tables must go through an index whose leading column the condition fixes (a plan that
lacks an index shows a sequential scan or a walk of a whole index instead).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from affdata import materialized
from affdata.bulk import insert_rows
from affdata.db import Store
from affdata.splits import save_split

DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
BIG = {"consensus_frame", "consensus_au", "va_label", "au_label", "expr_label", "frame"}
#: per example, the aliases that name big tables, and whether it is a whole-release question
SHAPE = [({"c"}, True), ({"c"}, True), ({"c"}, True), ({"a", "b"}, False), ({"m", "c"}, False)]
VIDEOS, FRAMES = 24, 300


@pytest.fixture
def release_like(store: Store) -> Store:
    rng = np.random.default_rng(0)
    with store.transaction() as conn:
        def one(sql: str, **p: object) -> int:
            return conn.execute(sa.text(sql), p).scalar_one()

        src = {n: one("INSERT INTO label_source (kind, name, version, created_at) VALUES (:k, :n, '', "
                      "CURRENT_TIMESTAMP) RETURNING id", k=k, n=n)
               for n, k in (("release", "dataset"), ("ann_b", "annotator"), ("model", "model"))}
        videos = []
        for v in range(VIDEOS):
            sub = one("INSERT INTO subject (name, created_at) VALUES (:n, CURRENT_TIMESTAMP) RETURNING id", n=f"s{v}")
            vid = one("INSERT INTO video (name, subject_id, path, kind, content_hash, size_bytes, container, codec, "
                      "decoder, fps_num, fps_den, frame_count, width, height, sar_num, sar_den, duration_s, is_vfr, "
                      "ingested_at) VALUES (:n, :s, '/x', 'file', :h, 1, 'mp4', 'h264', 'pyav', 30, 1, :f, 8, 8, 1, 1, "
                      "1.0, false, CURRENT_TIMESTAMP) RETURNING id", n=f"video{v:03d}", s=sub, h=f"{v:064d}", f=FRAMES)
            videos.append(vid)
            insert_rows(conn, "frame", ("video_id", "idx", "pts_s", "present"),
                        [(vid, i, i / 30, True) for i in range(FRAMES)])
            tid = one("INSERT INTO track (video_id, name) VALUES (:v, 'main') RETURNING id", v=vid)
            va = rng.uniform(-1, 1, (FRAMES, 2))
            insert_rows(conn, "va_label", ("track_id", "frame_idx", "source_id", "valence", "arousal"),
                        [(tid, i, src["release"], float(a), float(b)) for i, (a, b) in enumerate(va)])
            insert_rows(conn, "expr_label", ("track_id", "frame_idx", "source_id", "expr_id"),
                        [(tid, i, src["release"], int(rng.integers(0, 7))) for i in range(0, FRAMES, 4)])
            aus = [(tid, i, src["release"], au, int(rng.integers(0, 2))) for i in range(0, FRAMES, 5)
                   for au in (1, 2, 4, 6, 12, 15, 20, 25)]
            if v < 3:  # a second annotator and a model on a few videos
                insert_rows(conn, "va_label", ("track_id", "frame_idx", "source_id", "valence", "arousal"),
                            [(tid, i, src["ann_b"], 0.0, 0.0) for i in range(FRAMES)])
                aus += [(tid, i, src["model"], 12, 1) for i in range(FRAMES)]
            insert_rows(conn, "au_label", ("track_id", "frame_idx", "source_id", "au_id", "present"), aus)
        materialized.rebuild(conn)
    save_split(store, "official", "video", {v: "train" if i % 4 else "val" for i, v in enumerate(videos)})
    with store.transaction() as conn:
        materialized.update_statistics(conn)
    return store


@pytest.mark.parametrize("index", range(len(QUERIES)))
def test_example_questions_use_indexes(release_like: Store, index: int) -> None:
    assert len(QUERIES) == len(SHAPE)
    sql = QUERIES[index]
    aliases, whole_release = SHAPE[index]
    with release_like.connect() as conn:
        assert conn.execute(sa.text(sql)).all()  # a question with an answer
        if release_like.is_sqlite:
            plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            scans = [line for line in plan if re.match(r"SCAN (\w+)", line)
                     and re.match(r"SCAN (\w+)", line).group(1) in aliases | BIG]
            assert not scans and not [line for line in plan if "AUTOMATIC" in line], "\n".join(plan)
            if whole_release:  # the consensus read track by track, in key order
                assert "SEARCH c USING PRIMARY KEY (track_id=?)" in plan, "\n".join(plan)
            return
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
            conn.exec_driver_sql(f"SET {setting} = off")
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql).scalar()
        plan = plan if isinstance(plan, list) else json.loads(plan)
        leading = dict(conn.exec_driver_sql(
            "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]").all())
    reads = list(_reads(plan[0]["Plan"]))
    assert reads
    for relation, index_name, cond, node in reads:
        if relation not in BIG or (whole_release and relation == "consensus_frame"):
            continue
        # through an index whose leading column the condition fixes (not a walk of the whole index)
        ok = index_name is not None and cond is not None and re.search(rf"\b{leading[index_name]} =", cond)
        assert ok, f"{relation} read by {node['Node Type']} {index_name or ''} {cond or ''}"

def _reads(node: dict, relation: str | None = None):
    """(relation, index, index condition, node) for every read of a table in a plan."""
    kind = node["Node Type"]
    if kind in ("Seq Scan", "Index Scan", "Index Only Scan"):
        yield node["Relation Name"], node.get("Index Name"), node.get("Index Cond"), node
    elif kind == "Bitmap Index Scan":
        yield relation, node["Index Name"], node.get("Index Cond"), node
    for child in node.get("Plans", ()):
        yield from _reads(child, node.get("Relation Name", relation))


def test_names_are_estimated_from_statistics(release_like: Store) -> None:
    """A filter on an AU's or expression's name is estimated from the statistics the label
    writers refresh (PostgreSQL: the small tables are analysed too; without that it guesses
    a sixteenth of the rows here, and at 1M frames joins videos and tracks by nested loops)."""
    if release_like.is_sqlite:
        pytest.skip("SQLite's planner does not estimate join sizes from value statistics")
    sql = "SELECT * FROM frame_au_labels WHERE au = 'AU12'"
    with release_like.connect() as conn:
        actual = len(conn.execute(sa.text(sql)).all())
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    estimated = plan[0]["Plan"]["Plan Rows"]
    assert actual > 0 and actual / 4 <= estimated <= actual * 4, (estimated, actual)


def test_one_class_reads_only_its_frames(release_like: Store) -> None:
    """A question about one expression reads that class's frames through the partial index on
    the consensus expression (revision 0007), not every frame of the release."""
    sql = ("SELECT video, COUNT(*) AS frames FROM frame_labels WHERE expression = 'Happiness' "
           "GROUP BY video")
    with release_like.connect() as conn:
        assert conn.execute(sa.text(sql)).all()
        if release_like.is_sqlite:
            plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            assert any(line.startswith("SEARCH c USING COVERING INDEX ix_consensus_frame_expr_id (expr_id=?")
                       for line in plan), "\n".join(plan)
            return
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
            conn.exec_driver_sql(f"SET {setting} = off")
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    reads = [(index, cond) for relation, index, cond, _ in _reads(plan[0]["Plan"]) if relation == "consensus_frame"]
    assert reads and all(index == "ix_consensus_frame_expr_id" and "expr_id =" in (cond or "")
                         for index, cond in reads), reads
