"""The base of affmodels' typed errors: the CLI prints any of them as one line, exit status 1."""

from __future__ import annotations


class ModelError(Exception):
    """An error the user can fix: a bad export, checkpoint, run folder or target."""

    def __reduce__(self) -> tuple:
        # Loader workers send errors to the parent by pickle; rebuild from the message and the
        # attributes without calling ``__init__``, so a subclass with its own constructor
        # arguments still arrives (Exception's reduce would call ``cls(*self.args)``).
        return _rebuild, (type(self), self.args), self.__dict__


def _rebuild(cls: type[BaseException], args: tuple) -> BaseException:
    error = cls.__new__(cls, *args)
    error.args = args
    return error


class RunFolderError(ModelError):
    """A run folder that already holds a run (without --resume) or has nothing to resume."""
