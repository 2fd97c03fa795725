"""DiffAugment: shifts move content, cutout blanks one square, gradients pass through."""

from __future__ import annotations

import pytest
import torch

from affmodels.gan.augment import DiffAugment, cut_out, translate


def dot_images(b: int, size: int, y: int, x: int) -> torch.Tensor:
    images = torch.zeros(b, 3, size, size)
    images[:, :, y, x] = 1.0
    return images


def test_translate_moves_each_image_by_one_offset_within_the_range() -> None:
    torch.manual_seed(0)
    size, y, x = 32, 16, 16
    out = translate(dot_images(64, size, y, x), 0.125)
    limit = int(size * 0.125 + 0.5)
    offsets = set()
    for img in out:
        ys, xs = torch.nonzero(img[0], as_tuple=True)
        assert len(ys) == 1 and torch.equal(img[0], img[1]) and torch.equal(img[0], img[2])
        dy, dx = int(ys[0]) - y, int(xs[0]) - x
        assert abs(dy) <= limit and abs(dx) <= limit
        offsets.add((dy, dx))
    assert len(offsets) > 10  # per-image offsets, not one for the batch


def test_translate_brings_in_zeros_at_the_border() -> None:
    torch.manual_seed(1)
    out = translate(torch.ones(32, 3, 16, 16), 0.25)
    zero_rows = (out[:, 0].sum(2) == 0).sum(1)  # whole rows shifted in
    zero_cols = (out[:, 0].sum(1) == 0).sum(1)
    assert torch.all(zero_rows <= 4) and torch.all(zero_cols <= 4) and (zero_rows + zero_cols).sum() > 0
    assert torch.all((out == 0) | (out == 1))


def test_cut_out_blanks_at_most_one_square_of_the_given_side() -> None:
    torch.manual_seed(2)
    out = cut_out(torch.ones(50, 3, 32, 32), 0.25)
    blank = out[:, 0] == 0
    assert torch.all(blank.sum((1, 2)) <= 8 * 8) and blank.sum((1, 2)).max() == 8 * 8
    for img in blank:  # the blank pixels form one axis-aligned rectangle
        ys, xs = torch.nonzero(img, as_tuple=True)
        assert len(ys) == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    assert torch.equal(out[:, 0], out[:, 2])


def test_gradients_pass_through_and_zero_settings_are_the_identity() -> None:
    torch.manual_seed(3)
    images = torch.rand(4, 3, 16, 16, requires_grad=True)
    DiffAugment()(images).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    plain = torch.rand(2, 3, 8, 8)
    assert torch.equal(DiffAugment(shift=0, cutout=0)(plain), plain)
    with pytest.raises(TypeError, match="float"):
        DiffAugment()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
