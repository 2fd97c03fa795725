"""Rendered synthetic dataset: layout, file formats, splits, boxes, determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest

from affdata.errors import ConfigError
from affdata.synthetic import DatasetSummary, generate_dataset, plan_dataset
from affdata.vocab import AU_SETS
from tests.affdata.synthetic.util import (
    SPLITS,
    TASK_DIRS,
    annotation_files,
    boxes_by_track,
    read_csv,
    read_labels,
    stem,
)

HEADERS = {
    "VA": "valence,arousal",
    "AU": "AU1,AU2,AU4,AU6,AU12,AU15,AU20,AU25",
    "EXPR": "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise",
}
LINE = {
    "VA": re.compile(r"^(-5,-5|-?[01]\.\d{1,3},-?[01]\.\d{1,3})$"),  # repr-shortest: 0.1, -0.25, 1.0
    "AU": re.compile(r"^(-1(,-1){7}|[01](,[01]){7})$"),
    "EXPR": re.compile(r"^(-1|[0-6])$"),
}


def _frame_counts(out: Path) -> dict[str, int]:
    counts = {}
    for p in sorted((out / "videos").glob("*.mp4")):
        with av.open(str(p)) as c:
            counts[p.stem] = sum(1 for _ in c.demux(video=0) if _.size)
    return counts


def test_top_level_layout(rendered: DatasetSummary) -> None:
    out = rendered.out
    assert {p.name for p in out.iterdir()} == {"videos", "annotations", "boxes.csv",
                                               "subjects.csv", "dataset.json"}
    assert {p.name for p in (out / "annotations").iterdir()} == set(TASK_DIRS.values())
    for task_dir in TASK_DIRS.values():
        assert {p.name for p in (out / "annotations" / task_dir).iterdir()} == set(SPLITS)
    doc = json.loads((out / "dataset.json").read_text())
    assert doc["seed"] == 3 and doc["mode"] == "render" and doc["generator_version"]
    assert doc["arguments"] == {"subjects": 3, "seconds": 8.0, "seed": 3, "fps": 25,
                                "release": "abaw2020"}


def test_video_names_sizes_and_subjects(rendered: DatasetSummary) -> None:
    out = rendered.out
    names = {p.stem for p in (out / "videos").glob("*.mp4")}
    assert len(names) == rendered.videos
    singles = {n for n in names if re.fullmatch(r"subj\d{3}_\d{2}", n)}
    pairs = {n for n in names if re.fullmatch(r"subj\d{3}_subj\d{3}_\d{2}", n)}
    assert singles and pairs and singles | pairs == names
    rows = read_csv(out / "subjects.csv")
    assert {r["video"] for r in rows} == names
    for r in rows:
        parts = r["video"].split("_")
        if r["video"] in singles:
            assert (r["track"], r["subject"]) == ("main", parts[0])
        else:
            assert r["subject"] == {"left": parts[0], "right": parts[1]}[r["track"]]
    for name in names:
        with av.open(str(out / "videos" / f"{name}.mp4")) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
            assert (s.width, s.height) == ((384, 256) if name in pairs else (256, 256))


def test_annotation_files_headers_lines_and_markers(rendered: DatasetSummary) -> None:
    out = rendered.out
    frames = _frame_counts(out)
    tracks = {(r["video"], r["track"]) for r in read_csv(out / "subjects.csv")}
    stems = {stem(v, t): v for v, t in tracks}
    assert len(annotation_files(out, "VA")) == len(tracks)  # VA on every person
    for task in TASK_DIRS:
        files = annotation_files(out, task)
        assert files, f"no {task} files"
        for name, path in files.items():
            text = path.read_text()
            lines = text.split("\n")
            assert lines[0] == HEADERS[task]
            assert len(lines) - 2 == frames[stems[name]], f"{path}: not one line per frame"
            assert all(LINE[task].match(line) for line in lines[1:-1]), path
            _, rows = read_labels(path)
            missing = -5 if task == "VA" else -1
            annotated = ~(rows == missing).all(axis=1)
            assert annotated.any(), f"{path} has no annotated frame"
            if task == "VA":
                assert np.abs(rows[annotated]).max() <= 1.0


def test_left_right_files(rendered: DatasetSummary) -> None:
    files = annotation_files(rendered.out, "VA")
    for r in read_csv(rendered.out / "subjects.csv"):
        if r["track"] == "main":
            assert r["video"] in files
        else:
            assert f"{r['video']}_{r['track']}" in files and r["video"] not in files


def test_splits_are_subject_disjoint_and_shared_by_tasks(rendered: DatasetSummary) -> None:
    out = rendered.out
    subject_of = {stem(r["video"], r["track"]): r["subject"]
                  for r in read_csv(out / "subjects.csv")}
    split_of: dict[str, str] = {}
    for task, task_dir in TASK_DIRS.items():
        for split in SPLITS:
            for p in (out / "annotations" / task_dir / split).glob("*.txt"):
                subject = subject_of[p.stem]
                assert split_of.setdefault(subject, split) == split, (task, p)
    by_split = {s: {subj for subj, sp in split_of.items() if sp == s} for s in SPLITS}
    assert by_split["Training_Set"] and by_split["Validation_Set"]
    doc = json.loads((out / "dataset.json").read_text())
    assert {k: set(v) for k, v in doc["splits"].items()} == by_split


def test_summary_counts_match_files(rendered: DatasetSummary) -> None:
    for task in TASK_DIRS:
        files = annotation_files(rendered.out, task)
        missing = -5 if task == "VA" else -1
        labelled = sum(int((~(read_labels(p)[1] == missing).all(axis=1)).sum())
                       for p in files.values())
        assert labelled == rendered.annotated[task]
        assert len(files) == rendered.annotation_files[task]
    assert rendered.frames == sum(_frame_counts(rendered.out).values())


def test_boxes_cover_every_frame_of_every_person(rendered: DatasetSummary) -> None:
    out = rendered.out
    boxes = boxes_by_track(out)
    frames = _frame_counts(out)
    assert set(boxes) == {(r["video"], r["track"]) for r in read_csv(out / "subjects.csv")}
    for (video, track), b in boxes.items():
        assert len(b) == frames[video]
        width = 384 if track != "main" else 256
        x, y, w, h = b.T
        assert (x >= 0).all() and (y >= 0).all() and (x + w <= width).all() and (y + h <= 256).all()
        assert 95 <= h.min() and h.max() <= 165, "faces should be ~100-160 px tall"
        assert np.ptp(x) > 0 or np.ptp(y) > 0, "the head should move slightly"
        if track == "left":
            assert (x + w <= 192).all()
        if track == "right":
            assert (x >= 192).all()


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    runs = [generate_dataset(tmp_path / name, subjects=2, seconds=2.0, seed=seed)
            for name, seed in (("a", 5), ("b", 5), ("c", 6))]

    def contents(out: Path, videos: bool) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
                if p.is_file() and (videos or p.suffix != ".mp4")}

    a, b, c = (contents(r.out, videos=False) for r in runs)
    assert a == b
    assert contents(runs[0].out, True) == contents(runs[1].out, True), "x264 must be deterministic"
    assert a != c
    va = [p for p in a if p.startswith("annotations/VA_Set")]
    assert any(a[p] != c.get(p) for p in va)


def test_progress_reports_every_frame(tmp_path: Path) -> None:
    calls: list[int] = []
    summary = generate_dataset(tmp_path / "p", subjects=1, seconds=2.5, seed=0, progress=calls.append)
    assert calls and all(n > 0 for n in calls)
    assert sum(calls) == summary.frames == plan_dataset(1, 2.5, 0).frames == 62


def test_refuses_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        generate_dataset(tmp_path / "full", subjects=1, seconds=1.0)
    with pytest.raises(ConfigError, match="release"):
        generate_dataset(tmp_path / "r", release="abaw2099")
    with pytest.raises(ConfigError, match="subjects"):
        generate_dataset(tmp_path / "s", subjects=0)
    with pytest.raises(ConfigError, match="seconds"):
        generate_dataset(tmp_path / "t", seconds=0)
    assert not (tmp_path / "r").exists()


def test_abaw_release_has_twelve_aus(tmp_path: Path) -> None:
    summary = generate_dataset(tmp_path / "abaw", subjects=2, seconds=2.0, seed=1, release="abaw")
    for task, expected in (("AU", ",".join(f"AU{a}" for a in AU_SETS["abaw"])),
                           ("EXPR", HEADERS["EXPR"] + ",Other")):
        files = annotation_files(summary.out, task)
        assert files
        for path in files.values():
            header, rows = read_labels(path)
            assert header == expected
            assert rows.shape[1] == (12 if task == "AU" else 1)


def test_files_parse_with_the_abaw_reader(rendered: DatasetSummary) -> None:
    """The generator's output is what the library's ABAW reader expects."""
    from affdata.formats.abaw import read_abaw_task_file

    for task in TASK_DIRS:
        for name, path in annotation_files(rendered.out, task).items():
            table = read_abaw_task_file(path, task.lower())
            assert (table.video if table.track == "main" else f"{table.video}_{table.track}") == name
            assert table.n_lines == len(read_labels(path)[1])
