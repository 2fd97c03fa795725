"""Shared fixtures of the model tests: repo root importable, one CPU thread, small batches."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)  # the test machine's cores are shared


def _make_batch(b: int = 8, k: int = 5, c: int = 4, size: int = 32, seed: int = 0) -> dict:
    """A batch in the dataset's format with every kind of missing label."""
    g = torch.Generator().manual_seed(seed)
    va_mask = torch.rand(b, generator=g) < 0.6
    au_mask = torch.rand(b, k, generator=g) < 0.6
    expr_mask = torch.rand(b, generator=g) < 0.6
    va_mask[:2], au_mask[0], expr_mask[:2] = True, True, True  # never an empty task
    expr = torch.randint(0, c, (b,), generator=g)
    return {
        "image": torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, generator=g),
        "va": torch.where(va_mask[:, None], torch.rand(b, 2, generator=g) * 2 - 1, 0.0),
        "va_mask": va_mask,
        "au": torch.where(au_mask, (torch.rand(b, k, generator=g) < 0.4).float(), 0.0),
        "au_mask": au_mask,
        "expr": torch.where(expr_mask, expr, -1),
        "expr_mask": expr_mask,
        "video": [f"v{i % 3}" for i in range(b)],
    }


@pytest.fixture
def make_batch():
    """The batch builder itself, for tests that need several shapes or seeds."""
    return _make_batch


@pytest.fixture
def batch() -> dict:
    return _make_batch()
