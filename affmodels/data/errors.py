"""Typed errors of the streaming reader: what is wrong with an export, not how it was found."""

from __future__ import annotations

from affmodels.errors import ModelError


class ExportError(ModelError, ValueError):
    """The directory is not a readable export (missing or malformed ``meta/info.json``)."""


class FormatVersionError(ExportError):
    """The export's ``format_version`` is older or newer than this reader understands."""


class ShardError(ExportError):
    """A shard is missing, truncated, fails its sha256, or disagrees with the manifest."""


class ResumeError(ModelError, ValueError):
    """A state_dict cannot resume this dataset exactly (other seed, world size, workers...)."""


__all__ = ["ExportError", "FormatVersionError", "ResumeError", "ShardError"]
