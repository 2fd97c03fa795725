"""`affmodels train`, `eval` and `predict` on a tiny real export."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pyarrow.parquet as pq
import torch

from affdata.db import Store
from affdata.hashing import file_sha256
from affdata.labels import import_prediction_files
from affdata.labels.abaw_export import export_abaw
from affdata.sql import run_readonly
from affmodels.checkpoint import load_checkpoint
from affmodels.evaluate import evaluate_checkpoint
from affmodels.predict import predict_export, predict_video, write_predictions_file
from affmodels.train import TrainConfig, train


def config(tiny: dict[str, Path], out: Path, **kw) -> TrainConfig:
    base = TrainConfig(data=str(tiny["train"]), val=str(tiny["val"]), out=str(out), epochs=2, batch_size=16,
                       workers=0, seed=3, width=8, device="cpu")
    return replace(base, **kw)


def test_a_short_run_writes_checkpoints_metrics_and_curves(tiny, tmp_path: Path) -> None:
    result = train(config(tiny, tmp_path / "run"))
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} >= {"best.pt", "last.pt", "metrics.jsonl", "curves.png"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all("ccc_mean" in r["val"] for r in records)
    state = load_checkpoint(out / "last.pt")
    assert state["kind"] == "multitask" and state["epoch"] == 2 and state["step"] == result.steps
    assert set(state) == {"format", "kind", "config", "model_config", "vocabulary", "model", "optimizer", "scheduler",
                          "step", "epoch", "loader", "rng", "history", "best", "epoch_totals"}  # the file's layout
    assert all(r["selected_on"] == "val.score" for r in records)
    assert load_checkpoint(out / "best.pt")["epoch"] == records[-1]["best_epoch"] == result.best_epoch
    assert state["vocabulary"]["au_names"][:2] == ["AU1", "AU2"]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _params(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_resume_continues_exactly(tiny, tmp_path: Path) -> None:
    """Stopping mid-epoch and resuming gives bit-identical weights to an uninterrupted run."""
    full = train(config(tiny, tmp_path / "full"))
    stop = full.steps // 2 + 1  # inside the second epoch... or the first; either way mid-epoch
    part = train(config(tiny, tmp_path / "part", max_steps=stop))
    assert part.stopped_early and part.steps == stop
    resumed = train(config(tiny, tmp_path / "part", resume=True))
    assert resumed.steps == full.steps
    a, b = _params(tmp_path / "full" / "last.pt"), _params(tmp_path / "part" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert_same_train_records(tmp_path / "full", tmp_path / "part")


def assert_same_train_records(full: Path, part: Path) -> None:
    """The resumed epoch's train losses average all of its batches, as the uninterrupted run's do."""
    records = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
               for run in (full, part)]
    assert [r["epoch"] for r in records[0]] == [r["epoch"] for r in records[1]] and records[0]
    for a, b in zip(*records):
        assert a["step"] == b["step"] and a["train"].keys() == b["train"].keys()
        for key in a["train"]:
            assert math.isclose(a["train"][key], b["train"][key], rel_tol=1e-9, abs_tol=1e-12), (a["epoch"], key)


def test_resume_after_a_kill_mid_epoch_keeps_the_epoch_record(tiny, tmp_path: Path) -> None:
    """kill -9 after a mid-epoch checkpoint, then --resume: the same records as a run never stopped."""
    train(config(tiny, tmp_path / "full", epochs=1, threads=1))  # the child process too: same sums
    steps = load_checkpoint(tmp_path / "full" / "last.pt")["step"]
    every = steps // 2
    script = ("import sys, os, signal\n"
              "from affmodels.train import TrainConfig, train\n"
              "from affmodels import checkpoint\n"
              "save = checkpoint.save_checkpoint\n"
              "def save_then_die(path, state):\n"
              "    save(path, state)\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "import affmodels.runs as runs\n"
              "runs.save_checkpoint = save_then_die\n"
              f"train(TrainConfig(**{asdict(config(tiny, tmp_path / 'part', epochs=1, checkpoint_every=every, threads=1))!r}))\n")
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert load_checkpoint(tmp_path / "part" / "last.pt")["step"] == every
    assert not (tmp_path / "part" / "metrics.jsonl").exists()
    train(config(tiny, tmp_path / "part", epochs=1, checkpoint_every=every, threads=1, resume=True))
    assert_same_train_records(tmp_path / "full", tmp_path / "part")


def test_relations_add_their_losses_to_the_run(tiny, tmp_path: Path) -> None:
    result = train(config(tiny, tmp_path / "rel", epochs=1, relations=True, max_steps=4))
    assert result.steps == 4
    state = load_checkpoint(tmp_path / "rel" / "last.pt")
    assert state["config"]["relations"] is True
    totals = state["epoch_totals"]["sums"]
    assert {"co_au", "co_expr", "match"} <= set(totals) and totals["match"] > 0


def test_eval_and_predict(tiny, tmp_path: Path) -> None:
    train(config(tiny, tmp_path / "run", epochs=1))
    ckpt = tmp_path / "run" / "best.pt"
    result = evaluate_checkpoint(ckpt, tiny["val"], batch_size=32)
    rows = json.loads((tiny["val"] / "meta" / "info.json").read_text())["counts"]
    assert result.metrics["va_count"] == rows["va"] and result.metrics["expr_count"] == rows["expr"]
    assert -1 <= result.metrics["ccc_mean"] <= 1 and result.per_video
    # eval says which part it was given, and that val is where best.pt was chosen
    assert (result.data["split"], result.data["part"]) == ("official", "val")
    assert result.data["selected_on"] and not result.data["trained_on"]
    assert result.describe() == "split official v1, part val (the part best.pt was SELECTED on: optimistic, not a test result)"
    seen = evaluate_checkpoint(ckpt, tiny["train"], batch_size=32)
    assert seen.data["part"] == "train" and seen.data["trained_on"] and "TRAINED" in seen.describe()
    df = predict_export(ckpt, tiny["val"], batch_size=32)
    assert len(df) == rows["rows"] and df[["video", "track", "frame"]].duplicated().sum() == 0
    assert df["valence"].between(-1, 1).all() and set(df["AU12"].unique()) <= {0, 1}
    vocab = load_checkpoint(ckpt)["vocabulary"]
    path = write_predictions_file(df, tmp_path / "predictions.parquet", ckpt)
    meta = pq.read_schema(path).metadata
    assert json.loads(meta[b"affdata.predictions.vocabulary"]) == {"au_names": vocab["au_names"],
                                                                  "expressions": vocab["expressions"]}
    assert meta[b"affdata.predictions.checkpoint_sha256"].decode() == file_sha256(ckpt)
    video = sorted((tiny["data"] / "videos").glob("*.mp4"))[0]
    per_frame = predict_video(ckpt, video)
    assert per_frame["frame"].tolist() == list(range(len(per_frame))) and len(per_frame) > 50
    with Store(str(tiny["db"])) as store:
        report = import_prediction_files(store, [path], source="tiny-run", key="predictions/val")
        (outcome,) = report.outcomes
        assert outcome.status in ("imported", "replaced") and outcome.rows > 0, outcome
        assert outcome.format == "predictions" and report.ok
        kind = run_readonly(store, "SELECT kind FROM label_source WHERE name = 'tiny-run'").rows
        assert kind == [("model",)]
        n_va = run_readonly(store, "SELECT COUNT(*) FROM va_label l JOIN label_source s ON s.id = l.source_id "
                                   "WHERE s.name = 'tiny-run'").rows[0][0]
        assert n_va == len(df)
        # ABAW files of the model come from affdata's exporter, one per task and (video, track)
        written = export_abaw(store, tmp_path / "abaw", source="tiny-run")
        assert sum(written.files.values()) == 3 * df.groupby(["video", "track"]).ngroups
        # a file that is not a predictions file is reported and stores nothing
        bad = tmp_path / "bad.parquet"
        pq.write_table(pq.read_table(path).drop(["valence"]), bad)
        failed = import_prediction_files(store, [bad, path], source="bad-run")
        assert [o.status for o in failed.outcomes] == ["failed", "imported"]
        assert "bad.parquet" in failed.outcomes[0].reason
    from typer.testing import CliRunner

    from cli.affdata_app import app as affdata_app

    done = CliRunner().invoke(affdata_app, ["ingest", "labels", str(path), "--format", "predictions",
                                            "--source", "cli-run", "--db", str(tiny["db"]), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["summary"]["imported"] == 1


def test_two_processes_with_torchrun(tiny, tmp_path: Path) -> None:
    """DDP on the CPU (gloo): two processes take a few steps and rank 0 writes the checkpoint."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "cli.affmodels_app", "train", "--data", str(tiny["train"]), "--out", str(out),
           "--epochs", "1", "--batch-size", "8", "--workers", "0", "--threads", "1", "--max-steps", "3", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_checkpoint(out / "last.pt")
    assert state["step"] == 3 and state["loader"]["world_size"] == 2


