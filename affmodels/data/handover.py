"""Handing batches from DataLoader workers to the trainer without allocating memory each time.

Measured on 2 cores (docs/models.md): a fresh shared-memory batch per step costs about as much
as decoding it (a new /dev/shm file, every page faulted and zeroed in the worker, mapped again
in the trainer), and every small label tensor crossing the process boundary becomes one more
shared-memory file and file-descriptor transfer. So a worker decodes into a few reused
shared-memory *slots* and sends the labels as plain numpy arrays (pickled inline: a few kB).
Who may reuse a slot is an owner token in the dataset's small shared state
(:class:`~affmodels.data.state.SharedState`): the worker writes a fresh token when it sends the
slot; the trainer (:class:`Receiver`, inside :class:`~affmodels.data.loader.StreamLoader`)
clears it, if it is still that token, once nothing refers to the slot's storage any more: after
the pin-memory thread copied it to pinned memory (CUDA), or when the training step dropped the
batch and every view of it (CPU, no copy at all). A worker with no free slot allocates another,
up to :data:`~affmodels.data.state.SLOTS`, then falls back to a one-off buffer: it never waits
on the trainer. The shared memory is already unlinked when mapped (torch's
``file_descriptor`` strategy): nothing is left in /dev/shm after a crash.

A slot's storage crosses the process boundary once: sending a tensor in shared memory costs a
file-descriptor transfer per batch (a socket connection to the worker's resource-sharer thread,
``sendmsg``/``recvmsg``, a cache lookup: about 4 us a sample of the trainer's CPU at batch 256,
more than everything else it does per batch). So the trainer, once it has mapped a slot, marks
it in the shared state (:meth:`~affmodels.data.state.SharedState.slot_mapped`, the slot's tag:
the worker's pool and the slot number), and from then on the worker sends the lease alone and
the trainer rebuilds the batch's image from the storage it kept. The mark is the trainer's,
not assumed by the worker, so a slot whose first batch never reached the trainer (dropped when
an epoch was abandoned) never travels without its storage. With pinned memory the pin-memory thread copies each batch out of its slot; there the
slot is never marked and the image always travels with the batch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef

from affmodels.data.collate import LABELS, empty_uint8
from affmodels.data.state import SharedState

LEASE = "_lease"


class Lease:
    """Which slot of which worker a batch's pixels live in, the token it was sent with, the
    slot's tag (its pool and number: which storage) and the batch's image shape (B, H, W, 3)."""

    __slots__ = ("worker", "slot", "token", "tag", "shape")

    def __init__(self, worker: int, slot: int, token: int, tag: int = 0,
                 shape: tuple[int, ...] = ()) -> None:
        self.worker, self.slot, self.token, self.tag, self.shape = worker, slot, token, tag, shape

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lease, (self.worker, self.slot, self.token, self.tag, self.shape))

    def release(self, state: SharedState) -> None:
        tokens = state.slot_tokens(self.worker)
        if tokens[self.slot] == self.token:  # not a slot a newer worker took over since
            tokens[self.slot] = 0


class SlotPool:
    """A worker's reusable shared image buffers of (batch, size, size, 3) uint8."""

    def __init__(self, state: SharedState, worker: int, batch: int, size: int) -> None:
        self.tokens = state.slot_tokens(worker)
        self.mapped = state.slot_mapped(worker)
        self.worker, self.shape = worker, (batch, size, size, 3)
        self.slots: list[Tensor] = []
        self._count = 0
        self._base = (os.getpid() & 0x7FFFFF) << 40  # tokens of another process never collide
        # names this pool's storages: random, not the pid, since a pid can come back in a new
        # worker of the same number whose slot must not be mistaken for the old one's mapping
        self._tag = (int.from_bytes(os.urandom(7), "little") | 1) << 4
        self.fresh = 0  # one-off buffers allocated because every slot was in use

    def take(self, n: int) -> tuple[Tensor, Lease | None]:
        """An (n, size, size, 3) uint8 buffer, and its lease (None for a one-off buffer)."""
        free = np.flatnonzero(self.tokens[:len(self.slots)] == 0)
        if len(free):
            i = int(free[0])
        elif len(self.slots) < len(self.tokens):
            self.slots.append(empty_uint8(self.shape, shared=True))
            i = len(self.slots) - 1
        else:
            self.fresh += 1
            return empty_uint8((n, *self.shape[1:]), shared=True), None
        self._count += 1
        token = self._base | self._count
        self.tokens[i] = token
        return self.slots[i][:n], Lease(self.worker, i, token, self._tag | i, (n, *self.shape[1:]))

    def mapped_by_trainer(self, lease: Lease | None) -> bool:
        """Whether the trainer holds this lease's slot storage already (send the lease alone)."""
        return lease is not None and int(self.mapped[lease.slot]) == lease.tag


