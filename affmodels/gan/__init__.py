"""The affect GAN (Kollias et al.): a generator that draws a face showing a target affect,
and a discriminator that is also a multi-task affect recogniser.

One training iteration, as the pieces are meant to fit together::

    target = sampler.sample(len(x), generator=g)              # observed label combinations
    fake = G(batch["image"], target.to(dev).condition())      # Generated(image, mask, color)
    d_loss, d_parts = discriminator_step_losses(D, batch, fake.image)   # fake detached inside
    opt_d.zero_grad(); d_loss.backward(); opt_d.step()
    with frozen(D):
        g_loss, g_parts = generator_step_losses(G, D, batch, target, fake=fake)
    opt_g.zero_grad(); g_loss.backward(); opt_g.step()
"""

from __future__ import annotations

from affmodels.gan.discriminator import Discriminator, DiscriminatorConfig
from affmodels.gan.generator import (
    Generated,
    Generator,
    GeneratorConfig,
    to_float01,
    to_uint8,
)
from affmodels.gan.grid import grid_size, save_grid, target_label
from affmodels.gan.losses import (
    GanLossWeights,
    attention_mask_loss,
    attention_tv_loss,
    cycle_loss,
    d_adversarial_loss,
    d_task_loss,
    discriminator_step_losses,
    discriminator_warmup_losses,
    frozen,
    g_adversarial_loss,
    g_task_loss,
    generator_step_losses,
    identity_loss,
)
from affmodels.gan.targets import (
    Target,
    TargetSampler,
    decode_condition,
    encode_target,
    source_condition,
    source_target,
)

__all__ = [
    "Discriminator",
    "DiscriminatorConfig",
    "GanLossWeights",
    "Generated",
    "Generator",
    "GeneratorConfig",
    "Target",
    "TargetSampler",
    "attention_mask_loss",
    "attention_tv_loss",
    "cycle_loss",
    "d_adversarial_loss",
    "d_task_loss",
    "decode_condition",
    "discriminator_step_losses",
    "discriminator_warmup_losses",
    "encode_target",
    "frozen",
    "g_adversarial_loss",
    "g_task_loss",
    "generator_step_losses",
    "grid_size",
    "identity_loss",
    "save_grid",
    "source_condition",
    "source_target",
    "target_label",
    "to_float01",
    "to_uint8",
]
