"""``curves.png``: a run's losses and validation scores per epoch, as a PNG people can read.

Epochs are numbered as in ``metrics.jsonl`` (1 = the first epoch). Three panels: the total loss
on the training rows and on ``--val``; the loss of each task (training solid, validation
dashed); the validation scores. The best epoch (the one ``best.pt`` holds, as the last record
names it: :mod:`affmodels.runs` chooses it) is marked on every panel; the run's folder name is
the title.
Another kind of run (the GAN) passes its own :class:`Panels`: its losses, and the
discriminator's scores as a recogniser; this module knows no GAN key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: (key in record.val, label) of the validation scores drawn
SCORES = (("ccc_mean", "VA mean CCC"), ("au_f1_mean", "AU mean F1"), ("expr_f1_macro", "EXPR macro-F1"))
TASKS = (("va", "VA (1 - CCC)"), ("au", "AU (BCE)"), ("expr", "EXPR (CE)"))


@dataclass(frozen=True)
class Panels:
    """What a kind of run draws in the first two panels (training-record keys and labels) and
    the title of the third; the multi-task network's own view is the default (None)."""

    losses: tuple[tuple[str, str], ...]
    losses_title: str
    parts: tuple[tuple[str, str], ...]
    parts_title: str
    val_title: str


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _line(ax: Any, epochs: list[int], values: list[Any], **kw: Any) -> bool:
    points = [(e, v) for e, v in zip(epochs, values) if _finite(v)]
    if not points:
        return False
    ax.plot([e for e, _ in points], [v for _, v in points], marker="o", markersize=4, **kw)
    return True


def plot_curves(history: Sequence[Any], path: Path, title: str | None = None, panels: Panels | None = None) -> None:
    """Write the PNG for ``history`` (``EpochRecord``s); ``title`` defaults to the run folder;
    ``panels`` says what another kind of run (the GAN) draws instead of the task losses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    epochs = [r.epoch for r in history]
    best = history[-1].best_epoch if history else None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax_loss, ax_parts, ax_val = axes
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if panels is not None:
        for i, (key, label) in enumerate(panels.losses):
            _line(ax_loss, epochs, [r.train.get(key) for r in history], color=colours[i], label=label)
        ax_loss.set(title=panels.losses_title, ylabel="loss")
        for i, (key, label) in enumerate(panels.parts):
            _line(ax_parts, epochs, [r.train.get(key) for r in history], color=colours[i], label=label)
        ax_parts.set(title=panels.parts_title, ylabel="loss")
        val_title = panels.val_title
    else:
        _line(ax_loss, epochs, [r.train.get("loss") for r in history], color=colours[0], label="training")
        _line(ax_loss, epochs, [r.val.get("loss") for r in history], color=colours[1], linestyle="--",
              label="validation")
        ax_loss.set(title="total loss (weighted sum of tasks)", ylabel="loss")
        for i, (key, label) in enumerate(TASKS):
            c = colours[i + 2]
            _line(ax_parts, epochs, [r.train.get(key) for r in history], color=c, label=f"{label}, training")
            _line(ax_parts, epochs, [r.val.get(f"loss_{key}") for r in history], color=c, linestyle="--",
                  label=f"{label}, validation")
        ax_parts.set(title="loss per task", ylabel="loss")
        val_title = "validation scores"
    for i, (key, label) in enumerate(SCORES):
        _line(ax_val, epochs, [r.val.get(key) for r in history], color=colours[i + 5], label=label)
    ax_val.set(title=val_title, ylabel="score (higher is better)", ylim=(0, 1))
    if not any(r.val for r in history):
        ax_val.text(0.5, 0.5, "no --val export", ha="center", va="center", transform=ax_val.transAxes, color="grey")
    for ax in axes:
        ax.set_xlabel("epoch")
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        if len(epochs) <= 15:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if best is not None:
            ax.axvline(best, color="black", linestyle=":", linewidth=1, label=f"best.pt (epoch {best})")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"{title or path.parent.name}: {len(history)} epoch{'s' if len(history) != 1 else ''}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


__all__ = ["Panels", "plot_curves"]
