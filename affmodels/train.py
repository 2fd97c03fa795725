"""Training the multi-task network on an export: its step; the run around it is
:mod:`affmodels.runs`.

One run = one output folder: ``last.pt`` (saved every epoch and every ``checkpoint_every``
steps), ``best.pt`` (the epoch with the best ``val.score``: the later ABAW challenges' sum of VA
mean CCC, expression macro-F1 and AU mean F1; none without ``val``), ``metrics.jsonl`` (one JSON
record per epoch), ``curves.png``. ``resume=True`` continues from ``last.pt`` exactly: model,
optimiser, schedule, RNG and the data stream's position are restored, so the next step is the
step an uninterrupted run would have taken. Under ``torchrun`` each process trains on its share
of every batch (DistributedDataParallel; gloo on the CPU, NCCL on GPUs) and rank 0 evaluates and
writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from affmodels import distributed
from affmodels.data import AffectStream, Augment, WindowStream, loss_weights, make_loader
from affmodels.data.windows import windows_per_batch
from affmodels.evaluate import eval_stream, evaluate_model
from affmodels.losses import LossWeights, Relations, multitask_loss
from affmodels.model import ModelConfig, MultiTaskNet, parse_kind
from affmodels.runs import EpochRecord, Run, RunConfig, Steps, TrainResult, train_epochs, vocabulary
from affmodels.step import autocast, compiled, float32, step_options, to_device
from affmodels.step import optimizer as make_optimizer

Progress = Callable[[int], None]


@dataclass
class TrainConfig(RunConfig):
    """A multi-task training run's arguments (the shared ones: :class:`RunConfig`); stored in
    every checkpoint."""

    #: "cnn" (compact), "vgg" (VGG-16, as the paper): frame models; "cnn-gru", "vgg-gru":
    #: temporal (affmodels.data.windows)
    model: str = "cnn"
    #: temporal models: frames per window (T) and the GRU's state size; batch_size stays in
    #: frames (batch_size // window windows a step)
    window: int = 16
    gru_hidden: int = 128
    #: the one-cycle schedule's peak learning rate
    lr: float = 3e-3
    weight_decay: float = 1e-4
    #: VA, AU, expression loss weights (the paper weighs the tasks equally)
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: AU positive weights and expression class weights from the manifest's frequencies
    pos_weight: bool = True
    class_weight: bool = False
    #: task-balanced sampling weights (va, au, expr), or None for one pass over the rows
    balance: tuple[float, float, float] | None = None
    #: the AU-expression relation losses (soft co-annotation both ways, distribution matching)
    relations: bool = False
    #: their weights: co-annotation of AUs, of expressions, distribution matching
    relation_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pretrained: str | None = None
    #: layout and input convention of that file: None (ours), "torchvision", "vggface"
    pretrained_format: str | None = None
    width: int | None = None
    #: the step on its device (affmodels.step): "auto" | "bf16" | "off"; fused AdamW (None: on
    #: CUDA); torch.compile; augmentation in the "loader" or on the "device" ("auto": on CUDA)
    amp: str = "auto"
    fused: bool | None = None
    compile: bool = False
    augment_on: str = "auto"
    #: NHWC activations (ModelConfig.channels_last)
    channels_last: bool = True


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
    run = Run(cfg, "multitask", d)
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
    optimizer = make_optimizer(model.parameters(), opts, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=max(1, len(loader) * cfg.epochs), pct_start=0.15)
    lw = LossWeights(*cfg.loss_weights)
    relations = (Relations.for_outputs(stream.expressions, stream.au_names, tuple(cfg.relation_weights))
                 if cfg.relations else None)
    run.holds({"model_config": asdict(mcfg), "vocabulary": vocabulary(stream)},
              {"model": model, "optimizer": optimizer, "scheduler": scheduler}, loader)
    run.resume(stream)
    net = compiled(DistributedDataParallel(model) if d.enabled else model, opts)

    def step(batch: dict[str, Any], epoch: int) -> tuple[dict[str, Any], int]:
        batch = to_device(batch, opts, device_augment, seed=cfg.seed, epoch=epoch)
        with autocast(opts):
            pred = net(batch["image"])
        total, parts = multitask_loss(float32(pred), batch, lw, pos_weight=pos_weight, class_weight=class_weight,
                                      relations=relations)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        scheduler.step()
        return {"loss": total.detach(), **parts}, int(batch["image"].shape[0])

    def validate() -> dict[str, Any]:
        if val is None:
            return {}
        return evaluate_model(model, val, batch_size=cfg.batch_size, workers=cfg.workers, device=d.device,
                              loss_fn=lambda p, b: multitask_loss(p, b, lw, pos_weight=pos_weight,
                                                                  class_weight=class_weight))

    def epoch_end(epoch: int, record: EpochRecord | None) -> None:
        if record is not None:
            distributed.barrier(d)

    steps = Steps(step=step, train=net.train, lr=lambda: float(scheduler.get_last_lr()[0]), validate=validate,
                  epoch_end=epoch_end)
    return train_epochs(run, stream, loader, steps, progress=progress, on_epoch=on_epoch, on_start=on_start)


__all__ = ["EpochRecord", "TrainConfig", "TrainResult", "build_model", "train"]
