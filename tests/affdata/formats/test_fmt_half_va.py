"""A line with only one of valence and arousal annotated is refused with file:line.

Valence and arousal are one rating, stored as one row; before the fix ``-5,0.3`` on an annotated
line of an ABAW VA file was dropped without a word (61 rows stored for 62 annotated lines, exit 0).
"""

from __future__ import annotations

import pytest

from affdata.errors import LabelFormatError
from affdata.formats import read_abaw_multitask, read_abaw_task_file, read_generic
from tests.affdata.formats.util import write

HALF = ["-5,0.3", "0.3,-5", "-5,-1", "1,-5"]


@pytest.mark.parametrize("half", HALF)
def test_abaw_va_file(tmp_path, half):
    lines = [f"0.{i % 9},-0.{i % 7}" for i in range(62)]
    lines[40] = half  # file line 42 (the header is line 1)
    path = write(tmp_path / "video3.txt", "valence,arousal\n" + "\n".join(lines) + "\n")
    with pytest.raises(LabelFormatError) as info:
        read_abaw_task_file(path, "va")
    assert info.value.line == 42
    v, a = half.split(",")
    assert str(info.value) == (f"{path}:42: valence {v} and arousal {a}: only one of the two is "
                               "annotated (a frame has both or neither)")


def test_abaw_va_file_with_arousal_first(tmp_path):
    path = write(tmp_path / "v.txt", "arousal,valence\n0.1,0.2\n0.4,-5\n")
    with pytest.raises(LabelFormatError, match=r":3: valence -5 and arousal 0.4: only one"):
        read_abaw_task_file(path, "va")


def test_fully_unannotated_lines_are_still_fine(tmp_path):
    path = write(tmp_path / "v.txt", "valence,arousal\n-5,-5\n0.1,0.2\n-5,-5\n")
    t = read_abaw_task_file(path, "va")
    assert t.n_lines == 3


def test_abaw_multitask_file(tmp_path):
    aus = ",".join(["0"] * 12)
    header = "image,valence,arousal,expression," + ",".join(
        f"AU{n}" for n in (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26))
    rows = [f"vid/{k:05d}.jpg,0.1,0.2,1,{aus}" for k in range(1, 5)]
    rows[2] = f"vid/00003.jpg,0.5,-5,1,{aus}"
    path = write(tmp_path / "mtl.txt", header + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(LabelFormatError, match=r"mtl.txt:4: valence 0.5 and arousal -5: only one"):
        read_abaw_multitask(path)


@pytest.mark.parametrize("row", ["v1,2,0.4,", "v1,2,,0.4", "v1,2,-5,0.4"])
def test_generic_csv(tmp_path, row):
    path = write(tmp_path / "g.csv", f"video,frame,valence,arousal\nv1,0,0.1,0.1\nv1,1,0.2,0.2\n{row}\n")
    with pytest.raises(LabelFormatError, match=r"g.csv:4: valence .* only one of the two is annotated"):
        read_generic(path)
