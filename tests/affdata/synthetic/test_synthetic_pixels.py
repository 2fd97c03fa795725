"""Labels are visible in the decoded pixels, and subjects look different."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from affdata.synthetic import DatasetSummary, plan_dataset
from affdata.synthetic.dataset import track_affect
from affdata.vocab import AU_SETS
from tests.affdata.synthetic.util import (
    annotation_files,
    boxes_by_track,
    decode,
    read_labels,
    stem,
)

CROP = 64


@dataclass
class Crops:
    rgb: np.ndarray  # (n, CROP, CROP, 3) float32 face crops resized from boxes.csv boxes
    valence: np.ndarray
    au: dict[int, np.ndarray]  # AU -> presence per crop
    subject: np.ndarray
    track: np.ndarray  # one id per (video, person)

    def region(self, y0: float, y1: float, x0: float, x1: float) -> np.ndarray:
        """Mean grey level of a box-relative region over the mid-face (cheeks and nose) level,
        less its mean over the person's track, so that skin, lighting and identity cancel out
        and only what changes within a clip is left."""
        grey = self.rgb.mean(axis=3)
        part = grey[:, int(y0 * CROP):int(y1 * CROP), int(x0 * CROP):int(x1 * CROP)].mean((1, 2))
        ratio = part / grey[:, int(0.45 * CROP):int(0.6 * CROP), int(0.2 * CROP):int(0.8 * CROP)].mean((1, 2))
        means = np.bincount(self.track, ratio) / np.bincount(self.track)
        return ratio - means[self.track]


@pytest.fixture(scope="module")
def crops(rendered: DatasetSummary) -> Crops:
    """Every person-frame of the rendered fixture, cropped by its true box. Labels for all
    frames come from the generator's trajectories, checked first against the written files."""
    out = rendered.out
    plan = plan_dataset(3, 8.0, 3)
    boxes = boxes_by_track(out)
    va_files, au_files = annotation_files(out, "VA"), annotation_files(out, "AU")
    rgb, valence, subject, track_id = [], [], [], []
    au: dict[int, list[np.ndarray]] = {a: [] for a in AU_SETS["abaw2020"]}
    for video in plan.videos:
        frames = decode(out / "videos" / f"{video.name}.mp4")
        assert len(frames) == video.frames
        for track in video.tracks:
            affect = track_affect(plan, video, track)
            name = stem(video.name, track.track)
            written = read_labels(va_files[name])[1]
            seen = written[:, 0] != -5
            assert np.array_equal(written[seen], np.stack([affect.valence, affect.arousal], 1)[seen])
            presence = affect.au_labels(AU_SETS["abaw2020"])
            if name in au_files:
                rows = read_labels(au_files[name])[1]
                seen = rows[:, 0] != -1
                assert np.array_equal(rows[seen].astype(bool), presence[seen])
            for k, frame in enumerate(frames):
                x, y, w, h = boxes[video.name, track.track][k]
                crop = Image.fromarray(frame[y:y + h, x:x + w]).resize((CROP, CROP), Image.BILINEAR)
                rgb.append(np.asarray(crop, dtype=np.float32))
            valence.append(affect.valence)
            subject += [track.subject] * video.frames
            track_id += [track.index] * video.frames
            for i, a in enumerate(AU_SETS["abaw2020"]):
                au[a].append(presence[:, i])
    return Crops(np.stack(rgb), np.concatenate(valence),
                 {a: np.concatenate(v) for a, v in au.items()}, np.array(subject), np.array(track_id))


def _effect(stat: np.ndarray, present: np.ndarray) -> float:
    """Standardised mean difference (present - absent)."""
    assert 20 <= present.sum() <= len(present) - 20, "fixture must show the AU on and off"
    pooled = np.sqrt((stat[present].var() + stat[~present].var()) / 2)
    return float((stat[present].mean() - stat[~present].mean()) / pooled)


def test_open_lips_darken_the_mouth(crops: Crops) -> None:
    mouth = crops.region(0.66, 0.86, 0.3, 0.7)
    assert np.corrcoef(mouth, crops.au[25])[0, 1] < -0.3
    assert _effect(mouth, crops.au[25]) < -1.0


def test_inner_brow_raise_wrinkles_the_forehead(crops: Crops) -> None:
    forehead = crops.region(0.15, 0.25, 0.38, 0.62)
    assert _effect(forehead, crops.au[1]) < -1.0


def test_lip_corner_pull_deepens_the_folds(crops: Crops) -> None:
    """AU12 darkens the nose-to-mouth-corner folds."""
    folds = crops.region(0.6, 0.72, 0.22, 0.36) + crops.region(0.6, 0.72, 0.64, 0.78)
    assert np.corrcoef(folds, crops.au[12])[0, 1] < -0.3
    assert _effect(folds, crops.au[12]) < -1.0


def test_subjects_look_different(crops: Crops) -> None:
    """Mean cheek colour differs between subjects by more than it varies within one."""
    cheek = crops.rgb[:, int(0.5 * CROP):int(0.6 * CROP), int(0.15 * CROP):int(0.3 * CROP)].mean((1, 2))
    means = {s: cheek[crops.subject == s].mean(axis=0) for s in np.unique(crops.subject)}
    spread = max(cheek[crops.subject == s].std(axis=0).max() for s in means)
    gaps = [np.abs(means[a] - means[b]).max() for a in means for b in means if a < b]
    assert len(means) == 3 and max(gaps) > 3 * spread and max(gaps) > 15
