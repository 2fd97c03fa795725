from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from affmodels import (
    LossWeights,
    Predictions,
    TaskHeads,
    au_bce_loss,
    expr_ce_loss,
    masked_mean,
    multitask_loss,
    va_ccc_loss,
)


def np_ccc(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


# ----------------------------------------------------------------------------- masked_mean


def test_masked_mean_hand_values():
    v = torch.tensor([1.0, 2.0, 3.0, 100.0])
    m = torch.tensor([True, True, True, False])
    assert masked_mean(v, m).item() == 2.0
    assert masked_mean(v, torch.zeros(4, dtype=torch.bool)).item() == 0.0
    v2 = torch.tensor([[1.0, 10.0], [3.0, float("nan")]])
    m2 = torch.tensor([[True, True], [True, False]])
    torch.testing.assert_close(masked_mean(v2, m2, 0), torch.tensor([2.0, 10.0]))
    assert masked_mean(v2, m2).item() == pytest.approx(14 / 3)  # the NaN never leaks


# ----------------------------------------------------------------------------- VA / CCC


def test_ccc_loss_hand_example():
    pred = torch.tensor([[0.1, 0.5], [0.4, -0.2], [-0.3, 0.0], [0.9, 0.9]])
    target = torch.tensor([[0.0, 0.4], [0.5, -0.5], [-0.5, 0.2], [7.0, 7.0]])
    mask = torch.tensor([True, True, True, False])  # the 7s are never seen
    loss = va_ccc_loss(pred, target, mask)
    # valence: x=(.1,.4,-.3) y=(0,.5,-.5): means 1/15, 0; population cov .35/3,
    # var_x = .26/3 - 1/225, var_y = 1/6
    expected_v = 2 * (0.35 / 3) / ((0.26 / 3 - 1 / 225) + 1 / 6 + (1 / 15) ** 2)
    assert expected_v == pytest.approx(np_ccc([0.1, 0.4, -0.3], [0.0, 0.5, -0.5]))
    expected_a = np_ccc([0.5, -0.2, 0.0], [0.4, -0.5, 0.2])
    assert loss.item() == pytest.approx(1 - (expected_v + expected_a) / 2, abs=1e-6)


def test_ccc_loss_perfect_and_anti():
    x = torch.linspace(-1, 1, 9)
    pred = torch.stack([x, -x], 1)
    ones = torch.ones(9, dtype=torch.bool)
    assert va_ccc_loss(pred, pred.clone(), ones).item() == pytest.approx(0.0, abs=1e-6)
    assert va_ccc_loss(pred, -pred, ones).item() == pytest.approx(2.0, abs=1e-6)


def test_ccc_loss_no_valid_frame_is_zero_with_zero_grad():
    pred = torch.randn(4, 2, requires_grad=True)
    target = torch.full((4, 2), float("nan"))  # even NaN targets must not leak
    loss = va_ccc_loss(pred, target, torch.zeros(4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(pred.grad, torch.zeros(4, 2))


def test_ccc_loss_one_valid_frame_is_finite():
    pred = torch.randn(4, 2, requires_grad=True)
    mask = torch.tensor([False, True, False, False])
    loss = va_ccc_loss(pred, torch.randn(4, 2), mask)
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(1.0)
    assert torch.isfinite(pred.grad).all()


# ----------------------------------------------------------------------------- AU / BCE


def test_au_bce_hand_example():
    logits = torch.tensor([[0.0, 2.0], [-1.0, 5.0]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[True, True], [True, False]])
    expected = (math.log(2) + (2 + math.log1p(math.exp(-2))) + math.log1p(math.exp(-1))) / 3
    assert au_bce_loss(logits, target, mask).item() == pytest.approx(expected, rel=1e-6)
    pw = torch.tensor([3.0, 1.0])  # positives of AU 0 weigh 3x: only entry (0, 0) is one
    expected_pw = (3 * math.log(2) + (2 + math.log1p(math.exp(-2))) + math.log1p(math.exp(-1))) / 3
    assert au_bce_loss(logits, target, mask, pw).item() == pytest.approx(expected_pw, rel=1e-6)


def test_au_bce_equals_torch_on_annotated_entries(batch):
    logits = torch.randn(batch["au"].shape)
    m = batch["au_mask"]
    ref = F.binary_cross_entropy_with_logits(logits[m], batch["au"][m])
    torch.testing.assert_close(au_bce_loss(logits, batch["au"], m), ref)


# ----------------------------------------------------------------------------- expression / CE


def test_expr_ce_hand_example():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
    target = torch.tensor([0, 2, -1])
    mask = torch.tensor([True, True, False])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 2)) + math.log(3)) / 2
    assert expr_ce_loss(logits, target, mask).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_expr_ce_equals_torch_on_labelled_frames(batch, smoothing, weighted):
    logits = torch.randn(len(batch["expr"]), 4)
    m = batch["expr_mask"]
    w = torch.tensor([0.5, 2.0, 1.0, 3.0]) if weighted else None
    ref = F.cross_entropy(logits[m], batch["expr"][m], weight=w, label_smoothing=smoothing)
    got = expr_ce_loss(logits, batch["expr"], m, class_weight=w, label_smoothing=smoothing)
    torch.testing.assert_close(got, ref)


