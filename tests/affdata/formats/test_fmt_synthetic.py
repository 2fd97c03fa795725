"""The synthetic generator's ABAW-style release reads back through scan_abaw and the parsers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from affdata.formats import read_abaw_task_file, scan_abaw, write_abaw_task_file
from affdata.synthetic import generate_labels_only


def test_synthetic_release_parses_with_matching_counts(tmp_path):
    summary = generate_labels_only(tmp_path / "ds", videos=8, frames=4000, seed=3)
    files = scan_abaw(summary.out)
    by_task = {t: [f for f in files if f.task == t] for t in ("va", "au", "expr")}
    assert {t.upper(): len(v) for t, v in by_task.items()} == summary.annotation_files
    frames = dict(pd.read_csv(summary.out / "videos.csv")[["video", "frames"]].itertuples(index=False))
    annotated = {"VA": 0, "AU": 0, "EXPR": 0}
    for f in files:
        t = read_abaw_task_file(f.path, f.task)
        assert (t.video, t.track) == (f.video, f.track)
        assert t.n_lines == frames[f.video]  # one line per video frame
        if f.task == "va":
            annotated["VA"] += int((~np.isnan(t.valence)).sum())
        elif f.task == "au":
            annotated["AU"] += int((t.au_present >= 0).all(axis=1).sum())
        else:
            annotated["EXPR"] += int((t.expr >= 0).sum())
    assert annotated == summary.annotated
    assert {f.part for f in files} == {"train", "val"}


def test_synthetic_files_round_trip_byte_for_byte(tmp_path):
    """The generator and the writer both write repr-shortest floats (``0.1``): parsing a
    generated file and writing it back gives the same bytes and values."""
    summary = generate_labels_only(tmp_path / "ds", videos=3, frames=900, seed=1)
    for f in scan_abaw(summary.out):
        t = read_abaw_task_file(f.path, f.task)
        out = tmp_path / "copy.txt"
        write_abaw_task_file(out, t, f.task, n_frames=t.n_lines)
        assert out.read_bytes() == f.path.read_bytes(), f.path
        back = read_abaw_task_file(out, f.task)
        for name in ("valence", "arousal", "au_present", "expr"):
            a, b = getattr(t, name), getattr(back, name)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)
        assert back.au_numbers == t.au_numbers and back.expr_order == t.expr_order
