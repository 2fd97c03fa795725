"""Loss weights from an export's label statistics (the manifest's frequencies and AU rates)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from affmodels.data.manifest import Manifest


class LossWeightTensors(NamedTuple):
    pos_weight: Tensor  # (K,) float32, for au_bce_loss
    class_weight: Tensor  # (C,) float32, for expr_ce_loss


def loss_weights(manifest: Manifest, *, max_pos_weight: float = 100.0) -> LossWeightTensors:
    """``pos_weight = n_neg / n_pos`` per AU and inverse-frequency class weights.

    ``pos_weight[k] = (1 - p_k) / p_k`` from the AU positive rate ``p_k``, clamped to
    ``[1 / max_pos_weight, max_pos_weight]`` so a nearly never (or always) positive AU cannot
    dominate; an AU with no annotation (rate null) gets 1. ``class_weight[c] = N / (C * n_c)``
    (the mean weight over the training frames is 1, so the loss scale is unchanged); a class
    with no frames gets 1, since its weight is never used as a target there.
    """
    if max_pos_weight < 1:
        raise ValueError(f"max_pos_weight must be >= 1, got {max_pos_weight}")
    p = manifest.au_positive_rates
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(np.isnan(p), 1.0, (1.0 - p) / p)
    pos = np.clip(np.nan_to_num(pos, nan=1.0, posinf=max_pos_weight), 1.0 / max_pos_weight,
                  max_pos_weight)
    n = manifest.class_counts.astype(np.float64)
    c, total = len(n), n.sum()
    with np.errstate(divide="ignore"):
        cls = np.where(n > 0, total / (c * n), 1.0) if total > 0 else np.ones(c)
    return LossWeightTensors(torch.tensor(pos, dtype=torch.float32),
                             torch.tensor(cls, dtype=torch.float32))


__all__ = ["LossWeightTensors", "loss_weights"]
