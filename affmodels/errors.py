"""The base of affmodels' typed errors: the CLI prints any of them as one line, exit status 1."""

from __future__ import annotations


class ModelError(Exception):
    """An error the user can fix: a bad export, checkpoint, run folder or target."""


class RunFolderError(ModelError):
    """A run folder that already holds a run (without --resume) or has nothing to resume."""