def test_augmenting_on_the_device_trains_exactly_as_in_the_loader(tiny, tmp_path: Path) -> None:
    """--augment-on device (what CUDA runs use) applies the loader's augmentations bit for bit."""
    a = train(config(tiny, tmp_path / "loader", val=None, epochs=1, max_steps=3, augment_on="loader"))
    b = train(config(tiny, tmp_path / "device", val=None, epochs=1, max_steps=3, augment_on="device"))
    c = train(config(tiny, tmp_path / "plain", val=None, epochs=1, max_steps=3, augment=False))
    assert a.steps == b.steps == 3
    pa, pb, pc = (_params(tmp_path / n / "last.pt") for n in ("loader", "device", "plain"))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)  # the augmentation did something


def test_step_options_bf16_and_fused_run_on_the_cpu(tiny, tmp_path: Path) -> None:
    result = train(config(tiny, tmp_path / "bf16", val=None, epochs=1, max_steps=2, amp="bf16", fused=True))
    assert result.steps == 2 and all(torch.isfinite(v).all() for v in _params(tmp_path / "bf16" / "last.pt").values()
                                     if v.is_floating_point())


def test_step_options_resolve_by_device_and_refuse_unknown_values() -> None:
    import pytest

    from affmodels.step import step_options

    cpu = step_options(torch.device("cpu"), trunk="vgg")
    assert (cpu.bf16, cpu.fused, cpu.compile, cpu.augment_on_device, cpu.pin_memory) == (False, False, False, False, False)
    chosen = step_options(torch.device("cpu"), amp="bf16", fused=True, augment_on="device")
    assert chosen.bf16 and chosen.fused and chosen.augment_on_device
    with pytest.raises(ValueError, match="amp must be one of"):
        step_options(torch.device("cpu"), amp="fp16")
    with pytest.raises(ValueError, match="augment_on must be one of"):
        step_options(torch.device("cpu"), augment_on="gpu")
