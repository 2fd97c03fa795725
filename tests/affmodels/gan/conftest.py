"""Fixtures of the GAN tests: one CPU thread, tiny networks, small batches with gaps."""

from __future__ import annotations

import pytest
import torch

from affmodels.gan import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

torch.set_num_threads(1)  # the test machine's cores are shared

K, C = 5, 4  # AUs, expression classes


def _make_batch(b: int = 8, size: int = 32, seed: int = 0) -> dict:
    """A batch in the dataset's format with every kind of missing label (NaN / -1 there)."""
    g = torch.Generator().manual_seed(seed)
    va_mask = torch.rand(b, generator=g) < 0.6
    au_mask = torch.rand(b, K, generator=g) < 0.6
    expr_mask = torch.rand(b, generator=g) < 0.6
    va_mask[:2], au_mask[0], expr_mask[:2] = True, True, True  # never an empty task
    va_mask[-1], au_mask[-1], expr_mask[-1] = False, False, False  # one frame with nothing
    expr = torch.randint(0, C, (b,), generator=g)
    return {
        "image": torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, generator=g),
        "va": torch.where(va_mask[:, None], torch.rand(b, 2, generator=g) * 2 - 1, float("nan")),
        "va_mask": va_mask,
        "au": torch.where(au_mask, (torch.rand(b, K, generator=g) < 0.4).float(), float("nan")),
        "au_mask": au_mask,
        "expr": torch.where(expr_mask, expr, -1),
        "expr_mask": expr_mask,
    }


@pytest.fixture
def make_batch():
    return _make_batch


def tiny_g(**kw) -> Generator:
    torch.manual_seed(0)
    cfg = dict(n_aus=K, n_classes=C, width=4, n_down=2, n_res=1) | kw
    return Generator(GeneratorConfig(**cfg))


def tiny_d(**kw) -> Discriminator:
    torch.manual_seed(1)
    cfg = dict(n_aus=K, n_classes=C, width=4, n_down=3, grid=2) | kw
    return Discriminator(DiscriminatorConfig(**cfg))
