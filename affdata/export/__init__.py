"""``affdata export``: one part of a split as Parquet shards of face crops with their labels.

The format is the contract in docs/export-format.md (version :data:`FORMAT_VERSION`).
Modules: :mod:`~affdata.export.plan` (which rows, in which order, from which labels),
:mod:`~affdata.export.crop` (box -> square crop -> resize), :mod:`~affdata.export.encode`
(decode in order, crop, encode; the worker side), :mod:`~affdata.export.rows` (the Arrow
schema), :mod:`~affdata.export.shards` (Parquet shards, staging, resume),
:mod:`~affdata.export.manifest` (``meta/info.json``), :mod:`~affdata.export.run`
(:func:`export_part`).
"""

from __future__ import annotations

from affdata.export.rows import FORMAT_VERSION, export_schema
from affdata.export.run import ExportResult, export_part

__all__ = ["FORMAT_VERSION", "ExportResult", "export_part", "export_schema"]
