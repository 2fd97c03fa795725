"""affmodels: the multi-task affect network (VA, AUs, expressions), its losses and metrics."""

from __future__ import annotations

from affmodels.losses import (
    LossWeights,
    au_bce_loss,
    expr_ce_loss,
    masked_mean,
    multitask_loss,
    va_ccc_loss,
)
from affmodels.metrics import (
    AffectMetrics,
    accuracy,
    ccc,
    f1_binary,
    macro_f1,
    per_class_f1,
)
from affmodels.model import (
    CompactCNN,
    ConvBNAct,
    LoadReport,
    ModelConfig,
    MultiTaskNet,
    Normalize,
    Predictions,
    TaskHeads,
    VGGTrunk,
    build_trunk,
    num_params,
)

__all__ = [
    "AffectMetrics",
    "CompactCNN",
    "ConvBNAct",
    "LoadReport",
    "LossWeights",
    "ModelConfig",
    "MultiTaskNet",
    "Normalize",
    "Predictions",
    "TaskHeads",
    "VGGTrunk",
    "accuracy",
    "au_bce_loss",
    "build_trunk",
    "ccc",
    "expr_ce_loss",
    "f1_binary",
    "macro_f1",
    "masked_mean",
    "multitask_loss",
    "num_params",
    "per_class_f1",
    "va_ccc_loss",
]
