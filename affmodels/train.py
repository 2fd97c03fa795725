"""Training the multi-task network on an export: the loop, reading top to bottom.

One run = one output folder: ``last.pt`` (saved every epoch and every ``checkpoint_every``
steps), ``best.pt`` (best validation score: the later ABAW challenges' sum of VA mean CCC,
expression macro-F1 and AU mean F1), ``metrics.jsonl`` (one JSON record per epoch),
``curves.png``. ``resume=True`` continues from ``last.pt`` exactly: model, optimiser, schedule,
RNG and the data stream's position are restored, so the next step is the step an uninterrupted
run would have taken. Under ``torchrun`` each process trains on its share of every batch
(DistributedDataParallel; gloo on the CPU, NCCL on GPUs) and rank 0 evaluates and writes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from affmodels import distributed
from affmodels.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
)
from affmodels.curves import plot_curves
from affmodels.data import AffectStream, Augment, WindowStream, loss_weights, make_loader
from affmodels.data.windows import windows_per_batch
from affmodels.epoch_totals import EpochTotals
from affmodels.evaluate import eval_stream, evaluate_model, score
from affmodels.losses import LossWeights, Relations, multitask_loss
from affmodels.model import ModelConfig, MultiTaskNet, parse_kind
from affmodels.runs import append_record, check_run_folder, epoch_batches
from affmodels.step import autocast, compiled, float32, step_options, to_device
from affmodels.step import optimizer as make_optimizer

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class TrainConfig:
    """A training run's arguments; stored in every checkpoint."""

    data: str
    out: str
    val: str | None = None
    #: "cnn", "vgg" (frame models) or "cnn-gru", "vgg-gru" (temporal: affmodels.data.windows)
    model: str = "cnn"
    #: temporal models: frames per window (T) and the GRU's state size; batch_size stays in
    #: frames (batch_size // window windows a step)
    window: int = 16
    gru_hidden: int = 128
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    workers: int = 2
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    #: VA, AU, expression loss weights (the paper weighs the tasks equally)
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: AU positive weights and expression class weights from the manifest's frequencies
    pos_weight: bool = True
    class_weight: bool = False
    #: task-balanced sampling weights (va, au, expr), or None for one pass over the rows
    balance: tuple[float, float, float] | None = None
    augment: bool = True
    #: the AU-expression relation losses (soft co-annotation both ways, distribution matching)
    relations: bool = False
    #: their weights: co-annotation of AUs, of expressions, distribution matching
    relation_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pretrained: str | None = None
    #: layout and input convention of that file: None (ours), "torchvision", "vggface"
    pretrained_format: str | None = None
    width: int | None = None
    checkpoint_every: int = 0
    #: stop after this many steps in all (for tests and smoke runs); None = all epochs
    max_steps: int | None = None
    resume: bool = False
    #: check each shard of --data and --val against the manifest's sha256 (once per file version)
    verify: bool = True
    #: the step on its device (affmodels.step): "auto" | "bf16" | "off"; fused AdamW (None: on
    #: CUDA); torch.compile; augmentation in the "loader" or on the "device" ("auto": on CUDA)
    amp: str = "auto"
    fused: bool | None = None
    compile: bool = False
    augment_on: str = "auto"
    #: NHWC activations (ModelConfig.channels_last)
    channels_last: bool = True


@dataclass
class EpochRecord:
    """One line of ``metrics.jsonl``: ``epoch`` counts from 1 (the epoch just finished); ``train``
    the mean losses over its steps; ``val`` the metrics on ``--val`` (with its loss as ``loss``
    and ``loss_va``, ``loss_au``, ``loss_expr``)."""

    epoch: int
    step: int
    lr: float
    train: dict[str, float]
    val: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    samples_per_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    out: Path
    history: list[EpochRecord]
    best_score: float | None
    steps: int
    stopped_early: bool


def _stream(path: str, cfg: TrainConfig, train: bool, augment: Augment | None = None) -> AffectStream:
    balance = dict(zip(("va", "au", "expr"), cfg.balance)) if (train and cfg.balance) else None
    if parse_kind(cfg.model)[1] is not None:  # windows of one track, every frame once per epoch
        return WindowStream(path, length=cfg.window, seed=cfg.seed, shuffle=train,
                            batch_size=windows_per_batch(cfg.batch_size, cfg.window),
                            augment=augment if train else None, balance=balance, verify=cfg.verify)
    return AffectStream(path, seed=cfg.seed, shuffle=train, batch_size=cfg.batch_size,
                        augment=augment if train else None, balance=balance, verify=cfg.verify)


def build_model(stream: AffectStream, cfg: TrainConfig) -> tuple[MultiTaskNet, ModelConfig]:
    trunk, temporal = parse_kind(cfg.model)
    mcfg = ModelConfig(trunk=trunk, temporal=temporal, window=cfg.window if temporal else 1,
                       gru_hidden=cfg.gru_hidden, n_aus=stream.n_aus, n_classes=stream.n_classes,
                       image_size=stream.image_size, width=cfg.width, pretrained=cfg.pretrained,
                       pretrained_format=cfg.pretrained_format, channels_last=cfg.channels_last)
    return MultiTaskNet(mcfg), mcfg


def train(cfg: TrainConfig, *, progress: Progress | None = None, on_epoch: Callable[[EpochRecord], None] | None = None,
          on_start: Callable[[int, int, int], None] | None = None) -> TrainResult:
    """Train as ``cfg`` says; ``on_start(steps_per_epoch, epochs, steps_done)`` (``steps_done``:
    those a resumed run already took), ``progress(1)`` per step and ``on_epoch(record)`` let a
    CLI draw progress and a metrics table."""
    d = distributed.setup(cfg.device)
    try:
        return _train(cfg, d, progress, on_epoch, on_start)
    finally:
        distributed.teardown(d)


