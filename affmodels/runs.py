"""A training run: its folder, its records, its checkpoints and the epochs around its steps.

Shared by the multi-task network (:mod:`affmodels.train`) and the GAN (:mod:`affmodels.gan.train`),
which keep only their step logic: each builds its models, declares what its checkpoints hold
(:meth:`Run.holds`) and hands :func:`train_epochs` its :class:`Steps`. Everything else is here,
written once: the run folder's rules, ``last.pt`` (every epoch and every ``checkpoint_every``
steps) and ``best.pt``, exact resume (weights, optimisers, schedule, RNG, the loader's position
and the epoch's running sums), ``metrics.jsonl`` and ``curves.png``.

**Best epoch.** Each kind of run names one validation figure (``val.score`` for both kinds: for
the network the ABAW score, for the GAN its discriminator's as a recogniser); ``best.pt`` holds
the first epoch with its highest value. Every record says which figure that is
(``selected_on``) and which epoch ``best.pt`` holds after it (``best_epoch``); where no epoch has
the figure (no ``val``), ``best_epoch`` is null and no ``best.pt`` is written: there is no other
figure it silently falls back to.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from affdata.strict_json import json_safe
from affmodels.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from affmodels.curves import Panels, plot_curves
from affmodels.distributed import Dist
from affmodels.epoch_totals import EpochTotals
from affmodels.errors import RunFolderError

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """What every kind of training run is given; each kind's config adds its own fields. Stored
    in every checkpoint (key ``config``), field by field."""

    #: export to train on (folder or URL)
    data: str
    #: the run folder: last.pt, best.pt, metrics.jsonl, curves.png (a GAN also its grids)
    out: str
    #: export evaluated after each epoch; best.pt is chosen on it, and without it none is
    val: str | None = None
    epochs: int = 10
    #: samples per step (per process under torchrun)
    batch_size: int = 128
    #: flips and jitter on the training rows
    augment: bool = True
    #: DataLoader worker processes
    workers: int = 2
    #: seed of the data order, the augmentations and the initial weights
    seed: int = 0
    #: "auto" (CUDA where there is one), "cpu", "cuda" or "cuda:N"
    device: str = "auto"
    #: torch threads for the step; None: torch's default
    threads: int | None = None
    #: also save last.pt every this many steps; 0: at each epoch's end only
    checkpoint_every: int = 0
    #: stop after this many steps in all (for tests and smoke runs); None = all epochs
    max_steps: int | None = None
    #: continue the run in ``out`` exactly where its last.pt left it
    resume: bool = False
    #: check each shard of ``data`` and ``val`` against the manifest's sha256 (once per file version)
    verify: bool = True


@dataclass
class EpochRecord:
    """One line of ``metrics.jsonl``: ``epoch`` counts from 1 (the epoch just finished); ``train``
    the mean losses over its steps; ``val`` the metrics on ``val`` (for the network with its loss
    as ``loss`` and ``loss_va``, ``loss_au``, ``loss_expr``); ``selected_on`` the figure best.pt is
    chosen on and ``best_epoch`` the epoch it holds after this one (null: none chosen)."""

    epoch: int
    step: int
    lr: float
    train: dict[str, float]
    val: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    samples_per_s: float = 0.0
    selected_on: str | None = None
    best_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    out: Path
    history: list[EpochRecord]
    #: the value of ``selected_on`` at ``best_epoch``; None where no epoch had it
    best_score: float | None
    steps: int
    stopped_early: bool
    best_epoch: int | None = None
    selected_on: str | None = None


def best_of(history: Sequence[EpochRecord], metric: str) -> tuple[int | None, float | None]:
    """The epoch best.pt holds and its value: the first with the highest finite ``val[metric]``;
    (None, None) where no record has it."""
    epoch, best = None, None
    for record in history:
        value = record.val.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(value) and (best is None or value > best):
            epoch, best = record.epoch, float(value)
    return epoch, best


class Stateful(Protocol):
    def state_dict(self) -> Any: ...
    def load_state_dict(self, state: Any) -> Any: ...


class GeneratorState:
    """A ``torch.Generator`` as a checkpoint part (its state is a tensor, read by get_state)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_dict(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def vocabulary(stream: Any) -> dict[str, list[str]]:
    """The AU names and expression classes in the order of a model's outputs (checkpoint key
    ``vocabulary``)."""
    return {"au_names": list(stream.au_names), "expressions": list(stream.expressions)}


class Run:
    """One run's folder and the state that travels through its checkpoints: the step, the epoch
    to start at, the history of records and the best epoch. Only the main process (``dist.main``)
    writes; every process keeps the state."""

    def __init__(self, cfg: RunConfig, kind: str, dist: Dist, *, selected_on: str = "score",
                 panels: Panels | None = None) -> None:
        """Checks the folder first (before any work), then sets torch's threads and seed.
        ``kind``: the checkpoint's ``kind``; ``selected_on``: the key in each record's ``val``
        best.pt is chosen on; ``panels``: what curves.png draws (None: the network's view)."""
        self.cfg, self.kind, self.dist, self.out = cfg, kind, dist, Path(cfg.out)
        self.metric, self.panels = selected_on, panels
        check_run_folder(self.out, cfg.resume)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.step, self.start_epoch = 0, 0
        self.history: list[EpochRecord] = []
        self.best_epoch: int | None = None
        self.best: float | None = None
        #: the running sums of the epoch a mid-epoch checkpoint stopped in (module epoch_totals)
        self.carried = EpochTotals()
        #: the RNG state a resumed run restores once its loader has started
        self.pending_rng: dict[str, Any] | None = None
        self._about: dict[str, Any] = {}
        self._parts: dict[str, Stateful] = {}
        self._loader: Any = None

    def holds(self, about: dict[str, Any], parts: dict[str, Stateful], loader: Any) -> None:
        """What each checkpoint carries besides the run's position: ``about`` as it is (model
        configs, vocabulary), each of ``parts``' state under its key (models, optimisers,
        schedule, extra generators), and ``loader``'s position in the data stream."""
        self._about, self._parts, self._loader = dict(about), dict(parts), loader

    def resume(self, stream: Any) -> None:
        """Where the config says resume: restore last.pt into the parts, the loader and this run.
        Read onto the CPU: each part copies onto its own device, and torch takes RNG states
        only as CPU tensors."""
        if not self.cfg.resume:
            return
        state = load_checkpoint(self.out / "last.pt", map_location="cpu")
        for key, part in self._parts.items():
            part.load_state_dict(state[key])
        self.step, self.start_epoch = state["step"], state["epoch"]
        self.history = [EpochRecord(**r) for r in state["history"]]
        self.best_epoch, self.best = best_of(self.history, self.metric)
        stream.set_epoch(self.start_epoch)
        self._loader.load_state_dict(state["loader"])
        self.pending_rng = state["rng"]
        self.carried = EpochTotals.resumed(state, self.start_epoch)
        log.info("resumed %s at epoch %d, step %d", self.out, self.start_epoch, self.step)

    def save(self, epoch: int, name: str = "last.pt", totals: EpochTotals | None = None) -> None:
        """Write checkpoint ``name`` atomically (main process only). ``epoch``: the one to start
        from on resume; ``totals``: the running sums of a checkpoint taken mid-epoch."""
        if not self.dist.main:
            return
        save_checkpoint(self.out / name, {
            "kind": self.kind, "config": asdict(self.cfg), **self._about,
            **{key: part.state_dict() for key, part in self._parts.items()},
            "step": self.step, "epoch": epoch, "loader": self._loader.state_dict(), "rng": rng_state(),
            "history": [r.to_dict() for r in self.history], "best": self.best,
            "epoch_totals": totals.state_dict() if totals is not None else None})

    def add(self, record: EpochRecord) -> bool:
        """Append an epoch's record, naming the selection figure and the best epoch in it; True
        where this epoch is the new best."""
        record.selected_on = f"val.{self.metric}"
        self.history.append(record)
        self.best_epoch, self.best = best_of(self.history, self.metric)
        record.best_epoch = self.best_epoch
        return self.best_epoch == record.epoch

    def write_records(self) -> None:
        """The last record in ``metrics.jsonl`` and ``curves.png`` anew (main process only)."""
        if self.dist.main:
            append_record(self.out / "metrics.jsonl", self.history[-1].to_dict())
            plot_curves(self.history, self.out / "curves.png", panels=self.panels)

    def result(self, stopped: bool) -> TrainResult:
        return TrainResult(self.out, self.history, self.best, self.step, stopped, self.best_epoch,
                           f"val.{self.metric}")


@dataclass
class Steps:
    """What one kind of run does and the others do not."""

    #: one training step on a batch of the given epoch: its losses (tensors or floats, summed
    #: into the epoch's record) and its number of samples
    step: Callable[[dict[str, Any], int], tuple[dict[str, Any], int]]
    #: put the models in training mode (before each epoch)
    train: Callable[[], None]
    #: the learning rate an epoch's record shows
    lr: Callable[[], float]
    #: the metrics on ``val`` after an epoch ({} without one); numbers are kept
    validate: Callable[[], dict[str, Any]]
    #: after an epoch's record, before its checkpoints (record None: stopped mid-epoch)
    epoch_end: Callable[[int, EpochRecord | None], None] = lambda epoch, record: None


def train_epochs(run: Run, stream: Any, loader: Any, steps: Steps, *, progress: Callable[[int], None] | None = None,
                 on_epoch: Callable[[EpochRecord], None] | None = None,
                 on_start: Callable[[int, int, int], None] | None = None) -> TrainResult:
    """The epochs of ``run`` from where it stands. ``on_start(steps_per_epoch, epochs,
    steps_done)``, ``progress(1)`` per step and ``on_epoch(record)`` (main process) let a CLI
    draw progress and a metrics table."""
    cfg = run.cfg
    if on_start:
        on_start(len(loader), cfg.epochs, run.step)
    stopped = False
    for epoch in range(run.start_epoch, cfg.epochs):
        stream.set_epoch(epoch)
        steps.train()
        totals = run.carried if epoch == run.start_epoch else EpochTotals()
        for batch in epoch_batches(loader, run.pending_rng):
            run.pending_rng = None
            losses, samples = steps.step(batch, epoch)
            run.step += 1
            totals.add(losses, samples)
            if progress:
                progress(1)
            if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
                run.save(epoch, totals=totals)
            if cfg.max_steps is not None and run.step >= cfg.max_steps:
                stopped = True
                break
        if stopped:
            steps.epoch_end(epoch, None)
            run.save(epoch, totals=totals)  # mid-epoch: the loader's state says where to resume
            break
        seconds = totals.seconds()
        record = EpochRecord(epoch=epoch + 1, step=run.step, lr=steps.lr(), train=totals.means(),
                             seconds=round(seconds, 2),
                             samples_per_s=round(totals.samples * run.dist.world_size / max(seconds, 1e-9), 1))
        record.val = {k: v for k, v in steps.validate().items() if isinstance(v, (int, float))}
        improved = run.add(record)
        steps.epoch_end(epoch, record)
        run.save(epoch + 1)
        if improved:
            run.save(epoch + 1, "best.pt")
        run.write_records()
        if on_epoch and run.dist.main:
            on_epoch(record)
    return run.result(stopped)


def epoch_batches(loader: Any, rng: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The loader's batches; a resumed run's RNG state is restored only once the loader has
    started, because starting a DataLoader draws a seed from the global RNG."""
    batches = iter(loader)
    first = next(batches, None)
    if rng is not None:
        set_rng_state(rng)
    if first is not None:
        yield first
        yield from batches


def check_run_folder(out: Path, resume: bool) -> None:
    """A new run needs a folder without a run in it; a resumed one needs its last.pt."""
    if resume and not (out / "last.pt").is_file():
        raise RunFolderError(f"{out / 'last.pt'}: nothing to resume")
    if not resume and (out / "last.pt").exists():
        raise RunFolderError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One line of ``metrics.jsonl``: strict JSON (NaN and infinities as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(json_safe(record), default=float, allow_nan=False) + "\n")


__all__ = ["EpochRecord", "GeneratorState", "Run", "RunConfig", "Steps", "TrainResult", "append_record",
           "best_of", "check_run_folder", "epoch_batches", "train_epochs", "vocabulary"]
