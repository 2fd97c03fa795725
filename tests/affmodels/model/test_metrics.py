from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import accuracy_score, f1_score

from affmodels import AffectMetrics, Predictions, ccc, f1_binary, macro_f1

AUS = ["AU1", "AU2", "AU4"]
CLASSES = ["Neutral", "Anger", "Disgust", "Fear"]


def ref_ccc(x, y) -> float:
    """The formula in float64 with population moments, written independently."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cov = np.cov(x, y, bias=True)[0, 1]
    return 2 * cov / (np.var(x) + np.var(y) + (np.mean(x) - np.mean(y)) ** 2)


# ----------------------------------------------------------------------------- pure functions


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(2, 40), elements=st.floats(-1, 1)), st.integers(0, 2**31))
def test_ccc_matches_formula(x, seed):
    y = np.random.default_rng(seed).uniform(-1, 1, len(x))
    assert ccc(x, y) == pytest.approx(ref_ccc(x, y), rel=1e-9, abs=1e-12)


def test_ccc_special_cases():
    x = np.array([0.1, 0.5, -0.6])  # zero mean, so -x is a perfect disagreement
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, -x) == pytest.approx(-1.0)
    assert ccc(x + 0.1, -x + 0.1) == pytest.approx(-1.0)
    assert ccc(x, x + 0.5) < 1.0  # a bias is penalised, unlike Pearson's r
    assert math.isnan(ccc([], []))
    assert math.isnan(ccc([0.2, 0.2], [0.2, 0.2]))  # 0 / 0
    assert ccc(np.float32([0.1, 0.2]), [0.1, 0.2]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ccc([1, 2], [1, 2, 3])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=30))
def test_f1_binary_matches_sklearn(pairs):
    t, p = np.array(pairs).T
    assert f1_binary(t, p) == pytest.approx(f1_score(t, p, zero_division=0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=30))
def test_macro_f1_matches_sklearn(pairs):
    t, p = np.array(pairs).T
    assert macro_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    labels = list(range(6))
    assert macro_f1(t, p, labels) == pytest.approx(
        f1_score(t, p, average="macro", labels=labels, zero_division=0)
    )


def test_macro_f1_excludes_class_absent_from_targets_and_predictions():
    t = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 2])  # class 3 appears nowhere
    union = macro_f1(t, p)
    assert union == pytest.approx(f1_score(t, p, average="macro"))
    assert union == pytest.approx(np.mean([2 / 3, 0.8, 1.0]))
    assert macro_f1(t, p, labels=[0, 1, 2, 3]) == pytest.approx(np.mean([2 / 3, 0.8, 1.0, 0.0]))
    # a class that is only predicted does count, with F1 0
    assert macro_f1([0, 0], [0, 3]) == pytest.approx(np.mean([2 / 3, 0.0]))


# ----------------------------------------------------------------------------- accumulator


def random_set(n: int, seed: int, with_video: bool = True):
    """Predictions and labels for n frames, with partial AU masks and missing labels."""
    rng = np.random.default_rng(seed)
    k, c = len(AUS), len(CLASSES)
    va_t = rng.uniform(-1, 1, (n, 2))
    va_p = np.clip(va_t * 0.6 + rng.normal(0, 0.3, (n, 2)), -1, 1)
    au_t = (rng.uniform(size=(n, k)) < 0.35).astype(np.float32)
    au_l = (au_t * 2 - 1) * rng.uniform(0.0, 1.0, (n, k)) + rng.normal(0, 0.8, (n, k))
    expr_t = rng.integers(0, c - 1, n)  # the last class never occurs as a target
    expr_l = rng.normal(0, 1, (n, c))
    expr_l[np.arange(n), expr_t] += rng.uniform(0, 2, n)
    va_mask, expr_mask = rng.uniform(size=n) < 0.7, rng.uniform(size=n) < 0.6
    au_mask = rng.uniform(size=(n, k)) < 0.6
    pred = Predictions(torch.tensor(va_p, dtype=torch.float32), torch.tensor(au_l), torch.tensor(expr_l))
    batch = {
        "va": torch.tensor(np.where(va_mask[:, None], va_t, 0), dtype=torch.float32),
        "va_mask": torch.tensor(va_mask),
        "au": torch.tensor(np.where(au_mask, au_t, 0)),
        "au_mask": torch.tensor(au_mask),
        "expr": torch.tensor(np.where(expr_mask, expr_t, -1)),
        "expr_mask": torch.tensor(expr_mask),
    }
    if with_video:
        batch["video"] = [f"vid{i % 4}" for i in range(n)]
    return pred, batch


def feed(metrics: AffectMetrics, pred: Predictions, batch: dict, bs: int) -> None:
    n = len(batch["va"])
    for s in range(0, n, bs):
        sl = slice(s, s + bs)
        metrics.update(Predictions(*(t[sl] for t in pred)), {k: v[sl] for k, v in batch.items()})


def test_metrics_match_sklearn_and_formula():
    pred, batch = random_set(300, seed=1)
    m = AffectMetrics(AUS, CLASSES)
    m.update(pred, batch)
    out = m.compute()

    vm = batch["va_mask"].numpy()
    vp, vt = pred.va.numpy()[vm].astype(np.float64), batch["va"].numpy()[vm].astype(np.float64)
    assert out["va_count"] == vm.sum()
    assert out["ccc_valence"] == pytest.approx(ref_ccc(vp[:, 0], vt[:, 0]), rel=1e-9)
    assert out["ccc_arousal"] == pytest.approx(ref_ccc(vp[:, 1], vt[:, 1]), rel=1e-9)
    assert out["ccc_mean"] == pytest.approx((out["ccc_valence"] + out["ccc_arousal"]) / 2)
    assert out["mse_valence"] == pytest.approx(np.mean((vp[:, 0] - vt[:, 0]) ** 2))

    am = batch["au_mask"].numpy()
    au_pred = 1 / (1 + np.exp(-pred.au_logits.numpy())) >= 0.5
    au_true = batch["au"].numpy() > 0.5
    f1s = [f1_score(au_true[am[:, j], j], au_pred[am[:, j], j]) for j in range(len(AUS))]
    for j, name in enumerate(AUS):
        assert out[f"au_f1/{name}"] == pytest.approx(f1s[j])
        assert out[f"au_accuracy/{name}"] == pytest.approx(
            accuracy_score(au_true[am[:, j], j], au_pred[am[:, j], j])
        )
        assert out[f"au_count/{name}"] == am[:, j].sum()
    assert out["au_f1_mean"] == pytest.approx(np.mean(f1s))
    pooled_acc = accuracy_score(au_true[am], au_pred[am])
    assert out["au_accuracy"] == pytest.approx(pooled_acc)
    assert out["abaw2020_au"] == pytest.approx(0.5 * np.mean(f1s) + 0.5 * pooled_acc)

    em = batch["expr_mask"].numpy()
    et, ep = batch["expr"].numpy()[em], pred.expr_logits.numpy().argmax(1)[em]
    f1 = f1_score(et, ep, average="macro")
    acc = accuracy_score(et, ep)
    assert out["expr_count"] == em.sum()
    assert out["expr_f1_macro"] == pytest.approx(f1)
    assert out["expr_accuracy"] == pytest.approx(acc)
    assert out["abaw2020_expr"] == pytest.approx(0.67 * f1 + 0.33 * acc)
    assert out["abaw_mtl"] == pytest.approx(out["ccc_mean"] + f1 + np.mean(f1s))
    per_class = f1_score(et, ep, average=None, labels=[0, 1, 2, 3], zero_division=0)
    for j, name in enumerate(CLASSES):
        if j in set(et) | set(ep):
            assert out[f"expr_f1/{name}"] == pytest.approx(per_class[j])
        else:
            assert math.isnan(out[f"expr_f1/{name}"])


@pytest.mark.parametrize("bs", [1, 7, 64])
def test_accumulating_batches_equals_concatenation(bs):
    pred, batch = random_set(200, seed=2)
    whole = AffectMetrics(AUS, CLASSES)
    whole.update(pred, batch)
    acc = AffectMetrics(AUS, CLASSES)
    feed(acc, pred, batch, bs)
    assert len(acc) == 200
    a, b = whole.compute(), acc.compute()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], nan_ok=True), key
    assert acc.compute() == pytest.approx(b, nan_ok=True)  # compute() is repeatable


def test_whole_set_ccc_differs_from_per_batch_average():
    """Two batches at different levels: within each batch the prediction tracks the target
    poorly (CCC ~0.2), but across the set it tracks the level shift (CCC ~0.9)."""
    x = np.linspace(-0.5, 0.5, 10)
    chunks = [(x + 0.5, x * 0.1 + 0.5), (x - 0.5, x * 0.1 - 0.5)]  # (pred, target)
    m = AffectMetrics([], ["a"])
    per_batch = []
    for p, t in chunks:
        va_p, va_t = np.stack([p, p], 1), np.stack([t, t], 1)
        m.update(
            Predictions(torch.tensor(va_p), torch.zeros(10, 0), torch.zeros(10, 1)),
            {
                "va": torch.tensor(va_t),
                "va_mask": torch.ones(10, dtype=torch.bool),
                "au": torch.zeros(10, 0),
                "au_mask": torch.zeros(10, 0, dtype=torch.bool),
                "expr": torch.full((10,), -1),
                "expr_mask": torch.zeros(10, dtype=torch.bool),
            },
        )
        per_batch.append(ccc(p, t))
    whole = m.compute()["ccc_valence"]
    p_all = np.concatenate([c[0] for c in chunks])
    t_all = np.concatenate([c[1] for c in chunks])
    assert whole == pytest.approx(ref_ccc(p_all, t_all))
    assert abs(whole - np.mean(per_batch)) > 0.3


def test_per_video_equals_compute_on_each_video():
    pred, batch = random_set(120, seed=3)
    m = AffectMetrics(AUS, CLASSES)
    feed(m, pred, batch, 32)
    per = m.per_video()
    assert sorted(per) == ["vid0", "vid1", "vid2", "vid3"]
    idx = np.array([i for i, v in enumerate(batch["video"]) if v == "vid2"])
    one = AffectMetrics(AUS, CLASSES)
    one.update(Predictions(*(t[idx] for t in pred)), {k: (v[idx] if torch.is_tensor(v) else None) for k, v in batch.items()})
    ref = one.compute()
    for key, value in ref.items():
        assert per["vid2"][key] == pytest.approx(value, nan_ok=True), key
    assert sum(d["va_count"] for d in per.values()) == m.compute()["va_count"]


def test_per_video_with_integer_ids_and_without_ids():
    pred, batch = random_set(20, seed=4, with_video=False)
    m = AffectMetrics(AUS, CLASSES)
    m.update(pred, batch)
    with pytest.raises(ValueError, match="video"):
        m.per_video()
    m.reset()
    batch["video"] = torch.tensor([7] * 10 + [3] * 10)
    m.update(pred, batch)
    assert sorted(m.per_video()) == [3, 7]


def test_empty_task_gives_nan_and_zero_count():
    pred, batch = random_set(10, seed=5)
    batch["va_mask"][:] = False
    batch["au_mask"][:, 1] = False
    batch["expr_mask"][:] = False
    m = AffectMetrics(AUS, CLASSES)
    m.update(pred, batch)
    out = m.compute()
    assert out["va_count"] == 0 and math.isnan(out["ccc_mean"]) and math.isnan(out["mse_mean"])
    assert out["au_count/AU2"] == 0 and math.isnan(out["au_f1/AU2"])
    assert out["au_f1_mean"] == pytest.approx(np.mean([out["au_f1/AU1"], out["au_f1/AU4"]]))
    assert out["expr_count"] == 0 and math.isnan(out["expr_f1_macro"])


def test_au_threshold_is_on_the_probability():
    m = AffectMetrics(["AU1"], ["a"], au_threshold=0.8)
    logits = torch.tensor([[1.0], [1.5], [-3.0]])  # sigmoid: .73, .82, .05
    m.update(
        Predictions(torch.zeros(3, 2), logits, torch.zeros(3, 1)),
        {
            "va": torch.zeros(3, 2),
            "va_mask": torch.zeros(3, dtype=torch.bool),
            "au": torch.tensor([[1.0], [1.0], [0.0]]),
            "au_mask": torch.ones(3, 1, dtype=torch.bool),
            "expr": torch.full((3,), -1),
            "expr_mask": torch.zeros(3, dtype=torch.bool),
        },
    )
    assert m.compute()["au_accuracy"] == pytest.approx(2 / 3)


def test_update_rejects_mismatched_shapes():
    pred, batch = random_set(5, seed=6)
    with pytest.raises(ValueError, match="4 AUs"):
        AffectMetrics(AUS + ["AU6"], CLASSES).update(pred, batch)
    with pytest.raises(ValueError, match="before any update"):
        AffectMetrics(AUS, CLASSES).compute()
