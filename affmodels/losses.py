"""Masked multi-task losses: one function per task, masking expressed once in masked_mean.

Every frame carries some subset of the three labels. A task's loss averages only over the
frames (for AUs: the frame-AU entries) that have its label, and an unlabelled entry
contributes exactly zero gradient: its target is first replaced by a harmless constant with
``torch.where`` (so -1 classes or NaN targets never reach a loss kernel), then dropped by
``masked_mean``. A batch with no labels for a task gives that task a loss of 0 with zero
gradient, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from affmodels.model import Predictions


@dataclass(frozen=True)
class LossWeights:
    """Task weights of the total loss. Equal weights by default, as the paper's L = L_VA +
    L_AU + L_EXPR; all three are O(1) at initialisation (CCC loss in [0, 2], BCE ~ ln 2, CE
    ~ ln C), so no task swamps the others."""

    va: float = 1.0
    au: float = 1.0
    expr: float = 1.0


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``values`` where ``mask`` (bool, broadcastable) is True: sum / max(count, 1).

    Masked entries are selected away with ``where`` rather than multiplied by 0, so a NaN
    or inf there cannot leak into the result. No valid entry -> 0.
    """
    mask = mask.expand_as(values)
    total = torch.where(mask, values, torch.zeros_like(values))
    if dim is None:
        return total.sum() / mask.sum().clamp(min=1)
    return total.sum(dim) / mask.sum(dim).clamp(min=1)


def va_ccc_loss(pred: Tensor, target: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """1 - mean(CCC_valence, CCC_arousal) over the frames with VA (the paper's L_VA).

    Population moments over the valid frames only; ``eps`` in the denominator keeps one
    valid frame (zero variances) finite. No valid frame -> 0 with zero gradient.
    """
    m = mask.unsqueeze(1)  # (B, 1) -> broadcasts over the 2 columns
    x = torch.where(m, pred, torch.zeros_like(pred))
    y = torch.where(m, target.to(pred.dtype), torch.zeros_like(pred))
    mx, my = masked_mean(x, m, 0), masked_mean(y, m, 0)  # (2,)
    dx, dy = x - mx, y - my
    vx, vy = masked_mean(dx * dx, m, 0), masked_mean(dy * dy, m, 0)
    cov = masked_mean(dx * dy, m, 0)
    ccc = 2 * cov / (vx + vy + (mx - my) ** 2 + eps)
    return (1 - ccc.mean()) * mask.any()  # with no valid frame ccc = 0 and this is 0 * 1


def au_bce_loss(
    logits: Tensor, target: Tensor, mask: Tensor, pos_weight: Tensor | None = None
) -> Tensor:
    """Binary cross-entropy averaged over the annotated (frame, AU) entries only.

    Pooled over entries, not averaged per AU first: an AU annotated on more frames weighs
    more. ``pos_weight`` (K,) as in ``BCEWithLogitsLoss``, e.g. n_neg / n_pos per AU.
    """
    target = torch.where(mask, target.to(logits.dtype), torch.zeros_like(logits))
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pos_weight)
    return masked_mean(bce, mask)


