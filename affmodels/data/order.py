"""The order of an epoch's samples: a pure function of (layout, seed, epoch, ranks, workers, batch).

Two-level shuffle, so that samples mix across the whole export while every worker still reads
whole row groups, in sequence, holding at most ``window`` of them:

1. **Blocks.** A block is one Parquet row group. The blocks of all shards are permuted with
   ``rng(seed, epoch)``.
2. **Windows.** Consecutive blocks of that permutation are grouped ``window`` at a time, and
   the samples of each window are permuted with ``rng(seed, epoch, window index)``.

The concatenation of the windows is the epoch's global sequence ``G`` (its length ``S`` is the
number of rows, or the balanced draw count). ``G`` does not depend on ranks or workers; only
how it is cut does (see :class:`Partition`). Each (rank, worker) takes a contiguous span of
``G`` so it reads a few windows in order. Positions past ``S`` wrap to the start of ``G``:
padding repeats samples, and only at the tail.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


def rng(*key: int) -> np.random.Generator:
    """A generator that depends on ``key`` only (PCG64 via SeedSequence)."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


@dataclass(frozen=True)
class Blocks:
    """Row groups of all shards, in export order: block ``i`` holds rows ``start[i]:+length[i]``."""

    shard: np.ndarray  # (n,) int64
    group: np.ndarray  # (n,) int64, row group index within its shard
    start: np.ndarray  # (n,) int64, global row index of the block's first row
    length: np.ndarray  # (n,) int64

    @property
    def rows(self) -> int:
        return int(self.length.sum())

    def __len__(self) -> int:
        return len(self.start)


def block_layout(shard_rows: Sequence[int], row_group_size: int) -> Blocks:
    """Blocks of shards written with ``row_group_size`` rows per group (each shard's last fewer)."""
    if row_group_size < 1:
        raise ValueError(f"row_group_size must be >= 1, got {row_group_size}")
    shard, group, length = [], [], []
    for s, n in enumerate(shard_rows):
        if n < 1:
            raise ValueError(f"shard {s} has {n} rows; shards are never empty")
        k = math.ceil(n / row_group_size)
        shard += [s] * k
        group += range(k)
        length += [row_group_size] * (k - 1) + [n - (k - 1) * row_group_size]
    length_arr = np.array(length, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(length_arr)[:-1]]).astype(np.int64)
    return Blocks(np.array(shard, dtype=np.int64), np.array(group, dtype=np.int64), start, length_arr)


