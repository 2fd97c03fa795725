"""Task relations: the AU-expression table (Du et al. 2014) and the three relation losses
(known values, masks, gradients)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from affdata.au_relations import AU_GIVEN_EXPRESSION, relation_table
from affmodels.losses import (
    Relations,
    distribution_matching_loss,
    expression_posterior,
    multitask_loss,
    soft_au_targets_loss,
    soft_expr_targets_loss,
)
from affmodels.model import Predictions

CLASSES = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other"]
AUS = ["AU1", "AU2", "AU4", "AU6", "AU12", "AU15", "AU20", "AU25", "AU43"]
HAPPY, OTHER = 4, 7


def rel(**kw) -> Relations:
    return Relations.for_outputs(CLASSES, AUS, **kw)


def test_table_rows_known_classes_and_related_aus() -> None:
    t = relation_table(CLASSES, AUS)
    assert t.p_au[HAPPY].tolist() == pytest.approx([0, 0, 0, 0.51, 1, 0, 0, 1, 0])
    assert t.p_au[5, AUS.index("AU1")] == pytest.approx(0.60)  # Sadness: AU1 in 60 % of people
    assert t.p_au[0].sum() == 0 and t.known.tolist() == [True] * 7 + [False]  # Other has no row
    assert t.related.tolist() == [True] * 8 + [False]  # AU43 is in no row
    assert all(0 < p <= 1 for row in AU_GIVEN_EXPRESSION.values() for p in row.values())
    assert relation_table([4, 7], [12, 25]).p_au.tolist() == [[1, 1], [0, 0]]  # ids work too


def test_soft_au_targets_known_value_and_masks() -> None:
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.3, 1.2, 0.0, -0.4, 0.7, 3.0]] * 4, requires_grad=True)
    expr = torch.tensor([HAPPY, HAPPY, OTHER, -1])
    expr_mask = torch.tensor([True, True, True, False])
    au_mask = torch.zeros(4, 9, dtype=torch.bool)
    au_mask[1, AUS.index("AU12")] = True  # a labelled AU is the AU loss's, not this one's
    loss = soft_au_targets_loss(logits, expr, expr_mask, au_mask, rel())
    target = torch.tensor(relation_table(CLASSES, AUS).p_au[HAPPY])
    x = logits.detach()[0]
    per = F.softplus(x) - target * x  # BCE with logits against a soft target
    keep = torch.ones(9, dtype=torch.bool)
    keep[AUS.index("AU43")] = False  # unrelated
    keep2 = keep.clone()
    keep2[AUS.index("AU12")] = False
    want = (per[keep].sum() + per[keep2].sum()) / (keep.sum() + keep2.sum())
    torch.testing.assert_close(loss, want)
    loss.backward()
    g = logits.grad
    assert g[2].abs().sum() == 0 and g[3].abs().sum() == 0  # Other; no class
    assert g[1, AUS.index("AU12")] == 0 and g[0, AUS.index("AU43")] == 0 and g[0, AUS.index("AU12")] != 0


def test_expression_posterior_is_naive_bayes_on_the_table() -> None:
    au = torch.zeros(2, 9)
    au_mask = torch.zeros(2, 9, dtype=torch.bool)
    for name, value in (("AU6", 0), ("AU12", 1), ("AU25", 1)):
        au[0, AUS.index(name)] = value
        au_mask[0, AUS.index(name)] = True
    post, has = expression_posterior(au, au_mask, rel())
    assert has.tolist() == [True, False]
    q = np.clip(relation_table(CLASSES, AUS).p_au, 0.05, 0.95)
    k6, k12, k25 = AUS.index("AU6"), AUS.index("AU12"), AUS.index("AU25")
    like = (1 - q[:7, k6]) * q[:7, k12] * q[:7, k25]
    np.testing.assert_allclose(post[0, :7].numpy(), like / like.sum(), rtol=1e-5)
    assert post[0, OTHER] == 0 and int(post[0].argmax()) == HAPPY


def test_soft_expr_targets_only_where_there_is_no_class_but_aus() -> None:
    logits = torch.randn(3, 8, requires_grad=True)
    au = torch.zeros(3, 9)
    au_mask = torch.zeros(3, 9, dtype=torch.bool)
    au[:, AUS.index("AU12")] = 1
    au_mask[:2, AUS.index("AU12")] = True  # frame 2 has no AU label
    expr = torch.tensor([-1, 2, -1])
    expr_mask = torch.tensor([False, True, False])  # frame 1 has its class
    loss = soft_expr_targets_loss(logits, expr, expr_mask, au, au_mask, rel())
    post, _ = expression_posterior(au, au_mask, rel())
    want = -(post[0] * torch.log_softmax(logits.detach()[0], 0)).sum()
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert logits.grad[0].abs().sum() > 0
    assert logits.grad[1].abs().sum() == 0 and logits.grad[2].abs().sum() == 0


def test_distribution_matching_targets_what_the_expression_head_implies() -> None:
    au_logits = torch.zeros(1, 9, requires_grad=True)
    expr_logits = torch.full((1, 8), -30.0)
    expr_logits[0, HAPPY] = 30.0
    expr_logits[0, OTHER] = 60.0  # Other has no row: renormalised away
    expr_logits.requires_grad_(True)
    loss = distribution_matching_loss(au_logits, expr_logits, rel())
    torch.testing.assert_close(loss, torch.tensor(math.log(2.0)))  # logit 0 against any target
    loss.backward()
    row = torch.tensor(relation_table(CLASSES, AUS).p_au[HAPPY])
    want_grad = (0.5 - row) / 8  # d BCE / d logit = sigmoid - target, mean over 8 related AUs
    want_grad[AUS.index("AU43")] = 0
    torch.testing.assert_close(au_logits.grad[0], want_grad)
    # the expression head is pulled too, when it is not saturated
    soft = torch.zeros(1, 8, requires_grad=True)
    distribution_matching_loss(torch.full((1, 9), 2.0), soft, rel()).backward()
    assert soft.grad[0, :7].abs().sum() > 0 and soft.grad[0, OTHER] == 0


def test_multitask_loss_adds_the_relation_parts_with_their_weights(make_batch) -> None:
    batch = make_batch(k=9, c=8)
    g = torch.Generator().manual_seed(1)
    pred = Predictions(torch.tanh(torch.randn(8, 2, generator=g)), torch.randn(8, 9, generator=g),
                       torch.randn(8, 8, generator=g))
    plain, parts0 = multitask_loss(pred, batch)
    total, parts = multitask_loss(pred, batch, relations=rel(weights=(1.0, 0.5, 2.0)))
    assert set(parts) == {"va", "au", "expr", "co_au", "co_expr", "match"}
    want = plain + parts["co_au"] + 0.5 * parts["co_expr"] + 2.0 * parts["match"]
    torch.testing.assert_close(total, want)
    assert all(torch.isfinite(v) for v in parts.values()) and parts["match"] > 0