def expr_ce_loss(
    logits: Tensor,
    target: Tensor,
    mask: Tensor,
    class_weight: Tensor | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy over the frames with a class; equals ``F.cross_entropy`` on that subset.

    A target < 0 counts as missing whatever the mask says. With ``class_weight`` the mean is
    weighted (divided by the valid frames' summed weights), as ``F.cross_entropy`` does, so
    the weights change the balance between classes, not the loss scale.
    """
    mask = mask & (target >= 0)
    safe = torch.where(mask, target, torch.zeros_like(target))  # -1 never reaches the kernel
    ce = F.cross_entropy(
        logits, safe, weight=class_weight, reduction="none", label_smoothing=label_smoothing
    )
    if class_weight is None:
        return masked_mean(ce, mask)
    w = class_weight.to(ce.dtype)[safe]
    return masked_mean(ce, mask) / masked_mean(w, mask).clamp(min=torch.finfo(ce.dtype).tiny)


# ----------------------------------------------------------------------------- task relations


@dataclass
class Relations:
    """The AU-expression relation table on a model's outputs, for the two relation losses.

    ``p_au`` (C, K) is p(AU k | class c) (:mod:`affdata.au_relations`, Du et al. 2014);
    ``known`` (C,) the classes with a row; ``related`` (K,) the AUs some class implies.
    ``weights``: soft co-annotation of AUs, of expressions, and distribution matching.
    ``eps`` keeps a table 0 or 1 from making a Bernoulli likelihood exactly 0."""

    p_au: Tensor
    known: Tensor
    related: Tensor
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    eps: float = 0.05
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def for_outputs(cls, classes: Sequence[str], au_names: Sequence[str],
                    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Relations:
        from affdata.au_relations import relation_table

        t = relation_table(classes, au_names)
        return cls(torch.from_numpy(t.p_au), torch.from_numpy(t.known), torch.from_numpy(t.related), weights)

    def on(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        if device not in self._cache:
            self._cache[device] = (self.p_au.to(device), self.known.to(device), self.related.to(device))
        return self._cache[device]


def soft_au_targets_loss(au_logits: Tensor, expr: Tensor, expr_mask: Tensor, au_mask: Tensor,
                         rel: Relations) -> Tensor:
    """Soft co-annotation, expression -> AUs: a frame with a class (of the table) but an AU
    without a label gets p(AU | class) as a soft BCE target. Labelled AUs are left to the AU
    loss (labels always win); AUs no class implies are left out. Mean over those entries."""
    p_au, known, related = rel.on(au_logits.device)
    has = expr_mask & (expr >= 0)
    cls = torch.where(has, expr, torch.zeros_like(expr)).long()
    has = has & known[cls]
    entries = has.unsqueeze(1) & ~au_mask & related.unsqueeze(0)
    target = p_au[cls].to(au_logits.dtype)
    bce = F.binary_cross_entropy_with_logits(au_logits, target, reduction="none")
    return masked_mean(bce, entries)


def expression_posterior(au: Tensor, au_mask: Tensor, rel: Relations) -> tuple[Tensor, Tensor]:
    """p(class | the labelled AUs) under the table, uniform prior over the table's classes,
    AUs independent given the class (naive Bayes): (B, C) probabilities (0 for classes without
    a row) and a (B,) mask of frames with at least one labelled related AU."""
    p_au, known, related = rel.on(au.device)
    q = p_au.clamp(rel.eps, 1 - rel.eps)  # (C, K)
    use = (au_mask & related.unsqueeze(0)).to(q.dtype)  # (B, K)
    a = torch.where(au_mask, au.to(q.dtype), torch.zeros_like(use))
    loglik = (use * a) @ q.log().T + (use * (1 - a)) @ (1 - q).log().T  # (B, C)
    loglik = loglik.masked_fill(~known.unsqueeze(0), float("-inf"))
    return torch.softmax(loglik, dim=1), use.sum(1) > 0


def soft_expr_targets_loss(expr_logits: Tensor, expr: Tensor, expr_mask: Tensor, au: Tensor, au_mask: Tensor,
                           rel: Relations) -> Tensor:
    """Soft co-annotation, AUs -> expression: a frame with AU labels but no class gets
    :func:`expression_posterior` as a soft cross-entropy target. No gradient flows into the
    target (it comes from labels)."""
    if not bool(rel.known.any()):
        return expr_logits.sum() * 0
    post, has_au = expression_posterior(au, au_mask, rel)
    frames = ~(expr_mask & (expr >= 0)) & has_au
    logp = torch.log_softmax(expr_logits, dim=1)
    ce = -(torch.where(post > 0, post * logp, torch.zeros_like(logp))).sum(1)  # 0 * -inf stays out
    return masked_mean(ce, frames)


def distribution_matching_loss(au_logits: Tensor, expr_logits: Tensor, rel: Relations) -> Tensor:
    """Distribution matching (after Kollias et al. 2021): on every frame, the AU probabilities
    the expression head implies, sum_c p(c | x) p(AU | c) with p(c | x) renormalised over the
    table's classes, are a soft BCE target for the AU head on the related AUs. Gradient flows
    into both heads, so each is pulled towards what the other and the table say."""
    p_au, known, related = rel.on(au_logits.device)
    if not bool(known.any()) or not bool(related.any()):
        return au_logits.sum() * 0
    p_class = torch.softmax(expr_logits.masked_fill(~known.unsqueeze(0), float("-inf")), dim=1)
    implied = (p_class @ p_au.to(p_class.dtype)).clamp(0, 1)  # (B, K)
    bce = F.binary_cross_entropy_with_logits(au_logits, implied.to(au_logits.dtype), reduction="none")
    return masked_mean(bce, related.unsqueeze(0).expand_as(bce))


def multitask_loss(
    pred: Predictions,
    batch: Mapping[str, Tensor],
    weights: LossWeights = LossWeights(),
    pos_weight: Tensor | None = None,
    class_weight: Tensor | None = None,
    label_smoothing: float = 0.0,
    relations: Relations | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of the three task losses on a batch in the dataset's batch format.

    Returns ``(total, parts)``; ``parts`` holds the unweighted, detached task losses under
    ``"va"``, ``"au"``, ``"expr"`` (tensors: call ``.item()`` only when logging, to avoid a
    device sync every step). Batch tensors are moved to the predictions' device. With
    ``relations`` the three relation losses are added with its weights, and reported as
    ``"co_au"``, ``"co_expr"`` and ``"match"``.
    """
    dev = pred.va.device

    def get(key: str) -> Tensor:
        return batch[key].to(dev, non_blocking=True)

    if pos_weight is not None:
        pos_weight = pos_weight.to(dev)
    if class_weight is not None:
        class_weight = class_weight.to(dev)

    parts = {
        "va": va_ccc_loss(pred.va, get("va"), get("va_mask")),
        "au": au_bce_loss(pred.au_logits, get("au"), get("au_mask"), pos_weight),
        "expr": expr_ce_loss(
            pred.expr_logits, get("expr"), get("expr_mask"), class_weight, label_smoothing
        ),
    }
    total = weights.va * parts["va"] + weights.au * parts["au"] + weights.expr * parts["expr"]
    if relations is not None:
        au, au_mask, expr, expr_mask = get("au"), get("au_mask"), get("expr"), get("expr_mask")
        parts["co_au"] = soft_au_targets_loss(pred.au_logits, expr, expr_mask, au_mask, relations)
        parts["co_expr"] = soft_expr_targets_loss(pred.expr_logits, expr, expr_mask, au, au_mask, relations)
        parts["match"] = distribution_matching_loss(pred.au_logits, pred.expr_logits, relations)
        w_au, w_expr, w_match = relations.weights
        total = total + w_au * parts["co_au"] + w_expr * parts["co_expr"] + w_match * parts["match"]
    return total, {k: v.detach() for k, v in parts.items()}


__all__ = [
    "LossWeights",
    "Relations",
    "distribution_matching_loss",
    "expression_posterior",
    "soft_au_targets_loss",
    "soft_expr_targets_loss",
    "au_bce_loss",
    "expr_ce_loss",
    "masked_mean",
    "multitask_loss",
    "va_ccc_loss",
]
