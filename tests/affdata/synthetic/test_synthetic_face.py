"""Each AU, valence and arousal has its own visible effect on the drawn face (no video)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from affdata.synthetic.affect import RENDER_AUS
from affdata.synthetic.face import FaceFrame, Identity, face_boxes, sample_identity
from affdata.vocab import AU_SETS

FACE = 120  # px, a typical face; drawn at 2x and reduced like the renderer


def _draw(ident: Identity, aus: dict[int, float] | None = None, valence: float = 0.0,
          arousal: float = 0.0, smirk: float = 0.0) -> np.ndarray:
    vec = np.zeros(len(RENDER_AUS), dtype=np.float32)
    for au, value in (aus or {}).items():
        vec[RENDER_AUS.index(au)] = value
    img = Image.new("RGB", (320, 320), (90, 120, 90))
    FaceFrame(ImageDraw.Draw(img), ident, 160, 160, 2 * FACE, 0.0).render(
        vec, valence, arousal, smirk, 0.0, (60, 60, 160))
    return np.asarray(img.reduce(2), dtype=np.float32)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).max(axis=2) > 25


@pytest.fixture(scope="module", params=[0, 1, 2])
def ident(request: pytest.FixtureRequest) -> Identity:
    return sample_identity(np.random.default_rng(request.param))


def test_every_labelled_au_has_its_own_visible_effect(ident: Identity) -> None:
    neutral = _draw(ident)
    effects = {}
    for au in sorted(set(AU_SETS["abaw"]) | set(AU_SETS["abaw2020"])):
        changed = _changed(_draw(ident, {au: 1.0}), neutral)
        assert changed.sum() >= 15, f"AU{au} barely changes the face"
        assert not _changed(_draw(ident, {au: 0.0}), neutral).any()
        effects[au] = changed
    for a in effects:
        for b in effects:
            if a < b:
                overlap = (effects[a] & effects[b]).sum() / (effects[a] | effects[b]).sum()
                assert overlap < 0.8, f"AU{a} and AU{b} look the same"


def test_valence_bends_the_mouth_and_arousal_opens_the_eyes(ident: Identity) -> None:
    neutral = _draw(ident)
    rows = {}
    for name, kwargs in (("valence", {"valence": 0.8}), ("valence-", {"valence": -0.8}),
                         ("arousal", {"arousal": 0.8}), ("arousal-", {"arousal": -0.8})):
        changed = _changed(_draw(ident, **kwargs), neutral)
        assert changed.sum() >= 10, name
        rows[name] = np.flatnonzero(changed.any(axis=1))
    centre = 160 // 2
    assert rows["valence"].min() > centre + 0.15 * FACE  # only the mouth moves
    assert rows["arousal"].max() < centre + 0.05 * FACE  # eyes and brows
    assert rows["valence-"].min() > centre + 0.15 * FACE


def test_face_box_is_the_neutral_face_oval(ident: Identity) -> None:
    args = [np.array([100.0]), np.array([120.0]), np.array([float(FACE)]), np.array([0.05])]
    box = face_boxes(ident, *args)[0]
    assert FACE - 2 <= box[3] <= FACE + 4
    assert 0.6 * FACE < box[2] < 0.85 * FACE
