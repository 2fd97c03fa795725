"""Typed errors of the library.

The CLI turns any :class:`AffdataError` into one line on stderr and exit status 1, so every
message here is written to stand alone: it names the file (and line) or the object at fault
and says what to do where that is not obvious.

Every error survives pickling, whatever its constructor takes: worker processes (ingest probes,
export crops) send them back to the parent, and one that cannot be rebuilt there breaks the
whole pool. :meth:`AffdataError.__reduce__` rebuilds an error from its message and attributes
without calling ``__init__`` again.
"""

from __future__ import annotations

from pathlib import Path


class AffdataError(Exception):
    """Base of every error the library raises on purpose."""

    def __reduce__(self) -> tuple:
        # Exception's own reduce calls ``cls(*self.args)``, which fails for any subclass whose
        # constructor takes other arguments than the message (InputError's path and reason).
        return _rebuild, (type(self), self.args), self.__dict__


def _rebuild(cls: type[BaseException], args: tuple) -> BaseException:
    """An error of ``cls`` with ``args``, made without its ``__init__`` (see ``__reduce__``)."""
    try:
        error = cls.__new__(cls, *args)
    except TypeError:  # two built-in bases with their own __new__ (ValueError and OSError)
        return cls(*args)
    error.args = args
    return error


class ConfigError(AffdataError):
    """A bad option, URL or environment setting."""


class StoreError(AffdataError):
    """The store cannot be opened or used as asked."""


class SchemaOutdatedError(StoreError):
    """The database is at an older migration than this code expects."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer release of affdata than this one."""


class ReadOnlyError(StoreError):
    """A statement given to the read-only SQL entry point tried to write."""


class NotFoundError(AffdataError):
    """A named object (video, source, split, export...) is not in the store."""


class VocabularyError(AffdataError):
    """An AU name, expression name or class id that no vocabulary knows."""


class InputError(AffdataError):
    """Bad input in a file: the message names the file, the line where known, and the reason."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class VideoError(InputError):
    """A video (or frame folder) that cannot be opened, probed or decoded."""


class VideoChangedError(VideoError):
    """A video whose file differs from the one ingested (size, sampled bytes or content hash)."""


class LabelFormatError(InputError):
    """An annotation file that does not parse or whose values are out of range."""


class BusyError(AffdataError):
    """Another process holds what this one needs (an export's output folder): the message names it."""


class DiskFullError(AffdataError):
    """No space left on the device being written: the message says where and what was kept."""


class NoStoreError(StoreError):
    """A read was asked of a store that does not exist (no file, or an empty database)."""


class StoreFullError(StoreError, DiskFullError):
    """The disk (or the database's size limit) is full: nothing of the failed write was kept."""


class QueryTimeoutError(StoreError):
    """A read-only query ran past its time limit and was cancelled (on the server too)."""


class NothingToExportError(AffdataError):
    """An export that would write no row at all (no tracks, no boxes, no labels): refused."""


class ClusterError(AffdataError):
    """The Dask cluster cannot be reached or lost this client: the message names its address."""
class AuthError(AffdataError):
    """A log-in or session that is not accepted (wrong password, locked, disabled, expired)."""


class AccessError(AffdataError):
    """The user may not do this (an annotator asking for an admin's action)."""


class AnnotationError(AffdataError):
    """A draft or submission that the server refuses: out-of-range values or frames, gaps."""
