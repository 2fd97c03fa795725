from __future__ import annotations

import numpy as np
import pytest
import torch

from affmodels import Predictions
from affmodels.gan import (
    Target,
    TargetSampler,
    decode_condition,
    encode_target,
    source_condition,
    source_target,
)

from .conftest import C, K

# ----------------------------------------------------------------------------- encoding


def test_encode_target_layout():
    va = torch.tensor([[0.5, -0.25], [-1.0, 1.0]])
    au = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    expr = torch.tensor([2, 0])
    c = encode_target(va, au, expr, 3, 4)
    assert c.dtype == torch.float32 and c.shape == (2, 2 + 3 + 4)
    assert c[0].tolist() == [0.5, -0.25, 1, 0, 1, 0, 0, 1, 0]
    assert c[1].tolist() == [-1, 1, 0, 0, 0, 1, 0, 0, 0]
    back = decode_condition(c, 3, 4)
    assert torch.equal(back.va, va) and torch.equal(back.au, au) and torch.equal(back.expr, expr)
    assert torch.equal(Target(va, au, expr, 4).condition(), c)


def test_encode_target_rejects_bad_input():
    with pytest.raises(ValueError, match="classes"):
        encode_target(torch.zeros(1, 2), torch.zeros(1, 3), torch.tensor([4]), 3, 4)
    with pytest.raises(ValueError, match="au"):
        encode_target(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), 3, 4)


def test_target_as_batch_has_every_mask_true():
    t = Target(torch.zeros(3, 2), torch.ones(3, K), torch.tensor([0, 1, 2]), C)
    b = t.as_batch()
    assert b["va_mask"].all() and b["au_mask"].all() and b["expr_mask"].all()
    assert b["au_mask"].shape == (3, K) and torch.equal(b["expr"], t.expr)


# ----------------------------------------------------------------------------- source rule


def test_source_uses_labels_where_present_and_d_estimate_elsewhere(make_batch):
    batch = make_batch(b=8, seed=5)
    g = torch.Generator().manual_seed(0)
    d_pred = Predictions(
        torch.rand(8, 2, generator=g) * 2 - 1,
        torch.randn(8, K, generator=g, requires_grad=True),
        torch.randn(8, C, generator=g),
    )
    src = source_target(batch, d_pred)
    assert not src.va.requires_grad and not src.au.requires_grad  # D's estimate is detached
    vm, am, em = batch["va_mask"], batch["au_mask"], batch["expr_mask"]
    assert vm.any() and (~vm).any() and am.any() and (~am).any() and em.any() and (~em).any()
    assert torch.equal(src.va[vm], batch["va"][vm])
    assert torch.equal(src.va[~vm], d_pred.va[~vm])  # NaN labels never leak
    assert torch.equal(src.au[am], batch["au"][am])
    assert torch.equal(src.au[~am], (d_pred.au_logits.detach()[~am] >= 0).float())
    assert torch.equal(src.expr[em], batch["expr"][em])
    assert torch.equal(src.expr[~em], d_pred.expr_logits.argmax(1)[~em])
    c = source_condition(batch, d_pred)
    assert torch.isfinite(c).all() and torch.equal(c, src.condition())
    assert torch.equal(c[:, 2 + K :].sum(1), torch.ones(8))  # a valid one-hot everywhere


def test_source_treats_minus_one_as_missing_whatever_the_mask(make_batch):
    batch = make_batch(b=4, seed=1)
    batch["expr"][0], batch["expr_mask"][0] = -1, True
    d_pred = Predictions(torch.zeros(4, 2), torch.zeros(4, K), torch.eye(4, C) * 5)
    assert source_target(batch, d_pred).expr[0].item() == 0


# ----------------------------------------------------------------------------- sampler


def _full_data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        va=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        au=(rng.uniform(size=(n, K)) < 0.4).astype(np.float32),
        au_mask=np.ones((n, K), bool),
        expr=rng.integers(0, C, n),
        expr_mask=np.ones(n, bool),
    )


def _rows(t: Target) -> set[tuple]:
    return {
        (tuple(np.round(t.va[i].tolist(), 6)), tuple(t.au[i].tolist()), int(t.expr[i]))
        for i in range(len(t))
    }


def test_sampler_on_fully_labelled_rows_draws_only_those_rows():
    data = _full_data()
    s = TargetSampler(**data, n_classes=C)
    observed = _rows(Target(torch.tensor(data["va"]), torch.tensor(data["au"]), torch.tensor(data["expr"]), C))
    drawn = s.sample(500, torch.Generator().manual_seed(0))
    assert drawn.va.shape == (500, 2) and drawn.au.shape == (500, K) and drawn.expr.dtype == torch.long
    assert _rows(drawn) <= observed
    assert len(_rows(drawn)) > 0.8 * len(observed)  # and not just a few of them


