"""ABAW multi-task files and generic CSV / Parquet tables."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from affdata.errors import LabelFormatError
from affdata.formats import read_abaw_multitask, read_generic, write_abaw_task_file
from tests.affdata.formats.util import write

MT_HEADER = "image,valence,arousal,expression,AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26\n"
AUS12 = (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)


def test_multitask_groups_by_video_and_track(tmp_path):
    text = MT_HEADER + (
        "v1/00001.jpg,0.1,0.2,3,0,0,0,0,0,0,1,0,0,0,0,1\n"
        "v2_left/00010.jpg,-5,-5,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1\n"
        "v1/00002.jpg,-0.3,0.25,7,1,0,0,0,0,0,0,0,0,0,0,0\n"
        "v2_right/00010.jpg,0.5,0.5,4,0,0,0,0,0,0,0,0,0,0,0,0\n"
    )
    tables = read_abaw_multitask(write(tmp_path / "train.txt", text))
    assert [(t.video, t.track, t.n_lines) for t in tables] == [("v1", "main", 2), ("v2", "left", 1), ("v2", "right", 1)]
    v1, left, right = tables
    assert v1.frames.tolist() == [0, 1] and v1.lines.tolist() == [2, 4]
    assert v1.valence.tolist() == [0.1, -0.3] and v1.arousal.tolist() == [0.2, 0.25]
    assert v1.expr.tolist() == [3, 7] and v1.expr_order == (0, 1, 2, 3, 4, 5, 6, 7)
    assert v1.au_numbers == AUS12 and v1.au_present[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert left.frames.tolist() == [9] and math.isnan(left.valence[0]) and left.expr[0] == -1
    assert left.au_present.tolist() == [[-1] * 12]
    assert right.frames.tolist() == [9] and right.expr[0] == 4


def test_multitask_aus_shorthand_header(tmp_path):
    text = "image,valence,arousal,expression,aus\nclip/00003.png,0,0,0," + ",".join("1" * 12) + "\n"
    (t,) = read_abaw_multitask(write(tmp_path / "m.txt", text))
    assert t.au_numbers == AUS12 and t.frames.tolist() == [2] and t.au_present.sum() == 12


def test_multitask_columns_in_any_order(tmp_path):
    text = "image,AU12,expression,valence,arousal,AU1\nv/00001.jpg,1,4,0.5,-0.5,0\n"
    (t,) = read_abaw_multitask(write(tmp_path / "m.txt", text))
    assert t.au_numbers == (12, 1) and t.au_present.tolist() == [[1, 0]]
    assert (t.expr[0], t.valence[0], t.arousal[0]) == (4, 0.5, -0.5)


def test_multitask_to_per_task_file(tmp_path):
    text = MT_HEADER + "v/00002.jpg,0.312,-0.1,4," + ",".join(["0"] * 11 + ["1"]) + "\n"
    (t,) = read_abaw_multitask(write(tmp_path / "m.txt", text))
    out = tmp_path / "v.txt"
    write_abaw_task_file(out, t, "va", n_frames=3)
    assert out.read_text() == "valence,arousal\n-5,-5\n0.312,-0.1\n-5,-5\n"
    write_abaw_task_file(out, t, "au", n_frames=2)
    assert out.read_text().splitlines() == ["AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26",
                                            ",".join(["-1"] * 12), ",".join(["0"] * 11 + ["1"])]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("v1/00001.jpg,0.1,0.2,3," + ",".join("0" * 12), "duplicate frame 0 (also on line 2)"),
        ("v1/00000.jpg,0.1,0.2,3," + ",".join("0" * 12), "image numbers start at 1"),
        ("v1-00003.jpg,0.1,0.2,3," + ",".join("0" * 12), "is not '<video>/<number>.jpg'"),
        ("v1/00003.jpg,0.1,2,3," + ",".join("0" * 12), "arousal 2 outside [-1, 1]"),
        ("v1/00003.jpg,0.1,0.2,9," + ",".join("0" * 12), "expression 9 is not a class id"),
        ("v1/00003.jpg,0.1,0.2,3," + ",".join("0" * 11 + "5"), "AU26 5 not in {0, 1}"),
        ("v1/00003.jpg,0.1,0.2,3," + ",".join("0" * 11), "expected 16 values, got 15"),
    ],
)
def test_multitask_errors(tmp_path, row, reason):
    text = MT_HEADER + "v1/00001.jpg,0.1,0.2,3," + ",".join("0" * 12) + "\n" + row + "\n"
    p = write(tmp_path / "m.txt", text)
    with pytest.raises(LabelFormatError) as info:
        read_abaw_multitask(p)
    assert info.value.line == 3 and reason in info.value.reason and str(info.value).startswith(f"{p}:3: ")


def test_multitask_bad_header(tmp_path):
    p = write(tmp_path / "m.txt", "video,valence,arousal\nv/00001.jpg,0,0\n")
    with pytest.raises(LabelFormatError, match=":1: .*does not start with 'image'"):
        read_abaw_multitask(p)


# --- generic ---------------------------------------------------------------------------------


def test_generic_csv_by_convention(tmp_path):
    text = (
        "video,frame,valence,arousal,expression,AU01,AU12\n"
        "a,0,0.5,0.25,happy,1,0\n"
        "a,1,,,,,\n"
        "b,10,-5,-5,Surprise,-1,1\n"
        "a,2,0.1,0.2,3,0,1\n"
    )
    tables = read_generic(write(tmp_path / "g.csv", text))
    assert [(t.video, t.track, t.n_lines) for t in tables] == [("a", "main", 3), ("b", "main", 1)]
    a, b = tables
    assert a.frames.tolist() == [0, 1, 2] and a.lines.tolist() == [2, 3, 5]
    assert a.valence[0] == 0.5 and math.isnan(a.valence[1])
    assert a.expr.tolist() == [4, -1, 3]  # name, empty, id 3 in ABAW order (Fear)
    assert a.au_numbers == (1, 12) and a.au_present.tolist() == [[1, 0], [-1, -1], [0, 1]]
    assert math.isnan(b.valence[0]) and b.expr.tolist() == [6] and b.frames.tolist() == [10]


def test_generic_options_and_parquet(tmp_path):
    table = pa.table({
        "clip": ["x", "x", "x", "x"], "who": ["p0", "p0", "p1", "p1"], "idx": [1, 2, 1, 2],
        "V": [0.1, 0.2, 0.3, 0.4], "A": [0.0, 0.0, 0.0, 0.0], "emo": [1, 0, 6, 3],
        "smile": [1.0, 0.0, None, 1.0],
    })  # fmt: skip
    p = tmp_path / "labels.parquet"
    pq.write_table(table, p)
    tables = read_generic(p, video_col="clip", frame_col="idx", frame_base=1, valence_col="V", arousal_col="A",
                          expr_col="emo", expr_order="affectnet", au_cols={"smile": "AU12"}, track_col="who")  # fmt: skip
    assert [(t.video, t.track) for t in tables] == [("x", "p0"), ("x", "p1")]
    p0, p1 = tables
    assert p0.frames.tolist() == [0, 1] and p0.lines.tolist() == [1, 2]
    assert p0.expr.tolist() == [4, 0] and p1.expr.tolist() == [1, 6]  # AffectNet 1 Happy, 6 Anger, 3 Surprise
    assert p0.expr_order == (0, 4, 5, 6, 3, 2, 1, 8)
    assert p0.au_numbers == (12,) and p1.au_present.tolist() == [[-1], [1]]
    assert p1.valence.tolist() == [0.3, 0.4]


def test_generic_au_columns_need_known_names(tmp_path):
    with pytest.raises(LabelFormatError, match="bad AU column"):
        read_generic(write(tmp_path / "g.csv", "frame,smile\n0,1\n"), au_cols=["smile"])


def test_generic_without_frame_column_and_fixed_video(tmp_path):
    (t,) = read_generic(write(tmp_path / "g.csv", "valence,arousal\n0.1,0.2\n0.3,0.4\n"), video="clip9")
    assert (t.video, t.track, t.frames.tolist()) == ("clip9", "main", [0, 1])


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("frame,valence,arousal\n0,0.1,0.2\n0,0.1,0.2\n", 3, "duplicate frame 0"),
        ("frame,valence,arousal\n0,0.1,0.2\n-1,0.1,0.2\n", 3, "frame number -1"),
        ("frame,valence,arousal\n0,0.1,0.2\n1.5,0.1,0.2\n", 3, "frame number 1.5"),
        ("frame,valence,arousal\n0,0.1,0.2\n1,0.1,x\n", 3, "arousal 'x' is not a number"),
        ("frame,expression\n0,happy\n1,joyful\n", 3, "'joyful' is neither a class id nor an expression name"),
        ("frame,expression\n0,happy\n1,8\n", 3, "8 is not a class id 0..7"),
        ("frame,AU4\n0,1\n1,3\n", 3, "AU4 3 not in {0, 1}"),
        ("frame,valence\n0,0.1\n", 1, "only one of the valence and arousal"),
        ("frame,other\n0,0.1\n", 1, "no label columns"),
    ],
)
def test_generic_errors(tmp_path, text, line, reason):
    p = write(tmp_path / "g.csv", text)
    with pytest.raises(LabelFormatError) as info:
        read_generic(p)
    assert info.value.line == line and reason in info.value.reason and str(info.value).startswith(f"{p}:{line}: ")


def test_generic_explicit_missing_column_is_an_error(tmp_path):
    p = write(tmp_path / "g.csv", "frame,valence,arousal\n0,0.1,0.2\n")
    with pytest.raises(LabelFormatError, match="no column 'V'"):
        read_generic(p, valence_col="V")
    assert len(read_generic(p)) == 1  # default names that are absent are fine (no video column)


def test_generic_parquet_string_values_report_the_row(tmp_path):
    p = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"frame": [0, 1, 2], "valence": ["0.1", "0.2", "bad"], "arousal": [0.0, 0.0, 0.0]}), p)
    with pytest.raises(LabelFormatError) as info:
        read_generic(p)
    assert info.value.line == 3 and "'bad' is not a number" in info.value.reason
    assert np.isfinite(read_generic(p, valence_col="arousal", arousal_col="arousal")[0].valence).all()
