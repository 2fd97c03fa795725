"""Streaming face crops and labels from an ``affdata export`` (docs/export-format.md).

One concept per module: :mod:`~affmodels.data.manifest` (read and validate
``meta/info.json``, version check), :mod:`~affmodels.data.verify` (each shard against its
sha256, once per file version), :mod:`~affmodels.data.order` (the epoch's order and how it is
cut across ranks and workers), :mod:`~affmodels.data.balance` (task-balanced resampling),
:mod:`~affmodels.data.reader` (row groups -> label arrays), :mod:`~affmodels.data.pages`
(where each image lies in a shard: zero-copy slices), :mod:`~affmodels.data.decode`
(JPEG/raw -> uint8), :mod:`~affmodels.data.augment`, :mod:`~affmodels.data.collate` (the
batch contract), :mod:`~affmodels.data.state` (state shared with workers),
:mod:`~affmodels.data.handover` (batches from workers to the trainer in reused slots),
:mod:`~affmodels.data.dataset` (:class:`AffectStream`), :mod:`~affmodels.data.windows`
(:class:`WindowStream`: windows of consecutive frames of a track), :mod:`~affmodels.data.loader`
(:func:`make_loader`), :mod:`~affmodels.data.weights` (:func:`loss_weights`).

Typical use::

    ds = AffectStream("exports/train", seed=0, batch_size=256, augment=Augment())
    model = MultiTaskNet(ModelConfig(n_aus=ds.n_aus, n_classes=ds.n_classes))
    pos_weight, class_weight = loss_weights(ds.manifest)
    loader = make_loader(ds, batch_size=256, workers=2)
    for epoch in range(start_epoch, epochs):
        ds.set_epoch(epoch)
        for batch in loader: ...   # loader.state_dict() resumes mid-epoch
"""

from __future__ import annotations

from affmodels.data.augment import Augment
from affmodels.data.balance import balanced_counts
from affmodels.data.collate import collate_samples
from affmodels.data.dataset import AffectStream
from affmodels.data.errors import (
    ExportError,
    FormatVersionError,
    ResumeError,
    ShardError,
)
from affmodels.data.loader import StreamLoader, make_loader
from affmodels.data.manifest import FORMAT_VERSION, Manifest, load_manifest
from affmodels.data.order import EpochOrder, Partition, partition
from affmodels.data.verify import VerifyReport, verify_shards
from affmodels.data.windows import WindowStream
from affmodels.data.weights import LossWeightTensors, loss_weights

__all__ = [
    "FORMAT_VERSION",
    "AffectStream",
    "Augment",
    "EpochOrder",
    "ExportError",
    "FormatVersionError",
    "LossWeightTensors",
    "Manifest",
    "Partition",
    "ResumeError",
    "ShardError",
    "StreamLoader",
    "VerifyReport",
    "WindowStream",
    "balanced_counts",
    "collate_samples",
    "load_manifest",
    "loss_weights",
    "make_loader",
    "partition",
    "verify_shards",
]
