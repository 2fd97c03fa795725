"""`affmodels train --model gan`, `generate` and `eval-gan` on a tiny real export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from affmodels.checkpoint import load_checkpoint, save_checkpoint
from affmodels.gan.evaluate import evaluate_gan
from affmodels.checkpoint import load_gan
from affmodels.gan.train import GanTrainConfig, train_gan
from affmodels.train import TrainConfig, train
from tests.affmodels.training.test_train import assert_same_train_records
from cli.affmodels_app import app

runner = CliRunner()


def gan_config(tiny: dict[str, Path], out: Path, **kw) -> GanTrainConfig:
    base = GanTrainConfig(data=str(tiny["train"]), val=str(tiny["val"]), out=str(out), epochs=1, batch_size=8,
                          workers=0, seed=1, g_width=8, d_width=8, device="cpu")
    return replace(base, **kw)


def test_a_few_steps_write_a_grid_and_checkpoints(tiny, tmp_path: Path) -> None:
    result = train_gan(gan_config(tiny, tmp_path / "gan", max_steps=None))
    out = tmp_path / "gan"
    assert (out / "grid-epoch001.png").is_file() and (out / "last.pt").is_file() and (out / "best.pt").is_file()
    with Image.open(out / "grid-epoch001.png") as grid:
        assert grid.size[0] >= 2 * 32 and grid.size[1] >= 6 * 32  # source + targets; 6 fixed faces
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"d_loss", "g_loss", "g_cycle"} <= set(record["train"]) and "score" in record["val"]
    state = load_checkpoint(out / "last.pt")
    assert state["kind"] == "gan" and state["step"] == result.steps > 0
    assert set(state) == {"format", "kind", "config", "generator_config", "discriminator_config", "vocabulary",
                          "image_size", "generator", "discriminator", "optimizer_g", "optimizer_d", "step", "epoch",
                          "loader", "rng", "targets_rng", "history", "best", "epoch_totals"}  # the file's layout
    assert (record["selected_on"], record["best_epoch"]) == ("val.score", 1) == ("val.score", result.best_epoch)


def test_without_val_no_best_epoch_is_chosen_and_the_records_say_so(tiny, tmp_path: Path) -> None:
    """The discriminator's score on val chooses best.pt; without val none is chosen (once the
    generator's loss stood in, silently, though it says nothing of the faces)."""
    result = train_gan(gan_config(tiny, tmp_path / "gan", val=None, batch_size=32, max_steps=None))
    record = json.loads((tmp_path / "gan" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["val"] == {} and (record["selected_on"], record["best_epoch"]) == ("val.score", None)
    assert result.best_epoch is None and result.best_score is None
    assert not (tmp_path / "gan" / "best.pt").exists() and (tmp_path / "gan" / "last.pt").is_file()
    assert load_checkpoint(tmp_path / "gan" / "last.pt")["best"] is None


@pytest.mark.parametrize("extra", [{}, {"d_augment": True, "d_warmup_steps": 2}], ids=["plain", "augment-warmup"])
def test_resume_reproduces_the_same_next_steps(tiny, tmp_path: Path, extra: dict) -> None:
    train_gan(gan_config(tiny, tmp_path / "full", max_steps=6, **extra))
    train_gan(gan_config(tiny, tmp_path / "part", max_steps=3, **extra))
    train_gan(gan_config(tiny, tmp_path / "part", max_steps=6, resume=True, **extra))
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "part" / "last.pt")
    assert a["step"] == b["step"] == 6
    for net in ("generator", "discriminator"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)


def test_a_resumed_epoch_records_the_losses_of_all_its_steps(tiny, tmp_path: Path) -> None:
    train_gan(gan_config(tiny, tmp_path / "full", max_steps=None))
    steps = load_checkpoint(tmp_path / "full" / "last.pt")["step"]
    train_gan(gan_config(tiny, tmp_path / "part", max_steps=steps // 2))
    train_gan(gan_config(tiny, tmp_path / "part", max_steps=None, resume=True))
    assert_same_train_records(tmp_path / "full", tmp_path / "part")


def test_warmup_steps_train_only_the_discriminator(tiny, tmp_path: Path) -> None:
    train_gan(gan_config(tiny, tmp_path / "one", max_steps=1, d_warmup_steps=3))
    train_gan(gan_config(tiny, tmp_path / "three", max_steps=3, d_warmup_steps=3))
    train_gan(gan_config(tiny, tmp_path / "cold", max_steps=3))
    one, three, cold = (load_checkpoint(tmp_path / name / "last.pt") for name in ("one", "three", "cold"))
    assert three["optimizer_g"]["state"] == {}  # G's optimiser never stepped in the warm-up
    for key in one["generator"]:
        assert torch.equal(one["generator"][key], three["generator"][key]), key
    assert any(not torch.equal(three["generator"][k], v) for k, v in cold["generator"].items())
    assert any(not torch.equal(one["discriminator"][k], v) for k, v in three["discriminator"].items())


def test_generate_and_eval_gan_from_the_cli(tiny, tmp_path: Path) -> None:
    train_gan(gan_config(tiny, tmp_path / "gan", max_steps=2))
    train(TrainConfig(data=str(tiny["train"]), out=str(tmp_path / "mtl"), epochs=1, batch_size=16, workers=0,
                      width=8, device="cpu", max_steps=3))
    face = next((tiny["data"] / "videos").glob("*.mp4"))
    import av

    with av.open(str(face)) as c:
        frame = next(c.decode(video=0)).to_image()
    frame.save(tmp_path / "face.png")
    result = runner.invoke(app, ["generate", "--checkpoint", str(tmp_path / "gan" / "last.pt"),
                                 "--image", str(tmp_path / "face.png"), "--out", str(tmp_path / "gen"),
                                 "--valence", "0.6", "--arousal", "0.2", "--au", "AU12=1", "--expression", "happiness"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "gen" / "face_t00.png") as img:
        assert img.size == (32, 32)
    assert (tmp_path / "gen" / "face_grid.png").is_file()
    targets = tmp_path / "targets.csv"
    targets.write_text("valence,arousal,expression,AU1,AU12\n0.5,0.1,happiness,0,1\n-0.6,0.7,fear,1,0\n")
    result = runner.invoke(app, ["generate", "--checkpoint", str(tmp_path / "gan" / "last.pt"),
                                 "--image", str(tmp_path / "face.png"), "--out", str(tmp_path / "gen2"),
                                 "--targets", str(targets)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "gen2").iterdir()) == ["face_grid.png", "face_t00.png", "face_t01.png"]
    bad = runner.invoke(app, ["generate", "--checkpoint", str(tmp_path / "gan" / "last.pt"), "--image",
                              str(tmp_path / "face.png"), "--out", str(tmp_path / "gen3"), "--au", "AU99=1"])
    assert bad.exit_code != 0
    ident = runner.invoke(app, ["train-identity", "--data", str(tiny["train"]), "--val", str(tiny["val"]),
                                "--out", str(tmp_path / "identity.pt"), "--epochs", "1"])
    assert ident.exit_code == 0, ident.output
    scores = evaluate_gan(tmp_path / "gan" / "last.pt", tmp_path / "mtl" / "last.pt", tiny["val"], n=16, batch_size=8,
                          identity=tmp_path / "identity.pt", kid_subsets=5)
    for which in (scores.trained, scores.untrained, scores.copy):
        assert which.faces == 16 and 0 <= which.expr_accuracy <= 1
        assert which.kid_identity.subset_size == 16 and which.kid_random.subsets == 5
    assert scores.copy.identity.own_distance == pytest.approx(0, abs=1e-6)
    assert scores.trained.identity.own_distance > 0 and scores.identity_check is not None  # one subject: no triplet
    assert scores.reference >= scores.sources == 16
    assert "score" in scores.discriminator and scores.to_dict()["copy"]["faces"] == 16
    shown = runner.invoke(app, ["eval-gan", "--checkpoint", str(tmp_path / "gan" / "last.pt"), "--evaluator",
                                str(tmp_path / "mtl" / "last.pt"), "--data", str(tiny["val"]), "--n", "16",
                                "--identity", str(tmp_path / "identity.pt")])
    assert shown.exit_code == 0, shown.output
    assert "copy" in shown.output and "KID, identity features" in shown.output and "ordered right" in shown.output


def test_checkpoints_from_before_the_groupnorm_still_load(tiny, tmp_path: Path) -> None:
    train_gan(gan_config(tiny, tmp_path / "old", max_steps=1, d_norm="none"))
    state = load_checkpoint(tmp_path / "old" / "last.pt")
    del state["discriminator_config"]["norm"], state["discriminator_config"]["groups"]  # as older runs wrote it
    save_checkpoint(tmp_path / "old" / "last.pt", state)
    _, D, _ = load_gan(tmp_path / "old" / "last.pt")
    assert D.cfg.norm == "none" and not any(isinstance(m, torch.nn.GroupNorm) for m in D.trunk)


def test_target_labels_come_through_the_shard_reader(tiny, tmp_path: Path) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from affmodels.data import load_manifest
    from affmodels.data.errors import ShardError
    from affmodels.gan.train import label_arrays

    manifest = load_manifest(tiny["train"])
    labels = label_arrays(manifest)
    table = pq.read_table([tiny["train"] / s.path for s in manifest.shards][0])
    n = table.num_rows
    has_va = table["has_va"].to_numpy(zero_copy_only=False)
    assert np.array_equal(labels["va_mask"][:n], has_va) and labels["va_mask"].any()
    assert np.array_equal(labels["expr_mask"][:n], table["has_expr"].to_numpy(zero_copy_only=False))
    valence = table["valence"].to_numpy(zero_copy_only=False)
    assert np.allclose(labels["va"][:n, 0][has_va], valence[has_va]) and (labels["va"][:n][~has_va] == 0).all()
    assert (labels["expr"][:n][~labels["expr_mask"][:n]] == -1).all()
    assert len(labels["va"]) == sum(s.rows for s in manifest.shards)
    # a manifest that disagrees with its shard is refused, as training refuses it
    first = replace(manifest.shards[0], rows=manifest.shards[0].rows + 1)
    with pytest.raises(ShardError, match="rows but the manifest records"):
        label_arrays(replace(manifest, shards=(first, *manifest.shards[1:])))
