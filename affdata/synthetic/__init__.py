"""Synthetic affect datasets: procedurally drawn faces whose pixels follow known labels.

Use :func:`generate_dataset` for rendered H.264 videos with ABAW-style VA/AU/EXPR annotation
files and true face boxes, or :func:`generate_labels_only` for the annotation files of a large
dataset without pixels. :func:`plan_dataset` tells the frame count before rendering.
"""

from __future__ import annotations

from affdata.synthetic.dataset import (
                                       GENERATOR_VERSION,
                                       DatasetSummary,
                                       generate_dataset,
                                       generate_labels_only,
)
from affdata.synthetic.plan import DatasetPlan, plan_dataset
from affdata.synthetic.wild import Wild

__all__ = [
    "GENERATOR_VERSION",
    "DatasetPlan",
    "DatasetSummary",
    "generate_dataset",
    "generate_labels_only",
    "plan_dataset",
    "Wild",
]
