"""``affmodels train``: the multi-task network (or, with --model gan, the GAN) on an export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import err, print_table, progress_bar

ROW = [("ccc_mean", "VA CCC"), ("au_f1_mean", "AU F1"), ("expr_f1_macro", "EXPR F1"), ("score", "score")]


def _floats(text: str, n: int, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{name} must be {n} numbers separated by commas, not {text!r}") from None
    if len(values) != n:
        raise typer.BadParameter(f"{name} must be {n} numbers separated by commas, not {text!r}")
    return values


def train(
    data: Annotated[Path, typer.Option(help="Export folder to train on (affdata export ...).")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, metrics.jsonl, curves.png.")],
    val: Annotated[Path | None, typer.Option(help="Export folder to evaluate on after each epoch.")] = None,
    model: Annotated[str, typer.Option(help="cnn (compact, trains on a CPU), vgg (VGG-16 trunk, as the paper) or gan.")] = "cnn",
    epochs: Annotated[int, typer.Option(help="Passes over the training rows.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Samples per step (per process under torchrun).")] = 128,
    lr: Annotated[float | None, typer.Option(help="Learning rate: the one-cycle peak, default 3e-3 (cnn, vgg); Adam's, default 2e-4 (gan).")] = None,
    loss_weights: Annotated[str, typer.Option(help="VA,AU,EXPR loss weights.")] = "1,1,1",
    balance: Annotated[str | None, typer.Option(help="Task-balanced sampling weights VA,AU,EXPR, e.g. 1,2,2 (default: every row once per epoch).")] = None,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn off flips and jitter.")] = False,
    relations: Annotated[bool, typer.Option("--relations", help="Couple AUs and expressions through the AU-expression table (Du et al. 2014): soft co-annotation both ways and distribution matching (docs/models.md).")] = False,
    relation_weights: Annotated[str, typer.Option(help="Weights of the relation losses: AU co-annotation, expression co-annotation, distribution matching.")] = "1,1,1",
    pretrained: Annotated[str | None, typer.Option(help="Local state_dict file to start the trunk from.")] = None,
    pretrained_format: Annotated[str | None, typer.Option(help="Layout of --pretrained (vgg trunk): torchvision (vgg16, RGB 0-1, ImageNet mean/std) or vggface (conv1_1...fc7, BGR 0-255 minus its mean); the input convention is saved in the checkpoint.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 2,
    threads: Annotated[int | None, typer.Option(help="torch threads for the step (default: torch's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data order, augmentations and weights.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Also save last.pt every N steps (0: each epoch only).")] = 0,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N steps in all (smoke runs).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly where last.pt left it.")] = False,
    json: Annotated[bool, typer.Option("--json", help="Print the epoch records as JSON lines.")] = False,
) -> None:
    """Train on an export with masked multi-task losses; best and last checkpoints, curves, metrics.

    For several processes: torchrun --nproc_per_node 2 $(which affmodels) train ... (gloo on
    the CPU, NCCL on GPUs).

    Example: affmodels train --data exports/train --val exports/val --out runs/cnn1 --epochs 8
    """
    import json as jsonlib

    if model == "gan":
        from cli.gan import train_gan

        train_gan(data=data, out=out, val=val, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                  workers=workers, threads=threads, seed=seed, checkpoint_every=checkpoint_every,
                  max_steps=max_steps, resume=resume, json=json)
        return
    from affmodels.model import PRETRAINED_FORMATS
    from affmodels.train import TrainConfig
    from affmodels.train import train as run

    if pretrained_format is not None:
        if pretrained_format not in PRETRAINED_FORMATS:
            raise typer.BadParameter(f"unknown format {pretrained_format!r}; use {' or '.join(PRETRAINED_FORMATS)}",
                                     param_hint="--pretrained-format")
        if pretrained is None or model != "vgg":
            raise typer.BadParameter("goes with --pretrained FILE and --model vgg", param_hint="--pretrained-format")

    cfg = TrainConfig(data=str(data), out=str(out), val=str(val) if val else None, model=model, epochs=epochs,
                      batch_size=batch_size, lr=lr or 3e-3, loss_weights=_floats(loss_weights, 3, "--loss-weights"),
                      balance=_floats(balance, 3, "--balance") if balance else None, augment=not no_augment,
                      relations=relations, relation_weights=_floats(relation_weights, 3, "--relation-weights"),
                      pretrained=pretrained, pretrained_format=pretrained_format, device=device, workers=workers,
                      threads=threads, seed=seed,
                      checkpoint_every=checkpoint_every, max_steps=max_steps, resume=resume)
    rows = []

    def on_epoch(record) -> None:
        if json:
            print(jsonlib.dumps(record.to_dict(), default=float), flush=True)
            return
        rows.append([record.epoch + 1, f"{record.train.get('loss', float('nan')):.3f}"]
                    + [f"{record.val[k]:.3f}" if k in record.val else "-" for k, _ in ROW]
                    + [f"{record.samples_per_s:.0f}"])
        print_table(["epoch", "train loss", *[label for _, label in ROW], "samples/s"], rows[-1:],
                    title=None if len(rows) > 1 else "Epochs")

    with progress_bar("training", enabled=not json) as bar:
        result = run(cfg, progress=bar, on_epoch=on_epoch,
                     on_start=lambda steps, epochs_: bar.total(steps * epochs_))
    if not json:
        err.print(f"run in {result.out}: {result.steps} steps; best score {result.best_score}", highlight=False)
