"""How a training step runs on its device: mixed precision, optimiser kernel, compilation, and
where the augmentation happens.

Each option defaults by device ("auto"): on CUDA, bf16 autocast for the VGG trunk (an earlier
session's H200 run, benchmarks/results/2026-11-28-h200-train-step.json: 10.8k samples/s against
6.0k in fp32 at 112 px; the compact CNN is launch-bound there, 26.8k against 29.6k, so it stays
in fp32), the fused AdamW kernel, augmentation on the GPU (it cost the loader's workers about
as much as decoding, see docs/models.md), and pinned host memory; on a CPU none of them. ``torch.compile`` is off unless asked for: it costs
a minute of compilation per run and was not measured to pay here. The network already runs
channels-last (``ModelConfig.channels_last``). Losses are always computed in float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from affmodels.data.augment import Augment
from affmodels.model import Predictions

AMP = ("auto", "bf16", "off")
AUGMENT_ON = ("auto", "loader", "device")


@dataclass(frozen=True)
class StepOptions:
    device: torch.device
    bf16: bool
    fused: bool
    compile: bool
    augment_on_device: bool
    pin_memory: bool


def step_options(device: torch.device, *, amp: str = "auto", fused: bool | None = None,
                 compile: bool = False, augment_on: str = "auto", trunk: str = "cnn") -> StepOptions:
    """Resolve the "auto" choices for ``device`` and the network's ``trunk`` (see the module
    docstring)."""
    if amp not in AMP:
        raise ValueError(f"amp must be one of {', '.join(AMP)}, got {amp!r}")
    if augment_on not in AUGMENT_ON:
        raise ValueError(f"augment_on must be one of {', '.join(AUGMENT_ON)}, got {augment_on!r}")
    cuda = device.type == "cuda"
    bf16 = amp == "bf16" or (amp == "auto" and cuda and trunk == "vgg" and torch.cuda.is_bf16_supported())
    return StepOptions(device=device, bf16=bf16, fused=cuda if fused is None else fused, compile=compile,
                       augment_on_device=augment_on == "device" or (augment_on == "auto" and cuda),
                       pin_memory=cuda)


def optimizer(params: Iterable[Tensor], opts: StepOptions, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; one fused kernel for all parameters where ``opts.fused`` (CUDA, and CPU in torch >= 2.4)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True if opts.fused else None)


def autocast(opts: StepOptions) -> contextlib.AbstractContextManager:
    if not opts.bf16:
        return contextlib.nullcontext()
    return torch.autocast(opts.device.type, dtype=torch.bfloat16)


def float32(pred: Predictions) -> Predictions:
    """Predictions in float32, for the losses and metrics (a no-op without autocast)."""
    return Predictions(*(t.float() for t in pred))


def compiled(net: torch.nn.Module, opts: StepOptions) -> torch.nn.Module:
    return torch.compile(net) if opts.compile else net


def to_device(batch: Mapping[str, Any], opts: StepOptions, augment: Augment | None, *, seed: int,
              epoch: int) -> dict[str, Any]:
    """The batch's tensors on the device (asynchronously from pinned memory), then, where
    augmentation runs on the device, the images augmented there exactly as the loader would have."""
    out = {k: (v.to(opts.device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}
    if augment is not None:
        out["image"] = augment.apply_torch(out["image"], seed, epoch, batch["position"])
    return out


__all__ = ["AMP", "AUGMENT_ON", "StepOptions", "autocast", "compiled", "float32", "optimizer",
           "step_options", "to_device"]