def pack(batch: dict[str, Any], lease: Lease | None, pool: SlotPool | None = None) -> dict[str, Any]:
    """A worker's batch as it crosses to the trainer: labels as numpy arrays, pixels in a slot
    (the image left out where the trainer has mapped that slot: it rebuilds it from the lease)."""
    drop = pool is not None and pool.mapped_by_trainer(lease)
    out = {k: (v.numpy() if k in LABELS else v) for k, v in batch.items() if not (drop and k == "image")}
    out[LEASE] = lease
    return out


#: the C++ reference count of a storage (torch internals; None where this torch lacks it)
_use_count = getattr(torch._C, "_storage_Use_Count", None)


class Receiver:
    """The trainer's side: turns packed batches back into the batch contract and frees slots.

    It keeps each slot's storage it has seen (a reference: the mapping stays, so the next batch
    in that slot is neither mapped nor page-faulted again) and frees a slot when its storage is
    referred to by nothing else (the C++ reference count; where torch does not expose it, a
    weak reference and the mapping goes with the batch).
    """

    def __init__(self, state: SharedState) -> None:
        self.state = state
        self._mapped: dict[tuple[int, int], tuple[int, Any]] = {}  # (worker, slot) -> (tag, storage)
        self._held: list[tuple[Any, Lease]] = []

    def __call__(self, item: Mapping[str, Any]) -> dict[str, Any]:
        self.poll()
        batch = {k: (torch.from_numpy(v) if k in LABELS else v) for k, v in item.items() if k != LEASE}
        lease = item.get(LEASE)
        if lease is None:
            return batch
        image = batch.get("image")
        if image is None:  # a slot mapped before: its storage is here already
            tag, storage = self._mapped.get((lease.worker, lease.slot), (None, None))
            if tag != lease.tag:
                raise RuntimeError(f"worker {lease.worker} sent slot {lease.slot} without its storage, "
                                   "which this loader never mapped")
            nhwc = torch.empty(0, dtype=torch.uint8).set_(storage, 0, lease.shape)
            batch["image"] = nhwc.permute(0, 3, 1, 2)
            self._held.append((storage, lease))
        elif image.is_pinned():  # the pin-memory thread already copied it out of the slot
            lease.release(self.state)
        elif _use_count is not None:
            storage = image.untyped_storage()
            self._mapped[(lease.worker, lease.slot)] = (lease.tag, storage)
            self._held.append((storage, lease))
            if lease.tag:  # the worker may send this slot's lease alone from now on
                self.state.slot_mapped(lease.worker)[lease.slot] = lease.tag
        else:
            self._held.append((StorageWeakRef(image.untyped_storage()), lease))
        return batch

    @staticmethod
    def _unused(ref: Any) -> bool:
        if isinstance(ref, StorageWeakRef):
            return ref.expired()
        return _use_count(ref._cdata) <= 1  # only the reference kept here

    def poll(self) -> None:
        """Free the slots whose batches nobody refers to any more."""
        held = []
        for ref, lease in self._held:
            if self._unused(ref):
                lease.release(self.state)
            else:
                held.append((ref, lease))
        self._held = held

    def close(self) -> None:
        self.poll()
        self._held = []


__all__ = ["LEASE", "Lease", "Receiver", "SlotPool", "pack"]
