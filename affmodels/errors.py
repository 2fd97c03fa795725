"""affmodels' typed errors: the CLI prints any :class:`ModelError` as one line, exit status 1.

Every message stands alone: it names the option, file or folder at fault and, where it is not
obvious, what to do. The family (some classes live next to the code that raises them):

- :class:`ConfigError`: an option that cannot work (unknown model, balance weights for a task
  without labels, a device this machine lacks, the GAN under torchrun).
- :class:`InputFileError` / :class:`MissingFileError`: a file given as input (pretrained
  weights, a face image, a targets CSV) that is unreadable or missing.
- :class:`TargetError`: a target affect the GAN's vocabulary cannot express.
- :class:`RunFolderError`: a run folder that already holds a run, or has none to resume.
- ``affmodels.checkpoint.CheckpointError``: a checkpoint that cannot be read or is of
  another kind; ``affmodels.data.errors.ExportError`` (and ``ShardError``,
  ``FormatVersionError``, ``ResumeError``): an export that cannot be read as asked.

The value-like ones also subclass ``ValueError`` (and the missing file ``FileNotFoundError``),
so code that caught the built-in errors before keeps working.
"""

from __future__ import annotations

from affdata.errors import AffdataError


class ModelError(Exception):
    """An error the user can fix: a bad export, checkpoint, run folder, option or target."""

    # Loader workers send errors to the parent by pickle: rebuilt without ``__init__``, as
    # affdata's errors are, so a subclass with its own constructor arguments still arrives.
    __reduce__ = AffdataError.__reduce__


class ConfigError(ModelError, ValueError):
    """An option or argument that cannot work as given."""


class InputFileError(ModelError, ValueError):
    """A file given as input that cannot be read as what it should be."""


class MissingFileError(InputFileError, FileNotFoundError):
    """A file given as input that does not exist."""


class TargetError(ModelError, ValueError):
    """A target affect that the GAN's vocabulary cannot express."""


class RunFolderError(ModelError):
    """A run folder that already holds a run (without --resume) or has nothing to resume."""


__all__ = ["ConfigError", "InputFileError", "MissingFileError", "ModelError", "RunFolderError", "TargetError"]
