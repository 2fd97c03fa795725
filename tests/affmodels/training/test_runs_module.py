"""Runs have one home (affmodels.runs): folder rules, records, the best epoch, checkpoints and exact
resume, tested on a kind of run made only of the shared parts; using a trained model imports no trainer."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from affmodels import distributed
from affmodels.checkpoint import load_checkpoint
from affmodels.data import AffectStream, make_loader
from affmodels.errors import RunFolderError
from affmodels.runs import EpochRecord, GeneratorState, Run, RunConfig, Steps, TrainResult, append_record, best_of
from affmodels.runs import check_run_folder, train_epochs
from tests.affmodels.training.test_train import assert_same_train_records


def test_evaluate_predict_and_generate_import_no_trainer() -> None:
    code = ("import sys, affmodels.evaluate, affmodels.predict, affmodels.gan.evaluate, affmodels.gan.generate; "
            "print(sorted(m for m in ('affmodels.train', 'affmodels.gan.train') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_run_folder_rules_and_strict_records(tmp_path: Path) -> None:
    check_run_folder(tmp_path / "new", resume=False)
    with pytest.raises(RunFolderError, match="nothing to resume"):
        check_run_folder(tmp_path / "new", resume=True)
    (tmp_path / "last.pt").write_bytes(b"x")
    with pytest.raises(RunFolderError, match="already holds a run"):
        check_run_folder(tmp_path, resume=False)
    append_record(tmp_path / "run" / "metrics.jsonl", {"epoch": 1, "val": {"ccc": math.nan, "f1": 0.5}})
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text()) == {"epoch": 1, "val": {"ccc": None, "f1": 0.5}}


# --- the shared run: best epoch, checkpoints and exact resume, for any kind of run ---------------


def _rec(epoch: int, score: float | None) -> EpochRecord:
    return EpochRecord(epoch=epoch, step=epoch * 10, lr=0.1, train={"loss": 1.0 / epoch},
                       val={} if score is None else {"score": score})


def test_best_epoch_is_the_first_highest_value_of_the_named_figure() -> None:
    assert best_of([_rec(1, 0.2), _rec(2, 0.5), _rec(3, 0.5), _rec(4, 0.4)], "score") == (2, 0.5)
    assert best_of([_rec(1, math.nan), _rec(2, 0.1)], "score") == (2, 0.1)  # an undefined value is no value
    # no record has the figure: no best epoch, and no other figure (the training loss) stands in
    assert best_of([_rec(1, None), _rec(2, None)], "score") == (None, None)
    assert best_of([], "score") == (None, None)


def test_both_configs_share_one_declaration_of_the_run_fields() -> None:
    from affmodels.gan.train import GanTrainConfig
    from affmodels.train import TrainConfig

    shared = {f.name for f in fields(RunConfig)}
    assert {"data", "out", "val", "epochs", "batch_size", "workers", "seed", "device", "resume"} <= shared
    for cls in (TrainConfig, GanTrainConfig):
        assert issubclass(cls, RunConfig)
        own = {name for name in cls.__dataclass_fields__ if name in cls.__annotations__}
        assert own & shared <= {"batch_size", "augment"}, cls  # only a default changes, not the field
    # the keys a checkpoint's config holds are those runs saved before the shared base
    assert {f.name for f in fields(TrainConfig)} == shared | {
        "model", "window", "gru_hidden", "lr", "weight_decay", "loss_weights", "pos_weight", "class_weight", "balance", "relations",
        "relation_weights", "pretrained", "pretrained_format", "width", "amp", "fused", "compile", "augment_on",
        "channels_last"}
    assert {f.name for f in fields(GanTrainConfig)} == shared | {
        "lr_g", "lr_d", "g_width", "d_width", "d_norm", "g_task_weight", "mask_weight", "d_augment", "d_warmup_steps"}
    assert (TrainConfig.batch_size, GanTrainConfig.batch_size, TrainConfig.augment, GanTrainConfig.augment) == \
        (128, 32, True, False)


def _toy_run(tiny: dict[str, Path], out: Path, scores: list[float] | None, **kw) -> TrainResult:
    """A third kind of run made only of the shared parts: a linear read-out of each face's mean
    pixel, with a momentum optimiser, an extra seeded generator and the global RNG in its step."""
    cfg = RunConfig(data=str(tiny["train"]), out=str(out), **{"epochs": 2, "batch_size": 8, "workers": 0, "seed": 4,
                                                              "device": "cpu", **kw})
    run = Run(cfg, "toy", distributed.setup("cpu"))
    stream = AffectStream(cfg.data, seed=cfg.seed, shuffle=True, batch_size=cfg.batch_size)
    model = torch.nn.Linear(1, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    noise = torch.Generator().manual_seed(9)
    loader = make_loader(stream, cfg.batch_size, cfg.workers)
    run.holds({"about": {"inputs": 1}}, {"model": model, "optimizer": optimizer, "noise": GeneratorState(noise)},
              loader)
    run.resume(stream)

    def step(batch: dict, epoch: int) -> tuple[dict, int]:
        x = batch["image"].flatten(1).float().mean(1, keepdim=True) / 255
        x = x + 0.01 * torch.randn(x.shape, generator=noise) + 0.01 * torch.randn(x.shape)
        loss = ((model(x) - batch["va"]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}, len(x)

    steps = Steps(step=step, train=model.train, lr=lambda: 0.05,
                  validate=lambda: {} if scores is None else {"score": scores[len(run.history)], "note": "text"})
    return train_epochs(run, stream, loader, steps)


def test_a_run_of_shared_parts_resumes_exactly_with_every_part(tiny, tmp_path: Path) -> None:
    full = _toy_run(tiny, tmp_path / "full", [0.2, 0.5], checkpoint_every=7)
    part = _toy_run(tiny, tmp_path / "part", [0.2, 0.5], checkpoint_every=7, max_steps=full.steps - 9)
    assert part.stopped_early and part.history[-1].epoch == 1  # stopped inside the second epoch
    resumed = _toy_run(tiny, tmp_path / "part", [0.2, 0.5], checkpoint_every=7, resume=True)
    assert resumed.steps == full.steps and resumed.best_epoch == full.best_epoch == 2
    a, b = (load_checkpoint(tmp_path / run / "last.pt") for run in ("full", "part"))
    assert set(a) == {"format", "kind", "config", "about", "model", "optimizer", "noise", "step", "epoch", "loader",
                      "rng", "history", "best", "epoch_totals"}
    assert a["kind"] == "toy" and a["about"] == {"inputs": 1} and a["config"]["checkpoint_every"] == 7
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    momenta = [[s["momentum_buffer"] for s in state["optimizer"]["state"].values()] for state in (a, b)]
    assert all(torch.equal(x, y) for x, y in zip(*momenta)) and momenta[0]
    assert torch.equal(a["noise"], b["noise"])
    assert_same_train_records(tmp_path / "full", tmp_path / "part")


def test_best_pt_is_chosen_on_the_named_figure_and_says_so(tiny, tmp_path: Path) -> None:
    result = _toy_run(tiny, tmp_path / "scored", [0.2, 0.5, 0.5], epochs=3)
    records = [json.loads(line) for line in (tmp_path / "scored" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["selected_on"], r["best_epoch"]) for r in records] == [("val.score", 1), ("val.score", 2),
                                                                      ("val.score", 2)]
    assert records[0]["val"] == {"score": 0.2}  # numbers only
    best = load_checkpoint(tmp_path / "scored" / "best.pt")
    assert best["epoch"] == 2 and best["best"] == 0.5 == result.best_score
    # without the figure, no epoch is chosen, the records say so, and no best.pt stands in
    plain = _toy_run(tiny, tmp_path / "plain", None, epochs=1)
    assert not (tmp_path / "plain" / "best.pt").exists() and (tmp_path / "plain" / "last.pt").is_file()
    [record] = [json.loads(line) for line in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()]
    assert record["selected_on"] == "val.score" and record["best_epoch"] is None
    assert (plain.best_epoch, plain.best_score, plain.selected_on) == (None, None, "val.score")
    from cli.train import summary

    assert "no best.pt: no epoch has val.score" in summary(plain) and "best.pt is epoch 2 (score 0.500 on --val)" in \
        summary(result)
