"""Training the affect GAN on an export, with the multi-task training's streaming, progress,
checkpoints and exact resume.

Each step: targets are drawn from label combinations that occur in the training rows
(:class:`TargetSampler`, with its own seeded generator), the generator draws the batch's faces
showing them, the discriminator takes one hinge step on real and generated faces plus its masked
task losses on the real ones, then the generator one step against the frozen discriminator
(adversarial, task losses on its faces against the full target, cycle back to the source).
After every epoch: ``grid-epochNNN.png`` (fixed faces x fixed targets, one per expression
class), a ``metrics.jsonl`` record with the discriminator evaluated as a recogniser on
``val``, ``last.pt`` and ``best.pt`` (the epoch with that recogniser's best ``val.score``; none
without ``val``). The run around the step (folder, records, checkpoints, resume) is
:mod:`affmodels.runs`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from affmodels import distributed
from affmodels.curves import Panels
from affmodels.data import AffectStream, Augment, Manifest, make_loader
from affmodels.errors import ConfigError
from affmodels.evaluate import evaluate_model
from affmodels.gan.augment import DiffAugment
from affmodels.gan.discriminator import Discriminator, DiscriminatorConfig, Recognizer
from affmodels.gan.generator import Generator, GeneratorConfig
from affmodels.gan.grid import save_grid, target_label
from affmodels.gan.losses import (
    GanLossWeights,
    discriminator_step_losses,
    discriminator_warmup_losses,
    frozen,
    generator_step_losses,
)
from affmodels.gan.targets import Target, TargetSampler, label_arrays, observed_classes, sample_targets
from affmodels.runs import (
    EpochRecord,
    GeneratorState,
    Run,
    RunConfig,
    Steps,
    TrainResult,
    train_epochs,
    vocabulary,
)

GRID_FACES = 6
#: what curves.png draws for a GAN run
CURVES = Panels(
    losses=(("d_loss", "D total"), ("g_loss", "G total")), losses_title="GAN losses (training)",
    parts=(("g_cycle", "G cycle"), ("g_adv", "G adversarial"), ("g_task", "G task"), ("d_adv", "D adversarial"),
           ("d_task", "D task")), parts_title="loss terms (training)",
    val_title="discriminator as a recogniser (validation)")


@dataclass
class GanTrainConfig(RunConfig):
    """A GAN training run's arguments (the shared ones: :class:`RunConfig`); stored in every
    checkpoint."""

    batch_size: int = 32  # the GAN's default (the field: RunConfig)
    augment: bool = False  # the GAN's default (the field: RunConfig)
    #: Adam's learning rates of the generator and the discriminator
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    g_width: int = 16
    d_width: int = 32
    d_norm: str = "group"  # the discriminator trunk's normalisation (DiscriminatorConfig.norm)
    #: weight of the discriminator's task losses on generated faces (what makes them show targets)
    g_task_weight: float = 3.0
    #: weight of the mean attention mask (against copying the input unchanged)
    mask_weight: float = 0.3
    #: DiffAugment (shift + cutout) on every image the discriminator sees (see affmodels.gan.augment)
    d_augment: bool = False
    #: steps at the start in which only the discriminator's task heads learn, from real faces
    #: (about a quarter of a full step each): the generator's first task gradients then come
    #: from a recogniser that already reads the affect, not from random heads
    d_warmup_steps: int = 0


def spread_faces(manifest: Manifest, n: int) -> torch.Tensor:
    """``n`` face crops spread evenly over the export (so over videos and people), uint8 NCHW."""
    from affmodels.data.decode import decode

    total = sum(s.rows for s in manifest.shards)
    wanted = sorted({int(i) for i in np.linspace(0, total - 1, n)})
    faces, offset = [], 0
    for shard in manifest.shards:
        local = [i - offset for i in wanted if offset <= i < offset + shard.rows]
        if local:
            column = pq.read_table(manifest.root / shard.path, columns=["image"])["image"]
            faces += [decode(column[i].as_py(), manifest.image_size, manifest.encoding) for i in local]
        offset += shard.rows
    return torch.from_numpy(np.stack(faces)).permute(0, 3, 1, 2).contiguous()


def grid_inputs(stream: AffectStream, sampler: TargetSampler, labels: dict[str, np.ndarray],
                seed: int) -> tuple[torch.Tensor, Target]:
    """Fixed faces (the first rows of the export) and fixed targets (one per expression class
    that occurs in the training rows)."""
    faces = spread_faces(stream.manifest, GRID_FACES)
    g = torch.Generator().manual_seed(seed)
    present = np.unique(labels["expr"][labels["expr_mask"] & (labels["expr"] >= 0)])
    if stream.n_classes and present.size:
        return faces, sampler.sample(len(present), generator=g, classes=torch.from_numpy(present))
    return faces, sampler.sample(4, generator=g)


def render_grid(G: Generator, faces: torch.Tensor, targets: Target, path: Path, classes: list[str],
                au_names: list[str], device: torch.device, title: str | None = None) -> None:
    was = G.training
    G.eval()
    with torch.no_grad():
        columns = []
        for i in range(len(targets)):
            cond = targets[i].to(device).condition().expand(len(faces), -1)
            columns.append(G(faces.to(device), cond).image.cpu())
    G.train(was)
    labels = [target_label(targets, i, classes, au_names) for i in range(len(targets))]
    save_grid(path, faces, columns, labels, title=title)


def train_gan(cfg: GanTrainConfig, *, progress: Callable[[int], None] | None = None,
              on_epoch: Callable[[EpochRecord], None] | None = None,
              on_start: Callable[[int, int, int], None] | None = None) -> TrainResult:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # refuse before joining (and waiting for) a process group
        raise ConfigError("the GAN trains in one process; run it without torchrun")
    d = distributed.setup(cfg.device)
    run = Run(cfg, "gan", d, panels=CURVES)
    out = run.out
    stream = AffectStream(cfg.data, seed=cfg.seed, shuffle=True, batch_size=cfg.batch_size,
                          augment=Augment() if cfg.augment else None, verify=cfg.verify)
    k, c = stream.n_aus, stream.n_classes
    gcfg = GeneratorConfig(n_aus=k, n_classes=c, width=cfg.g_width)
    dcfg = DiscriminatorConfig(n_aus=k, n_classes=c, width=cfg.d_width, norm=cfg.d_norm)
    G, D = Generator(gcfg).to(d.device), Discriminator(dcfg).to(d.device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
    labels = label_arrays(stream.manifest)
    sampler = TargetSampler(labels["va"], labels["au"], labels["au_mask"], labels["expr"], labels["expr_mask"],
                            n_classes=c, va_mask=labels["va_mask"])
    targets_rng = torch.Generator().manual_seed(cfg.seed)
    faces, fixed = grid_inputs(stream, sampler, labels, cfg.seed + 1)
    loader = make_loader(stream, cfg.batch_size, cfg.workers)
    weights = GanLossWeights(g_task=cfg.g_task_weight, mask=cfg.mask_weight)
    d_augment = DiffAugment() if cfg.d_augment else None
    present = observed_classes(labels)
    vocab = vocabulary(stream)
    run.holds({"generator_config": asdict(gcfg), "discriminator_config": asdict(dcfg), "vocabulary": vocab,
               "image_size": stream.image_size},
              {"generator": G, "discriminator": D, "optimizer_g": opt_g, "optimizer_d": opt_d,
               "targets_rng": GeneratorState(targets_rng)}, loader)
    run.resume(stream)

    def step(batch: dict[str, Any], epoch: int) -> tuple[dict[str, Any], int]:
        batch = {key: (v.to(d.device) if torch.is_tensor(v) else v) for key, v in batch.items()}
        warmup = run.step < cfg.d_warmup_steps
        if warmup:  # D alone, as a recogniser of the real faces: no G, no fakes
            d_loss, d_parts = discriminator_warmup_losses(D, batch, weights, augment=d_augment)
            g_loss, g_parts = d_loss.new_zeros(()), {}
        else:
            target = sample_targets(sampler, len(batch["image"]), present, targets_rng).to(d.device)
            fake = G(batch["image"], target.condition())
            d_loss, d_parts = discriminator_step_losses(D, batch, fake.image, weights=weights, augment=d_augment)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        if not warmup:
            with frozen(D):
                g_loss, g_parts = generator_step_losses(G, D, batch, target, weights, fake=fake, augment=d_augment)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        return ({**d_parts, **{(n if n.startswith("g_") else f"g_{n}"): x for n, x in g_parts.items()},
                 "d_loss": d_loss.detach(), "g_loss": g_loss.detach()}, len(batch["image"]))

    def train_mode() -> None:
        G.train()
        D.train()

    def validate() -> dict[str, Any]:
        if not cfg.val:
            return {}
        return evaluate_model(Recognizer(D), cfg.val, batch_size=64, workers=0, device=d.device, verify=cfg.verify)

    def epoch_end(epoch: int, record: EpochRecord | None) -> None:
        """A grid after every epoch; a short run stopped mid-epoch still leaves one to look at."""
        when = (f"end of epoch {epoch + 1}, step {run.step}" if record is not None
                else f"epoch {epoch + 1} stopped at step {run.step}")
        render_grid(G, faces, fixed, out / f"grid-epoch{epoch + 1:03d}.png", vocab["expressions"],
                    vocab["au_names"], d.device, title=f"{out.name}: {when}")

    steps = Steps(step=step, train=train_mode, lr=lambda: cfg.lr_g, validate=validate, epoch_end=epoch_end)
    return train_epochs(run, stream, loader, steps, progress=progress, on_epoch=on_epoch, on_start=on_start)
