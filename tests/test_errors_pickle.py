"""Every typed error of both libraries survives a pickle round trip.

Worker processes (ingest probes, export crops, loader workers) return errors to the parent by
pickle; one that cannot be rebuilt there breaks the whole process pool, and every other file in
it fails with ``BrokenProcessPool``. The error types are discovered, not listed: every module of
``affdata`` and ``affmodels`` is imported and every subclass of the two bases is checked, so a
new error type is covered the day it is written.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path

import pytest

import affdata
import affmodels
from affdata.errors import AffdataError
from affmodels.errors import ModelError


def _import_all(package) -> None:
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        importlib.import_module(info.name)


def _all_subclasses(base: type) -> list[type]:
    seen: dict[type, None] = {base: None}
    stack = [base]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen[sub] = None
                stack.append(sub)
    return list(seen)


def _error_types() -> list[type]:
    _import_all(affdata)
    _import_all(affmodels)
    found = [c for c in _all_subclasses(AffdataError) + _all_subclasses(ModelError)
             if c.__module__.startswith(("affdata", "affmodels"))]
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


ERROR_TYPES = _error_types()


def _sample_value(param: inspect.Parameter):
    """A plausible argument for a constructor parameter, from its annotation or name."""
    note = str(param.annotation).lower()
    if "int" in note and "str" not in note or param.name in ("line", "pid", "count"):
        return 7
    if "path" in note or "path" in param.name:
        return Path("some/dir/file.txt")
    return f"sample {param.name}"


def _make(cls: type) -> BaseException:
    params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not params:  # Exception's own constructor: a message
        return cls("sample message naming some/dir/file.txt")
    args, kwargs = [], {}
    for p in params:
        if p.default is not p.empty:
            continue
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = _sample_value(p)
        else:
            args.append(_sample_value(p))
    return cls(*args, **kwargs)


def test_discovery_finds_the_known_errors() -> None:
    names = {c.__name__ for c in ERROR_TYPES}
    assert {"AffdataError", "InputError", "VideoError", "LabelFormatError", "SQLError", "WorkerDiedError",
            "ModelError", "ExportError", "CheckpointError", "TargetError"} <= names


@pytest.mark.parametrize("cls", ERROR_TYPES, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_error_survives_pickling(cls: type) -> None:
    error = _make(cls)
    error.extra_note = "set after construction"  # attributes travel too
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert str(back) == str(error)
    assert back.args == error.args
    assert vars(back) == vars(error)


def test_input_error_keeps_its_fields() -> None:
    from affdata.errors import VideoError

    back = pickle.loads(pickle.dumps(VideoError("clips/a.mp4", "not a readable video", line=3)))
    assert (back.path, back.reason, back.line) == ("clips/a.mp4", "not a readable video", 3)
    assert str(back) == "clips/a.mp4:3: not a readable video"


def test_a_model_error_with_its_own_constructor_survives_pickling() -> None:
    """ModelError rebuilds without ``__init__``, as affdata's errors do (loader workers pickle them)."""
    from affmodels.errors import ModelError

    class ShardAt(ModelError):
        def __init__(self, shard: str, why: str) -> None:
            self.shard = shard
            super().__init__(f"{shard}: {why}")

    globals()["ShardAt"] = ShardAt  # pickle finds classes by module and name
    ShardAt.__qualname__ = "ShardAt"
    back = pickle.loads(pickle.dumps(ShardAt("shard-00001.parquet", "sha256 differs")))
    assert type(back) is ShardAt and str(back) == "shard-00001.parquet: sha256 differs"
    assert back.shard == "shard-00001.parquet"
