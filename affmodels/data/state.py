"""The dataset's iteration state, shared with DataLoader workers (persistent ones included).

Persistent workers keep the dataset object they were started with, so ``set_epoch`` and
``load_state_dict`` called in the main process must reach them through shared memory: a
6-int ``RawArray`` (epoch, samples to skip, the world size and workers that produced them,
the loader's batch size, and whether the loader takes packed batches with reusable image slots:
:mod:`affmodels.data.handover`), and beside it the owner token of each worker's image slot (who
may reuse it: set by the worker that sends the slot, cleared by the trainer when it lets go) and
which slots the trainer has mapped (the worker then sends the slot's lease without its storage). Pickled outside process spawning (``copy.deepcopy``, a plain
``pickle.dumps``) it becomes a detached copy instead of failing. The array lives in an
anonymous, already-unlinked mapping: nothing is left in /dev/shm after a crash.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.context import get_spawning_popen
from typing import Any

import numpy as np

_FIELDS = ("epoch", "resume", "resume_world", "resume_workers", "loader_batch", "handover")
MAX_WORKERS = 64  # DataLoader workers with reusable image slots (more: one-off buffers)
SLOTS = 8  # reusable image slots per worker


class SharedState:
    def __init__(self, values: tuple[int, ...] | None = None) -> None:
        self._arr = mp.RawArray("q", len(_FIELDS))
        self._arr[:] = list(values) if values is not None else [0] * len(_FIELDS)
        self._tokens = mp.RawArray("q", MAX_WORKERS * SLOTS)
        self._mapped = mp.RawArray("q", MAX_WORKERS * SLOTS)

    def slot_tokens(self, worker: int) -> np.ndarray:
        """The (SLOTS,) int64 owner tokens of ``worker``'s image slots, in shared memory (0: free)."""
        return np.frombuffer(self._tokens, np.int64)[worker * SLOTS:(worker + 1) * SLOTS]

    def slot_mapped(self, worker: int) -> np.ndarray:
        """The (SLOTS,) int64 tags of ``worker``'s slots the trainer has mapped (0: none; a tag
        names the worker process's pool and the slot, so a replaced worker's slots never match)."""
        return np.frombuffer(self._mapped, np.int64)[worker * SLOTS:(worker + 1) * SLOTS]

    def __getattr__(self, name: str) -> int:
        if name in _FIELDS:
            return int(self._arr[_FIELDS.index(name)])
        raise AttributeError(name)

    def set(self, **values: int) -> None:
        for name, v in values.items():
            if name not in _FIELDS:
                raise AttributeError(name)
            self._arr[_FIELDS.index(name)] = int(v)

    def __reduce__(self) -> tuple[Any, ...]:
        if get_spawning_popen() is not None:  # to a worker process: share the memory
            return (_attach, (self._arr, self._tokens, self._mapped))
        return (SharedState, (tuple(self._arr),))  # anywhere else: a detached copy


def _attach(arr: Any, tokens: Any, mapped: Any) -> SharedState:
    state = SharedState.__new__(SharedState)
    state._arr, state._tokens, state._mapped = arr, tokens, mapped
    return state


__all__ = ["MAX_WORKERS", "SLOTS", "SharedState"]
