"""ABAW per-task files: parsing, sentinels, header variants, the writer, and scan_abaw."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affdata.errors import LabelFormatError, VocabularyError
from affdata.formats import (
    LabelTable,
    read_abaw_task_file,
    scan_abaw,
    write_abaw_task_file,
)
from tests.affdata.formats.util import write

EXPR8 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"


def test_va_values_and_sentinel(tmp_path):
    p = write(tmp_path / "video7.txt", "valence,arousal\n0.312,-0.1\n-5,-5\n1,-1\n")
    t = read_abaw_task_file(p, "va")
    assert (t.video, t.track, t.kind, t.n_lines) == ("video7", "main", "human", 3)
    assert t.frames.tolist() == [0, 1, 2] and t.lines.tolist() == [2, 3, 4]
    assert t.frames.dtype == np.int64 and t.lines.dtype == np.int64
    assert t.valence.dtype == np.float64
    assert t.valence[0] == 0.312 and t.arousal[0] == -0.1  # exact float64 parse
    assert math.isnan(t.valence[1]) and math.isnan(t.arousal[1])
    assert t.valence[2] == 1.0 and t.arousal[2] == -1.0
    assert t.au_present is None and t.expr is None


def test_au_values_and_sentinel(tmp_path):
    p = write(tmp_path / "v_right.txt", "AU1,AU2,AU4,AU6,AU12,AU15,AU20,AU25\n0,1,0,0,1,0,0,1\n-1,-1,-1,-1,-1,-1,-1,-1\n")
    t = read_abaw_task_file(p, "au")
    assert (t.video, t.track) == ("v", "right")
    assert t.au_numbers == (1, 2, 4, 6, 12, 15, 20, 25)
    assert t.au_present.dtype == np.int8
    assert t.au_present.tolist() == [[0, 1, 0, 0, 1, 0, 0, 1], [-1] * 8]
    assert t.au_intensity is None


def test_expr_header_order_and_sentinel(tmp_path):
    # a file whose class order differs from the canonical one: ids are mapped through the header
    p = write(tmp_path / "x_left.txt", "Happiness,Neutral,Anger\n0\n1\n-1\n2\n")
    t = read_abaw_task_file(p, "expr")
    assert t.expr_order == (4, 0, 1)
    assert t.expr.dtype == np.int16
    assert t.expr.tolist() == [4, 0, -1, 1]


@pytest.mark.parametrize(
    "header",
    ["AU1,AU2,AU4", "AU01,AU02,AU04", "AU1, AU2, AU4", "AU1,AU2,AU4 ", " AU01 , AU2,au4", "\ufeffAU1,AU2,AU4"],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_au_header_variants(tmp_path, header, newline):
    p = write(tmp_path / "a.txt", f"{header}\n1,0,1\n0,0,0\n", newline=newline)
    t = read_abaw_task_file(p, "au")
    assert t.au_numbers == (1, 2, 4)
    assert t.au_present.tolist() == [[1, 0, 1], [0, 0, 0]]


@pytest.mark.parametrize("header", ["valence,arousal", "Valence, Arousal", "valence,arousal ", "arousal,valence"])
def test_va_header_variants(tmp_path, header):
    p = write(tmp_path / "a.txt", f"{header}\n0.5, -0.25\r\n", newline="\r\n")
    t = read_abaw_task_file(p, "va")
    if header.startswith("arousal"):
        assert (t.valence[0], t.arousal[0]) == (-0.25, 0.5)
    else:
        assert (t.valence[0], t.arousal[0]) == (0.5, -0.25)


def test_expr_7_class_header_with_spaces(tmp_path):
    p = write(tmp_path / "a.txt", "Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise \n6\n0\n")
    t = read_abaw_task_file(p, "expr")
    assert t.expr_order == (0, 1, 2, 3, 4, 5, 6)
    assert t.expr.tolist() == [6, 0]


def test_trailing_blank_lines_are_not_frames(tmp_path):
    p = write(tmp_path / "a.txt", "valence,arousal\n0.1,0.2\n0.3,0.4\n\n\n")
    assert read_abaw_task_file(p, "va").n_lines == 2


def test_header_only_file_has_no_rows(tmp_path):
    t = read_abaw_task_file(write(tmp_path / "a.txt", "AU1,AU2\n"), "au")
    assert t.n_lines == 0 and t.au_present.shape == (0, 2)


@pytest.mark.parametrize(
    ("task", "text", "line", "reason"),
    [
        ("va", "valence,arousal\n0.1,0.2\n1.7,0.1\n", 3, "valence 1.7 outside [-1, 1]"),
        ("va", "valence,arousal\n0.1,0.2\n0.1,-1.01\n", 3, "arousal -1.01 outside [-1, 1]"),
        ("va", "valence,arousal\n0.1,0.2\n-4,0.1\n", 3, "valence -4 outside [-1, 1]"),
        ("va", "valence,arousal\n0.1,0.2\n0.1,abc\n", 3, "arousal 'abc' is not a number"),
        ("va", "valence,arousal\n0.1,0.2\n0.1\n", 3, "expected 2 values, got 1"),
        ("va", "valence,arousal\n0.1,0.2\n0.1,0.2,0.3\n", 3, "expected 2 values, got 3"),
        ("va", "valence,arousal\n0.1,0.2\n\n0.1,0.2\n", 3, "empty line"),
        ("va", "valence,arousal\n0.1,0.2\nnan,0.2\n", 3, "valence is not a number"),
        ("va", "valence,arousal\n0.1,\n", 2, "arousal is empty"),
        ("va", "valence,dominance\n0.1,0.2\n", 1, "is not 'valence,arousal'"),
        ("va", "0.1,0.2\n0.1,0.2\n", 1, "missing header"),
        ("au", "AU1,AU2\n0,1\n2,0\n", 3, "AU1 2 not in {0, 1}"),
        ("au", "AU1,AU2\n0,1\n0,0.5\n", 3, "AU2 0.5 not in {0, 1}"),
        ("au", "AU1,AU99\n0,1\n", 1, "unknown action unit AU99"),
        ("au", "AU1,AU01\n0,1\n", 1, "repeated column"),
        ("au", "AU1,,AU2\n0,1,1\n", 1, "empty column name"),
        ("expr", EXPR8 + "\n3\n8\n", 3, "expression 8 is not a class id 0..7"),
        ("expr", EXPR8 + "\n3\n2.5\n", 3, "expression 2.5 is not a class id"),
        ("expr", EXPR8 + "\n3\n-2\n", 3, "expression -2 is not a class id"),
        ("expr", EXPR8 + "\n3\n\n4\n", 3, "empty line"),
        ("expr", "Neutral,Joyful\n0\n", 1, "unknown expression 'Joyful'"),
        ("expr", "", 1, "missing header"),
    ],
)
def test_bad_files_name_file_line_and_reason(tmp_path, task, text, line, reason):
    p = write(tmp_path / "VA_Set" / "x.txt", text)
    with pytest.raises(LabelFormatError) as info:
        read_abaw_task_file(p, task)
    err = info.value
    assert err.line == line
    assert str(err).startswith(f"{p}:{line}: ")
    assert reason in err.reason
    assert "\n" not in str(err)


def test_first_of_several_errors_wins(tmp_path):
    p = write(tmp_path / "a.txt", "valence,arousal\n0.1,0.2\n0.1,3\n9,0.1\n")
    with pytest.raises(LabelFormatError) as info:
        read_abaw_task_file(p, "va")
    assert info.value.line == 3 and "arousal 3" in info.value.reason


def test_unknown_task_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        read_abaw_task_file(write(tmp_path / "a.txt", "valence,arousal\n"), "dominance")


# --- writer ----------------------------------------------------------------------------------

CANONICAL = {
    "va": "valence,arousal\n0.312,-0.1\n-5,-5\n0.0,1.0\n-0.057,0.5\n-1.0,0.999\n",
    "au": "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26\n"
    + "0,1,0,0,0,0,1,0,0,0,1,1\n-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1\n1,1,1,1,1,1,1,1,1,1,1,1\n",
    "expr": EXPR8 + "\n0\n7\n-1\n4\n4\n",
}


@pytest.mark.parametrize("task", ["va", "au", "expr"])
def test_canonical_file_round_trips_byte_for_byte(tmp_path, task):
    src = write(tmp_path / "in.txt", CANONICAL[task])
    t = read_abaw_task_file(src, task)
    out = tmp_path / "out.txt"
    write_abaw_task_file(out, t, task, n_frames=t.n_lines)
    assert out.read_bytes() == src.read_bytes()


def test_writer_keeps_a_given_header_and_the_file_class_order(tmp_path):
    text = "Happiness, Neutral, Anger\n0\n1\n-1\n2\n"
    t = read_abaw_task_file(write(tmp_path / "in.txt", text), "expr")
    out = tmp_path / "out.txt"
    write_abaw_task_file(out, t, "expr", header="Happiness, Neutral, Anger", n_frames=4)
    assert out.read_text() == text
    write_abaw_task_file(out, t, "expr", n_frames=4)  # default header: the table's class order
    assert out.read_text() == "Happiness,Neutral,Anger\n0\n1\n-1\n2\n"
    write_abaw_task_file(out, t, "expr", header=EXPR8, n_frames=4)  # ids converted to ABAW order
    assert out.read_text().splitlines()[1:] == ["4", "0", "-1", "1"]


def test_writer_fills_unlabelled_frames_with_sentinels(tmp_path):
    t = LabelTable(
        path="mem", video="v", track="main", frames=np.array([1, 3]), lines=np.array([2, 3]),
        valence=np.array([0.25, np.nan]), arousal=np.array([-0.5, 0.1]),
        au_numbers=(12, 1), au_present=np.array([[1, 0], [0, -1]], dtype=np.int8),
        expr=np.array([8, 2], dtype=np.int16), expr_order=(0, 1, 2, 3, 4, 5, 6, 7, 8), n_lines=2,
    )  # fmt: skip
    out = tmp_path / "o.txt"
    write_abaw_task_file(out, t, "va", n_frames=5)
    assert out.read_text() == "valence,arousal\n-5,-5\n0.25,-0.5\n-5,-5\n-5,0.1\n-5,-5\n"
    write_abaw_task_file(out, t, "au", header="AU1,AU12", n_frames=4)
    assert out.read_text() == "AU1,AU12\n-1,-1\n0,1\n-1,-1\n-1,0\n"
    with pytest.raises(VocabularyError, match="Contempt"):
        write_abaw_task_file(out, t, "expr", header=EXPR8, n_frames=4)
    with pytest.raises(LabelFormatError, match="outside the video's 3 frames"):
        write_abaw_task_file(out, t, "va", n_frames=3)
    with pytest.raises(VocabularyError, match="AU2"):
        write_abaw_task_file(out, t, "au", header="AU1,AU2", n_frames=4)
    t.expr = None
    with pytest.raises(LabelFormatError, match="mem: has no expression labels to write"):
        write_abaw_task_file(out, t, "expr", n_frames=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.tuples(st.floats(-1, 1, allow_nan=False), st.floats(-1, 1, allow_nan=False)),
            st.just((None, None)),
        ),
        max_size=40,
    )
)
def test_any_float_round_trips_exactly(tmp_path, rows):
    text = "valence,arousal\n" + "".join(
        "-5,-5\n" if v is None else f"{v!r},{a!r}\n" for v, a in rows
    )
    src = write(tmp_path / "rt.txt", text)
    t = read_abaw_task_file(src, "va")
    for i, (v, a) in enumerate(rows):
        if v is not None:
            assert t.valence[i] == v and t.arousal[i] == a
    out = tmp_path / "rt_out.txt"
    write_abaw_task_file(out, t, "va", n_frames=len(rows))
    assert out.read_bytes() == src.read_bytes()


# --- scan ------------------------------------------------------------------------------------


def test_scan_abaw_finds_tasks_parts_and_tracks(tmp_path):
    root = tmp_path / "release"
    for rel in [
        "annotations/VA_Set/Training_Set/1-30-1280x720.txt",
        "annotations/VA_Set/Validation_Set/video5_left.txt",
        "annotations/VA_Set/Validation_Set/video5_right.txt",
        "annotations/EXPR_Set/Train_Set/a.txt",
        "annotations/au_set/test_set/b.txt",
        "annotations/AU_Detection_Challenge/Validation_Set/c.txt",
        "annotations/VA_Set/Training_Set/notes.md",
        "annotations/VA_Set/Other_Set/ignored.txt",
        "cropped_aligned/1-30-1280x720/00001.jpg",
    ]:
        write(root / rel, "x\n")
    found = scan_abaw(root)
    got = [(f.task, f.part, f.video, f.track, f.path.name) for f in found]
    assert got == [
        ("va", "train", "1-30-1280x720", "main", "1-30-1280x720.txt"),
        ("va", "val", "video5", "left", "video5_left.txt"),
        ("va", "val", "video5", "right", "video5_right.txt"),
        ("au", "val", "c", "main", "c.txt"),
        ("au", "test", "b", "main", "b.txt"),
        ("expr", "train", "a", "main", "a.txt"),
    ]
    assert all(f.path.is_file() for f in found)
    assert [f.path.name for f in scan_abaw(root / "annotations" / "VA_Set")] == [
        "1-30-1280x720.txt", "video5_left.txt", "video5_right.txt"]  # fmt: skip


def test_scan_abaw_missing_root(tmp_path):
    with pytest.raises(LabelFormatError, match="not a folder"):
        scan_abaw(tmp_path / "nope")


def test_negative_zero_round_trips(tmp_path):
    """np.unique folds -0.0 into 0.0; the writer keeps the sign the file had."""
    src = write(tmp_path / "z.txt", "valence,arousal\n-0.0,0.0\n0.0,-0.0\n-5,-5\n")
    t = read_abaw_task_file(src, "va")
    out = tmp_path / "z_out.txt"
    write_abaw_task_file(out, t, "va", n_frames=3)
    assert out.read_bytes() == src.read_bytes()
