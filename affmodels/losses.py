"""Masked multi-task losses: one function per task, masking expressed once in masked_mean.

Every frame carries some subset of the three labels. A task's loss averages only over the
frames (for AUs: the frame-AU entries) that have its label, and an unlabelled entry
contributes exactly zero gradient: its target is first replaced by a harmless constant with
``torch.where`` (so -1 classes or NaN targets never reach a loss kernel), then dropped by
``masked_mean``. A batch with no labels for a task gives that task a loss of 0 with zero
gradient, never NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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


def multitask_loss(
    pred: Predictions,
    batch: Mapping[str, Tensor],
    weights: LossWeights = LossWeights(),
    pos_weight: Tensor | None = None,
    class_weight: Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted sum of the three task losses on a batch in the dataset's batch format.

    Returns ``(total, parts)``; ``parts`` holds the unweighted, detached task losses under
    ``"va"``, ``"au"``, ``"expr"`` (tensors: call ``.item()`` only when logging, to avoid a
    device sync every step). Batch tensors are moved to the predictions' device.
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
    return total, {k: v.detach() for k, v in parts.items()}


__all__ = [
    "LossWeights",
    "au_bce_loss",
    "expr_ce_loss",
    "masked_mean",
    "multitask_loss",
    "va_ccc_loss",
]
