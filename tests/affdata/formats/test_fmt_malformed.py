"""Property tests: one malformed line at a random place, in every parser, is reported exactly.

Each format below knows how to write a valid file and which of its fields are read as numbers,
what an out-of-range value looks like and (where frames are explicit) how to repeat a frame.
The test corrupts one randomly chosen line in one of those ways and checks that the single
error names the file and exactly that line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affdata.errors import LabelFormatError
from affdata.formats import (
    read_abaw_multitask,
    read_abaw_task_file,
    read_generic,
    read_openface,
    read_pyfeat,
)
from tests.affdata.formats.util import write

JUNK = ["abc", "x1", "0.5.5", "1e", "--2", "#", "0x10", "1_0", "five", "1o"]
EXPR8 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
MT_HEADER = "image,valence,arousal,expression,AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"


@dataclass
class Spec:
    parse: Callable[[Path], object]
    header: str
    row: Callable[[st.DataObject, int], list[str]]  # fields of data row k (0-based)
    numeric: list[int]  # fields parsed as numbers
    out_of_range: dict[int, list[str]]  # field -> bad values
    bad_headers: list[str]
    frame_field: int | None = None  # field to copy from the previous row to repeat a frame
    extra: dict[str, object] = field(default_factory=dict)


def _va(data: st.DataObject) -> str:
    return f"{data.draw(st.floats(-1, 1, allow_nan=False)):.3f}"


def _p(data: st.DataObject) -> str:
    return f"{data.draw(st.floats(0, 1, allow_nan=False)):.4f}"


SPECS: dict[str, Spec] = {
    "abaw-va": Spec(
        parse=lambda p: read_abaw_task_file(p, "va"),
        header="valence,arousal",
        row=lambda d, k: ["-5", "-5"] if d.draw(st.booleans()) else [_va(d), _va(d)],
        numeric=[0, 1],
        out_of_range={0: ["1.5", "-1.01", "-5.5", "nan", "inf"], 1: ["2", "-4", "1e3"]},
        bad_headers=["valence", "valence,arousal,dominance", "0.1,0.2", "val,aro", "valence;arousal"],
    ),
    "abaw-au": Spec(
        parse=lambda p: read_abaw_task_file(p, "au"),
        header="AU1,AU2,AU4,AU6,AU12,AU15,AU20,AU25",
        row=lambda d, k: [d.draw(st.sampled_from(["0", "1", "-1"])) for _ in range(8)],
        numeric=list(range(8)),
        out_of_range={i: ["2", "-2", "0.5", "3"] for i in range(8)},
        bad_headers=["AU1,AU1,AU4,AU6,AU12,AU15,AU20,AU25", "AU1,AU3,AU4,AU6,AU12,AU15,AU20,AU25",
                     "AU1,FOO,AU4,AU6,AU12,AU15,AU20,AU25", ""],  # fmt: skip
    ),
    "abaw-expr": Spec(
        parse=lambda p: read_abaw_task_file(p, "expr"),
        header=EXPR8,
        row=lambda d, k: [str(d.draw(st.integers(-1, 7)))],
        numeric=[0],
        out_of_range={0: ["8", "-2", "1.5", "100"]},
        bad_headers=["Neutral,Joy2", "Neutral,Neutral", "3", "valence,arousal"],
    ),
    "abaw-multitask": Spec(
        parse=read_abaw_multitask,
        header=MT_HEADER,
        row=lambda d, k: [f"vid/{k + 1:05d}.jpg", _va(d), _va(d), str(d.draw(st.integers(-1, 7)))]
        + [d.draw(st.sampled_from(["0", "1"])) for _ in range(12)],
        numeric=list(range(1, 16)),
        out_of_range={0: ["vid/00000.jpg", "vid.jpg", "vid/x.jpg"], 1: ["1.5"], 2: ["-3"], 3: ["8", "0.5"],
                      **{i: ["2", "-3"] for i in range(4, 16)}},  # fmt: skip
        bad_headers=["name,valence,arousal", "image,valence,foo", "image", "image,valence"],
        frame_field=0,
    ),
    "openface": Spec(
        parse=read_openface,
        header="frame, face_id, timestamp, confidence, success, AU01_r, AU04_r, AU01_c",
        row=lambda d, k: [str(k + 1), "0", f"{k * 0.04:.2f}", "0.98", "1", f"{d.draw(st.floats(0, 5)):.2f}",
                          f"{d.draw(st.floats(0, 5)):.2f}", d.draw(st.sampled_from(["0", "1"]))],  # fmt: skip
        numeric=[0, 1, 4, 5, 6, 7],
        out_of_range={0: ["-3", "1.5"], 1: ["-1", "0.5"], 4: ["2"], 5: ["5.5", "-0.1"], 6: ["7"], 7: ["2", "0.3"]},
        bad_headers=["frame, timestamp, success", "time, AU01_r, AU04_r, AU01_c", "frame, AU99_r, AU04_r, AU01_c"],
        frame_field=0,
    ),
    "pyfeat": Spec(
        parse=read_pyfeat,
        header="frame,FaceRectX,FaceScore,AU01,AU12,anger,disgust,fear,happiness,sadness,surprise,neutral,"
        "valence,arousal,input",
        row=lambda d, k: [str(k), "10.5", "0.99"] + [_p(d) for _ in range(9)] + [_va(d), _va(d), "clip.mp4"],
        numeric=[0] + list(range(3, 14)),
        out_of_range={0: ["-1", "0.5"], 3: ["1.5"], 4: ["-0.2"], 5: ["2"], 11: ["1.01"], 12: ["1.2"], 13: ["-7"]},
        bad_headers=["frame,FaceScore,input", "frame,AU01,AU01,input", "frame,AU99,input"],
    ),
    "generic": Spec(
        parse=read_generic,
        header="video,frame,valence,arousal,expression,AU1,AU12",
        row=lambda d, k: ["v", str(k), _va(d), _va(d), d.draw(st.sampled_from(["happy", "Fear", "0", "7", "", "-1"])),
                          d.draw(st.sampled_from(["0", "1", "", "-1"])), "1"],  # fmt: skip
        numeric=[1, 2, 3, 5, 6],
        out_of_range={1: ["-1", "2.5"], 2: ["1.5"], 3: ["-1.5"], 4: ["9", "joyful", "1.5"], 5: ["2"], 6: ["0.5"]},
        bad_headers=["video,frame,valence", "a,b", "video,frame,valence,arousal,AU999"],
        frame_field=1,
    ),
}

KINDS = ["junk", "count", "range", "empty", "blank", "dup", "header"]


def _fmt_line(fields: list[str]) -> str:
    return ",".join(fields)


@settings(max_examples=80, deadline=None)
@given(st.data(), st.sampled_from(sorted(SPECS)), st.sampled_from(KINDS), st.sampled_from(["\n", "\r\n"]))
def test_one_bad_line_is_reported_exactly(tmp_path_factory, data, fmt, kind, newline):
    spec = SPECS[fmt]
    if kind == "dup" and spec.frame_field is None:
        kind = "range"
    n = data.draw(st.integers(2 if kind == "dup" else 1, 25), label="rows")
    rows = [spec.row(data, k) for k in range(n)]
    header = spec.header
    idx = data.draw(st.integers(1 if kind == "dup" else 0, n - 1), label="bad row")
    expected = 2 + idx
    lines = [_fmt_line(r) for r in rows]
    if kind == "junk":
        col = data.draw(st.sampled_from(spec.numeric), label="column")
        rows[idx][col] = data.draw(st.sampled_from(JUNK), label="junk")
        lines[idx] = _fmt_line(rows[idx])
    elif kind == "count":
        # dropping the only field of the last line would leave a trailing blank line (allowed)
        if data.draw(st.booleans(), label="extra field") or (len(rows[idx]) == 1 and idx == n - 1):
            lines[idx] += ",0"
        else:
            lines[idx] = _fmt_line(rows[idx][:-1]) if len(rows[idx]) > 1 else ""
    elif kind == "range":
        col = data.draw(st.sampled_from(sorted(spec.out_of_range)), label="column")
        rows[idx][col] = data.draw(st.sampled_from(spec.out_of_range[col]), label="value")
        lines[idx] = _fmt_line(rows[idx])
    elif kind in ("empty", "blank"):
        lines.insert(idx, "" if kind == "empty" else "   ")
    elif kind == "dup":
        rows[idx][spec.frame_field] = rows[idx - 1][spec.frame_field]
        lines[idx] = _fmt_line(rows[idx])
    else:
        header = data.draw(st.sampled_from(spec.bad_headers), label="header")
        expected = 1
    path = write(tmp_path_factory.mktemp(fmt) / "labels.csv", header + "\n" + "\n".join(lines) + "\n", newline=newline)
    with pytest.raises(LabelFormatError) as info:
        spec.parse(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == expected, str(err)
    assert str(err).startswith(f"{path}:{expected}: ")
    assert "\n" not in str(err)


@pytest.mark.parametrize("fmt", sorted(SPECS))
def test_valid_files_from_the_same_generators_parse(tmp_path, fmt):
    """The generators above make valid files, so the errors seen there come from the corruption."""
    spec = SPECS[fmt]

    @settings(max_examples=15, deadline=None)
    @given(st.data())
    def check(data):
        n = data.draw(st.integers(1, 20))
        rows = [spec.row(data, k) for k in range(n)]
        path = write(tmp_path / "ok.csv", spec.header + "\n" + "\n".join(map(_fmt_line, rows)) + "\n")
        result = spec.parse(path)
        tables = result if isinstance(result, list) else [result]
        assert sum(t.n_lines for t in tables) == n

    check()
