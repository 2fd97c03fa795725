"""Checkpoints: everything a run needs to continue exactly, or a model needs to predict.

A checkpoint is one ``torch.save`` dict written atomically (temporary file, then rename), so a
run killed while saving leaves the previous checkpoint intact:

``format`` (this module's version), ``kind`` (``multitask`` or ``gan``), ``config`` (the run's
arguments), ``model_config``, ``vocabulary`` (AU names and expression classes, in the order of
the model's outputs), ``model`` (state dict; for a GAN, ``generator`` and ``discriminator``),
``optimizer``/``scheduler`` state, ``step``, ``epoch``, ``loader`` (the data stream's position),
``rng`` (torch CPU and CUDA generator states), ``history`` (per-epoch records), ``best``,
``epoch_totals`` (the running loss sums of a checkpoint taken mid-epoch, else None:
:mod:`affmodels.epoch_totals`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from affdata.hashing import file_sha256
from affmodels.errors import ModelError

if TYPE_CHECKING:
    from affmodels.gan.discriminator import Discriminator
    from affmodels.gan.generator import Generator
    from affmodels.model import MultiTaskNet

CHECKPOINT_FORMAT = 1


class CheckpointError(ModelError, ValueError):
    """A checkpoint that cannot be read or is not an affmodels checkpoint."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several kinds for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path}: not an affmodels checkpoint")
    if state["format"] > CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {state['format']} is newer than this affmodels "
                              f"({CHECKPOINT_FORMAT}); upgrade affmodels")
    return state


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def file_digest(path: Path, length: int = 12) -> str:
    """A short sha256 of a checkpoint file: names the model run that produced predictions."""
    return file_sha256(path)[:length]


def load_model(checkpoint: str | Path, device: torch.device | str = "cpu") -> tuple[MultiTaskNet, dict[str, Any]]:
    """The multi-task network of a checkpoint (for a GAN: its discriminator is not this)."""
    from affmodels.model import ModelConfig, MultiTaskNet

    state = load_checkpoint(Path(checkpoint), map_location=device)
    if state.get("kind") != "multitask":
        raise CheckpointError(f"{checkpoint}: a {state.get('kind')} checkpoint, not a multi-task network")
    cfg = ModelConfig(**{**state["model_config"], "pretrained": None})
    model = MultiTaskNet(cfg)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, state


def load_gan(checkpoint: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, Discriminator, dict[str, Any]]:
    """The generator and discriminator of a GAN checkpoint, in eval mode."""
    from affmodels.gan.discriminator import Discriminator, DiscriminatorConfig
    from affmodels.gan.generator import Generator, GeneratorConfig

    state = load_checkpoint(Path(checkpoint), map_location=device)
    if state.get("kind") != "gan":
        raise CheckpointError(f"{checkpoint}: a {state.get('kind')} checkpoint, not a GAN")
    G = Generator(GeneratorConfig(**state["generator_config"]))
    # checkpoints from before the trunk's GroupNorm say nothing of norm: theirs had none
    D = Discriminator(DiscriminatorConfig(**{"norm": "none", **state["discriminator_config"]}))
    G.load_state_dict(state["generator"])
    D.load_state_dict(state["discriminator"])
    return G.to(device).eval(), D.to(device).eval(), state
