"""GAN losses, one per function, and the two per-step sums built on them.

Adversarial loss: hinge (SNGAN / BigGAN), with spectral norm in D's trunk. Why hinge and not
WGAN-GP: the gradient penalty needs a double backward through D at every D step (roughly
doubling D's cost, which matters on a CPU) and WGAN critics want ~5 D steps per G step;
hinge + spectral norm trains stably at one D step per G step. Hinge also saturates once a
patch is classified with margin 1, so D cannot win by inflating its logits, and the
realness logits stay O(1), on the scale of the task losses sharing D's trunk.

Task losses: D's task heads learn only from real frames, through
:func:`affmodels.losses.multitask_loss` unchanged (the same masks, so an unlabelled entry
gives exactly zero gradient). The generator is judged by those heads on its fakes against
the full target (every task present, all masks true): it asked for that affect.

Cycle: ``G(G(x, c_target), c_source) ~ x`` in L1, where ``c_source`` holds the real labels
and, where a label is missing, D's detached estimate (:func:`affmodels.gan.targets.source_target`).

Identity: ``L1(G(x, c_source), x)`` is available but off by default (weight 0, and then not
computed): with the attention mask, unchanged pixels are copied by construction, the
cycle's second pass already trains G(., c_source) to reproduce a face, and the term needs a
third generator pass per step (on top of target and cycle). Turn it on if colours drift.

Attention masks (GANimation): ``mean(A)`` pushes against the trivial all-copy mask that
would satisfy the cycle without any edit; total variation keeps the mask smooth. Both are
applied to the masks of both passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from affmodels.gan.generator import Generated, to_float01
from affmodels.gan.targets import Target, source_condition
from affmodels.losses import LossWeights, multitask_loss
from affmodels.model import Predictions


@dataclass(frozen=True)
class GanLossWeights:
    """Weights of the GAN's loss terms. All terms are O(1) at initialisation except the
    L1 image terms (O(0.1)); hence the StarGAN/GANimation factor 10 on the cycle."""

    adv: float = 1.0  # hinge, both players
    d_task: float = 1.0  # D's masked multi-task loss on real frames (StarGAN lambda_cls = 1)
    g_task: float = 1.0  # D's task heads on G's fakes vs. the full target
    cycle: float = 10.0  # L1 of G(G(x, c_t), c_s) to x (StarGAN lambda_rec, GANimation lambda_cyc)
    identity: float = 0.0  # L1 of G(x, c_s) to x; 0 skips that generator pass (see module doc)
    mask: float = 0.1  # mean attention mask (GANimation lambda_A)
    mask_tv: float = 1.0  # mask total variation on means (GANimation's 1e-5 on sums ~ 4 here)
    task: LossWeights = field(default_factory=LossWeights)  # VA / AU / expr inside both task terms


# ----------------------------------------------------------------------------- adversarial


def d_adversarial_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge loss of D: mean relu(1 - real) + mean relu(1 + fake), over every patch."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def g_adversarial_loss(fake_logits: Tensor) -> Tensor:
    """Hinge loss of G: -mean D(fake) (not saturated by D's margin, unlike D's side)."""
    return -fake_logits.mean()


# ----------------------------------------------------------------------------- tasks


def d_task_loss(
    pred_real: Predictions,
    batch: Mapping[str, Tensor],
    weights: LossWeights = LossWeights(),
    pos_weight: Tensor | None = None,
    class_weight: Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """D's task heads on real frames: exactly :func:`affmodels.losses.multitask_loss`."""
    return multitask_loss(pred_real, batch, weights, pos_weight, class_weight, label_smoothing)


def g_task_loss(
    pred_fake: Predictions, target: Target, weights: LossWeights = LossWeights()
) -> tuple[Tensor, dict[str, Tensor]]:
    """D's task heads on generated faces against the full target (all masks true)."""
    return multitask_loss(pred_fake, target.to(pred_fake.va.device).as_batch(), weights)


# ----------------------------------------------------------------------------- image terms


def cycle_loss(reconstructed: Tensor, images: Tensor) -> Tensor:
    """L1 between G(G(x, c_target), c_source) in [0, 1] and the real images (uint8 or [0, 1])."""
    return (reconstructed - to_float01(images).to(reconstructed.dtype)).abs().mean()


def identity_loss(same: Tensor, images: Tensor) -> Tensor:
    """L1 between G(x, c_source) and x: asking for the affect a face has must not change it."""
    return (same - to_float01(images).to(same.dtype)).abs().mean()


def attention_mask_loss(mask: Tensor) -> Tensor:
    """mean(A): against the all-copy mask (A = 1 everywhere), which makes the cycle trivial."""
    return mask.mean()


def attention_tv_loss(mask: Tensor) -> Tensor:
    """Total variation of the mask (mean |dA/dx| + mean |dA/dy|): smooth, blob-like edits."""
    return (mask[..., :, 1:] - mask[..., :, :-1]).abs().mean() + (
        mask[..., 1:, :] - mask[..., :-1, :]
    ).abs().mean()


# ----------------------------------------------------------------------------- per-step sums


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Turn off ``requires_grad`` of a module's parameters for a block (D during G's step):
    gradients still flow through it to G, but none are computed for its weights."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


