"""`affdata labels consensus` and `affdata labels agreement`, against hand-made annotations and
reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from affdata.db import Store
from affdata.errors import ConfigError
from affdata.labels.agreement import agreement, ccc, cohen_kappa, fleiss_kappa, icc_a1
from affdata.labels.consensus import build_consensus
from affdata.schema import AULabel, ExprLabel, VALabel
from affdata.sql import run_readonly
from tests.affdata.store.test_store import make_source, make_video, rebuild


def test_icc_matches_shrout_and_fleiss() -> None:
    # Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(2,1) = 0.29
    ratings = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert icc_a1(ratings) == pytest.approx(0.2898, abs=1e-4)


def test_fleiss_kappa_matches_the_textbook_example() -> None:
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories; kappa = 0.210
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    labels = np.array([np.repeat(np.arange(5), row) for row in counts])
    assert fleiss_kappa(labels) == pytest.approx(0.210, abs=5e-4)


def test_cohen_kappa_and_ccc_match_references() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    b[:150] = a[:150]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    x = rng.normal(size=200)
    y = 0.8 * x + rng.normal(scale=0.3, size=200) + 0.2
    expected = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert ccc(x, y) == pytest.approx(expected, rel=1e-12)
    assert ccc(x[:1], y[:1]) is None


@pytest.fixture
def annotated(store: Store) -> tuple[Store, int, list[int]]:
    """One track of 6 frames, three annotators who agree on some frames and not on others."""
    _, track = make_video(store, frames=6)
    a, b, c = (make_source(store, n, "annotator") for n in ("ann_a", "ann_b", "ann_c"))
    va = {a: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], b: [0.3, 0.2, 0.1, 0.4, 0.6, 0.6], c: [0.2, 0.2, 0.2, 0.4, 0.4, 0.5]}
    expr = {a: [4, 4, 1, 0, 6, 6], b: [4, 5, 2, 0, 6, 3], c: [4, 5, 3, 0, 6, 3]}
    au12 = {a: [1, 1, 0, 0, 1, 0], b: [1, 0, 0, 1, 1, 0], c: [1, 0, 1, 1, 1, 0]}
    with store.session() as s, s.begin():
        for src in (a, b, c):
            for f in range(6):
                s.add(VALabel(track_id=track, frame_idx=f, source_id=src, valence=va[src][f], arousal=-va[src][f]))
                s.add(ExprLabel(track_id=track, frame_idx=f, source_id=src, expr_id=expr[src][f]))
                s.add(AULabel(track_id=track, frame_idx=f, source_id=src, au_id=12, present=au12[src][f]))
    rebuild(store)
    return store, track, [a, b, c]


def test_consensus_is_mean_va_and_majority_classes(annotated) -> None:
    store, _, _ = annotated
    report = build_consensus(store)
    assert report.frames == {"va": 6, "expr": 5, "au": 6}
    assert report.ties["expr"] == 1  # frame 2: Anger, Disgust, Fear, one vote each
    rows = run_readonly(store, "SELECT frame_idx, valence, expr_id FROM frame_labels ORDER BY frame_idx").rows
    assert [r[1] for r in rows] == pytest.approx([0.2, 0.2, 0.2, 0.4, 0.5, 0.5666666], abs=1e-6)
    assert [r[2] for r in rows] == [4, 5, None, 0, 6, 3]
    au = run_readonly(store, "SELECT frame_idx, present FROM frame_au_labels ORDER BY frame_idx").rows
    assert au == [(0, 1), (1, 0), (2, 0), (3, 1), (4, 1), (5, 0)]
    # running it again replaces, not duplicates
    build_consensus(store)
    assert store.scalar("SELECT COUNT(*) FROM va_label l JOIN label_source s ON s.id = l.source_id "
                        "WHERE s.kind = 'consensus'") == 6


def test_consensus_reports_au_ties(store: Store) -> None:
    _, track = make_video(store, frames=1)
    a, b = make_source(store, "a", "annotator"), make_source(store, "b", "annotator")
    with store.session() as s, s.begin():
        s.add(AULabel(track_id=track, frame_idx=0, source_id=a, au_id=1, present=1))
        s.add(AULabel(track_id=track, frame_idx=0, source_id=b, au_id=1, present=0))
        s.add(AULabel(track_id=track, frame_idx=0, source_id=a, au_id=2, present=1))
    report = build_consensus(store)
    assert report.ties["au"] == 1 and report.frames["au"] == 1
    assert run_readonly(store, "SELECT au, present FROM frame_au_labels").rows == [("AU2", 1)]


def test_agreement_figures(annotated) -> None:
    store, _, _ = annotated
    result = agreement(store)
    assert result["sources"] == ["ann_a", "ann_b", "ann_c"]
    va = result["va"]
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    b = np.array([0.3, 0.2, 0.1, 0.4, 0.6, 0.6])
    c = np.array([0.2, 0.2, 0.2, 0.4, 0.4, 0.5])
    pair = next(p for p in va["pairs"] if (p["a"], p["b"]) == ("ann_a", "ann_b"))
    assert pair["frames"] == 6 and pair["ccc_valence"] == pytest.approx(ccc(a, b))
    assert va["icc_valence"] == pytest.approx(icc_a1(np.stack([a, b, c], axis=1)))
    assert va["icc_valence_frames"] == 6 and "ICC(2,1)" in va["icc_form"]
    ex = result["expr"]
    assert ex["fleiss_frames"] == 6
    assert ex["fleiss_kappa"] == pytest.approx(fleiss_kappa(np.array(
        [[4, 4, 4], [4, 5, 5], [1, 2, 3], [0, 0, 0], [6, 6, 6], [6, 3, 3]])))
    kab = next(p for p in ex["pairs"] if (p["a"], p["b"]) == ("ann_a", "ann_b"))["cohen_kappa"]
    assert kab == pytest.approx(cohen_kappa_score([4, 4, 1, 0, 6, 6], [4, 5, 2, 0, 6, 3]))
    assert set(result["au"]) == {"AU12"}


def test_agreement_needs_two_sources(store: Store) -> None:
    make_video(store, frames=1)
    make_source(store, "only", "annotator")
    with pytest.raises(ConfigError, match="at least two"):
        agreement(store)