def test_expr_ce_minus_one_never_reaches_cross_entropy():
    logits = torch.randn(3, 4, requires_grad=True)
    target = torch.tensor([-1, -1, -1])
    # mask deliberately inconsistent: -1 counts as missing whatever the mask says
    loss = expr_ce_loss(logits, target, torch.tensor([False, True, False]))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros(3, 4))


# ----------------------------------------------------------------------------- multitask


def test_multitask_total_is_weighted_sum(batch):
    torch.manual_seed(0)
    pred = TaskHeads(6, 5, 4)(torch.randn(len(batch["va"]), 6))
    w = LossWeights(va=0.5, au=2.0, expr=0.0)
    total, parts = multitask_loss(pred, batch, w)
    assert set(parts) == {"va", "au", "expr"} and not any(p.requires_grad for p in parts.values())
    assert parts["expr"].item() > 0
    assert total.item() == pytest.approx(0.5 * parts["va"].item() + 2.0 * parts["au"].item(), rel=1e-6)
    default_total, _ = multitask_loss(pred, batch)
    assert default_total.item() == pytest.approx(sum(p.item() for p in parts.values()), rel=1e-6)


# ----------------------------------------------------------------------------- gradient masking


def _head_grads(heads: TaskHeads, feats: torch.Tensor, batch: dict) -> tuple:
    """(loss, {param: grad}, predictions with .grad on each output)."""
    heads.zero_grad()
    pred = heads(feats)
    for t in pred:
        t.retain_grad()
    total, _ = multitask_loss(pred, batch)
    total.backward()
    return total.detach(), {n: p.grad.clone() for n, p in heads.named_parameters()}, pred


def _drop(batch: dict, i: int) -> dict:
    keep = [j for j in range(len(batch["va"])) if j != i]
    return {k: (v[keep] if torch.is_tensor(v) else [v[j] for j in keep]) for k, v in batch.items()}


