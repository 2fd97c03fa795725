"""Handing batches from DataLoader workers to the trainer without allocating memory each time.

Measured on 2 cores (docs/models.md): a fresh shared-memory batch per step costs about as much
as decoding it (a new /dev/shm file, every page faulted and zeroed in the worker, mapped again
in the trainer), and every small label tensor crossing the process boundary becomes one more
shared-memory file. So a worker decodes into a few reused shared-memory *slots* and sends the
labels as plain numpy arrays (pickled inline: a few kB). A one-byte flag per slot, in a small
shared array, says whether the trainer still uses it: the worker sets it when it sends the slot;
the trainer (:class:`Receiver`, inside :class:`~affmodels.data.loader.StreamLoader`) clears it
once nothing refers to the slot's storage any more: after the pin-memory thread copied it to
pinned memory (CUDA), or when the training step dropped the batch and every view of it (CPU,
no copy at all). A worker with no free slot allocates another, up to :data:`POOL_SLOTS`, then
falls back to a one-off buffer: it never waits on the trainer. The shared memory is already
unlinked when mapped (torch's ``file_descriptor`` strategy): nothing is left in /dev/shm after a
crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef

from affmodels.data.collate import LABELS, empty_uint8

#: reused image buffers per worker (a worker has at most prefetch_factor batches queued, the
#: trainer holds one or two)
POOL_SLOTS = 8
LEASE = "_lease"


class Lease:
    """Which slot of which worker a batch's pixels live in (picklable; travels with the batch)."""

    def __init__(self, flags: Tensor, slot: int) -> None:
        self.flags, self.slot = flags, slot

    def release(self) -> None:
        self.flags.numpy()[self.slot] = 0  # numpy: a byte store (torch's indexing costs far more)


class SlotPool:
    """A worker's reusable shared image buffers of (batch, size, size, 3) uint8."""

    def __init__(self, batch: int, size: int, slots: int = POOL_SLOTS) -> None:
        self.shape = (batch, size, size, 3)
        self.flags = torch.zeros(slots, dtype=torch.uint8).share_memory_()
        self.slots: list[Tensor] = []
        self.fresh = 0  # one-off buffers allocated because every slot was in use (for tests, benchmarks)

    def take(self, n: int) -> tuple[Tensor, Lease | None]:
        """An (n, size, size, 3) uint8 buffer, and its lease (None for a one-off buffer)."""
        flags = self.flags.numpy()
        free = np.flatnonzero(flags[:len(self.slots)] == 0)
        if len(free):
            i = int(free[0])
        elif len(self.slots) < len(flags):
            self.slots.append(empty_uint8(self.shape, shared=True))
            i = len(self.slots) - 1
        else:
            self.fresh += 1
            return empty_uint8((n, *self.shape[1:]), shared=True), None
        flags[i] = 1
        return self.slots[i][:n], Lease(self.flags, i)


def pack(batch: dict[str, Any], lease: Lease | None) -> dict[str, Any]:
    """A worker's batch as it crosses to the trainer: labels as numpy arrays, pixels in a slot."""
    out = {k: (v.numpy() if k in LABELS else v) for k, v in batch.items()}
    out[LEASE] = lease
    return out


class Receiver:
    """The trainer's side: turns packed batches back into the batch contract and frees slots."""

    def __init__(self) -> None:
        self._held: list[tuple[StorageWeakRef, Lease]] = []

    def __call__(self, item: Mapping[str, Any]) -> dict[str, Any]:
        self.poll()
        batch = {k: (torch.from_numpy(v) if k in LABELS else v) for k, v in item.items() if k != LEASE}
        lease = item.get(LEASE)
        if lease is not None:
            image = batch["image"]
            if image.is_pinned():  # the pin-memory thread already copied it out of the slot
                lease.release()
            else:
                self._held.append((StorageWeakRef(image.untyped_storage()), lease))
        return batch

    def poll(self) -> None:
        """Free the slots whose batches nobody refers to any more."""
        held = []
        for ref, lease in self._held:
            if ref.expired():
                lease.release()
            else:
                held.append((ref, lease))
        self._held = held

    def close(self) -> None:
        self.poll()
        self._held = []


__all__ = ["LEASE", "POOL_SLOTS", "Lease", "Receiver", "SlotPool", "pack"]
