"""`affdata ingest labels`: formats in, atomic per file, idempotent, provenance, round trip."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affdata.db import Store
from affdata.formats import scan_abaw
from affdata.labels import import_labels
from affdata.labels.abaw_export import export_abaw
from affdata.sql import run_readonly
from affdata.videos import ingest_videos

LABEL_TABLES = ("va_label", "au_label", "expr_label", "label_import", "label_source", "track")


def snapshot(store: Store) -> dict[str, int]:
    return {t: store.scalar(f"SELECT COUNT(*) FROM {t}") for t in LABEL_TABLES}


def test_release_imports_with_tracks_sources_and_split(with_videos: Store, release: Path) -> None:
    report = import_labels(with_videos, [release / "annotations"], source="aff", as_split="official")
    files = scan_abaw(release / "annotations")
    assert report.ok and report.count("imported") == len(files)
    # -5 / -1 are not stored: rows equal the annotated values in the files
    assert with_videos.scalar("SELECT kind FROM label_source WHERE name = 'aff'") == "dataset"
    expected = {}
    import numpy as np

    from affdata.formats import read_abaw_task_file
    for f in files:
        t = read_abaw_task_file(f.path, f.task)
        n = {"va": int((~np.isnan(t.valence)).sum()) if t.valence is not None else 0,
             "au": int((t.au_present >= 0).sum()) if t.au_present is not None else 0,
             "expr": int((t.expr >= 0).sum()) if t.expr is not None else 0}[f.task]
        expected[f.task] = expected.get(f.task, 0) + n
    assert with_videos.scalar("SELECT COUNT(*) FROM va_label") == expected["va"]
    assert with_videos.scalar("SELECT COUNT(*) FROM au_label") == expected["au"]
    assert with_videos.scalar("SELECT COUNT(*) FROM expr_label") == expected["expr"]
    # _left / _right files are two tracks of one video
    pairs = run_readonly(with_videos, "SELECT v.name, COUNT(*) FROM track t JOIN video v ON v.id = t.video_id "
                                      "GROUP BY v.name HAVING COUNT(*) > 1").rows
    assert pairs and all(n == 2 for _, n in pairs)
    assert {r[0] for r in run_readonly(with_videos, "SELECT DISTINCT name FROM track").rows} >= {"left", "right", "main"}
    # the folders became a split, subject-disjoint as the release is
    parts = run_readonly(with_videos, "SELECT part, COUNT(*) FROM split_assignment GROUP BY part ORDER BY part").rows
    assert [p for p, _ in parts] == ["train", "val"]
    assert report.split.created


def test_import_then_export_gives_the_same_files(with_videos: Store, release: Path, tmp_path: Path) -> None:
    import_labels(with_videos, [release / "annotations"], source="aff")
    result = export_abaw(with_videos, tmp_path / "back", source="aff")
    compare = filecmp.dircmp(release / "annotations", tmp_path / "back")
    originals = sorted(p.relative_to(release / "annotations") for p in (release / "annotations").rglob("*.txt"))
    written = sorted(p.relative_to(tmp_path / "back") for p in (tmp_path / "back").rglob("*.txt"))
    assert written == originals
    for rel in originals:
        assert (tmp_path / "back" / rel).read_bytes() == (release / "annotations" / rel).read_bytes(), rel
    assert sum(result.files.values()) == len(originals)
    assert not compare.diff_files


def test_export_with_fill_has_a_value_on_every_frame(with_videos: Store, release: Path, tmp_path: Path) -> None:
    """--fill writes what a submission needs; the same source without it keeps its -5 / -1."""
    from affdata.errors import LabelFormatError
    from affdata.formats.abaw_submission import check_submission_folder

    import_labels(with_videos, [release / "annotations"], source="aff")
    counts = dict(run_readonly(with_videos, "SELECT name, frame_count FROM video").rows)
    export_abaw(with_videos, tmp_path / "plain", source="aff")
    with pytest.raises(LabelFormatError, match="has no prediction"):  # the release leaves frames unannotated
        check_submission_folder(tmp_path / "plain", frame_counts=counts)
    result = export_abaw(with_videos, tmp_path / "filled", source="aff", fill=True)
    checked = check_submission_folder(tmp_path / "filled", frame_counts=counts)
    assert checked == result.files and sum(checked.values()) > 0


def test_reimport_is_a_no_op_and_a_changed_file_needs_replace(with_videos: Store, annotations: Path) -> None:
    first = import_labels(with_videos, [annotations], source="aff")
    before = snapshot(with_videos)
    again = import_labels(with_videos, [annotations], source="aff")
    assert again.count("unchanged") == len(first.outcomes) and again.rows == 0
    assert snapshot(with_videos) == before
    va_file = sorted((annotations / "VA_Set" / "Training_Set").glob("*.txt"))[0]
    lines = va_file.read_text().splitlines()
    lines[1] = "0.5,0.5"
    va_file.write_text("\n".join(lines) + "\n")
    refused = import_labels(with_videos, [va_file.parent.parent.parent], source="aff")
    assert [o.status for o in refused.outcomes if o.status != "unchanged"] == ["failed"]
    assert "--replace" in refused.failed[0].reason
    assert snapshot(with_videos) == before
    swapped = import_labels(with_videos, [annotations], source="aff", replace=True)
    assert swapped.count("replaced") == 1
    row = run_readonly(with_videos, "SELECT valence, arousal FROM va_label l JOIN track t ON t.id = l.track_id "
                                    f"JOIN video v ON v.id = t.video_id WHERE v.name = '{va_file.stem.split('_left')[0].split('_right')[0]}' "
                                    "AND l.frame_idx = 0 AND t.name = "
                                    f"'{'left' if va_file.stem.endswith('_left') else 'right' if va_file.stem.endswith('_right') else 'main'}'").rows
    assert row == [(0.5, 0.5)]
    assert with_videos.scalar("SELECT COUNT(*) FROM label_import") == before["label_import"]


BAD_CASES = {
    "bad header": (0, "valance,arousal", "header"),
    "non-numeric": (3, "0.1,abc", "abc"),
    "wrong column count": (5, "0.1,0.2,0.3", "expected 2 values, got 3"),
    "out of range": (7, "1.7,0.2", "1.7"),
    "half-annotated": (9, "-5,0.3", "valence -5 and arousal 0.3: only one of the two is annotated"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_a_bad_file_fails_alone_and_leaves_nothing(with_videos: Store, annotations: Path, case: str) -> None:
    index, line, words = BAD_CASES[case]
    bad = sorted((annotations / "VA_Set" / "Training_Set").glob("*.txt"))[0]
    text = bad.read_text().splitlines()
    text[index] = line
    bad.write_text("\n".join(text) + "\n")
    report = import_labels(with_videos, [annotations], source="aff")
    assert [Path(o.path).name for o in report.failed] == [bad.name]
    reason = report.failed[0].reason
    assert f"{bad}:{index + 1}:" in reason and words in reason and "\n" not in reason
    assert report.count("imported") == len(report.outcomes) - 1  # the other files went in
    key = f"VA_Set/Training_Set/{bad.name}"
    assert with_videos.scalar("SELECT COUNT(*) FROM label_import WHERE key = :k", k=key) == 0
    n = with_videos.scalar("SELECT COUNT(*) FROM va_label l JOIN label_import i ON i.id = l.import_id WHERE i.key = :k", k=key)
    assert n == 0


def test_unknown_video_is_refused(store: Store, annotations: Path) -> None:
    report = import_labels(store, [annotations], source="aff")
    assert report.outcomes and not [o for o in report.outcomes if o.status != "failed"]
    assert all("unknown video" in o.reason and "affdata ingest videos" in o.reason for o in report.failed)
    assert snapshot(store)["va_label"] == 0


def test_length_policies(with_videos: Store, annotations: Path) -> None:
    va = sorted((annotations / "VA_Set" / "Training_Set").glob("*.txt"))[0]
    lines = va.read_text().splitlines()
    n_frames = len(lines) - 1
    va.write_text("\n".join(lines[:-10]) + "\n")  # 10 lines short
    refused = import_labels(with_videos, [va], source="x", fmt="abaw-va", parser_options={})
    assert refused.failed and f"{n_frames - 10} label lines for {n_frames} video frames" in refused.failed[0].reason
    padded = import_labels(with_videos, [va], source="x", fmt="abaw-va", length_policy="pad")
    assert padded.ok
    assert with_videos.scalar("SELECT length_policy FROM label_import WHERE key = :k", k=va.name) == "pad"
    va.write_text("\n".join(lines + ["0.1,0.1"] * 5) + "\n")  # 5 lines long
    refused = import_labels(with_videos, [va], source="y", fmt="abaw-va")
    assert refused.failed and f"{n_frames + 5} label lines for {n_frames} video frames" in refused.failed[0].reason
    cut = import_labels(with_videos, [va], source="y", fmt="abaw-va", length_policy="truncate")
    assert cut.ok
    assert with_videos.scalar("SELECT MAX(frame_idx) FROM va_label l JOIN label_source s ON s.id = l.source_id "
                              "WHERE s.name = 'y'") <= n_frames - 1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.integers(min_value=1, max_value=60), junk=st.sampled_from(
    ["x", "0.1", "0.1,0.2,0.3", "2,0", "-1.5,0.1", ",", "nan,0.1", "0.1;0.2", ""]))
def test_malformed_lines_never_change_the_store(with_videos: Store, annotations: Path, line: int, junk: str) -> None:
    va = sorted((annotations / "VA_Set" / "Validation_Set").glob("*.txt"))[0]
    lines = va.read_text().splitlines()
    original = list(lines)
    lines[line] = junk
    va.write_text("\n".join(lines) + "\n")
    try:
        before = snapshot(with_videos)
        report = import_labels(with_videos, [va], source="prop", fmt="abaw-va")
        assert report.failed, junk
        assert f":{line + 1}:" in report.failed[0].reason
        assert snapshot(with_videos) == before
    finally:
        va.write_text("\n".join(original) + "\n")


def test_real_model_outputs_import_as_model_sources(store: Store, shared_data: Path) -> None:
    ingest_videos(store, [shared_data / "videos" / "liveportrait__driving_d6.mp4",
                          shared_data / "videos" / "pyfeat__single_face.mp4"])
    target = {"openface": "liveportrait__driving_d6", "pyfeat": "pyfeat__single_face"}
    files = [p for p in sorted((shared_data / "annotations").iterdir())
             if p.suffix == ".csv" and "clip_attrs" not in p.name]
    for path in files:
        fmt = "openface" if "openface" in path.name.lower() else "pyfeat"
        report = import_labels(store, [path], source=f"{fmt}-{path.stem}", parser_options={"video": target[fmt]},
                               length_policy="truncate")
        assert report.ok, report.failed
        assert report.rows > 0, path
    kinds = {r[0] for r in run_readonly(store, "SELECT DISTINCT kind FROM label_source").rows}
    assert kinds == {"model"}
    # model labels never become consensus labels
    assert store.scalar("SELECT SUM(has_va) + SUM(has_au) + SUM(has_expr) FROM frame_labels") == 0
    assert store.scalar("SELECT COUNT(*) FROM au_label WHERE intensity IS NOT NULL") > 0


def test_abaw_multitask_file(with_videos: Store, tmp_path: Path) -> None:
    video = run_readonly(with_videos, "SELECT name FROM video ORDER BY name LIMIT 1").rows[0][0]
    path = tmp_path / "mtl.txt"
    aus = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
    rows = [f"{video}/{i + 1:05d}.jpg,0.{i},-0.{i},{i % 7},{','.join(['1' if i == 2 else '0'] * 12)}" for i in range(5)]
    rows[3] = f"{video}/00004.jpg,-5,-5,-1,{','.join(['-1'] * 12)}"
    path.write_text(f"image,valence,arousal,expression,{aus}\n" + "\n".join(rows) + "\n")
    report = import_labels(with_videos, [path], source="mtl", length_policy="truncate")
    assert report.ok, report.failed
    assert with_videos.scalar("SELECT COUNT(*) FROM va_label") == 4
    assert with_videos.scalar("SELECT COUNT(*) FROM expr_label") == 4
    assert with_videos.scalar("SELECT COUNT(*) FROM au_label WHERE present = 1") == 12
