"""OpenFace and py-feat output (real files from shared/data), and the format sniffer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from affdata.errors import LabelFormatError
from affdata.formats import detect_format, read_labels, read_openface, read_pyfeat
from tests.affdata.formats.util import write

OPENFACE_R = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
PYFEAT_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43)
FACSVATAR = {"demo": 490, "jt": 475, "head_test": 715, "2people_60fps_p0": 1801, "2people_60fps_p1": 1801}


@pytest.mark.parametrize(("name", "rows"), FACSVATAR.items())
def test_openface2_reduced_exports(annotations, name, rows):
    path = annotations / f"facsvatar__openface_clean_{name}.csv"
    (t,) = read_openface(path)
    assert (t.video, t.track, t.kind) == (path.stem, "main", "model")
    assert t.n_lines == rows and len(t) == rows
    assert t.frames.tolist() == list(range(rows))  # these exports already count from 0
    assert t.au_numbers == OPENFACE_R
    assert t.au_present is None  # only AUxx_r columns: presence is not invented
    assert t.au_intensity.shape == (rows, 17) and t.au_intensity.dtype == np.float64
    ok = t.au_intensity[~np.isnan(t.au_intensity)]
    assert ok.min() >= 0 and ok.max() <= 5
    ref = pd.read_csv(path)
    np.testing.assert_array_equal(t.au_intensity[:, 0], ref["AU01_r"].to_numpy())
    assert t.valence is None and t.expr is None


def test_openface_empty_cells_are_missing(annotations):
    (t,) = read_openface(annotations / "facsvatar__openface_clean_jt.csv")
    assert np.isnan(t.au_intensity[-1]).all() and not np.isnan(t.au_intensity[:-1]).any()


def test_openface_old_layout_with_spaced_header(annotations):
    path = annotations / "pyfeat__OpenFace_Test.csv"
    (t,) = read_openface(path, video="clip")
    assert (t.video, t.track, t.n_lines) == ("clip", "main", 100)
    assert t.frames.tolist() == list(range(100))  # OpenFace frame 1 is video frame 0
    assert t.au_numbers == OPENFACE_R + (28,)  # AU28 has only a _c column
    assert np.isnan(t.au_intensity[:, -1]).all()
    assert set(np.unique(t.au_present).tolist()) <= {0, 1}
    ref = pd.read_csv(path, skipinitialspace=True)
    assert t.au_present[:, OPENFACE_R.index(25)].tolist() == ref["AU25_c"].astype(int).tolist()
    assert t.au_intensity[:, 0].tolist() == ref["AU01_r"].tolist()


def test_openface_face_ids_success_and_presence_rule(tmp_path):
    text = (
        "frame, face_id, timestamp, confidence, success, AU01_r, AU12_r, AU12_c\n"
        "1, 0, 0.0, 0.9, 1, 1.5, 0.5, 1\n"
        "1, 1, 0.0, 0.9, 1, 0.2, 2.0, 0\n"
        "2, 0, 0.04, 0.1, 0, 3.0, 3.0, 1\n"
        "3, 1, 0.08, 0.9, 1, 0.0, 0.0, 0\n"
    )
    p = write(tmp_path / "multi.csv", text)
    f0, f1 = read_openface(p)
    assert (f0.track, f1.track) == ("face0", "face1")
    assert f0.frames.tolist() == [0, 1] and f1.frames.tolist() == [0, 2]
    assert f0.lines.tolist() == [2, 4] and f1.lines.tolist() == [3, 5]
    assert f0.au_numbers == (1, 12)
    assert f0.au_present.tolist() == [[-1, 1], [-1, -1]]  # AU1 has no _c; failed frame has no labels
    assert np.isnan(f0.au_intensity[1]).all() and f0.au_intensity[0].tolist() == [1.5, 0.5]
    g0, _ = read_openface(p, presence_threshold=1.0)
    assert g0.au_present.tolist() == [[1, 1], [-1, -1]]
    (h,) = [t for t in read_openface(p, frame_base=0) if t.track == "face1"]
    assert h.frames.tolist() == [1, 3]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2,0,0,1,7.5,1", "AU01_r intensity 7.5 outside [0, 5]"),
        ("2,0,0,1,1,2", "AU01_c 2 not in {0, 1}"),
        ("2,0,0,3,1,1", "success 3 is not 0 or 1"),
        ("1,0,0,1,1,1", "duplicate frame 0 (also on line 2)"),
        ("2,0,0,1,one,1", "AU01_r 'one' is not a number"),
        ("2,0,0,1,1", "expected 6 values, got 5"),
    ],
)
def test_openface_errors(tmp_path, row, reason):
    p = write(tmp_path / "of.csv", f"frame,timestamp,confidence,success,AU01_r,AU01_c\n1,0,0,1,1,1\n{row}\n3,0,0,1,1,1\n")
    with pytest.raises(LabelFormatError) as info:
        read_openface(p)
    assert info.value.line == 3 and reason in info.value.reason and str(info.value).startswith(f"{p}:3: ")


def test_openface_needs_frame_and_au_columns(tmp_path):
    with pytest.raises(LabelFormatError, match=":1: .*no AUxx_r or AUxx_c"):
        read_openface(write(tmp_path / "x.csv", "frame,success\n1,1\n"))


# --- py-feat ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "video", "rows"), [("pyfeat__001", "001", 40), ("pyfeat__002", "002", 28)])
def test_pyfeat_video_fex(annotations, name, video, rows):
    path = annotations / f"{name}.csv"
    (t,) = read_pyfeat(path)
    assert (t.video, t.track, t.kind, t.n_lines) == (video, "main", "model", rows)  # video from `input`
    assert t.frames.tolist() == list(range(rows))
    assert t.au_numbers == PYFEAT_AUS and t.au_intensity is None
    ref = pd.read_csv(path)
    assert t.au_present[:, 0].tolist() == (ref["AU01"] >= 0.5).astype(int).tolist()
    assert t.expr_order == (1, 2, 3, 4, 5, 6, 0)  # py-feat's anger..neutral order
    emotions = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
    expected = [t.expr_order[emotions.index(c)] for c in ref[emotions].idxmax(axis=1)]
    assert t.expr.tolist() == expected
    assert t.valence is None


@pytest.mark.parametrize(("name", "rows"), [("001", 20), ("011", 18)])
def test_pyfeat_news_samples_every_second_frame(annotations, name, rows):
    path = annotations / f"pyfeat_news_sample__{name}.csv"
    (t,) = read_pyfeat(path)
    assert (t.video, t.track, t.n_lines) == (name, "main", rows)
    assert t.frames.tolist() == list(range(0, 2 * rows, 2))
    assert t.expr_order == (0, 4, 5, 6, 3, 2, 1)  # Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger
    ref = pd.read_csv(path, usecols=["valence", "arousal", "Neutral", "Happy", "Sad", "Surprise", "Fear",
                                     "Disgust", "Anger"])  # fmt: skip
    assert t.valence.tolist() == ref["valence"].tolist() and t.arousal.tolist() == ref["arousal"].tolist()
    names = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger"]
    assert t.expr.tolist() == [t.expr_order[names.index(c)] for c in ref[names].idxmax(axis=1)]
    assert t.au_numbers == PYFEAT_AUS


def test_pyfeat_image_fex(annotations):
    (t,) = read_pyfeat(annotations / "pyfeat__Feat_Test.csv")
    assert (t.video, t.track, t.frames.tolist()) == ("single_face", "main", [0])
    (u,) = read_pyfeat(annotations / "pyfeat__Feat_Test.csv", video="still")
    assert u.video == "still"


def test_pyfeat_several_faces_per_frame(tmp_path):
    text = (
        "frame,FaceScore,AU01,AU12,anger,neutral,happiness,input\n"
        "0,0.9,0.7,0.1,0.1,0.2,0.7,a.mp4\n"
        "0,0.9,0.2,0.9,0.6,0.3,0.1,a.mp4\n"
        "1,0.9,0.5,,0.1,0.8,0.1,a.mp4\n"
        "0,0.9,0.2,0.4,,0.3,0.1,\"/data/b.mp4\"\n"
    )
    tables = read_pyfeat(write(tmp_path / "fex.csv", text))
    assert [(t.video, t.track, t.frames.tolist(), t.lines.tolist()) for t in tables] == [
        ("a", "face0", [0, 1], [2, 4]),
        ("a", "face1", [0], [3]),
        ("b", "main", [0], [5]),  # one row per frame in this video
    ]
    a0, a1, b0 = tables
    assert a0.au_present.tolist() == [[1, 0], [1, -1]]
    assert a0.expr.tolist() == [4, 0] and a1.expr.tolist() == [1] and b0.expr.tolist() == [-1]
    assert a0.expr_order == (1, 0, 4)


def test_pyfeat_identity_tracks(tmp_path):
    text = (
        "frame,FaceScore,AU01,Identity,input\n"
        "0,0.9,0.7,Person_1,v.mp4\n0,0.9,0.2,Person_0,v.mp4\n1,,,,v.mp4\n2,0.9,0.6,Person_1,v.mp4\n"
    )
    tables = read_pyfeat(write(tmp_path / "fex.csv", text))
    assert [(t.track, t.frames.tolist()) for t in tables] == [("face1", [0, 2]), ("face0", [0])]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("1,0.9,1.5,0.1,a.mp4", "AU01 probability 1.5 outside [0, 1]"),
        ("1,0.9,0.5,-0.1,a.mp4", "anger probability -0.1 outside [0, 1]"),
        ("1,0.9,x,0.1,a.mp4", "AU01 'x' is not a number"),
        ("1,0.9,0.5,a.mp4", "expected 5 values, got 4"),
    ],
)
def test_pyfeat_errors(tmp_path, row, reason):
    p = write(tmp_path / "fex.csv", f"frame,FaceScore,AU01,anger,input\n0,0.9,0.5,0.1,a.mp4\n{row}\n")
    with pytest.raises(LabelFormatError) as info:
        read_pyfeat(p)
    assert info.value.line == 3 and reason in info.value.reason


# --- detection -------------------------------------------------------------------------------


def test_detect_real_files(annotations):
    got = {p.name: detect_format(p) for p in annotations.glob("*.csv") if "clip_attrs" not in p.name}
    assert got == {
        **{f"facsvatar__openface_clean_{k}.csv": "openface" for k in FACSVATAR},
        "pyfeat__OpenFace_Test.csv": "openface",
        "pyfeat__001.csv": "pyfeat",
        "pyfeat__002.csv": "pyfeat",
        "pyfeat__Feat_Test.csv": "pyfeat",
        "pyfeat_news_sample__001.csv": "pyfeat",
        "pyfeat_news_sample__011.csv": "pyfeat",
    }
    for p in annotations.glob("*.csv"):
        if "clip_attrs" not in p.name:
            assert read_labels(p), p  # every real output file parses with the detected parser


@pytest.mark.parametrize(
    ("header", "fmt"),
    [
        ("valence,arousal", "abaw-va"),
        ("Valence, Arousal ", "abaw-va"),
        ("AU1,AU2,AU4,AU6,AU12,AU15,AU20,AU25", "abaw-au"),
        ("AU01, AU02", "abaw-au"),
        ("Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other", "abaw-expr"),
        ("image,valence,arousal,expression,AU1,AU2", "abaw-multitask"),
        ("frame, face_id, timestamp, confidence, success, AU01_r", "openface"),
        ("frame,FaceRectX,FaceScore,AU01,anger", "pyfeat"),
        ("video,frame,valence,arousal", "generic"),
    ],
)
def test_detect_headers(tmp_path, header, fmt):
    p = write(tmp_path / "f.txt", header + "\n")
    assert detect_format(p) == fmt
    assert isinstance(read_labels(p), list)


def test_detect_generic_parquet_and_missing_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"frame": [0], "valence": [0.5], "arousal": [0.5]}), p)
    assert detect_format(p) == "generic"
    assert read_labels(p)[0].valence.tolist() == [0.5]
    with pytest.raises(LabelFormatError, match="cannot read"):
        detect_format(tmp_path / "missing.csv")
    assert not math.isnan(read_labels(p)[0].arousal[0])
