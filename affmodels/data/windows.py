"""``WindowStream``: windows of T consecutive rows of one face track, for the temporal model.

The export is written in track order (docs/export-format.md: rows sorted by video, track,
frame; one track's rows contiguous), so a window is a run of T consecutive rows and needs no
format change. The stream reuses :class:`~affmodels.data.dataset.AffectStream`'s machinery with
one change of unit: a *sample* is a window, named by the global row of its first frame (its
*anchor*). The epoch's order is :class:`~affmodels.data.order.EpochOrder` with a multiplicity of
1 on each anchor row and 0 elsewhere, so the order of windows is the same pure function of
(seed, epoch) as the frame order (blocks permuted, then anchors shuffled within groups of
``window`` row groups), cut by the same :class:`~affmodels.data.order.Partition` (equal windows
per rank, padding by repetition at the tail), and resumed by the same count of windows
consumed. Whatever the number of ranks or workers, the sequence of windows is one and the same.

Choices:

* **Segments.** Windows never cross a track: a segment is a maximal run of rows of one
  (video, track). Rows are the *labelled* frames of a track (unless the export was made with
  ``--include-unlabelled``); a hole of up to ``max_gap`` missing frame numbers inside a track
  does not split it (the GRU then sees the frames on either side as neighbours), a larger hole
  does.
* **Anchors.** Training: a window every ``stride`` rows from each segment's start (default
  ``stride = T``: every frame once per epoch). Evaluation and prediction: ``stride < T``
  (overlapping windows, see :func:`keep_first`); windows are added until the segment's last row
  is covered.
* **Short tracks and tails: padded, not dropped.** A window that runs past its segment's end is
  padded with copies of the segment's last real frame, all of whose labels are masked
  (``va_mask``, ``au_mask``, ``expr_mask`` false, ``expr`` -1) and whose ``row`` is -1. The
  masked losses then take nothing from them, and the GRU is causal, so appended frames cannot
  change the real frames' predictions. Copies of a real frame rather than black images keep
  the trunk's BatchNorm statistics close to those of real faces. Dropping would lose every
  track shorter than T, and prediction must cover every frame.

Batches are flat frame batches of the ordinary batch contract (:mod:`affmodels.data.collate`)
holding ``batch_size`` whole windows, window after window: ``batch_size * T`` frames, so the
trainer, the device-side augmentation, the losses and the metrics work on frames unchanged.
``position`` of every frame of a window is the window's position in the epoch's sequence, so
the augmentation (keyed by position) is the same on every frame of a window: a window is one
consistent clip. :class:`~affmodels.data.loader.StreamLoader` counts windows
(``len(row) // frames_per_sample``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import get_worker_info

from affmodels.data.balance import TASKS, balanced_counts, check_weights
from affmodels.data.collate import empty_batch, fill_labels, pixels
from affmodels.data.dataset import AffectStream
from affmodels.data.errors import ResumeError
from affmodels.data.handover import SlotPool, pack
from affmodels.data.manifest import Manifest
from affmodels.data.order import EpochOrder
from affmodels.data.reader import Block, ShardReader, concat_blocks
from affmodels.data.state import MAX_WORKERS
from affmodels.errors import ConfigError

#: a hole of more missing frame numbers than this inside a track starts a new segment
MAX_GAP = 25


def track_segments(manifest: Manifest, max_gap: int = MAX_GAP) -> np.ndarray:
    """(n + 1,) int64 boundaries of the export's segments: segment ``i`` is rows
    ``bounds[i]:bounds[i + 1]``, one (video, track), no hole of more than ``max_gap`` frames."""
    reader = ShardReader(manifest)
    video, track, frame = [], [], []
    try:
        for s in range(len(manifest.shards)):
            t = reader._file(s).read(columns=["video", "track", "frame"], use_threads=False)
            video.append(t["video"].to_numpy(zero_copy_only=False))
            track.append(t["track"].to_numpy(zero_copy_only=False))
            frame.append(t["frame"].to_numpy().astype(np.int64))
    finally:
        reader.close()
    v, tr, f = np.concatenate(video), np.concatenate(track), np.concatenate(frame)
    step = np.diff(f)
    new = (v[1:] != v[:-1]) | (tr[1:] != tr[:-1]) | (step < 1) | (step > max_gap + 1)
    return np.concatenate([[0], np.flatnonzero(new) + 1, [len(f)]]).astype(np.int64)


def window_anchors(bounds: np.ndarray, length: int, stride: int) -> np.ndarray:
    """First rows of the windows: every ``stride`` rows from each segment's start, until the
    segment's last row is in a window (with ``stride <= length`` every row is)."""
    out = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        # k-th window starts at a + k*stride; the last one needed is the first reaching b
        n = 1 + max(0, -(-(b - a - length) // stride))
        out.append(a + stride * np.arange(n, dtype=np.int64))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def keep_first(rows: np.ndarray, seen: set[int]) -> list[int]:
    """Indices of the frames of a batch to score: real (``row >= 0``) and not seen before.

    With overlapping windows read in export order, a frame's first occurrence is in the
    earliest window holding it: the one where the causal GRU has seen most of its past."""
    keep = []
    for i, r in enumerate(rows.tolist()):
        if r >= 0 and r not in seen:
            seen.add(r)
            keep.append(i)
    return keep


class WindowStream(AffectStream):
    """Windows of ``length`` (T) rows of one track, as flat batches of ``batch_size`` windows.

    ``stride``: rows between the starts of consecutive windows of a segment (default T: no
    overlap). ``balance``: task weights as for :class:`AffectStream`, drawn over windows (a
    window carries a task if any of its real frames does). Every other argument as
    :class:`AffectStream`; ``batch_size`` (in windows) is required: the stream batches itself.
    """

    def __init__(self, path: str | Path, *, length: int, stride: int | None = None, max_gap: int = MAX_GAP,
                 batch_size: int, balance: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        if not isinstance(length, int) or length < 1:
            raise ConfigError(f"window length must be an int >= 1, got {length!r}")
        stride = length if stride is None else stride
        if not isinstance(stride, int) or not 1 <= stride <= length:
            raise ConfigError(f"window stride must be an int in 1..{length} (the length), got {stride!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"a WindowStream batches itself: batch_size (windows) must be an int >= 1, "
                              f"got {batch_size!r}")
        super().__init__(path, batch_size=batch_size, **kwargs)
        self.length, self.stride, self.max_gap = length, stride, max_gap
        self.bounds = track_segments(self.manifest, max_gap)
        self.anchors = window_anchors(self.bounds, length, stride)
        seg = np.searchsorted(self.bounds, self.anchors, side="right") - 1
        self._end = np.zeros(self.blocks.rows, np.int64)  # per anchor row: its segment's end
        self._end[self.anchors] = self.bounds[seg + 1]
        self.balance = None if balance is None else check_weights(balance)
        self._window_has: dict[str, np.ndarray] | None = None
        if self.balance is not None:
            reader = ShardReader(self.manifest)
            has = reader.read_task_masks()
            reader.close()
            # window i carries task t if any of rows anchors[i] .. min(anchor + T, end) - 1 does
            self._window_has = {}
            for t in TASKS:
                csum = np.concatenate([[0], np.cumsum(has[t])])
                stop = np.minimum(self.anchors + length, self._end[self.anchors])
                self._window_has[t] = (csum[stop] - csum[self.anchors]) > 0
            empty = [t for t in TASKS if self.balance[t] > 0 and not self._window_has[t].any()]
            if empty:
                raise ConfigError(f"balance: weight > 0 for {', '.join(empty)} but no row of "
                                  f"{self.manifest.root} has that label; set its weight to 0")

    @property
    def frames_per_sample(self) -> int:
        return self.length

    @property
    def windows(self) -> int:
        """Windows in one pass over the export (before balancing and padding)."""
        return len(self.anchors)

    def epoch_order(self, epoch: int | None = None) -> EpochOrder:
        """The epoch's sequence of windows (anchor rows), cached for the current epoch."""
        epoch = self.epoch if epoch is None else epoch
        if self._order is not None and self._order.epoch == epoch:
            return self._order
        counts = np.zeros(self.blocks.rows, np.int64)
        if self._window_has is not None and self.balance is not None:
            counts[self.anchors] = balanced_counts(self._window_has, self.balance, seed=self.seed, epoch=epoch)
        else:
            counts[self.anchors] = 1
        self._order = EpochOrder(self.blocks, seed=self.seed, epoch=epoch, shuffle=self.shuffle,
                                 window=self.window, counts=counts)
        return self._order

    # ------------------------------------------------------------------- resume

    def state_dict(self, consumed: int | None = None, workers: int = 1) -> dict[str, Any]:
        return {**super().state_dict(consumed, workers), "length": self.length, "stride": self.stride}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for key in ("length", "stride"):
            if key in state and int(state[key]) != getattr(self, key):
                raise ResumeError(f"state_dict was saved with window {key} {state[key]}, this stream has "
                                  f"{getattr(self, key)}: its samples are other windows")
        super().load_state_dict(state)

    # ------------------------------------------------------------------- iteration

    def _slots(self) -> SlotPool | None:
        info = get_worker_info()
        if info is None or not self._state.handover or info.id >= MAX_WORKERS:
            return None
        if self._pool is None:
            self._pool = SlotPool(self._state, info.id, self.batch_size * self.length, self.image_size)
        return self._pool

    def _frames(self, order: EpochOrder, start: int, stop: int) -> Iterator[tuple[int, np.ndarray, np.ndarray, Block]]:
        """``(position, local (n, T), real (n, T), block)`` for each piece of the span: the
        frames of its windows as indices into ``block`` (padding points at the last real frame)."""
        worker = get_worker_info() is not None
        if worker:
            if self._reader is None:
                self._reader = ShardReader(self.manifest)
            reader = self._reader
        else:
            reader = ShardReader(self.manifest)
        b, steps = self.blocks, np.arange(self.length, dtype=np.int64)
        held: dict[int, Block] = {}
        try:
            for pos, anchors in order.segments(start, stop):
                end = self._end[anchors][:, None]
                grid = anchors[:, None] + steps
                real = grid < end
                grid = np.minimum(grid, end - 1)
                ids = np.unique(np.searchsorted(b.start, np.unique(grid), side="right") - 1)
                held = {i: held[i] for i in ids if i in held}
                for i in ids:
                    if i not in held:
                        held[i] = reader.read(int(b.shard[i]), int(b.group[i]), int(b.start[i]), int(b.length[i]))
                win = concat_blocks([held[i] for i in ids])
                yield pos, np.searchsorted(win.rows, grid), real, win
        finally:
            if not worker:
                reader.close()

    def _batches(self, order: EpochOrder, start: int, stop: int) -> Iterator[dict[str, Any]]:
        bs, T, size, k = self.batch_size, self.length, self.image_size, self.n_aus
        pool = self._slots()
        batch: dict[str, Any] | None = None
        lease = None
        filled = n = 0
        for pos, local, real, win in self._frames(order, start, stop):
            i = 0
            while i < len(local):
                if batch is None:
                    n = min(bs, stop - (pos + i))
                    image, lease = pool.take(n * T) if pool is not None else (None, None)
                    batch, filled = empty_batch(n * T, size, k, image=image), 0
                take = min(n - filled, len(local) - i)
                idx, ok = local[i:i + take].reshape(-1), real[i:i + take].reshape(-1)
                at = filled * T
                fill_labels(batch, at, win, idx, np.repeat(np.arange(pos + i, pos + i + take), T))
                self._decode(win, idx, pixels(batch)[at:at + take * T])
                _mask_padding(batch, at, ok)
                filled, i = filled + take, i + take
                if filled == n:
                    if self.augment is not None:  # one draw per window: positions repeat within it
                        self.augment.apply(pixels(batch), self.seed, order.epoch, batch["position"].numpy())
                    yield pack(batch, lease) if pool is not None else batch
                    batch = None

    def _samples(self, order: EpochOrder, start: int, stop: int) -> Iterator[dict[str, Any]]:
        raise ConfigError("a WindowStream batches itself; per-sample mode is not supported")


def _mask_padding(batch: dict[str, Any], at: int, real: np.ndarray) -> None:
    """Slots ``at + j`` with ``real[j]`` false are padding: no label, no row."""
    pad = at + np.flatnonzero(~real)
    if not len(pad):
        return
    for key, value in (("va", 0.0), ("va_mask", False), ("au", 0.0), ("au_mask", False), ("expr", -1),
                       ("expr_mask", False), ("row", -1)):
        batch[key].numpy()[pad] = value


def windows_per_batch(frames: int, length: int) -> int:
    """Windows in a batch of about ``frames`` frames (at least one): what ``--batch-size`` means
    for the temporal model, so a step costs about as much as the frame model's."""
    return max(1, frames // length)


__all__ = ["MAX_GAP", "WindowStream", "keep_first", "track_segments", "window_anchors", "windows_per_batch"]
