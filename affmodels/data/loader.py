"""``make_loader``: a DataLoader for :class:`AffectStream` that counts what it delivered.

Defaults from measurements on a 2-core machine (/work/shared/MEASUREMENTS.md): each worker
runs ``torch.set_num_threads(1)`` (two loaders with torch's default threads fell from ~20,900
to ~1,800 samples/s), workers persist across epochs (the dataset's epoch and resume point reach
them through shared memory), and memory is pinned only when CUDA is there to use it. With
workers and a batching stream, batches arrive packed (labels as numpy, pixels in a worker's
reusable shared-memory slot) and :class:`~affmodels.data.handover.Receiver` unpacks them and
frees each slot once nothing refers to its batch.

Never import decord in this package: decord imported before torch hangs DataLoader workers.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader

from affmodels.data.collate import collate_samples
from affmodels.data.dataset import AffectStream
from affmodels.data.handover import Receiver

log = logging.getLogger(__name__)


class _WorkerInit:
    """``torch.set_num_threads(1)``, then the caller's own init (picklable for spawn)."""

    def __init__(self, then: Callable[[int], None] | None) -> None:
        self.then = then

    def __call__(self, worker_id: int) -> None:
        torch.set_num_threads(1)
        if self.then is not None:
            self.then(worker_id)


def _identity(batch: Any) -> Any:
    return batch


class StreamLoader(DataLoader):
    """A DataLoader over an :class:`AffectStream` with ``state_dict``/``load_state_dict``.

    It counts the samples it has handed to the trainer, which is what a resume must skip:
    workers run ahead (prefetching), so their own progress is not the trainer's.
    """

    def __init__(self, dataset: AffectStream, *, stream_batch: int, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self.stream_batch = stream_batch
        #: workers send packed batches in reusable image slots (affmodels.data.handover)
        self.packed = self.num_workers > 0 and dataset.batch_size is not None
        self._receive = Receiver(dataset._state)
        self._base = 0
        self._count = 0  # samples of this rank delivered since _base
        self._epoch = dataset.epoch  # the epoch _base and _count belong to

    @property
    def workers(self) -> int:
        return max(1, self.num_workers)

    def __len__(self) -> int:
        """Batches per rank per epoch."""
        part = self.dataset.partition(self.num_workers, loader_batch=self.stream_batch)
        return self.workers * math.ceil(part.per_worker / self.stream_batch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        ds: AffectStream = self.dataset
        ds._state.set(loader_batch=self.stream_batch, handover=int(self.packed))
        self._base, self._count, self._epoch = ds._state.resume, 0, ds.epoch
        for batch in super().__iter__():
            if self.packed:
                batch = self._receive(batch)
            self._count += len(batch["row"]) // ds.frames_per_sample  # samples: frames, or windows
            yield batch
        ds._state.set(resume=0)  # epoch finished: a new iteration starts from the top

    def state_dict(self) -> dict[str, Any]:
        ds: AffectStream = self.dataset
        if self._epoch != ds.epoch:  # set_epoch since the last iteration: nothing consumed yet
            self._base, self._count, self._epoch = ds._state.resume, 0, ds.epoch
        state = ds.state_dict(consumed=self._count, workers=self.workers)
        state["samples"] = self._base + self._count * ds.world_size
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.dataset.load_state_dict(state)
        self._base, self._count, self._epoch = int(state["samples"]), 0, int(state["epoch"])


def make_loader(dataset: AffectStream, batch_size: int, workers: int = 2, *,
                persistent: bool | None = None, prefetch_factor: int | None = 2,
                pin_memory: bool | None = None, worker_init_fn: Callable[[int], None] | None = None,
                multiprocessing_context: Any = None) -> StreamLoader:
    """A :class:`StreamLoader` delivering batches of ``batch_size`` (the batch contract).

    If the dataset batches itself (``batch_size`` set on it, the fast path: decoded straight
    into the batch) the two sizes must agree; otherwise the DataLoader batches its samples
    with :func:`~affmodels.data.collate.collate_samples`. ``pin_memory`` defaults to CUDA being available.
    """
    if not isinstance(dataset, AffectStream):
        raise TypeError(f"make_loader needs an AffectStream, got {type(dataset).__name__}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an int >= 0, got {workers!r}")
    if dataset.batch_size is not None and dataset.batch_size != batch_size:
        raise ValueError(f"the dataset yields batches of {dataset.batch_size}, but batch_size is "
                         f"{batch_size}; give it the same batch_size (or None to batch here)")
    if workers and "decord" in sys.modules:
        log.warning("decord is imported in this process; DataLoader workers may hang. Import it "
                    "only in processes that do not start loaders.")
    kwargs: dict[str, Any] = {
        "num_workers": workers,
        "pin_memory": torch.cuda.is_available() if pin_memory is None else pin_memory,
        "persistent_workers": (workers > 0) if persistent is None else (persistent and workers > 0),
        "worker_init_fn": _WorkerInit(worker_init_fn) if workers else None,
        "multiprocessing_context": multiprocessing_context if workers else None,
    }
    if workers:
        kwargs["prefetch_factor"] = prefetch_factor
    if dataset.batch_size is not None:
        kwargs.update(batch_size=None, collate_fn=_identity)
    else:
        kwargs.update(batch_size=batch_size, collate_fn=collate_samples, drop_last=False)
    return StreamLoader(dataset, stream_batch=batch_size, **kwargs)


__all__ = ["StreamLoader", "make_loader"]
