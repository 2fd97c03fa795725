"""The wild knobs: each does what it says, off means the plain generator, same seed same data."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import av
import numpy as np
import pytest

from affdata.errors import ConfigError
from affdata.synthetic import Wild, generate_dataset, generate_labels_only
from affdata.synthetic.affect import sample_affect
from affdata.synthetic.plan import rng_for
from affdata.synthetic.wild import (
    CONFUSABLE,
    annotate,
    jitter_boxes,
    wild_accessories,
    wild_occluder,
    wild_pose,
    wild_scene,
)

CLASSES = (0, 1, 2, 3, 4, 5, 6)
AUS = (1, 2, 4, 6, 12, 15, 20, 25)


def _affect(seed: int = 0, n: int = 3000):
    return sample_affect(n, 25, np.random.default_rng(seed), CLASSES, AUS)


def _ccc(x: np.ndarray, y: np.ndarray) -> float:
    return float(2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2))


def test_parse_preset_and_refusals() -> None:
    assert Wild.parse("pose=0.5", preset=True) == Wild(**{**Wild.preset().to_json(), "pose": 0.5})
    assert Wild.parse("annotators=5").annotators == 5 and not Wild().on and Wild.preset().on
    # the pixel preset: the five pixel knobs at 1, nothing of the boxes or the labels; later items win
    assert Wild.parse("pixels") == Wild(pose=1, lighting=1, occlusion=1, blur=1, identity=1) == Wild.pixels()
    assert Wild.parse("pixels,blur=0.5").blur == 0.5 and Wild.parse("pixels").box_jitter == 0
    assert Wild.parse("pixels", preset=True) == Wild.preset()
    with pytest.raises(ConfigError, match="unknown wild knob 'glare=1'"):
        Wild.parse("glare=1")
    with pytest.raises(ConfigError, match="must be in"):
        Wild(pose=3)


def test_pose_turns_and_rolls_the_head_within_bounds() -> None:
    assert not wild_pose(Wild(), 200, 25, rng_for(0, 11)).roll.any()
    p = wild_pose(Wild(pose=1), 2000, 25, rng_for(0, 11))
    assert 0.1 < np.abs(p.roll).max() <= 0.45 and 0.1 < np.abs(p.yaw).max() <= 0.6
    again = wild_pose(Wild(pose=1), 2000, 25, rng_for(0, 11))
    assert np.array_equal(p.yaw, again.yaw)


def test_lighting_and_blur_change_the_scene() -> None:
    plain = wild_scene(Wild(), rng_for(1, 12))
    assert (plain.gain, plain.blur, plain.crf) == (1.0, 0.0, None)
    gains = [wild_scene(Wild(lighting=1, blur=1), rng_for(s, 12)) for s in range(40)]
    assert min(g.gain for g in gains) < 0.7 and max(g.gain for g in gains) > 1.1
    assert max(np.abs(g.cast - 1).max() for g in gains) > 0.15
    assert all(27 <= g.crf <= 37 for g in gains) and max(g.blur for g in gains) > 1.0


def test_occlusion_covers_a_share_of_frames_and_glasses_come_with_it() -> None:
    assert not wild_occluder(Wild(), 1000, 25, rng_for(0, 13)).on.any()
    shares = [wild_occluder(Wild(occlusion=1), 1500, 25, rng_for(s, 13)).on.mean() for s in range(20)]
    assert 0.08 < float(np.mean(shares)) < 0.35
    glasses = [wild_accessories(Wild(occlusion=1), rng_for(s, 15)).glasses for s in range(200)]
    assert 0.35 < np.mean(np.array(glasses) > 0) < 0.65 and 2 in glasses
    assert all(wild_accessories(Wild(), rng_for(s, 15)).glasses == 0 for s in range(50))


def test_jittered_boxes_overlap_the_true_ones_like_a_detector() -> None:
    true = np.tile([[80, 60, 100, 130]], (500, 1))
    assert np.array_equal(jitter_boxes(Wild(), true, 256, 256, rng_for(0, 14)), true)
    box = jitter_boxes(Wild(box_jitter=1), true, 256, 256, rng_for(0, 14))
    x0, y0 = np.maximum(box[:, 0], 80), np.maximum(box[:, 1], 60)
    x1, y1 = np.minimum(box[:, 0] + box[:, 2], 180), np.minimum(box[:, 1] + box[:, 3], 190)
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    iou = inter / (box[:, 2] * box[:, 3] + 100 * 130 - inter)
    assert 0.5 < iou.mean() < 0.95 and iou.min() > 0.2
    assert (box[:, 0] >= 0).all() and (box[:, 0] + box[:, 2] <= 256).all()


def test_annotators_lag_and_bias_the_va_labels() -> None:
    affect = _affect()
    plain = annotate(Wild(), affect, AUS, CLASSES, 25, rng_for(0, 16))
    assert np.array_equal(plain.valence, affect.valence)
    noisy = annotate(Wild(annotators=3), affect, AUS, CLASSES, 25, rng_for(0, 16))
    ccc = _ccc(noisy.valence, affect.valence)
    assert 0.5 < ccc < 0.98
    lags = range(0, 40)
    best = max(lags, key=lambda k: np.corrcoef(noisy.valence[k:], affect.valence[:len(affect.valence) - k])[0, 1])
    assert 3 <= best <= 25  # the annotators react 0.2 to 1 s late
    assert np.array_equal(noisy.au, affect.au_labels(AUS))  # VA annotators leave AUs alone


def test_label_noise_makes_aus_and_expressions_disagree_realistically() -> None:
    affect = _affect(1)
    noisy = annotate(Wild(label_noise=1), affect, AUS, CLASSES, 25, rng_for(1, 16))
    au_flip = float((noisy.au != affect.au_labels(AUS)).mean())
    expr_agree = float((noisy.expression == affect.expression).mean())
    assert 0.01 < au_flip < 0.2
    assert 0.5 < expr_agree < 0.97
    assert set(np.unique(noisy.expression)) <= set(CLASSES)
    wrong = noisy.expression != affect.expression
    confused = {(int(a), int(b)) for a, b in zip(affect.expression[wrong], noisy.expression[wrong])}
    assert any(CONFUSABLE[a] == b for a, b in confused)  # a confusable class, not any class


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_rendering_is_deterministic_and_off_is_the_plain_generator(tmp_path: Path) -> None:
    plain = generate_dataset(tmp_path / "plain", 1, 2.0, 5)
    off = generate_dataset(tmp_path / "off", 1, 2.0, 5, wild=Wild())
    cmp = filecmp.dircmp(plain.out, off.out)
    assert not cmp.diff_files and not cmp.subdirs["videos"].diff_files
    wild = generate_dataset(tmp_path / "wild", 1, 2.0, 5, wild=Wild.preset())
    again = generate_dataset(tmp_path / "again", 1, 2.0, 5, wild=Wild.preset())
    for rel in ("boxes.csv", "annotations/VA_Set/Training_Set/subj001_01.txt", "videos/subj001_01.mp4"):
        assert (wild.out / rel).read_bytes() == (again.out / rel).read_bytes(), rel
        if rel != "videos/subj001_01.mp4":
            assert (wild.out / rel).read_bytes() != (plain.out / rel).read_bytes(), rel
    a, b = _frames(plain.out / "videos/subj001_01.mp4"), _frames(wild.out / "videos/subj001_01.mp4")
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 10
    doc = json.loads((wild.out / "dataset.json").read_text())
    assert doc["arguments"]["wild"] == Wild.preset().to_json()
    assert "wild" not in json.loads((plain.out / "dataset.json").read_text())["arguments"]


def test_labels_only_mode_takes_the_label_knobs(tmp_path: Path) -> None:
    plain = generate_labels_only(tmp_path / "a", videos=4, frames=2000, seed=2)
    noisy = generate_labels_only(tmp_path / "b", videos=4, frames=2000, seed=2, wild=Wild(annotators=2))
    files = sorted((plain.out / "annotations" / "VA_Set").rglob("*.txt"))
    assert files and all((noisy.out / f.relative_to(plain.out)).read_text() != f.read_text() for f in files)