def _train(cfg: TrainConfig, d: distributed.Dist, progress: Progress | None,
           on_epoch: Callable[[EpochRecord], None] | None, on_start: Callable[[int, int, int], None] | None) -> TrainResult:
    out = Path(cfg.out)
    check_run_folder(out, cfg.resume)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    opts = step_options(d.device, amp=cfg.amp, fused=cfg.fused, compile=cfg.compile, augment_on=cfg.augment_on,
                        trunk=parse_kind(cfg.model)[0])
    augment = Augment() if cfg.augment else None
    stream = _stream(cfg.data, cfg, train=True, augment=None if opts.augment_on_device else augment)
    device_augment = augment if opts.augment_on_device else None
    val = (eval_stream(cfg.val, cfg.batch_size, verify=cfg.verify,
                       window=cfg.window if parse_kind(cfg.model)[1] else None) if (cfg.val and d.main) else None)
    model, mcfg = build_model(stream, cfg)
    model.to(d.device)
    weights = loss_weights(stream.manifest)
    pos_weight = weights.pos_weight.to(d.device) if cfg.pos_weight else None
    class_weight = weights.class_weight.to(d.device) if cfg.class_weight else None
    loader = make_loader(stream, stream.batch_size or cfg.batch_size, cfg.workers, pin_memory=opts.pin_memory)
    steps_per_epoch = len(loader)
    optimizer = make_optimizer(model.parameters(), opts, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=max(1, steps_per_epoch * cfg.epochs), pct_start=0.15)
    lw = LossWeights(*cfg.loss_weights)
    relations = (Relations.for_outputs(stream.expressions, stream.au_names, tuple(cfg.relation_weights))
                 if cfg.relations else None)
    vocab = {"au_names": list(stream.au_names), "expressions": list(stream.expressions)}
    history: list[EpochRecord] = []
    best: float | None = None
    step, start_epoch = 0, 0
    pending_rng = None
    carried = EpochTotals()
    if cfg.resume:
        state = load_checkpoint(out / "last.pt", map_location=d.device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, start_epoch = state["step"], state["epoch"]
        history = [EpochRecord(**r) for r in state["history"]]
        best = state["best"]
        stream.set_epoch(start_epoch)
        loader.load_state_dict(state["loader"])
        pending_rng = state["rng"]
        carried = EpochTotals.resumed(state, start_epoch)
        log.info("resumed %s at epoch %d, step %d", out, start_epoch, step)
    net = compiled(DistributedDataParallel(model) if d.enabled else model, opts)
    if on_start:
        on_start(steps_per_epoch, cfg.epochs, step)

    def checkpoint(epoch: int, name: str = "last.pt", totals: EpochTotals | None = None) -> None:
        """``totals``: the running sums of a checkpoint taken mid-epoch (module epoch_totals)."""
        if d.main:
            save_checkpoint(out / name, {
                "kind": "multitask", "config": asdict(cfg), "model_config": asdict(mcfg), "vocabulary": vocab,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "epoch": epoch,
                "loader": loader.state_dict(), "rng": rng_state(),
                "history": [r.to_dict() for r in history], "best": best,
                "epoch_totals": totals.state_dict() if totals is not None else None})

    stopped = False
    for epoch in range(start_epoch, cfg.epochs):
        stream.set_epoch(epoch)
        net.train()
        totals = carried if epoch == start_epoch else EpochTotals()
        for batch in epoch_batches(loader, pending_rng):
            pending_rng = None
            batch = to_device(batch, opts, device_augment, seed=cfg.seed, epoch=epoch)
            with autocast(opts):
                pred = net(batch["image"])
            total, parts = multitask_loss(float32(pred), batch, lw, pos_weight=pos_weight, class_weight=class_weight,
                                          relations=relations)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            totals.add({"loss": total.detach(), **parts}, int(batch["image"].shape[0]))
            if progress:
                progress(1)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint(epoch, totals=totals)
            if cfg.max_steps is not None and step >= cfg.max_steps:
                stopped = True
                break
        if stopped:
            checkpoint(epoch, totals=totals)  # mid-epoch: the loader state says where to resume
            break
        seconds = totals.seconds()
        record = EpochRecord(epoch=epoch + 1, step=step, lr=float(scheduler.get_last_lr()[0]),
                             train=totals.means(), seconds=round(seconds, 2),
                             samples_per_s=round(totals.samples * d.world_size / max(seconds, 1e-9), 1))
        if val is not None:
            metrics = evaluate_model(model, val, batch_size=cfg.batch_size, workers=cfg.workers, device=d.device,
                                     loss_fn=lambda p, b: multitask_loss(p, b, lw, pos_weight=pos_weight,
                                                                         class_weight=class_weight))
            record.val = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        history.append(record)
        current = score(record.val) if record.val else -record.train.get("loss", math.inf)
        improved = best is None or current > best
        if improved:
            best = current
        distributed.barrier(d)
        checkpoint(epoch + 1)
        if improved:
            checkpoint(epoch + 1, "best.pt")
        if d.main:
            append_record(out / "metrics.jsonl", record.to_dict())
            plot_curves(history, out / "curves.png")
        if on_epoch and d.main:
            on_epoch(record)
    return TrainResult(out, history, best, step, stopped)
