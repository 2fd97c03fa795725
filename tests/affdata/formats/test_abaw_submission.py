"""ABAW prediction files: the filling rule (known values) and the challenge's file rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affdata.errors import LabelFormatError
from affdata.formats import LabelTable, write_abaw_task_file
from affdata.formats.abaw_submission import check_submission_file, check_submission_folder, fill_track


def _table(frames, **cols) -> LabelTable:
    frames = np.asarray(frames, dtype=np.int64)
    return LabelTable(path="p", video="v", track="main", frames=frames, lines=frames + 2, n_lines=frames.size,
                      kind="model", **cols)


def test_va_is_linear_in_time_and_held_at_the_ends() -> None:
    t = _table([2, 6], valence=np.array([0.2, 0.6]), arousal=np.array([-0.4, 0.4]))
    out = fill_track(t, "va", 9)
    assert out.frames.tolist() == list(range(9))
    np.testing.assert_allclose(out.valence, [0.2, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6, 0.6])
    np.testing.assert_allclose(out.arousal, [-0.4, -0.4, -0.4, -0.2, 0.0, 0.2, 0.4, 0.4, 0.4])


def test_classes_take_the_nearest_frame_earlier_on_a_tie_unsorted_input() -> None:
    t = _table([7, 1, 4], expr=np.array([5, 3, 0], dtype=np.int16), expr_order=(0, 1, 2, 3, 4, 5, 6))
    out = fill_track(t, "expr", 10)
    # frames 0-2 -> frame 1; 3 is nearer to 4 than to 1; 5 -> 4; 6 and after -> 7
    assert out.expr.tolist() == [3, 3, 3, 0, 0, 0, 5, 5, 5, 5]
    tie = fill_track(_table([0, 2], expr=np.array([1, 2], dtype=np.int16)), "expr", 3)
    assert tie.expr.tolist() == [1, 1, 2]  # frame 1 is as near to 0 as to 2: the earlier wins


def test_each_au_is_filled_from_its_own_annotated_frames() -> None:
    present = np.array([[1, -1], [0, 1]], dtype=np.int8)  # AU2 unknown on frame 0
    out = fill_track(_table([0, 3], au_numbers=(1, 2), au_present=present), "au", 5)
    assert out.au_present.tolist() == [[1, 1], [1, 1], [0, 1], [0, 1], [0, 1]]


def test_a_track_without_any_prediction_is_an_error() -> None:
    t = _table([0, 1], expr=np.array([-1, -1], dtype=np.int16))
    with pytest.raises(LabelFormatError, match="no EXPR prediction"):
        fill_track(t, "expr", 4)


def _write(tmp_path: Path, frames, n: int, task: str = "va") -> Path:
    path = tmp_path / "VA_Set" / "v.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    t = _table(frames, valence=np.linspace(-0.5, 0.5, len(frames)), arousal=np.zeros(len(frames)))
    write_abaw_task_file(path, t, task, n_frames=n)
    return path


def test_the_check_refuses_missing_frames_wrong_counts_and_headers(tmp_path: Path) -> None:
    gappy = _write(tmp_path, [0, 2], 3)
    assert gappy.read_text().splitlines()[2] == "-5,-5"
    with pytest.raises(LabelFormatError, match=r"v.txt:3: frame 1 has no prediction"):
        check_submission_file(gappy, "va")
    full = _write(tmp_path, [0, 1, 2], 3)
    assert check_submission_file(full, "va", n_frames=3, header="valence,arousal") == 3
    with pytest.raises(LabelFormatError, match="3 frame lines; the video has 4 frames"):
        check_submission_file(full, "va", n_frames=4)
    with pytest.raises(LabelFormatError, match="header 'valence,arousal' is not"):
        check_submission_file(full, "va", header="arousal,valence")


def _write_track(out: Path, frames: list[int], classes: list[str], n: int, fill: bool) -> None:
    """What ``affdata export labels --fill`` writes for one track of model predictions."""
    f = np.asarray(frames, dtype=np.int64)
    tables = {"va": _table(f, valence=np.linspace(-1, 1, f.size), arousal=np.linspace(1, -1, f.size)),
              "au": _table(f, au_numbers=(12,), au_present=np.array([[1], [0], [1]], dtype=np.int8)[:f.size]),
              "expr": _table(f, expr=np.array([4, 0, 1], dtype=np.int16)[:f.size], expr_order=tuple(range(7)))}
    for task, table in tables.items():
        path = out / {"va": "VA_Set", "au": "AU_Set", "expr": "EXPR_Set"}[task] / "vid_left.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_abaw_task_file(path, fill_track(table, task, n) if fill else table, task,
                             header=",".join(classes) if task == "expr" else None, n_frames=n)


def test_prediction_files_have_a_value_on_every_frame(tmp_path: Path) -> None:
    classes = ["neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    _write_track(tmp_path / "abaw", [3, 5, 9], classes, 12, fill=True)
    assert check_submission_folder(tmp_path / "abaw", frame_counts={"vid": 12}) == {"va": 1, "au": 1, "expr": 1}
    expr = (tmp_path / "abaw" / "EXPR_Set" / "vid_left.txt").read_text().splitlines()
    assert expr[0] == ",".join(classes) and len(expr) == 13
    assert expr[1:] == ["4"] * 5 + ["0"] * 3 + ["1"] * 4  # 0-4 -> frame 3 (4 ties), 5-7 -> 5 (7 ties), 8+ -> 9
    va = np.loadtxt(tmp_path / "abaw" / "VA_Set" / "vid_left.txt", delimiter=",", skiprows=1)
    np.testing.assert_allclose(va[:, 0], [-1, -1, -1, -1, -0.5, 0, 0.25, 0.5, 0.75, 1, 1, 1])
    # without filling: the -1 of an unannotated frame, which the check refuses
    _write_track(tmp_path / "raw", [3, 5, 9], classes, 12, fill=False)
    assert (tmp_path / "raw" / "EXPR_Set" / "vid_left.txt").read_text().splitlines()[1] == "-1"
    with pytest.raises(LabelFormatError, match="has no prediction"):
        check_submission_folder(tmp_path / "raw")
