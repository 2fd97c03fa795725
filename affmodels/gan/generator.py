"""Conditional generator: a face and a target affect in, the same person showing it out.

StarGAN / GANimation layout. The target is a conditioning vector
``c = [valence, arousal, au_1..au_K, onehot_1..onehot_C]`` (``2 + K + C`` floats; see
:func:`affmodels.gan.targets.encode_target`), tiled over the image and concatenated to it as
extra input channels, then encoder (stride-2 convs) -> residual blocks -> decoder
(nearest upsampling + conv, which avoids the checkerboard of transposed convs).

Attention (GANimation): the decoder predicts a colour image ``C`` and a per-pixel mask
``A`` in [0, 1], and the output is ``A * x + (1 - A) * C``. Where ``A = 1`` the input pixel is
copied exactly, so hair, background and the identity-bearing texture are kept rather than
redrawn by a decoder small enough for a CPU (which would blur them); G only has to paint
the regions an expression moves (brows, eyes, mouth). Left alone the mask saturates at 1
(copying is a perfect cycle), hence the mask regularisers in :mod:`affmodels.gan.losses`.
``attention=False`` gives a plain StarGAN generator (output = ``C``).

InstanceNorm, not BatchNorm: the edit of one face must not depend on the rest of the batch.
Inputs are uint8 (B, 3, H, W) or float in [0, 1], like :class:`affmodels.MultiTaskNet`;
outputs are float in [0, 1] (:func:`to_uint8` for PNGs / the data pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from affmodels.model import Normalize


@dataclass
class GeneratorConfig:
    """Everything needed to rebuild a generator; store it next to the weights."""

    n_aus: int = 12
    n_classes: int = 8
    width: int = 16  # channels at full resolution; the bottleneck has width * 2**n_down
    n_down: int = 3  # stride-2 stages; the image side must be divisible by 2**n_down
    n_res: int = 4  # residual blocks at the bottleneck
    attention: bool = True  # GANimation colour + mask output (see module docstring)
    mask_bias: float = 1.0  # initial mask logit: A = sigmoid(1) ~ 0.73, i.e. start close to a copy
    channels_last: bool = True  # NHWC activations and weights: ~1.4x faster steps on a CPU

    def __post_init__(self) -> None:
        if self.n_aus < 0 or self.n_classes < 0:
            raise ValueError(f"n_aus and n_classes must be >= 0, got {self.n_aus}, {self.n_classes}")
        if self.width < 1 or self.n_down < 0 or self.n_res < 0:
            raise ValueError("width must be >= 1, n_down and n_res >= 0")

    @property
    def cond_dim(self) -> int:
        return 2 + self.n_aus + self.n_classes


class Generated(NamedTuple):
    """Generator outputs, all float in [0, 1]."""

    image: Tensor  # (B, 3, H, W) the edited face
    mask: Tensor | None  # (B, 1, H, W) A: 1 = input pixel kept; None without attention
    color: Tensor  # (B, 3, H, W) C: what the changed pixels are painted with


def to_float01(images: Tensor) -> Tensor:
    """uint8 -> float in [0, 1]; float images are taken to be in [0, 1] already."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise TypeError(f"expected uint8 or float images, got {images.dtype}")
    return images


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [0, 1] -> uint8 (rounded, clamped, detached)."""
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8)


class ConvINAct(nn.Sequential):
    """conv (no bias, IN follows) + affine InstanceNorm + optional ReLU."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, act: bool = True
    ) -> None:
        pad = (kernel - stride + 1) // 2  # 'same' for odd kernels, exact halving for 4x4/s2
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, pad, bias=False),
            nn.InstanceNorm2d(c_out, affine=True),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvINAct(c, c), ConvINAct(c, c, act=False))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """``forward(images, cond) -> Generated``; ``cond`` is (B, 2 + K + C), see module doc."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.normalize = Normalize((0.5,) * 3, (0.5,) * 3, cfg.channels_last)  # -> [-1, 1]
        c = cfg.width
        # 3x3 stem: a 7x7 one on the 3 + 2 + K + C input channels would cost as much as all
        # the residual blocks together; the receptive field comes from the downsampling
        layers: list[nn.Module] = [ConvINAct(3 + cfg.cond_dim, c)]
        for _ in range(cfg.n_down):
            layers.append(ConvINAct(c, 2 * c, kernel=4, stride=2))
            c *= 2
        layers += [ResBlock(c) for _ in range(cfg.n_res)]
        for _ in range(cfg.n_down):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), ConvINAct(c, c // 2)]
            c //= 2
        self.body = nn.Sequential(*layers)
        self.to_color = nn.Conv2d(c, 3, 7, padding=3)
        self.to_mask = nn.Conv2d(c, 1, 7, padding=3) if cfg.attention else None
        if self.to_mask is not None:
            nn.init.normal_(self.to_mask.weight, std=1e-3)  # A starts ~uniform at sigmoid(bias)
            nn.init.constant_(self.to_mask.bias, cfg.mask_bias)
        if cfg.channels_last:  # NHWC weights too: ~1.4x faster on a CPU than NHWC inputs alone
            self.to(memory_format=torch.channels_last)

    def forward(self, images: Tensor, cond: Tensor) -> Generated:
        b, _, h, w = images.shape
        step = 2**self.cfg.n_down
        if h % step or w % step:
            raise ValueError(f"image size {h}x{w} is not divisible by 2**n_down = {step}")
        if cond.shape != (b, self.cfg.cond_dim):
            raise ValueError(
                f"cond must be (B, 2 + n_aus + n_classes) = ({b}, {self.cfg.cond_dim}), "
                f"got {tuple(cond.shape)}"
            )
        x01 = to_float01(images)
        x = self.normalize(x01)
        tiled = cond.to(x.dtype)[:, :, None, None].expand(-1, -1, h, w)
        inp = torch.cat([x, tiled], 1)
        if self.cfg.channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        feats = self.body(inp)
        color = (torch.tanh(self.to_color(feats)) + 1) / 2
        if self.to_mask is None:
            return Generated(color, None, color)
        mask = torch.sigmoid(self.to_mask(feats))
        return Generated(mask * x01 + (1 - mask) * color, mask, color)


__all__ = [
    "ConvINAct",
    "Generated",
    "Generator",
    "GeneratorConfig",
    "ResBlock",
    "to_float01",
    "to_uint8",
]