def _partial_data():
    """Class 0: AU0 on, AU1 off, VA (.5, .5); class 1: AU0 off, AU1 on, VA (-.5, -.5);
    class 2: no VA anywhere; plus VA-only rows at (.75, .75) without an expression."""
    va = [[0.5, 0.5], [0.5, 0.5], [np.nan, np.nan], [-0.5, -0.5], [-0.5, -0.5], [np.nan, np.nan],
          [np.nan, np.nan], [0.75, 0.75], [0.75, 0.75]]
    au = [[1, 0], [1, 0], [0, 0], [0, 1], [0, 1], [0, 0], [1, 1], [0, 0], [0, 0]]
    au_mask = [[1, 1], [1, 1], [0, 0], [1, 1], [1, 1], [1, 0], [1, 1], [0, 0], [0, 0]]
    expr = [0, 0, 0, 1, 1, 1, 2, -1, -1]
    expr_mask = [1, 1, 1, 1, 1, 1, 1, 0, 0]
    return dict(va=np.array(va, np.float32), au=np.array(au, np.float32),
                au_mask=np.array(au_mask, bool), expr=np.array(expr), expr_mask=np.array(expr_mask, bool))


def test_sampler_fills_missing_parts_within_the_expression_class():
    s = TargetSampler(**_partial_data(), n_classes=3)
    assert len(s) == 7  # the expression-less rows are no anchors
    t = s.sample(400, torch.Generator().manual_seed(1))
    assert torch.isfinite(t.va).all() and set(t.au.unique().tolist()) <= {0.0, 1.0}
    for i in range(len(t)):
        e, va, au = int(t.expr[i]), t.va[i].tolist(), t.au[i].tolist()
        if e == 0:  # row 2 lacks VA and AUs: filled from rows 0, 1 only
            assert va == [0.5, 0.5] and au == [1.0, 0.0]
        elif e == 1:  # row 5 lacks VA and AU1: class 1 has AU1 on in every annotated row
            assert va == [-0.5, -0.5] and au == [0.0, 1.0]
        else:  # class 2 has no VA: the marginal over every row with VA
            assert au == [1.0, 1.0] and va in ([0.5, 0.5], [-0.5, -0.5], [0.75, 0.75])
    assert set(t.expr.tolist()) == {0, 1, 2}
    class2 = t.va[t.expr == 2]
    assert (class2 == 0.75).all(1).any()  # the VA-only rows do feed the marginal


def test_sampler_forced_classes_and_errors():
    s = TargetSampler(**_partial_data(), n_classes=4)
    t = s.sample(3, torch.Generator().manual_seed(0), classes=torch.tensor([2, 0, 1]))
    assert t.expr.tolist() == [2, 0, 1] and t.au[1].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match=r"class\(es\) \[3\]"):
        s.sample(1, torch.Generator(), classes=torch.tensor([3]))
    empty = _partial_data() | {"au_mask": np.zeros((9, 2), bool), "expr_mask": np.zeros(9, bool),
                               "va": np.full((9, 2), np.nan, np.float32)}
    with pytest.raises(ValueError, match="no row"):
        TargetSampler(**empty, n_classes=3)


def test_sampler_va_mask_overrides_finite_values():
    data = _partial_data()
    va_mask = np.isfinite(data["va"]).all(1)
    va_mask[[0, 1]] = False  # class 0's VA is now unlabelled: must come from the marginal
    s = TargetSampler(**data, n_classes=3, va_mask=va_mask)
    t = s.sample(200, torch.Generator().manual_seed(2), classes=torch.zeros(200, dtype=torch.long))
    assert not (t.va == 0.5).all(1).any()


def test_sampler_is_deterministic_and_resumable():
    s = TargetSampler(**_full_data(), n_classes=C)
    a = s.sample(16, torch.Generator().manual_seed(7))
    b = s.sample(16, torch.Generator().manual_seed(7))
    c = s.sample(16, torch.Generator().manual_seed(8))
    assert all(torch.equal(x, y) for x, y in zip((a.va, a.au, a.expr), (b.va, b.au, b.expr)))
    assert not torch.equal(a.va, c.va)
    g = torch.Generator().manual_seed(3)
    s.sample(5, g)
    state = g.get_state()
    first = s.sample(5, g)
    g2 = torch.Generator()
    g2.set_state(state)
    again = s.sample(5, g2)
    assert torch.equal(first.va, again.va) and torch.equal(first.expr, again.expr)


def test_sampler_without_expression_labels_uses_uniform_classes():
    data = _full_data() | {"expr_mask": np.zeros(30, bool)}
    s = TargetSampler(**data, n_classes=C)
    t = s.sample(400, torch.Generator().manual_seed(0))
    counts = torch.bincount(t.expr, minlength=C)
    assert (counts > 60).all(), counts
    va_rows = {tuple(np.round(r, 6)) for r in data["va"].tolist()}
    assert all(tuple(np.round(v, 6)) in va_rows for v in t.va.tolist())
