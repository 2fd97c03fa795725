"""`affmodels train --model cnn-gru`, then eval and predict, on the tiny real export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from affmodels.checkpoint import load_checkpoint, load_model
from affmodels.evaluate import evaluate_checkpoint
from affmodels.predict import PredictError, predict_export, predict_video
from affmodels.train import train
from tests.affmodels.training.test_train import _params, assert_same_train_records, config


def gru(tiny: dict[str, Path], out: Path, **kw):
    return config(tiny, out, model="cnn-gru", window=4, gru_hidden=8, **kw)


def test_resume_mid_epoch_continues_exactly(tiny, tmp_path: Path) -> None:
    full = train(gru(tiny, tmp_path / "full"))
    stop = full.steps // 2 + 1
    part = train(gru(tiny, tmp_path / "part", max_steps=stop))
    assert part.stopped_early and part.steps == stop
    state = load_checkpoint(tmp_path / "part" / "last.pt")
    assert state["loader"]["length"] == 4 and state["loader"]["batch_size"] == 4  # 16 frames: 4 windows a step
    resumed = train(gru(tiny, tmp_path / "part", resume=True))
    assert resumed.steps == full.steps
    a, b = _params(tmp_path / "full" / "last.pt"), _params(tmp_path / "part" / "last.pt")
    assert a.keys() == b.keys() and any(k.startswith("temporal.gru.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert_same_train_records(tmp_path / "full", tmp_path / "part")


def test_checkpoint_records_the_kind_and_window_and_predicts_every_frame(tiny, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = CliRunner().invoke(__import__("cli.affmodels_app", fromlist=["app"]).app,
                              ["train", "--data", str(tiny["train"]), "--val", str(tiny["val"]), "--out", str(out),
                               "--model", "cnn-gru", "--window", "4", "--epochs", "1", "--batch-size", "16",
                               "--workers", "0", "--threads", "1", "--json"])
    assert done.exit_code == 0, done.output
    state = load_checkpoint(out / "best.pt")
    assert state["model_config"]["temporal"] == "gru" and state["model_config"]["window"] == 4
    assert state["config"]["model"] == "cnn-gru"
    model, _ = load_model(out / "best.pt")
    assert model.cfg.kind == "cnn-gru" and model.temporal is not None
    counts = json.loads((tiny["val"] / "meta" / "info.json").read_text())["counts"]
    result = evaluate_checkpoint(out / "best.pt", tiny["val"], batch_size=32)
    assert result.metrics["va_count"] == counts["va"] and result.metrics["expr_count"] == counts["expr"]
    df = predict_export(out / "best.pt", tiny["val"], batch_size=32)
    assert len(df) == counts["rows"] and df[["video", "track", "frame"]].duplicated().sum() == 0
    with pytest.raises(PredictError, match="temporal model predicts an export in this process"):
        predict_export(out / "best.pt", tiny["val"], batch_size=32, workers=2)  # windows cross shards
    per_frame = predict_video(out / "best.pt", sorted((tiny["data"] / "videos").glob("*.mp4"))[0])
    assert per_frame["frame"].tolist() == list(range(len(per_frame))) and len(per_frame) > 50
