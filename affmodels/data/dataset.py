"""``AffectStream``: an export (docs/export-format.md) as a resumable, rank- and worker-aware
IterableDataset.

Each (rank, worker) reads its contiguous span of the epoch's sequence (see
:mod:`affmodels.data.order`) window by window: the window's row groups are read whole, then
its samples are decoded, in the sequence's order, straight into a preallocated batch (or one
sample at a time when ``batch_size`` is None); in a DataLoader worker that batch is one of the
worker's reusable shared-memory slots (:mod:`affmodels.data.handover`). The state is (epoch, samples consumed
globally); on resume each worker works out from it how many of its own samples the trainer
already had (:meth:`Partition.worker_skip`) and starts after them, so the samples after a
resume are exactly those an uninterrupted run would have produced, augmentations included.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from affmodels.data.augment import Augment
from affmodels.data.balance import TASKS, balanced_counts, check_weights
from affmodels.data.collate import empty_batch, fill_labels, pixels, sample_from
from affmodels.data.decode import DecodeError, decode_many
from affmodels.data.errors import ResumeError, ShardError
from affmodels.data.handover import SlotPool, pack
from affmodels.data.manifest import Manifest, load_manifest
from affmodels.data.order import EpochOrder, Partition, block_layout, partition
from affmodels.data.reader import Block, ShardReader, concat_blocks
from affmodels.data.state import MAX_WORKERS, SharedState
from affmodels.errors import ConfigError


def dist_info(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world size): as given, else torch.distributed's, else $RANK/$WORLD_SIZE, else (0, 1)."""
    if (rank is None) != (world_size is None):
        raise ValueError("give both rank and world_size, or neither")
    if rank is None or world_size is None:
        if dist.is_available() and dist.is_initialized():
            rank, world_size = dist.get_rank(), dist.get_world_size()
        else:
            rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in 0..world_size-1, got rank {rank}, world_size {world_size}")
    return rank, world_size


