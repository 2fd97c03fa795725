from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from affmodels.gan import grid
from affmodels.gan import (
    TargetSampler,
    discriminator_step_losses,
    frozen,
    generator_step_losses,
    grid_size,
    save_grid,
    target_label,
    to_uint8,
)

from .conftest import C, K, tiny_d, tiny_g


def test_alternating_steps_reduce_the_reconstruction_loss(make_batch):
    """The loop the module docstring describes, on tiny random data, for a few seconds."""
    batch = make_batch(b=8, size=32, seed=0)
    sampler = TargetSampler(
        batch["va"].numpy(), batch["au"].numpy(), batch["au_mask"].numpy(),
        batch["expr"].numpy(), batch["expr_mask"].numpy(), n_classes=C,
        va_mask=batch["va_mask"].numpy(),
    )
    G, D = tiny_g(width=8), tiny_d()
    opt_g = torch.optim.Adam(G.parameters(), lr=3e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)
    fixed = sampler.sample(8, torch.Generator().manual_seed(99))

    def recon() -> float:
        with torch.no_grad():
            cycle = generator_step_losses(G, D.eval(), batch, fixed)[1]["cycle"].item()
        D.train()
        return cycle

    start, t0 = recon(), time.perf_counter()
    for _ in range(25):
        target = sampler.sample(8, g)
        fake = G(batch["image"], target.condition())
        d_loss, d_parts = discriminator_step_losses(D, batch, fake.image)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        with frozen(D):
            g_loss, g_parts = generator_step_losses(G, D, batch, target, fake=fake)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        assert all(torch.isfinite(v) for v in (d_parts | g_parts).values())
    end = recon()
    print(f'cycle L1 {start:.4f} -> {end:.4f}')
    assert end < 0.7 * start, (start, end)
    assert time.perf_counter() - t0 < 30


def test_grid_png_has_the_expected_size_and_pixels(tmp_path):
    g = torch.Generator().manual_seed(0)
    n, h, w = 3, 32, 40
    sources = torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=g)
    generated = [torch.rand(n, 3, h, w, generator=g), torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8)]
    labels = ["Happy v+0.60 a+0.30 AU6 AU12", "Sad"]
    path = tmp_path / "sub" / "grid.png"
    size = save_grid(path, sources, generated, labels, min_cell=1)  # faces at their own size
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[:2] == (size[1], size[0])
    pad = grid.PAD
    assert size[0] == 3 * w + 4 * pad  # source + 2 targets
    header = size[1] - (n * h + (n + 1) * pad) - pad
    assert header >= grid.LINE and size == grid_size(n, 2, h, w, header // grid.LINE)
    assert (img[: header // 2, pad + w + pad : pad + 2 * w + pad] < 128).any()  # label text drawn
    for r in range(n):
        y = size[1] - pad - (n - r) * h - (n - 1 - r) * pad
        cell = lambda c: img[y : y + h, pad + c * (w + pad) : pad + c * (w + pad) + w]  # noqa: E731
        assert np.array_equal(cell(0), sources[r].permute(1, 2, 0).numpy())
        assert np.array_equal(cell(1), to_uint8(generated[0][r]).permute(1, 2, 0).numpy())
        assert np.array_equal(cell(2), generated[1][r].permute(1, 2, 0).numpy())


def test_grid_faces_are_drawn_at_least_128_pixels_with_a_title(tmp_path):
    """A 64-pixel export's faces are enlarged by a whole factor (each pixel a 2x2 block), big
    enough to judge; the title line sits above the column labels."""
    g = torch.Generator().manual_seed(1)
    n, h = 2, 64
    sources = torch.randint(0, 256, (n, 3, h, h), dtype=torch.uint8, generator=g)
    path = tmp_path / "grid.png"
    size = save_grid(path, sources, [sources.clone()], ["Happiness v+0.60 a+0.30 AU6 AU12"], title="step 60")
    assert grid.cell_scale(h) == 2 and grid.cell_scale(112) == 2 and grid.cell_scale(128) == 1
    pad = grid.PAD
    assert size[0] == 2 * 128 + 3 * pad
    img = np.asarray(Image.open(path).convert("RGB"))
    bottom = img[size[1] - pad - 128 : size[1] - pad, pad : pad + 128]  # the last source face
    assert np.array_equal(bottom, np.repeat(np.repeat(sources[-1].permute(1, 2, 0).numpy(), 2, 0), 2, 1))
    assert (img[pad : pad + grid.LINE, pad : 120] < 128).any()  # the title is drawn
    header = size[1] - (n * 128 + (n + 1) * pad) - pad
    assert header >= 2 * grid.LINE  # title + at least one label line


def test_grid_rejects_mismatched_columns(tmp_path):
    s = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="labels"):
        save_grid(tmp_path / "g.png", s, [s], ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        save_grid(tmp_path / "g.png", s, [s[:, :, :4]], ["a"])


def test_target_label_text():
    batch_t = TargetSampler(
        np.array([[0.6, -0.3]]), np.array([[1.0, 0, 0, 1, 0]]), np.ones((1, K), bool),
        np.array([2]), np.ones(1, bool), n_classes=C,
    ).sample(1, torch.Generator())
    assert target_label(batch_t, 0) == "expr2 v+0.60 a-0.30 AU0 AU3"
    names = ["Neutral", "Anger", "Happy", "Sad"]
    aus = ["AU1", "AU2", "AU4", "AU6", "AU12"]
    assert target_label(batch_t, 0, names, aus) == "Happy v+0.60 a-0.30 AU1 AU6"
