"""The CLI tests share the tiny real export of the training tests (built once per session) and
small runs made from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from affdata.db import Store
from affdata.export import export_part
from affmodels.gan.train import GanTrainConfig, train_gan
from affmodels.train import TrainConfig, train
from tests.affmodels.training.conftest import tiny  # noqa: F401  (a fixture, registered by import)


@pytest.fixture(scope="session")
def runs(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    """A one-step multi-task run, a one-step GAN run, an export without AU labels and a face."""
    root = tmp_path_factory.mktemp("cli-errors")
    train(TrainConfig(data=str(tiny["train"]), out=str(root / "mtl"), epochs=1, batch_size=16, workers=0, width=8,
                      device="cpu", max_steps=1))
    train_gan(GanTrainConfig(data=str(tiny["train"]), out=str(root / "gan"), epochs=1, batch_size=8, workers=0,
                             g_width=8, d_width=8, device="cpu", max_steps=1))
    with Store(str(tiny["db"])) as store:
        export_part(store, split="official", part="val", out=root / "noau", size=32, tasks=["va", "expr"])
    Image.new("RGB", (48, 40), (120, 90, 60)).save(root / "face.png")
    return {"runs": root, "noau": root / "noau", "face": root / "face.png"}