def discriminator_step_losses(
    D: nn.Module,
    batch: Mapping[str, Tensor],
    fake_images: Tensor,
    weights: GanLossWeights = GanLossWeights(),
    pos_weight: Tensor | None = None,
    class_weight: Tensor | None = None,
    label_smoothing: float = 0.0,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """D's loss: hinge on real vs. (detached) fake + masked task losses on the real frames.

    Real and fake go through D in one forward (D has no batch statistics, so this equals two
    forwards). ``augment`` (e.g. :class:`affmodels.gan.augment.DiffAugment`) transforms every
    image D sees, real and fake alike. ``parts`` (detached): ``d_adv``, ``d_task``, ``d_va``, ``d_au``, ``d_expr``,
    ``d_real`` / ``d_fake`` (mean realness logits, to watch the margin).
    """
    real = batch["image"].to(fake_images.device)
    both = torch.cat([to_float01(real).to(fake_images.dtype), fake_images.detach()])
    logits, pred = D(augment(both) if augment is not None else both)
    n = len(real)
    real_logits, fake_logits = logits[:n], logits[n:]
    pred_real = Predictions(*(t[:n] for t in pred))
    adv = d_adversarial_loss(real_logits, fake_logits)
    task, task_parts = d_task_loss(
        pred_real, batch, weights.task, pos_weight, class_weight, label_smoothing
    )
    total = weights.adv * adv + weights.d_task * task
    parts = {"d_adv": adv, "d_task": task} | {f"d_{k}": v for k, v in task_parts.items()}
    parts |= {"d_real": real_logits.mean(), "d_fake": fake_logits.mean()}
    return total, {k: v.detach() for k, v in parts.items()}


def discriminator_warmup_losses(
    D: nn.Module,
    batch: Mapping[str, Tensor],
    weights: GanLossWeights = GanLossWeights(),
    augment: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """D's warm-up loss: its masked task losses on the real frames, nothing adversarial (no
    generator pass). ``parts`` (detached): ``d_task``, ``d_va``, ``d_au``, ``d_expr``."""
    real = to_float01(batch["image"])
    pred = D.predict(augment(real) if augment is not None else real)
    task, task_parts = d_task_loss(pred, batch, weights.task)
    parts = {"d_task": task} | {f"d_{k}": v for k, v in task_parts.items()}
    return weights.d_task * task, {k: v.detach() for k, v in parts.items()}


def generator_step_losses(
    G: nn.Module,
    D: nn.Module,
    batch: Mapping[str, Tensor],
    target: Target,
    weights: GanLossWeights = GanLossWeights(),
    fake: Generated | None = None,
    source: Tensor | None = None,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """G's loss: hinge + task loss of D on G(x, c_target), cycle, masks (+ identity).

    ``fake``: G(x, target.condition()) if the loop already made it (e.g. to feed D's step
    first); computed here otherwise. ``source``: the source conditioning vector; by default
    :func:`source_condition` on D's predictions for the real images (one extra D forward
    without gradient). ``augment``: what D's step applies to its inputs, applied here to the
    fakes D judges (differentiably: G learns through it); the source estimate sees the plain
    images. Wrap the call in ``with frozen(D):`` to skip D's weight gradients.
    ``parts`` (detached): ``g_adv``, ``g_task``, ``g_va``, ``g_au``, ``g_expr``, ``cycle``,
    ``identity``, ``mask``, ``mask_tv``.
    """
    images = batch["image"]
    target = target.to(images.device)
    if fake is None:
        fake = G(images, target.condition())
    fake_logits, pred_fake = D(augment(fake.image) if augment is not None else fake.image)
    adv = g_adversarial_loss(fake_logits)
    task, task_parts = g_task_loss(pred_fake, target, weights.task)
    if source is None:
        with torch.no_grad():
            _, pred_real = D(images)
        source = source_condition(batch, pred_real)
    rec = G(fake.image, source)
    cyc = cycle_loss(rec.image, images)
    zero = cyc.new_zeros(())
    idt = identity_loss(G(images, source).image, images) if weights.identity else zero
    masks = [m for m in (fake.mask, rec.mask) if m is not None]
    mask = sum((attention_mask_loss(m) for m in masks), zero) / max(len(masks), 1)
    tv = sum((attention_tv_loss(m) for m in masks), zero) / max(len(masks), 1)
    total = (
        weights.adv * adv
        + weights.g_task * task
        + weights.cycle * cyc
        + weights.identity * idt
        + weights.mask * mask
        + weights.mask_tv * tv
    )
    parts = {"g_adv": adv, "g_task": task} | {f"g_{k}": v for k, v in task_parts.items()}
    parts |= {"cycle": cyc, "identity": idt, "mask": mask, "mask_tv": tv}
    return total, {k: v.detach() for k, v in parts.items()}


__all__ = [
    "GanLossWeights",
    "attention_mask_loss",
    "attention_tv_loss",
    "cycle_loss",
    "d_adversarial_loss",
    "d_task_loss",
    "discriminator_step_losses",
    "discriminator_warmup_losses",
    "frozen",
    "g_adversarial_loss",
    "g_task_loss",
    "generator_step_losses",
    "identity_loss",
]