class AffectStream(IterableDataset):
    """Face crops and VA/AU/EXPR labels of an export, streamed in a reproducible order.

    ``batch_size``: yield batches of the batch contract of this size (per rank), decoded in
    place; None yields single samples (collate with :func:`affmodels.data.collate.collate_samples`).
    ``window``: row groups whose samples are shuffled together (memory: ``window`` row groups;
    the default 32 mixes about a hundred video segments per window: with 4, batches came from a
    dozen videos and balanced sampling redrew the same few AU and expression frames, and the
    network did not learn on the synthetic data
    per worker). ``verify``: check each shard's sha256 against the manifest, once per file
    version (:mod:`affmodels.data.verify`; a corrupted shard is a :class:`ShardError`).
    ``drop_last``: drop the epoch's tail instead of padding it by repetition.
    ``balance``: task weights for balanced resampling (:mod:`affmodels.data.balance`).
    ``rank``/``world_size``: default to torch.distributed, then $RANK/$WORLD_SIZE; they are
    resolved here, so build the dataset after ``init_process_group``.
    """

    def __init__(self, path: str | Path, *, seed: int = 0, shuffle: bool = True,
                 batch_size: int | None = None, drop_last: bool = False, window: int = 32,
                 verify: bool = True, augment: Augment | None = None,
                 balance: Mapping[str, float] | None = None, rank: int | None = None,
                 world_size: int | None = None) -> None:
        super().__init__()
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be None or an int >= 1, got {batch_size!r}")
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1 (row groups), got {window!r}")
        if augment is not None and not isinstance(augment, Augment):
            raise TypeError(f"augment must be an affmodels.data.Augment, got {type(augment).__name__}")
        self.manifest: Manifest = load_manifest(path, verify=verify)
        self.seed, self.shuffle, self.batch_size = seed, shuffle, batch_size
        self.drop_last, self.window, self.augment = drop_last, window, augment
        self.rank, self.world_size = dist_info(rank, world_size)
        self.blocks = block_layout([s.rows for s in self.manifest.shards], self.manifest.row_group_size)
        self.balance = None if balance is None else check_weights(balance)
        self._has: dict[str, np.ndarray] | None = None
        if self.balance is not None:
            reader = ShardReader(self.manifest)
            self._has = reader.read_task_masks()
            reader.close()
            empty = [t for t in TASKS if self.balance[t] > 0 and not self._has[t].any()]
            if empty:
                raise ConfigError(f"balance: weight > 0 for {', '.join(empty)} but no row of "
                                 f"{self.manifest.root} has that label; set its weight to 0")
        self._state = SharedState()
        self._base = 0  # samples (global) consumed before this process's current iteration
        self._yielded = 0  # samples (this rank) yielded by in-process iteration since then
        self._order: EpochOrder | None = None
        self._pool: SlotPool | None = None  # a worker's image slots (made in the worker)
        self._reader: ShardReader | None = None  # a worker's open shards (made in the worker)

    #: frames a sample holds (a batch of B samples has B * this rows); windows: T
    frames_per_sample = 1

    # -------------------------------------------------------------- what the trainer needs

    @property
    def au_names(self) -> tuple[str, ...]:
        return self.manifest.au_names

    @property
    def expressions(self) -> tuple[str, ...]:
        return self.manifest.expressions

    @property
    def n_aus(self) -> int:
        return self.manifest.n_aus

    @property
    def n_classes(self) -> int:
        return self.manifest.n_classes

    @property
    def image_size(self) -> int:
        return self.manifest.image_size

    @property
    def epoch(self) -> int:
        return self._state.epoch

    # ------------------------------------------------------------------------- the order

    def epoch_order(self, epoch: int | None = None) -> EpochOrder:
        """The epoch's global sequence (cached for the current epoch)."""
        epoch = self.epoch if epoch is None else epoch
        if self._order is not None and self._order.epoch == epoch:
            return self._order
        counts = None
        if self.balance is not None and self._has is not None:
            counts = balanced_counts(self._has, self.balance, seed=self.seed, epoch=epoch)
        order = EpochOrder(self.blocks, seed=self.seed, epoch=epoch, shuffle=self.shuffle,
                           window=self.window, counts=counts)
        self._order = order
        return order

    def partition(self, num_workers: int = 0, epoch: int | None = None,
                  loader_batch: int | None = None) -> Partition:
        """How the epoch is cut for ``num_workers`` DataLoader workers (0: in-process)."""
        batch = self.batch_size or loader_batch or self._state.loader_batch or 1
        return partition(self.epoch_order(epoch).size, world=self.world_size,
                         workers=max(1, num_workers), batch=batch, drop_last=self.drop_last)

    def samples_per_rank(self, num_workers: int = 0) -> int:
        return self.partition(num_workers).per_rank

    # ------------------------------------------------------------------- epoch and resume

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's order; a pending resume of that same epoch is kept."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an int >= 0, got {epoch!r}")
        if epoch != self.epoch:
            self._state.set(epoch=epoch, resume=0, resume_world=0, resume_workers=0)
            self._base = self._yielded = 0

    def state_dict(self, consumed: int | None = None, workers: int = 1) -> dict[str, Any]:
        """``{"epoch", "samples"}`` (samples consumed globally this epoch) plus what the order
        depended on. ``consumed`` (per rank, since the last resume) defaults to what in-process
        iteration yielded; :class:`~affmodels.data.loader.StreamLoader` passes its own count."""
        per_rank = self._yielded if consumed is None else consumed
        return {"epoch": self.epoch, "samples": self._base + per_rank * self.world_size,
                "seed": self.seed, "world_size": self.world_size, "workers": workers,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume mid-epoch: the next iteration starts after ``state["samples"]``."""
        missing = [k for k in ("epoch", "samples") if k not in state]
        if missing:
            raise ResumeError(f"state_dict lacks {', '.join(missing)}")
        epoch, samples = int(state["epoch"]), int(state["samples"])
        world, workers = int(state.get("world_size", self.world_size)), int(state.get("workers", 1))
        if state.get("seed", self.seed) != self.seed:
            raise ResumeError(f"state_dict is for seed {state['seed']}, this dataset has seed {self.seed}")
        if world != self.world_size:
            raise ResumeError(f"state_dict was saved with world size {world}, now {self.world_size}: "
                              "the order depends on it, so the resume would not be exact")
        if state.get("batch_size", self.batch_size) != self.batch_size:
            raise ResumeError(f"state_dict was saved with batch_size {state['batch_size']}, "
                              f"this dataset has {self.batch_size}")
        if epoch < 0 or samples < 0 or samples % world:
            raise ResumeError(f"state_dict has epoch {epoch}, samples {samples}: both must be >= 0 and "
                              f"samples a multiple of the world size {world}")
        self._state.set(epoch=epoch, resume=samples, resume_world=world, resume_workers=workers)
        self._base, self._yielded = samples, 0

    def _span(self, part: Partition, worker: int) -> tuple[int, int]:
        """The part of this worker's span still to deliver (after a resume: see Partition.resume)."""
        resume = self._state.resume
        if not resume:
            return part.span(self.rank, worker)
        saved = self._state.resume_workers
        if saved != part.workers:
            raise ResumeError(f"state_dict was saved with {saved} loader worker(s) (0 counts as 1), "
                              f"now {part.workers}: the order depends on it, so the resume would not be exact")
        if part.workers > 1 and part.batch == 1 and not self.batch_size:
            raise ResumeError("resuming with several DataLoader workers in per-sample mode needs the "
                              "loader's batch size: build the loader with make_loader")
        try:
            skip, shift = part.resume(resume // self.world_size)
        except ValueError as e:
            raise ResumeError(f"cannot resume at {resume} samples: {e}") from e
        role = (worker + shift) % part.workers
        a, b = part.span(self.rank, role)
        return a + skip[role], b

    # ------------------------------------------------------------------------- iteration

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        order = self.epoch_order()
        part = self.partition(workers)
        start, stop = self._span(part, worker)
        if info is None:
            self._base, self._yielded = self._state.resume, 0
        items = self._batches(order, start, stop) if self.batch_size else self._samples(order, start, stop)
        for item in items:
            if info is None:
                self._yielded += len(item["row"]) if self.batch_size else 1
            yield item
        if info is None:
            self._state.set(resume=0)  # a new iteration of this epoch starts from the top

    def _windows(self, order: EpochOrder, start: int, stop: int) -> Iterator[tuple[int, np.ndarray, Block]]:
        """``(position, local indices, window block)``: each piece of the span with its row groups
        loaded (at most ``window`` held; the previous window's are dropped before reading)."""
        worker = get_worker_info() is not None
        if worker:  # a worker keeps its files open (and checked) from epoch to epoch
            if self._reader is None:
                self._reader = ShardReader(self.manifest)
            reader = self._reader
        else:
            reader = ShardReader(self.manifest)
        held: dict[int, Block] = {}
        b = self.blocks
        try:
            for pos, rows in order.segments(start, stop):
                ids = np.unique(np.searchsorted(b.start, rows, side="right") - 1)
                held = {i: held[i] for i in ids if i in held}
                missing = [i for i in ids.tolist() if i not in held]
                for shard in sorted({int(b.shard[i]) for i in missing}):  # one read per shard
                    mine = [i for i in missing if b.shard[i] == shard]
                    got = reader.read_groups(shard, [int(b.group[i]) for i in mine],
                                             [int(b.start[i]) for i in mine], [int(b.length[i]) for i in mine])
                    held.update(zip(mine, got))
                win = concat_blocks([held[i] for i in ids])
                yield pos, np.searchsorted(win.rows, rows), win
        finally:
            if not worker:
                reader.close()

    def _decode(self, win: Block, local: np.ndarray, out: np.ndarray) -> None:
        decode_rows(self.manifest, win, local, out)

    def _slots(self) -> SlotPool | None:
        """This worker's reusable image buffers, when its loader takes packed batches."""
        info = get_worker_info()
        if info is None or not self._state.handover or not self.batch_size or info.id >= MAX_WORKERS:
            return None
        if self._pool is None:
            self._pool = SlotPool(self._state, info.id, self.batch_size, self.image_size)
        return self._pool

    def _batches(self, order: EpochOrder, start: int, stop: int) -> Iterator[dict[str, Any]]:
        bs, size, k = self.batch_size or 1, self.image_size, self.n_aus
        pool = self._slots()
        batch: dict[str, Any] | None = None
        lease = None
        filled = n = 0
        for pos, local, win in self._windows(order, start, stop):
            i = 0
            while i < len(local):
                if batch is None:
                    n = min(bs, stop - (pos + i))
                    image, lease = pool.take(n) if pool is not None else (None, None)
                    batch, filled = empty_batch(n, size, k, image=image), 0
                take = min(n - filled, len(local) - i)
                idx = local[i:i + take]
                fill_labels(batch, filled, win, idx, np.arange(pos + i, pos + i + take))
                self._decode(win, idx, pixels(batch)[filled:filled + take])
                filled, i = filled + take, i + take
                if filled == n:
                    if self.augment is not None:  # once per batch, vectorised
                        self.augment.apply(pixels(batch), self.seed, order.epoch, batch["position"].numpy())
                    yield pack(batch, lease, pool) if pool is not None else batch
                    batch = None

    def _samples(self, order: EpochOrder, start: int, stop: int) -> Iterator[dict[str, Any]]:
        size = self.image_size
        for pos, local, win in self._windows(order, start, stop):
            for i, j in enumerate(local):
                img = np.empty((1, size, size, 3), dtype=np.uint8)
                self._decode(win, local[i:i + 1], img)
                if self.augment is not None:
                    self.augment.apply(img, self.seed, order.epoch, np.array([pos + i]))
                yield sample_from(win, int(j), img[0], pos + i)


def decode_rows(manifest: Manifest, win: Block, local: np.ndarray, out: np.ndarray) -> None:
    """Decode rows ``local`` of ``win`` into ``out`` (one C call a sample; no other Python per sample)."""
    try:
        decode_many(win.images.slices(local), out, manifest.encoding)
    except DecodeError as e:
        j = local[e.index]
        raise ShardError(f"{manifest.root}: row {win.rows[j]} ({win.video[j]} frame "
                         f"{win.frame[j]}): cannot decode its image ({e.reason})") from e


def shard_batches(manifest: Manifest, shard: int, batch_size: int, first_row: int = 0) -> Iterator[dict[str, Any]]:
    """One shard's rows in file order, as batches of the batch contract (the last one shorter),
    in this process: a unit of work that another process or host can take on its own (``affmodels
    predict --cluster``). Its batches do not depend on the other shards, so a shard predicted
    anywhere gives the same rows. ``first_row``: the shard's first global row (the ``row`` ids)."""
    k, size = manifest.n_aus, manifest.image_size
    blocks = block_layout([manifest.shards[shard].rows], manifest.row_group_size)
    reader = ShardReader(manifest)
    batch: dict[str, Any] | None = None
    filled = n = 0
    left = manifest.shards[shard].rows
    try:
        for group in range(len(blocks)):
            start, length = int(blocks.start[group]), int(blocks.length[group])
            win = reader.read(shard, group, first_row + start, length)
            i = 0
            while i < length:
                if batch is None:
                    n = min(batch_size, left)
                    batch, filled = empty_batch(n, size, k), 0
                take = min(n - filled, length - i)
                idx = np.arange(i, i + take)
                fill_labels(batch, filled, win, idx, win.rows[idx])
                decode_rows(manifest, win, idx, pixels(batch)[filled:filled + take])
                filled, i, left = filled + take, i + take, left - take
                if filled == n:
                    yield batch
                    batch = None
    finally:
        reader.close()


__all__ = ["AffectStream", "decode_rows", "dist_info", "shard_batches"]
