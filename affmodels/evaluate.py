"""Evaluating a model on an export: every row once, metrics over the whole set.

The stream is read in export order by one process; rows that a stream repeats to even out its
tail are dropped by row id, so each frame counts exactly once. Metrics are
:class:`affmodels.metrics.AffectMetrics` over the whole set, never averaged per batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from affmodels.checkpoint import CheckpointError, load_checkpoint
from affmodels.data import AffectStream, make_loader
from affmodels.metrics import AffectMetrics
from affmodels.model import ModelConfig, MultiTaskNet, Predictions


def score(metrics: dict[str, Any]) -> float:
    """The later ABAW challenges' multi-task score: VA mean CCC + expression macro-F1 + AU mean
    F1 (a task without labels counts 0); what ``best.pt`` is chosen by."""
    total = 0.0
    for key in ("ccc_mean", "expr_f1_macro", "au_f1_mean"):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not math.isnan(value):
            total += float(value)
    return total


def eval_stream(path: str | Path, batch_size: int, *, verify: bool = True) -> AffectStream:
    """The export in its own order, in this process only; ``verify``: see :class:`AffectStream`."""
    return AffectStream(path, shuffle=False, batch_size=batch_size, rank=0, world_size=1, verify=verify)


@torch.no_grad()
def predictions(model: torch.nn.Module, data: str | Path | AffectStream, *, batch_size: int = 256,
                workers: int = 0, device: torch.device | str = "cpu",
                verify: bool = True) -> Iterator[tuple[Predictions, dict[str, Any]]]:
    """(predictions, batch) for every row of the export once, in export order; ``data`` is an
    export folder or a stream from :func:`eval_stream`."""
    stream = data if isinstance(data, AffectStream) else eval_stream(data, batch_size, verify=verify)
    loader = make_loader(stream, batch_size, workers)
    was_training = model.training
    model.eval()
    seen: set[int] = set()
    try:
        for batch in loader:
            rows = batch["row"].tolist()
            keep = [i for i, r in enumerate(rows) if r not in seen]
            seen.update(rows)
            if not keep:
                continue
            if len(keep) < len(rows):
                batch = _select(batch, keep)
            pred = model(batch["image"].to(device))
            yield Predictions(*(t.float().cpu() for t in pred)), batch
    finally:
        model.train(was_training)


def _select(batch: dict[str, Any], keep: list[int]) -> dict[str, Any]:
    index = torch.tensor(keep)
    return {k: (v[index] if torch.is_tensor(v) else [v[i] for i in keep]) for k, v in batch.items()}


def evaluate_model(model: torch.nn.Module, data: str | Path | AffectStream, *, batch_size: int = 256,
                   workers: int = 0, device: torch.device | str = "cpu", per_video: bool = False,
                   verify: bool = True) -> dict[str, Any]:
    stream = data if isinstance(data, AffectStream) else eval_stream(data, batch_size, verify=verify)
    metrics = AffectMetrics(list(stream.au_names), list(stream.expressions))
    for pred, batch in predictions(model, stream, batch_size=batch_size, workers=workers, device=device):
        metrics.update(pred, batch)
    result = metrics.compute()
    result["score"] = score(result)
    if per_video:
        result["per_video"] = metrics.per_video()
    return result


def load_model(checkpoint: str | Path, device: torch.device | str = "cpu") -> tuple[MultiTaskNet, dict[str, Any]]:
    """The multi-task network of a checkpoint (for a GAN: its discriminator is not this)."""
    state = load_checkpoint(Path(checkpoint), map_location=device)
    if state.get("kind") != "multitask":
        raise CheckpointError(f"{checkpoint}: a {state.get('kind')} checkpoint, not a multi-task network")
    cfg = ModelConfig(**{**state["model_config"], "pretrained": None})
    model = MultiTaskNet(cfg)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, state


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    per_video: dict[str, dict[str, Any]]


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, *, batch_size: int = 256,
                        workers: int = 0, device: str = "cpu", verify: bool = True) -> EvalResult:
    stream = eval_stream(data, batch_size, verify=verify)  # a corrupted export fails before the model loads
    model, state = load_model(checkpoint, device)
    want = (list(stream.au_names), list(stream.expressions))
    have = (state["vocabulary"]["au_names"], state["vocabulary"]["expressions"])
    if want != have:
        raise CheckpointError(f"{checkpoint} predicts AUs {have[0]} and classes {have[1]}, but {data} has "
                              f"AUs {want[0]} and classes {want[1]}")
    result = evaluate_model(model, stream, batch_size=batch_size, workers=workers, device=device, per_video=True)
    per_video = result.pop("per_video")
    return EvalResult(result, per_video)
