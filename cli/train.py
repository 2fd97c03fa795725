"""``affmodels train``: the multi-task network (or, with --model gan, the GAN) on an export."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    DATA_HELP,
    CacheOption,
    CacheSizeOption,
    GrowingTable,
    NoVerifyOption,
    data_location,
    err,
    num,
    print_json_line,
    print_table,
    progress_bar,
    shown_path,
    use_shard_cache,
)

ROW = [("ccc_mean", "VA CCC"), ("au_f1_mean", "AU F1"), ("expr_f1_macro", "EXPR F1"), ("score", "score")]


class ModelKind(str, Enum):
    cnn = "cnn"
    vgg = "vgg"
    cnn_gru = "cnn-gru"
    vgg_gru = "vgg-gru"
    gan = "gan"


def _floats(text: str, n: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{name} must be {n} numbers separated by commas, not {text!r}") from None
    if len(values) != n:
        raise typer.BadParameter(f"{name} must be {n} numbers separated by commas, not {text!r}")
    return values


def train(
    data: Annotated[str, typer.Option(help="Export to train on (affdata export ...)." + DATA_HELP)],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, metrics.jsonl, curves.png.")],
    val: Annotated[str | None, typer.Option(help="Export to evaluate on after each epoch (folder or URL).")] = None,
    model: Annotated[ModelKind, typer.Option(help="cnn (compact, trains on a CPU), vgg (VGG-16 trunk, as the paper), cnn-gru / vgg-gru (that trunk on each frame of windows of --window frames of a track, then a GRU: docs/models.md) or gan.")] = ModelKind.cnn,
    window: Annotated[int, typer.Option(min=1, help="cnn-gru, vgg-gru: frames per window (T); --batch-size stays in frames.")] = 16,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training rows.")] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per step (per process under torchrun).")] = 128,
    lr: Annotated[float | None, typer.Option(help="Learning rate: the one-cycle peak, default 3e-3 (cnn, vgg); Adam's, default 2e-4 (gan).")] = None,
    loss_weights: Annotated[str, typer.Option(help="VA,AU,EXPR loss weights.")] = "1,1,1",
    balance: Annotated[str | None, typer.Option(help="Task-balanced sampling weights VA,AU,EXPR, e.g. 1,2,2 (default: every row once per epoch).")] = None,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn off flips and jitter.")] = False,
    relations: Annotated[bool, typer.Option("--relations", help="Couple AUs and expressions through the AU-expression table (Du et al. 2014): soft co-annotation both ways and distribution matching (docs/models.md).")] = False,
    relation_weights: Annotated[str, typer.Option(help="Weights of the relation losses: AU co-annotation, expression co-annotation, distribution matching.")] = "1,1,1",
    pretrained: Annotated[str | None, typer.Option(help="Local state_dict file to start the trunk from.")] = None,
    pretrained_format: Annotated[str | None, typer.Option(help="Layout of --pretrained (vgg trunk): torchvision (vgg16, RGB 0-1, ImageNet mean/std) or vggface (conv1_1...fc7, BGR 0-255 minus its mean); the input convention is saved in the checkpoint.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = 2,
    threads: Annotated[int | None, typer.Option(help="torch threads for the step (default: torch's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data order, augmentations and weights.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(min=0, help="Also save last.pt every N steps (0: each epoch only).")] = 0,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Stop after N steps in all (smoke runs).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where last.pt left it.")] = False,
    no_verify: NoVerifyOption = False,
    amp: Annotated[str, typer.Option(help="Mixed precision of the step: auto (bf16 for vgg on CUDA), bf16 or off.")] = "auto",
    fused: Annotated[bool | None, typer.Option("--fused/--no-fused", help="Fused AdamW kernel (default: on CUDA).", show_default=False)] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the network (a minute of compilation first).")] = False,
    augment_on: Annotated[str, typer.Option(help="Where flips and jitter run: auto (the GPU when training on CUDA), loader (the workers) or device.")] = "auto",
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="NHWC activations in the network.")] = True,
    cache: CacheOption = None,
    cache_size: CacheSizeOption = None,
    json: Annotated[bool, typer.Option("--json", help="Print the epoch records as JSON lines.")] = False,
) -> None:
    """Train on an export with masked multi-task losses; best and last checkpoints, curves, metrics.

    For several processes: torchrun --nproc_per_node 2 $(which affmodels) train ... (gloo on
    the CPU, NCCL on GPUs).

    Example: affmodels train --data exports/train --val exports/val --out runs/cnn1 --epochs 8
    """
    use_shard_cache(cache, cache_size)
    data, val = data_location(data), data_location(val)

    if model is ModelKind.gan:
        from cli.gan import train_gan

        train_gan(data=data, out=out, val=val, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                  workers=workers, threads=threads, seed=seed, checkpoint_every=checkpoint_every,
                  max_steps=max_steps, resume=resume, json=json, verify=not no_verify)
        return
    from affmodels.model import PRETRAINED_FORMATS
    from affmodels.step import AMP, AUGMENT_ON
    from affmodels.train import TrainConfig
    from affmodels.train import train as run

    if amp not in AMP:
        raise typer.BadParameter(f"--amp must be one of {', '.join(AMP)}, not {amp!r}")
    if augment_on not in AUGMENT_ON:
        raise typer.BadParameter(f"--augment-on must be one of {', '.join(AUGMENT_ON)}, not {augment_on!r}")
    if pretrained_format is not None:
        if pretrained_format not in PRETRAINED_FORMATS:
            raise typer.BadParameter(f"unknown format {pretrained_format!r}; use {' or '.join(PRETRAINED_FORMATS)}",
                                     param_hint="--pretrained-format")
        if pretrained is None or not model.value.startswith("vgg"):
            raise typer.BadParameter("goes with --pretrained FILE and --model vgg", param_hint="--pretrained-format")

    cfg = TrainConfig(data=str(data), out=str(out), val=str(val) if val else None, model=model.value, epochs=epochs,
                      batch_size=batch_size, lr=lr or 3e-3, loss_weights=_floats(loss_weights, 3, "--loss-weights"),
                      balance=_floats(balance, 3, "--balance") if balance else None, augment=not no_augment,
                      window=window, relations=relations, relation_weights=_floats(relation_weights, 3, "--relation-weights"),
                      pretrained=pretrained, pretrained_format=pretrained_format, device=device, workers=workers,
                      threads=threads, seed=seed,
                      checkpoint_every=checkpoint_every, max_steps=max_steps, resume=resume, verify=not no_verify,
                      amp=amp, fused=fused, compile=compile, augment_on=augment_on, channels_last=channels_last)
    table = GrowingTable(["epoch", "step", "train loss", "val loss", *[label for _, label in ROW], "best", "samples/s"])

    def on_epoch(record) -> None:
        if json:
            print_json_line(record.to_dict())
            return
        best = "*" if record.best_epoch == record.epoch else ""
        table.add([record.epoch, record.step, num(record.train.get("loss")), num(record.val.get("loss")),
                   *[num(record.val.get(k)) for k, _ in ROW], best, f"{record.samples_per_s:.0f}"])

    with progress_bar("training", enabled=not json) as bar:
        result = run(cfg, progress=bar, on_epoch=on_epoch,
                     on_start=lambda steps, epochs_, done: bar.total(planned_steps(steps, epochs_, max_steps) - done))
    if not json:
        err.print(summary(result), highlight=False, soft_wrap=True)


def planned_steps(steps_per_epoch: int, epochs: int, max_steps: int | None) -> int:
    """The steps a run ends at: all its epochs', or --max-steps if that comes first (a resumed
    run's bar counts this less the steps already taken)."""
    total = steps_per_epoch * epochs
    return min(total, max_steps) if max_steps else total


def summary(result) -> str:
    """The last line of a training run: where it is, how far it went, which epoch best.pt holds
    and on which validation figure (or that none was chosen)."""
    line = f"run in {shown_path(result.out)}: {result.steps} steps"
    if result.stopped_early:
        line += " (stopped by --max-steps; last.pt resumes it)"
    if result.best_epoch is not None:
        figure = result.selected_on.removeprefix("val.")
        line += f"; best.pt is epoch {result.best_epoch} ({figure} {result.best_score:.3f} on --val)"
    elif result.history:
        line += f"; no best.pt: no epoch has {result.selected_on} (pass --val to choose one)"
    return line
