"""``generate`` reads a photo with the export's own crop and resize, so its input matches training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from affdata.export.crop import crop_resize, whole_frame_box
from affmodels.gan.generate import load_face


def test_a_photo_is_cut_and_resized_exactly_as_the_export_cuts_a_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)  # wide: the centred square is cut out
    Image.fromarray(frame).save(tmp_path / "photo.png")
    face = load_face(tmp_path / "photo.png", 32)
    exported = crop_resize(frame, whole_frame_box(130, 90, folder=False), 32)
    assert face.shape == (1, 3, 32, 32) and face.dtype == torch.uint8
    assert torch.equal(face[0].permute(1, 2, 0), torch.from_numpy(exported))
    # Pillow's own resize (what generate used before) rounds differently on noise like this
    pillow = np.asarray(Image.fromarray(frame).crop((20, 0, 110, 90)).resize((32, 32), Image.BILINEAR))
    assert not np.array_equal(pillow, exported)
