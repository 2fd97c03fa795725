"""The example SQL in docs/schema.md runs on both backends and answers what it claims."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.schema import (
    AULabel,
    ExprLabel,
    Split,
    SplitAssignment,
    Subject,
    VALabel,
    Video,
)
from affdata.sql import run_readonly
from tests.affdata.store.test_store import make_source, make_video, rebuild

DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)


def test_the_doc_has_the_promised_examples() -> None:
    assert len(QUERIES) >= 4


@pytest.fixture
def labelled(store: Store) -> Store:
    video, track = make_video(store, frames=3)
    a = make_source(store, "ann_a", "annotator")
    b = make_source(store, "ann_b", "annotator")
    m = make_source(store, "openface", "model")
    with store.session() as s, s.begin():
        sub = Subject(name="subj001")
        s.add(sub)
        s.flush()
        s.get(Video, video).subject_id = sub.id
        split = Split(name="official", unit="subject", content_hash="0" * 64)
        s.add(split)
        s.flush()
        s.add(SplitAssignment(split_id=split.id, video_id=video, part="train"))
        s.add_all([
            VALabel(track_id=track, frame_idx=0, source_id=a, valence=0.5, arousal=0.1),
            VALabel(track_id=track, frame_idx=0, source_id=b, valence=0.1, arousal=0.1),
            VALabel(track_id=track, frame_idx=1, source_id=a, valence=-0.2, arousal=0.3),
            AULabel(track_id=track, frame_idx=0, source_id=a, au_id=12, present=1),
            AULabel(track_id=track, frame_idx=0, source_id=m, au_id=12, present=1),
            ExprLabel(track_id=track, frame_idx=2, source_id=a, expr_id=6),
        ])
    rebuild(store)
    return store


@pytest.mark.parametrize("index", range(len(QUERIES)))
def test_doc_query_runs(labelled: Store, index: int) -> None:
    result = run_readonly(labelled, QUERIES[index])
    assert result.columns and result.rows, QUERIES[index]


def test_doc_queries_answer_correctly(labelled: Store) -> None:
    both = run_readonly(labelled, QUERIES[0]).rows
    assert both == [("v1", "main", 1)]
    balance = run_readonly(labelled, QUERIES[1]).rows
    assert balance == [("official", "train", "Surprise", 1)]
    per_subject = run_readonly(labelled, QUERIES[2]).as_dicts()
    assert per_subject[0]["frames"] == 2 and per_subject[0]["mean_valence"] == pytest.approx(0.05)
    diff = run_readonly(labelled, QUERIES[3]).as_dicts()
    assert diff[0]["frames"] == 1 and diff[0]["mean_abs_valence_diff"] == pytest.approx(0.4)
    agreement = run_readonly(labelled, QUERIES[4]).as_dicts()
    assert agreement == [{"model": "openface", "frames": 1, "agreement": pytest.approx(1.0)}]
