"""The batch contract (affmodels.losses): allocation, filling from blocks, and collation.

``image`` uint8 (B, 3, H, W) -- a channels_last view of NHWC storage, so decoding writes
pixels in place and the model's channels_last conversion is free; ``va`` float32 (B, 2),
``va_mask`` bool (B,), ``au`` float32 (B, K), ``au_mask`` bool (B, K), ``expr`` int64 (B,)
(-1 where missing), ``expr_mask`` bool (B,); ids: ``video`` / ``track`` list[str], ``frame``,
``row`` (global row index in the export) and ``position`` (place in the epoch's sequence: the
key of the sample's augmentation, see :meth:`affmodels.data.augment.Augment.apply_torch`) int64
(B,). Inside a DataLoader worker the image storage is allocated in shared memory up front (or
reused: :mod:`affmodels.data.handover`), so handing the batch over copies nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from affmodels.data.reader import Block

LABELS = ("va", "va_mask", "au", "au_mask", "expr", "expr_mask", "frame", "row", "position")


def empty_uint8(shape: tuple[int, ...], shared: bool) -> Tensor:
    if shared:
        try:  # what default_collate does: allocate in shared memory instead of copying there later
            storage = torch.UntypedStorage._new_shared(int(np.prod(shape)))
            return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)
        except (AttributeError, RuntimeError):
            return torch.empty(shape, dtype=torch.uint8).share_memory_()
    return torch.empty(shape, dtype=torch.uint8)


def empty_batch(n: int, size: int, k: int, *, shared: bool | None = None,
                image: Tensor | None = None) -> dict[str, Any]:
    """An unfilled batch of ``n`` samples; ``shared`` defaults to "inside a DataLoader worker";
    ``image``: an (n, size, size, 3) uint8 buffer to decode into instead of a new one."""
    shared = get_worker_info() is not None if shared is None else shared
    nhwc = empty_uint8((n, size, size, 3), shared) if image is None else image
    return {
        "image": nhwc.permute(0, 3, 1, 2),
        "va": torch.empty((n, 2), dtype=torch.float32),
        "va_mask": torch.empty(n, dtype=torch.bool),
        "au": torch.empty((n, k), dtype=torch.float32),
        "au_mask": torch.empty((n, k), dtype=torch.bool),
        "expr": torch.empty(n, dtype=torch.int64),
        "expr_mask": torch.empty(n, dtype=torch.bool),
        "frame": torch.empty(n, dtype=torch.int64),
        "row": torch.empty(n, dtype=torch.int64),
        "position": torch.empty(n, dtype=torch.int64),
        "video": [""] * n,
        "track": [""] * n,
    }


def pixels(batch: Mapping[str, Any]) -> np.ndarray:
    """The (B, H, W, 3) numpy view of a batch's image storage, to decode into."""
    return batch["image"].permute(0, 2, 3, 1).numpy()


def fill_labels(batch: dict[str, Any], at: int, block: Block, index: np.ndarray, positions: np.ndarray) -> None:
    """Write ``block``'s rows ``index`` (at sequence ``positions``) into slots ``at:at + len(index)``."""
    sl = slice(at, at + len(index))
    for key in LABELS[:-2]:
        batch[key].numpy()[sl] = getattr(block, key)[index]
    batch["row"].numpy()[sl] = block.rows[index]
    batch["position"].numpy()[sl] = positions
    batch["video"][sl] = block.video[index].tolist()
    batch["track"][sl] = block.track[index].tolist()


def sample_from(block: Block, j: int, image: np.ndarray, position: int) -> dict[str, Any]:
    """One sample (per-sample mode): tensors of the batch contract without the batch axis."""
    return {
        "image": torch.from_numpy(image).permute(2, 0, 1),
        "va": torch.from_numpy(block.va[j].copy()),
        "va_mask": torch.tensor(bool(block.va_mask[j])),
        "au": torch.from_numpy(block.au[j].copy()),
        "au_mask": torch.from_numpy(block.au_mask[j].copy()),
        "expr": torch.tensor(int(block.expr[j])),
        "expr_mask": torch.tensor(bool(block.expr_mask[j])),
        "frame": torch.tensor(int(block.frame[j])),
        "row": torch.tensor(int(block.rows[j])),
        "position": torch.tensor(int(position)),
        "video": str(block.video[j]),
        "track": str(block.track[j]),
    }


def collate_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Samples (per-sample mode) -> one batch in the contract's form (DataLoader collate_fn)."""
    if not samples:
        raise ValueError("collate: no samples")
    _, h, w = samples[0]["image"].shape
    if h != w:
        raise ValueError(f"collate: images must be square, got {h}x{w}")
    batch = empty_batch(len(samples), h, samples[0]["au"].shape[0])
    px = pixels(batch)
    for i, s in enumerate(samples):
        px[i] = s["image"].permute(1, 2, 0).numpy()
    for key in LABELS:
        torch.stack([s[key] for s in samples], out=batch[key])
    batch["video"] = [s["video"] for s in samples]
    batch["track"] = [s["track"] for s in samples]
    return batch


__all__ = ["LABELS", "collate_samples", "empty_batch", "empty_uint8", "fill_labels", "pixels", "sample_from"]