@pytest.mark.parametrize("task", ["va", "au", "expr"])
def test_unlabelled_frame_gives_zero_gradient(make_batch, task):
    """A frame without a task's label: exactly zero gradient on that task's outputs, its
    label may be anything, and removing it from the batch leaves that head's gradient."""
    batch = make_batch(b=8, seed=3)
    i = 7
    mask_key = {"va": "va_mask", "au": "au_mask", "expr": "expr_mask"}[task]
    batch[mask_key][i] = False
    if task == "expr":
        batch["expr"][i] = -1
    torch.manual_seed(0)
    heads = TaskHeads(6, 5, 4).eval()
    feats = torch.randn(8, 6)
    loss, grads, pred = _head_grads(heads, feats, batch)
    out = {"va": pred.va, "au": pred.au_logits, "expr": pred.expr_logits}[task]
    assert torch.equal(out.grad[i], torch.zeros_like(out.grad[i]))
    assert out.grad.abs().sum() > 0  # the other frames do train this head

    changed = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    changed[task][i] = {"va": torch.tensor([0.9, -0.9]), "au": torch.ones(5), "expr": torch.tensor(3)}[task]
    loss2, grads2, _ = _head_grads(heads, feats, changed)
    assert torch.equal(loss, loss2)
    for name in grads:
        assert torch.equal(grads[name], grads2[name]), name

    loss3, grads3, _ = _head_grads(heads, torch.cat([feats[:i], feats[i + 1 :]]), _drop(batch, i))
    head = {"va": "va.", "au": "au.", "expr": "expr."}[task]
    for name in grads:
        if name.startswith(head):
            torch.testing.assert_close(grads[name], grads3[name], rtol=1e-5, atol=1e-7)


def test_partly_annotated_au_vector_masks_per_au(make_batch):
    batch = make_batch(b=6, seed=4)
    batch["au_mask"][2] = torch.tensor([True, False, True, False, True])
    torch.manual_seed(0)
    heads = TaskHeads(6, 5, 4).eval()
    feats = torch.randn(6, 6)
    loss, grads, pred = _head_grads(heads, feats, batch)
    g = pred.au_logits.grad[2]
    assert g[1] == 0 and g[3] == 0 and (g[[0, 2, 4]] != 0).all()

    flipped = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    flipped["au"][2, [1, 3]] = 1.0 - flipped["au"][2, [1, 3]]  # unannotated AUs: any value
    loss2, grads2, _ = _head_grads(heads, feats, flipped)
    assert torch.equal(loss, loss2) and torch.equal(grads["au.weight"], grads2["au.weight"])
    # rows of the AU head weight belong to one AU each: AU 1's row sees only its own frames
    only = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    only["au"][2, 1], only["au_mask"][2, 1] = 1.0, True
    _, grads3, _ = _head_grads(heads, feats, only)
    assert not torch.equal(grads["au.weight"][1], grads3["au.weight"][1])


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    b=st.integers(1, 6),
    p=st.floats(0.0, 1.0),
)
def test_masked_outputs_get_zero_gradient_property(seed, b, p):
    """Any masks, including empty tasks and single frames: no NaN, zero grad where masked."""
    g = torch.Generator().manual_seed(seed)
    va_mask, expr_mask = torch.rand(b, generator=g) < p, torch.rand(b, generator=g) < p
    au_mask = torch.rand(b, 3, generator=g) < p
    batch = {
        "va": torch.where(va_mask[:, None], torch.rand(b, 2, generator=g), float("nan")),
        "va_mask": va_mask,
        "au": torch.where(au_mask, 1.0, float("nan")),
        "au_mask": au_mask,
        "expr": torch.where(expr_mask, torch.randint(0, 4, (b,), generator=g), -1),
        "expr_mask": expr_mask,
    }
    pred = Predictions(
        torch.rand(b, 2, generator=g).requires_grad_(),
        torch.randn(b, 3, generator=g).requires_grad_(),
        torch.randn(b, 4, generator=g).requires_grad_(),
    )
    total, parts = multitask_loss(pred, batch)
    total.backward()
    assert torch.isfinite(total)
    assert (pred.va.grad[~va_mask] == 0).all() and torch.isfinite(pred.va.grad).all()
    assert (pred.au_logits.grad[~au_mask] == 0).all() and torch.isfinite(pred.au_logits.grad).all()
    assert (pred.expr_logits.grad[~expr_mask] == 0).all()
    if not va_mask.any():
        assert parts["va"].item() == 0.0
    if not expr_mask.any():
        assert parts["expr"].item() == 0.0
