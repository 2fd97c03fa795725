"""Evaluating a model on an export: every row once, metrics over the whole set.

The stream is read in export order by one process; rows that a stream repeats to even out its
tail are dropped by row id, so each frame counts exactly once. A temporal model reads
overlapping windows (:data:`EVAL_HOP`; :mod:`affmodels.data.windows`): each frame is scored
once, from the first window that holds it, the one where it has the most past, and padding
frames are never scored. Metrics are
:class:`affmodels.metrics.AffectMetrics` over the whole set, never averaged per batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from affmodels.checkpoint import CheckpointError, load_checkpoint, load_model
from affmodels.data import AffectStream, WindowStream, make_loader
from affmodels.data.windows import keep_first, windows_per_batch
from affmodels.metrics import AffectMetrics
from affmodels.model import Predictions


LossFn = Callable[[Predictions, dict[str, Any]], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def score(metrics: dict[str, Any]) -> float:
    """The later ABAW challenges' multi-task score: VA mean CCC + expression macro-F1 + AU mean
    F1 (a task without labels counts 0); what ``best.pt`` is chosen by."""
    total = 0.0
    for key in ("ccc_mean", "expr_f1_macro", "au_f1_mean"):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not math.isnan(value):
            total += float(value)
    return total


def eval_hop(window: int) -> int:
    """Rows between the starts of overlapping evaluation windows of T frames: T // 2, so every
    frame but a track's first T // 2 is scored with at least T // 2 frames of past."""
    return max(1, window // 2)


def eval_stream(path: str | Path, batch_size: int, *, verify: bool = True,
                window: int | None = None) -> AffectStream:
    """The export in its own order, in this process only; ``verify``: see :class:`AffectStream`.
    ``window``: a temporal model's T: overlapping windows of the tracks, batches of about
    ``batch_size`` frames."""
    if window is not None:
        return WindowStream(path, length=window, stride=eval_hop(window), shuffle=False,
                            batch_size=windows_per_batch(batch_size, window), rank=0, world_size=1, verify=verify)
    return AffectStream(path, shuffle=False, batch_size=batch_size, rank=0, world_size=1, verify=verify)


def model_window(model: torch.nn.Module) -> int | None:
    """The T of a temporal model (its windows), None for a frame model."""
    cfg = getattr(model, "cfg", None)
    return cfg.window if getattr(cfg, "temporal", None) else None


def stream_for(model: torch.nn.Module, data: str | Path | AffectStream, batch_size: int, *,
               verify: bool = True) -> AffectStream:
    """``data`` as the stream ``model`` reads: frames, or windows for a temporal model (a frame
    stream given for a temporal model is reopened as windows of the same export)."""
    window = model_window(model)
    if isinstance(data, AffectStream):
        if window is None or (isinstance(data, WindowStream) and data.length == window):
            return data
        return eval_stream(data.manifest.root, batch_size, verify=False, window=window)  # checked when opened
    return eval_stream(data, batch_size, verify=verify, window=window)


@torch.no_grad()
def predictions(model: torch.nn.Module, data: str | Path | AffectStream, *, batch_size: int = 256,
                workers: int = 0, device: torch.device | str = "cpu",
                verify: bool = True) -> Iterator[tuple[Predictions, dict[str, Any]]]:
    """(predictions, batch) for every row of the export once, in export order; ``data`` is an
    export folder or a stream from :func:`eval_stream`."""
    stream = stream_for(model, data, batch_size, verify=verify)
    loader = make_loader(stream, stream.batch_size or batch_size, workers)
    was_training = model.training
    model.eval()
    seen: set[int] = set()
    try:
        for batch in loader:
            keep = keep_first(batch["row"].numpy(), seen)
            if not keep:
                continue
            # the whole batch goes through the model (a temporal one needs whole windows),
            # then the repeats and the padding are dropped
            pred = Predictions(*(t.float().cpu() for t in model(batch["image"].to(device))))
            if len(keep) < len(batch["row"]):
                batch = _select(batch, keep)
                pred = Predictions(*(t[torch.tensor(keep)] for t in pred))
            yield pred, batch
    finally:
        model.train(was_training)


def _select(batch: dict[str, Any], keep: list[int]) -> dict[str, Any]:
    index = torch.tensor(keep)
    return {k: (v[index] if torch.is_tensor(v) else [v[i] for i in keep]) for k, v in batch.items()}


def evaluate_model(model: torch.nn.Module, data: str | Path | AffectStream, *, batch_size: int = 256,
                   workers: int = 0, device: torch.device | str = "cpu", per_video: bool = False,
                   loss_fn: LossFn | None = None, match: VocabularyMatch | None = None,
                   verify: bool = True) -> dict[str, Any]:
    """Metrics over every row once; with ``loss_fn(pred, batch) -> (total, parts)`` (the training
    loss) also ``loss`` (per-batch values averaged over rows) and ``loss_<task>`` (averaged over the
    frames labelled for that task; absent when none is). ``match`` scores a model whose
    vocabulary differs from the export's on what they share."""
    stream = stream_for(model, data, batch_size, verify=verify)
    if match is None:
        metrics = AffectMetrics(list(stream.au_names), list(stream.expressions))
    else:
        metrics = AffectMetrics(match.au_names, match.classes)
    losses: dict[str, tuple[float, int]] = {}  # key -> (sum of batch losses x weight, sum of weights)
    for pred, batch in predictions(model, stream, batch_size=batch_size, workers=workers, device=device):
        if match is not None:
            pred, batch = match.predictions(pred), match.batch(batch)
        metrics.update(pred, batch)
        if loss_fn is not None:
            total, parts = loss_fn(pred, batch)
            labelled = _labelled(batch)
            weights = {"loss": len(pred.va), **{f"loss_{k}": labelled.get(k, len(pred.va)) for k in parts}}
            for key, value in {"loss": total, **{f"loss_{k}": v for k, v in parts.items()}}.items():
                total_w, count = losses.get(key, (0.0, 0))
                losses[key] = (total_w + float(value) * weights[key], count + weights[key])
    result = metrics.compute()
    result["score"] = score(result)
    # a task without a labelled frame has no loss to report (its masked loss is a placeholder 0)
    result.update({key: total_w / count for key, (total_w, count) in losses.items() if count})
    if per_video:
        result["per_video"] = metrics.per_video()
    return result


def _labelled(batch: dict[str, Any]) -> dict[str, int]:
    """Frames of a batch labelled for each task: the weight of its task loss in a mean over a set."""
    return {"va": int(torch.as_tensor(batch["va_mask"]).sum()),
            "au": int(torch.as_tensor(batch["au_mask"]).reshape(len(batch["au_mask"]), -1).any(1).sum()),
            "expr": int(torch.as_tensor(batch["expr_mask"]).sum())}


@dataclass
class VocabularyMatch:
    """What a model and an export share: the AUs (by number) and expression classes (by
    canonical id) both know, as column indices on each side, and the ones only one side has.

    Scoring uses only the shared ones: the model's AU logits and the export's AU labels are cut
    to the shared AUs; expression logits to the shared classes (so the prediction is the most
    likely shared class), and frames labelled with a class the model lacks are left out."""

    au_names: list[str]
    model_au: list[int]
    data_au: list[int]
    classes: list[str]
    model_classes: list[int]
    data_classes: list[int]
    #: ``{"au": {"model": [...], "data": [...]}, "expr": {...}}``: what only one side has
    left_out: dict[str, dict[str, list[str]]]

    @classmethod
    def of(cls, model_vocab: dict[str, list[str]], stream: AffectStream) -> VocabularyMatch:
        from affdata.vocab import au_number, expression_id

        def pairs(mine: list[str], theirs: list[str], key: Any) -> tuple[list[int], list[int], list[str]]:
            index = {key(n): i for i, n in enumerate(mine)}
            shared = [(index[key(n)], j, n) for j, n in enumerate(theirs) if key(n) in index]
            return [m for m, _, _ in shared], [d for _, d, _ in shared], [n for _, _, n in shared]

        m_au, d_au, au = pairs(model_vocab["au_names"], list(stream.au_names), au_number)
        m_ex, d_ex, ex = pairs(model_vocab["expressions"], list(stream.expressions), expression_id)
        left = {
            "au": {"model": [a for i, a in enumerate(model_vocab["au_names"]) if i not in m_au],
                   "data": [a for j, a in enumerate(stream.au_names) if j not in d_au]},
            "expr": {"model": [c for i, c in enumerate(model_vocab["expressions"]) if i not in m_ex],
                     "data": [c for j, c in enumerate(stream.expressions) if j not in d_ex]},
        }
        return cls(au, m_au, d_au, ex, m_ex, d_ex, left)

    @property
    def identity(self) -> bool:
        """Both sides have the same AUs and classes in the same order: nothing to cut or move."""
        return (self.model_au == self.data_au == list(range(len(self.data_au)))
                and self.model_classes == self.data_classes == list(range(len(self.data_classes)))
                and not any(side for task in self.left_out.values() for side in task.values()))

    def predictions(self, pred: Predictions) -> Predictions:
        return Predictions(pred.va, pred.au_logits[:, self.model_au], pred.expr_logits[:, self.model_classes])

    def batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        size = max(self.data_classes, default=-1) + 1
        remap = torch.full((max(size, 1),), -1, dtype=torch.long)  # export class index -> shared index
        remap[self.data_classes] = torch.arange(len(self.data_classes))
        expr = torch.as_tensor(batch["expr"]).long()
        known = (expr >= 0) & (expr < size)
        mapped = torch.where(known, remap[expr.clamp(0, len(remap) - 1)], torch.full_like(expr, -1))
        return {**batch, "au": batch["au"][:, self.data_au], "au_mask": batch["au_mask"][:, self.data_au],
                "expr": mapped, "expr_mask": torch.as_tensor(batch["expr_mask"]).bool() & (mapped >= 0)}


@dataclass
class EvalResult:
    metrics: dict[str, Any]
    per_video: dict[str, dict[str, Any]]
    #: AUs and classes left out of the scores because only the model or only the export has
    #: them (see :class:`VocabularyMatch`); empty lists when the two agree
    left_out: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: which data the figures are on: the export's split name, version and part (from its
    #: manifest), its folder, and whether it is the part the checkpoint was selected on
    #: (``selected_on``: then the figures are optimistic, not a test result)
    data: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``split official v1, part test`` (plus a warning for a selection or training part)."""
        d = self.data
        text = (f"split {d['split']} v{d.get('version')}, part {d['part']}" if d.get("part")
                else "an export without a split part")
        if d.get("trained_on"):
            text += " (the part it was TRAINED on: not a held-out result)"
        elif d.get("selected_on"):
            text += " (the part best.pt was SELECTED on: optimistic, not a test result)"
        return text


def data_part(data: str | Path, state: dict[str, Any], stream: AffectStream) -> dict[str, Any]:
    """Which split part an export holds (its manifest) and how the checkpoint used it."""
    split = dict(stream.manifest.raw.get("split") or {})
    here = Path(data).resolve()
    config = state.get("config") or {}

    def same(path: str | None) -> bool:
        return bool(path) and Path(path).resolve() == here

    return {"path": str(data), "split": split.get("name"), "version": split.get("version"),
            "part": split.get("part"), "trained_on": same(config.get("data")),
            "selected_on": same(config.get("val"))}


def evaluate_checkpoint(checkpoint: str | Path, data: str | Path, *, batch_size: int = 256,
                        workers: int = 0, device: str = "cpu", verify: bool = True) -> EvalResult:
    """A checkpoint's metrics on an export. Where their AU sets or classes differ, the ones
    both have are scored and the others named in ``left_out``."""
    stream = eval_stream(data, batch_size, verify=verify)  # a corrupted export fails before the model loads
    model, state = load_model(checkpoint, device)
    match = VocabularyMatch.of(state["vocabulary"], stream)
    result = evaluate_model(model, stream, batch_size=batch_size, workers=workers, device=device, per_video=True,
                            match=None if match.identity else match)
    per_video = result.pop("per_video")
    return EvalResult(result, per_video, match.left_out, data_part(data, state, stream))