class EpochOrder:
    """The global sequence ``G`` of one epoch, built window by window on demand.

    ``counts`` (optional, (rows,) ints) gives each row's multiplicity (balanced sampling);
    by default every row appears once. With ``shuffle=False`` blocks stay in export order
    and windows are not permuted, so ``G`` is the export order.
    """

    def __init__(self, blocks: Blocks, *, seed: int, epoch: int, shuffle: bool = True,
                 window: int = 4, counts: np.ndarray | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1 block, got {window}")
        if seed < 0 or epoch < 0:
            raise ValueError(f"seed and epoch must be >= 0, got {seed}, {epoch}")
        if counts is not None and counts.shape != (blocks.rows,):
            raise ValueError(f"counts must have shape ({blocks.rows},), got {counts.shape}")
        self.blocks, self.seed, self.epoch = blocks, seed, epoch
        self.shuffle, self.window, self.counts = shuffle, window, counts
        per_block = blocks.length if counts is None else np.add.reduceat(counts, blocks.start)
        kept = np.flatnonzero(per_block > 0)
        self.block_order = kept[rng(seed, epoch, 0).permutation(len(kept))] if shuffle else kept
        sizes = per_block[self.block_order]
        firsts = np.arange(0, len(sizes), window)
        window_sizes = np.add.reduceat(sizes, firsts) if len(sizes) else np.zeros(0, np.int64)
        self.window_start = np.concatenate([[0], np.cumsum(window_sizes)]).astype(np.int64)
        self.size = int(self.window_start[-1])

    @property
    def n_windows(self) -> int:
        return len(self.window_start) - 1

    def window_blocks(self, i: int) -> np.ndarray:
        return self.block_order[i * self.window:(i + 1) * self.window]

    def window_rows(self, i: int) -> np.ndarray:
        """Global row indices of window ``i``, in sequence order."""
        parts = []
        for b in self.window_blocks(i):
            a, n = self.blocks.start[b], self.blocks.length[b]
            rows = np.arange(a, a + n, dtype=np.int64)
            parts.append(rows if self.counts is None else np.repeat(rows, self.counts[a:a + n]))
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return rows[rng(self.seed, self.epoch, 1, i).permutation(len(rows))] if self.shuffle else rows

    def segments(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        """``(position, rows)`` pieces of ``G[start:stop]``, each inside one window.

        Positions ``>= size`` wrap (padding by repetition). A reader loads one window's
        blocks per piece, so it never holds more than ``window`` row groups.
        """
        if self.size == 0 and stop > start:
            raise ValueError("the epoch has no samples")
        pos = start
        while pos < stop:
            p = pos % self.size
            w = int(np.searchsorted(self.window_start, p, side="right")) - 1
            a, b = self.window_start[w], self.window_start[w + 1]
            n = int(min(b - p, stop - pos))
            rows = self.window_rows(w)
            yield pos, rows[p - a:p - a + n]
            pos += n

    def rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``G[start:stop]`` as one array (tests and small exports; readers use segments)."""
        stop = self.size if stop is None else stop
        parts = [r for _, r in self.segments(start, stop)]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


@dataclass(frozen=True)
class Partition:
    """How ``G`` is cut: (rank r, worker w) reads ``G[span(r, w)]``, ``per_worker`` samples.

    Every rank and every worker gets the same count. ``drop_last=False`` pads ``G`` by
    repetition to ``world * workers * per_worker`` with ``per_worker = ceil(S / (world *
    workers))``; ``drop_last=True`` drops the tail instead, to a whole number of batches
    per worker. A rank sees its workers' batches round-robin (as a DataLoader fetches
    them): batch ``k`` of a rank is batch ``k // workers`` of worker ``k % workers``.
    """

    total: int  # S
    world: int
    workers: int
    batch: int  # the granularity the loader batches at (1: per-sample, unknown)
    per_worker: int

    @property
    def per_rank(self) -> int:
        return self.per_worker * self.workers

    @property
    def padding(self) -> int:
        return max(0, self.per_rank * self.world - self.total)

    def span(self, rank: int, worker: int) -> tuple[int, int]:
        if not (0 <= rank < self.world and 0 <= worker < self.workers):
            raise ValueError(f"rank {rank} / worker {worker} outside world {self.world} x workers {self.workers}")
        a = (rank * self.workers + worker) * self.per_worker
        return a, a + self.per_worker

    def batch_sizes(self) -> list[int]:
        """Sizes of one worker's batches: full ones, then the remainder."""
        full, rest = divmod(self.per_worker, self.batch)
        return [self.batch] * full + ([rest] if rest else [])

    def resume(self, consumed: int) -> tuple[list[int], int]:
        """Where a rank that consumed ``consumed`` samples resumes: ``(skip, shift)``.

        ``skip[role]`` is how many samples of span ``role`` were delivered. A restarted
        DataLoader begins its round-robin at worker 0, so worker ``w`` must take over
        span ``(w + shift) % workers``, where ``shift`` counts the batches delivered in the
        unfinished round; then the resumed sequence equals the uninterrupted one. (Spans
        with a batch more to go get the lower worker ids, which the DataLoader visits first
        and stops visiting once they are exhausted.) ``consumed`` must fall on a batch
        boundary of the round-robin, as it does when counted by whole batches.
        """
        if not 0 <= consumed <= self.per_rank:
            raise ValueError(f"consumed {consumed} outside 0..{self.per_rank} samples of a rank")
        skip, left, batches = [0] * self.workers, consumed, 0
        for size in self.batch_sizes():  # one round: every worker delivers a batch of `size`
            for w in range(self.workers):
                if left == 0:
                    return skip, batches % self.workers
                if left < size:
                    raise ValueError(f"{consumed} samples is not a whole number of batches of "
                                     f"{self.batch} in the round-robin of {self.workers} workers")
                skip[w] += size
                left -= size
                batches += 1
        return skip, batches % self.workers


def partition(total: int, *, world: int = 1, workers: int = 1, batch: int = 1,
              drop_last: bool = False) -> Partition:
    for name, v in (("world", world), ("workers", workers), ("batch", batch)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    if drop_last:
        per_worker = total // (world * workers * batch) * batch
        if per_worker == 0:
            raise ValueError(f"drop_last: {total} samples do not fill one batch of {batch} for each "
                             f"of {world} ranks x {workers} workers")
    else:
        per_worker = math.ceil(total / (world * workers))
    return Partition(total, world, workers, batch, per_worker)


def interleave(chunks: Sequence[np.ndarray], batch: int) -> np.ndarray:
    """A rank's sequence as a DataLoader delivers it: worker batches round-robin."""
    rounds = max((math.ceil(len(c) / batch) for c in chunks), default=0)
    parts = [c[j * batch:(j + 1) * batch] for j in range(rounds) for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


__all__ = ["Blocks", "EpochOrder", "Partition", "block_layout", "interleave", "partition", "rng"]
