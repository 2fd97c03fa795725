"""Labels-only mode, coverage and label distributions of the synthetic generator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from affdata.errors import ConfigError
from affdata.synthetic import DatasetSummary, generate_labels_only
from affdata.synthetic.affect import AU_THRESHOLD, sample_affect
from affdata.vocab import AU_SETS
from tests.affdata.synthetic.util import (
    SPLITS,
    TASK_DIRS,
    annotation_files,
    read_csv,
    read_labels,
    stem,
)

MISSING = {"VA": -5, "AU": -1, "EXPR": -1}


def _load(summary: DatasetSummary) -> dict[str, dict[str, np.ndarray]]:
    return {task: {name: read_labels(p)[1] for name, p in annotation_files(summary.out, task).items()}
            for task in TASK_DIRS}


@pytest.fixture(scope="module")
def labels(labels_only: DatasetSummary) -> dict[str, dict[str, np.ndarray]]:
    return _load(labels_only)


@pytest.fixture(scope="module")
def track_frames(labels_only: DatasetSummary) -> dict[str, int]:
    frames = {r["video"]: int(r["frames"]) for r in read_csv(labels_only.out / "videos.csv")}
    return {stem(r["video"], r["track"]): frames[r["video"]]
            for r in read_csv(labels_only.out / "subjects.csv")}


def test_labels_only_layout_and_frame_count(labels_only: DatasetSummary,
                                            labels: dict[str, dict[str, np.ndarray]],
                                            track_frames: dict[str, int]) -> None:
    out = labels_only.out
    assert not (out / "videos").exists() and not (out / "boxes.csv").exists()
    videos = read_csv(out / "videos.csv")
    assert len(videos) == 80 == labels_only.videos
    assert sum(int(r["frames"]) for r in videos) == 240_000 == labels_only.frames
    assert {(r["fps"], r["height"]) for r in videos} == {("25", "256")}
    pairs = [r for r in videos if r["width"] == "384"]
    assert 0.08 <= len(pairs) / len(videos) <= 0.35, "about one video in five has two people"
    assert {r["video"] for r in read_csv(out / "subjects.csv")} == {r["video"] for r in videos}
    assert set(labels["VA"]) == set(track_frames)
    for task in TASK_DIRS:
        for name, rows in labels[task].items():
            assert len(rows) == track_frames[name]
    assert json.loads((out / "dataset.json").read_text())["mode"] == "labels-only"


def test_coverage_is_partial_like_the_release(labels: dict[str, dict[str, np.ndarray]],
                                              track_frames: dict[str, int]) -> None:
    total = sum(track_frames.values())
    masks = {task: {n: ~(rows == MISSING[task]).all(axis=1) for n, rows in labels[task].items()}
             for task in TASK_DIRS}
    share = {task: sum(int(m.sum()) for m in masks[task].values()) / total for task in TASK_DIRS}
    assert 0.9 < share["VA"] < 1.0, "VA on every video, with a few gaps"
    assert 0.15 < share["AU"] < 0.27
    assert 0.2 < share["EXPR"] < 0.32
    nothing = 0
    for name, n in track_frames.items():
        any_label = masks["VA"][name].copy()
        for task in ("AU", "EXPR"):
            if name in masks[task]:
                any_label |= masks[task][name]
        nothing += int((~any_label).sum())
    assert nothing > 0, "some frames must be unannotated for every task"
    # -1 / -5 rows are whole rows: no half-annotated AU or VA line.
    for task in ("VA", "AU"):
        for rows in labels[task].values():
            partial = (rows == MISSING[task]).any(axis=1) & ~(rows == MISSING[task]).all(axis=1)
            assert not partial.any()


def test_every_task_has_labels_in_both_splits(labels_only: DatasetSummary) -> None:
    for task_dir in TASK_DIRS.values():
        for split in SPLITS:
            assert list((labels_only.out / "annotations" / task_dir / split).glob("*.txt"))


def test_label_values_and_class_typical_va(labels: dict[str, dict[str, np.ndarray]]) -> None:
    va, expr = [], []
    for name, rows in labels["EXPR"].items():
        both = (rows[:, 0] >= 0) & (labels["VA"][name][:, 0] != -5)
        va.append(labels["VA"][name][both])
        expr.append(rows[both, 0].astype(int))
    v, e = np.concatenate(va), np.concatenate(expr)
    assert set(np.unique(e)) == set(range(7))
    assert np.abs(v).max() <= 1.0
    mean = {c: v[e == c].mean(axis=0) for c in range(7)}
    assert mean[4][0] > 0.3  # happiness: positive valence
    assert mean[1][0] < -0.3 and mean[1][1] > 0.3  # anger: negative, aroused
    assert mean[3][0] < -0.3 and mean[3][1] > 0.3  # fear
    assert mean[5][0] < -0.3 and mean[5][1] < -0.2  # sadness: negative, calm
    counts = np.bincount(e, minlength=7) / len(e)
    assert counts.min() > 0.05, "no expression class should be vanishingly rare"


def test_va_is_smooth(labels: dict[str, dict[str, np.ndarray]]) -> None:
    for rows in labels["VA"].values():
        ok = (rows[1:, 0] != -5) & (rows[:-1, 0] != -5)
        step = np.abs(np.diff(rows, axis=0))[ok]
        assert step.max() < 0.15  # even a happiness -> anger switch takes about a second
        assert np.median(step) < 0.02
        assert rows[rows[:, 0] != -5].std(axis=0).min() > 0.01 or len(rows) < 100


def test_aus_follow_prototypes_but_also_fire_on_their_own(
        labels: dict[str, dict[str, np.ndarray]]) -> None:
    au, expr = [], []
    for name, rows in labels["AU"].items():
        if name in labels["EXPR"]:
            both = (rows[:, 0] >= 0) & (labels["EXPR"][name][:, 0] >= 0)
            au.append(rows[both])
            expr.append(labels["EXPR"][name][both, 0].astype(int))
    a, e = np.concatenate(au).astype(bool), np.concatenate(expr)
    col = {n: i for i, n in enumerate(AU_SETS["abaw2020"])}
    assert a[e == 4, col[12]].mean() > 0.8 and a[e == 4, col[6]].mean() > 0.8  # happiness
    assert a[e == 6, col[25]].mean() > 0.8 and a[e == 6, col[2]].mean() > 0.8  # surprise
    assert a[e == 5, col[15]].mean() > 0.8  # sadness
    outside = a[(e != 4), col[12]].mean()
    assert 0.02 < outside < 0.25, "AU12 also fires outside happiness, but rarely"
    neutral = a[e == 0]
    assert 0.02 < neutral.mean() < 0.2, "random AU events on neutral faces"


def test_label_distribution_does_not_depend_on_subject(labels_only: DatasetSummary,
                                                       labels: dict[str, dict[str, np.ndarray]]) -> None:
    """Split subjects in two halves by number: their VA distributions agree."""
    subject = {stem(r["video"], r["track"]): int(r["subject"][4:])
               for r in read_csv(labels_only.out / "subjects.csv")}
    halves: list[list[np.ndarray]] = [[], []]
    for name, rows in labels["VA"].items():
        halves[subject[name] % 2].append(rows[rows[:, 0] != -5])
    m0, m1 = (np.concatenate(h).mean(axis=0) for h in halves)
    assert np.abs(m0 - m1).max() < 0.1


def test_sample_affect_labels_are_thresholded_intensities() -> None:
    rng = np.random.default_rng(0)
    affect = sample_affect(500, 25, rng, range(7), AU_SETS["abaw2020"])
    labels = affect.au_labels(AU_SETS["abaw2020"])
    assert labels.shape == (500, 8)
    assert (labels == (affect.au[:, [0, 1, 2, 3, 7, 8, 9, 12]] > AU_THRESHOLD)).all()
    assert np.array_equal(affect.valence, np.round(affect.valence, 3))


def test_labels_only_is_deterministic_and_fast_enough_to_scale(tmp_path: Path) -> None:
    a = generate_labels_only(tmp_path / "a", videos=10, frames=20_000, seed=2)
    b = generate_labels_only(tmp_path / "b", videos=10, frames=20_000, seed=2)
    files = sorted(p.relative_to(a.out) for p in a.out.rglob("*.txt"))
    assert files == sorted(p.relative_to(b.out) for p in b.out.rglob("*.txt"))
    assert all((a.out / f).read_bytes() == (b.out / f).read_bytes() for f in files)
    assert (a.out / "videos.csv").read_bytes() == (b.out / "videos.csv").read_bytes()


def test_labels_only_progress_and_release(tmp_path: Path) -> None:
    calls: list[int] = []
    summary = generate_labels_only(tmp_path / "x", videos=12, frames=30_000, seed=4,
                                   release="abaw", progress=calls.append)
    assert sum(calls) == 30_000 == summary.frames
    classes = set()
    for path in annotation_files(summary.out, "EXPR").values():
        header, rows = read_labels(path)
        assert header.endswith(",Other")
        classes |= set(rows[:, 0].astype(int).tolist())
    assert 7 in classes, "release abaw uses the Other class"
    with pytest.raises(ConfigError):
        generate_labels_only(tmp_path / "y", videos=10, frames=5)


def test_coverage_can_be_raised_for_a_small_demo() -> None:
    from affdata.errors import ConfigError
    from affdata.synthetic.plan import annotation_masks, plan_dataset

    plan = plan_dataset(6, 10.0, 1)
    total = sum(v.frames for v, _ in plan.tracks())

    def share(masks: dict, task: str) -> float:
        return sum(int(m[task].sum()) for m in masks.values()) / total

    default, raised = annotation_masks(plan), annotation_masks(plan, {"AU": 0.4, "EXPR": 0.8})
    assert share(default, "EXPR") < 0.4 and share(raised, "EXPR") >= 0.75 and share(raised, "AU") >= 0.35
    assert all((raised[k]["VA"] == default[k]["VA"]).all() for k in default)  # VA gaps are unchanged
    for bad in ({"EXPR": 0.0}, {"EXPR": 1.5}, {"VA": 0.5}):
        with pytest.raises(ConfigError, match="coverage"):
            annotation_masks(plan, bad)


def test_write_full_labels_labels_every_frame_of_the_same_plan(tmp_path) -> None:
    """benchmarks/gan_quality.py's full-label copy: every frame carries an AU and an expression
    label (the release leaves most bare), for the same videos and frame counts as the plan; VA
    as the release labels it."""
    from affdata.synthetic.dataset import write_full_labels
    from affdata.synthetic.plan import plan_dataset

    write_full_labels(tmp_path / "full", 2, 2.0, seed=3)
    plan = plan_dataset(2, 2.0, 3)
    frames = {v.label_stem(t): v.frames for v in plan.videos for t in v.tracks}
    for task in ("AU_Set", "EXPR_Set", "VA_Set"):
        files = sorted((tmp_path / "full" / "annotations" / task).rglob("*.txt"))
        assert {f.stem for f in files} == set(frames), task
        for f in files:
            rows = f.read_text().splitlines()[1:]
            assert len(rows) == frames[f.stem], f
            if task != "VA_Set":  # VA keeps the release's coverage (-5 where bare)
                assert min(float(x) for row in rows for x in row.split(",")) > -1, f  # no -1 "no label"
