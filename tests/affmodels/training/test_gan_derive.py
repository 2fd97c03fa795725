"""Derived exports for the GAN augmentation loop: thinned labels, generated rows, trainable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from affmodels.data import AffectStream, load_manifest
from affmodels.gan.derive import generated_table, read_export, thin_table, write_export
from affmodels.gan.evaluate import CopyGenerator, generate_faces
from affmodels.gan.identity import load_faces
from affmodels.gan.targets import TargetSampler, label_arrays
from affmodels.train import TrainConfig, train


def test_thinned_and_augmented_exports_load_count_and_train(tiny, tmp_path: Path) -> None:
    table, like = read_export(tiny["train"])
    thin = thin_table(table, 0.25, seed=0)
    for task in ("va", "au", "expr"):
        before = int(np.asarray(table[f"has_{task}"]).sum())
        after = int(np.asarray(thin[f"has_{task}"]).sum())
        assert abs(after - 0.25 * before) <= 8, (task, before, after)  # one rounding per track
    assert pa.compute.all(pa.compute.or_(pa.compute.or_(thin["has_va"], thin["has_au"]), thin["has_expr"])).as_py()
    low = write_export(thin, like, tmp_path / "low", source="low")
    m = load_manifest(low, verify=True)
    assert m.counts["rows"] == len(thin) and m.counts["expr"] == int(np.asarray(thin["has_expr"]).sum())
    labels = label_arrays(m)
    assert int(labels["va_mask"].sum()) == m.counts["va"]  # nulls where thinned, as the reader sees them

    faces = load_faces(tiny["train"]).take(np.arange(12))
    sampler = TargetSampler(labels["va"], labels["au"], labels["au_mask"], labels["expr"], labels["expr_mask"],
                            n_classes=m.n_classes, va_mask=labels["va_mask"])
    target = sampler.sample(12, generator=torch.Generator().manual_seed(0))
    images = generate_faces(CopyGenerator(), faces.images, target)
    gen = generated_table(images, faces, target, thin.schema)
    aug = write_export(pa.concat_tables([thin, gen]), like, tmp_path / "aug", source="low+gan")
    m2 = load_manifest(aug, verify=True)
    assert m2.counts["rows"] == len(thin) + 12 and m2.counts["au"] == m.counts["au"] + 12
    back = load_faces(aug)
    assert (back.images[-12:].int() - images.int()).abs().float().mean() < 4  # JPEG at quality 90
    assert np.array_equal(back.expr[-12:], target.expr.numpy())
    rows = sum(len(b["image"]) for b in AffectStream(aug, shuffle=False, batch_size=16))
    assert rows == m2.counts["rows"]
    result = train(TrainConfig(data=str(aug), out=str(tmp_path / "run"), epochs=1, batch_size=16, workers=0,
                               width=8, device="cpu", max_steps=2))
    assert result.steps == 2
