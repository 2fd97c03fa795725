"""``create_split``: people stay in one part, classes balance, a seed repeats, a changed store versions.

The store is built row by row: twelve videos of ten frames, one person each, except that video 0
shows two people side by side (its own subject on the left, video 1's subject on the right) and
videos 2 and 3 show the same person. Every video's frames carry one expression class, classes
0 and 1 on alternating videos.
"""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from affdata import materialized
from affdata.bulk import insert_rows
from affdata.db import Store
from affdata.errors import ConfigError
from affdata.splits import create_split, show_split

FRAMES = 10


def _add_video(conn: sa.Connection, n: int, subject: int, source: int, expr: int,
               tracks: dict[str, int | None] | None = None) -> int:
    def one(sql: str, **p: object) -> int:
        return conn.execute(sa.text(sql), p).scalar_one()

    vid = one("INSERT INTO video (name, subject_id, path, kind, content_hash, size_bytes, container, codec, "
              "decoder, fps_num, fps_den, frame_count, width, height, sar_num, sar_den, duration_s, is_vfr, "
              "ingested_at) VALUES (:n, :s, '/x', 'file', :h, 1, 'mp4', 'h264', 'pyav', 30, 1, :f, 8, 8, 1, 1, "
              "1.0, false, CURRENT_TIMESTAMP) RETURNING id", n=f"video{n:02d}", s=subject, h=f"{n:064d}", f=FRAMES)
    insert_rows(conn, "frame", ("video_id", "idx", "pts_s", "present"), [(vid, i, i / 30, True) for i in range(FRAMES)])
    for name, person in (tracks or {"main": None}).items():
        tid = one("INSERT INTO track (video_id, name, subject_id) VALUES (:v, :n, :s) RETURNING id",
                  v=vid, n=name, s=person)
        insert_rows(conn, "expr_label", ("track_id", "frame_idx", "source_id", "expr_id"),
                    [(tid, i, source, expr) for i in range(FRAMES)])
    return vid


def _subject(conn: sa.Connection, name: str) -> int:
    return conn.execute(sa.text("INSERT INTO subject (name, created_at) VALUES (:n, CURRENT_TIMESTAMP) RETURNING id"),
                        {"n": name}).scalar_one()


@pytest.fixture
def people(store: Store) -> tuple[Store, dict[str, int]]:
    """The store of the module docstring; returns it and video name -> id."""
    with store.transaction() as conn:
        source = conn.execute(sa.text("INSERT INTO label_source (kind, name, version, created_at) VALUES "
                                      "('dataset', 'release', '', CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        subjects = [_subject(conn, f"s{i:02d}") for i in range(12)]
        ids = {}
        for n in range(12):
            subject = subjects[2] if n == 3 else subjects[n]
            tracks = {"left": subjects[0], "right": subjects[1]} if n == 0 else None
            ids[f"video{n:02d}"] = _add_video(conn, n, subject, source, expr=n % 2, tracks=tracks)
        materialized.rebuild(conn)
    return store, ids


def _parts(store: Store, name: str) -> dict[int, str]:
    with store.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT a.video_id, a.part FROM split_assignment a JOIN split s ON s.id = a.split_id "
            "WHERE s.name = :n AND s.version = (SELECT MAX(version) FROM split WHERE name = :n)"), {"n": name}).all())


def test_people_who_share_a_video_stay_in_one_part(people: tuple[Store, dict[str, int]]) -> None:
    store, ids = people
    for seed in range(6):  # whichever way the shuffle falls
        create_split(store, f"s{seed}", by="subject", ratios=(0.5, 0.5), seed=seed)
        parts = _parts(store, f"s{seed}")
        assert parts[ids["video00"]] == parts[ids["video01"]]  # s00 and s01 meet in video00
        assert parts[ids["video02"]] == parts[ids["video03"]]  # one person, two videos
    # a video split may part them: some seed does
    by_video = [_parts(store, f"v{seed}") for seed in range(6)
                if create_split(store, f"v{seed}", by="video", ratios=(0.5, 0.5), seed=seed)]
    assert any(p[ids["video00"]] != p[ids["video01"]] or p[ids["video02"]] != p[ids["video03"]] for p in by_video)


def test_stratified_parts_get_their_share_of_each_class(people: tuple[Store, dict[str, int]]) -> None:
    store, _ = people
    for seed in range(4):
        create_split(store, f"st{seed}", by="video", ratios=(0.5, 0.5), seed=seed, stratify="expression")
        summary = show_split(store, f"st{seed}")
        assert [p.part for p in summary.parts] == ["train", "val"]
        # Neutral: 70 frames (video00 has two tracks), Anger: 60; each part within a video of half
        for p in summary.parts:
            assert abs(p.classes["Neutral"] - 35) <= 5 and p.classes["Anger"] == 30, (seed, p)
    assert sum(p["expr"] for p in summary.to_dict()["parts"]) == 130
    # without stratifying, some seed deals the classes unevenly
    uneven = []
    for seed in range(6):
        create_split(store, f"un{seed}", by="video", ratios=(0.5, 0.5), seed=seed)
        uneven += [abs(p.classes.get("Anger", 0) - 30) for p in show_split(store, f"un{seed}").parts]
    assert max(uneven) >= 10


def test_the_same_seed_gives_the_same_split_and_a_changed_store_a_new_version(
        people: tuple[Store, dict[str, int]]) -> None:
    store, _ = people
    first = create_split(store, "main", seed=7)
    assert (first.version, first.created) == (1, True)
    again = create_split(store, "main", seed=7)
    assert (again.version, again.created, again.content_hash) == (1, False, first.content_hash)
    hashes = {create_split(store, f"other{seed}", seed=seed).content_hash for seed in range(8, 12)}
    assert hashes - {first.content_hash}  # another seed deals another split
    assert Counter(_parts(store, "main").values()).keys() <= {"train", "val", "test"}
    with store.transaction() as conn:
        source = conn.execute(sa.text("SELECT id FROM label_source")).scalar_one()
        _add_video(conn, 12, _subject(conn, "s12"), source, expr=0)
        materialized.rebuild(conn)
    grown = create_split(store, "main", seed=7)
    assert (grown.version, grown.created) == (2, True) and grown.content_hash != first.content_hash
    assert show_split(store, "main@1").version == 1 and show_split(store, "main").version == 2


def test_bad_arguments_name_the_argument_not_a_flag(people: tuple[Store, dict[str, int]]) -> None:
    store, _ = people
    with pytest.raises(ConfigError, match="not each 'person'") as bad:
        create_split(store, "x", by="person")
    assert "--" not in str(bad.value)
    with pytest.raises(ConfigError, match="stratify by 'expression' only"):
        create_split(store, "x", stratify="valence")
