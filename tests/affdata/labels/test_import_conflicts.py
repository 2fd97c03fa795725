"""Two files with the same labels, and two imports of the same files at once.

A Training file copied into Validation, or a CSV and its copy, give the same (video, track,
source) frames twice: the second file is refused with one line naming both files and the
others go on. Two ``import_labels`` of the same release at the same time (two threads, two
connections) both finish: each file is imported once, and the other run reports it unchanged.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.formats import scan_abaw
from affdata.labels import import_labels

LABEL_TABLES = ("va_label", "au_label", "expr_label", "label_import")


def _counts(store: Store) -> dict[str, int]:
    return {t: store.scalar(f"SELECT COUNT(*) FROM {t}") for t in LABEL_TABLES}


def test_a_training_file_copied_into_validation_is_refused_naming_both(
        with_videos: Store, annotations: Path) -> None:
    original = sorted((annotations / "VA_Set" / "Training_Set").glob("*.txt"))[0]
    copy = annotations / "VA_Set" / "Validation_Set" / original.name
    shutil.copy(original, copy)
    report = import_labels(with_videos, [annotations], source="aff")
    assert [o.path for o in report.failed] == [str(copy)]
    reason = report.failed[0].reason
    assert reason.startswith(f"{copy}: ") and str(original.resolve()) in reason and "\n" not in reason
    assert "already imported" in reason
    # every other file went in, the ones after the copy included
    assert report.count("imported") == len(report.outcomes) - 1
    key = f"VA_Set/Validation_Set/{original.name}"
    assert with_videos.scalar("SELECT COUNT(*) FROM label_import WHERE key = :k", k=key) == 0
    n_frames = len(original.read_text().splitlines()) - 1
    annotated = sum(1 for line in original.read_text().splitlines()[1:] if not line.startswith("-5"))
    assert with_videos.scalar(
        "SELECT COUNT(*) FROM va_label l JOIN label_import i ON i.id = l.import_id "
        "WHERE i.key = :k", k=f"VA_Set/Training_Set/{original.name}") == annotated <= n_frames


def test_a_csv_and_its_copy(with_videos: Store, tmp_path: Path) -> None:
    video = with_videos.scalar("SELECT name FROM video ORDER BY name LIMIT 1")
    first = tmp_path / "labels.csv"
    first.write_text("video,frame,valence,arousal\n" + "".join(f"{video},{i},0.{i},-0.{i}\n" for i in range(5)))
    copy = tmp_path / "labels_copy.csv"
    shutil.copy(first, copy)
    later = tmp_path / "more.csv"  # a later file in the same run still goes in
    later.write_text("video,frame,valence,arousal\n" + "".join(f"{video},{i},0.5,0.5\n" for i in range(10, 12)))
    report = import_labels(with_videos, [first, copy, later], source="csv")
    assert [(Path(o.path).name, o.status) for o in report.outcomes] == [
        ("labels.csv", "imported"), ("labels_copy.csv", "failed"), ("more.csv", "imported")]
    reason = report.failed[0].reason
    assert reason.startswith(f"{copy}: ") and str(first.resolve()) in reason
    assert with_videos.scalar("SELECT COUNT(*) FROM va_label") == 7


def test_the_same_file_under_another_source_is_no_conflict(with_videos: Store, tmp_path: Path) -> None:
    video = with_videos.scalar("SELECT name FROM video ORDER BY name LIMIT 1")
    path = tmp_path / "labels.csv"
    path.write_text("video,frame,valence,arousal\n" + "".join(f"{video},{i},0.1,0.1\n" for i in range(3)))
    assert import_labels(with_videos, [path], source="a").ok
    assert import_labels(with_videos, [path], source="b").ok
    assert with_videos.scalar("SELECT COUNT(*) FROM va_label") == 6


def test_two_imports_of_the_same_files_at_once(with_videos: Store, db_url: str, annotations: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Both runs look before parsing, find nothing, parse, and then write the same file at the
    same moment (a barrier holds each file's parse until both runs reach it). On PostgreSQL the
    second writer used to die with a UniqueViolation traceback; on SQLite the writers queue."""
    import affdata.labels.importer as importer

    barrier = threading.Barrier(2, timeout=60)
    real_read = importer.read_labels

    def read_in_step(*args, **kwargs):
        barrier.wait()
        return real_read(*args, **kwargs)

    monkeypatch.setattr(importer, "read_labels", read_in_step)
    reports, errors = [], []

    def run() -> None:
        try:
            with Store(db_url) as own:  # a connection (pool) of its own
                reports.append(import_labels(own, [annotations], source="aff"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(reports) == 2 and all(r.ok for r in reports), [r.failed for r in reports]
    n_files = len(scan_abaw(annotations))
    by_file: dict[str, list[str]] = {}
    for r in reports:
        for o in r.outcomes:
            by_file.setdefault(o.path, []).append(o.status)
    assert len(by_file) == n_files
    assert all(sorted(s) == ["imported", "unchanged"] for s in by_file.values()), by_file
    # the store is what one import makes
    imported_rows = sum(o.rows for r in reports for o in r.outcomes if o.status == "imported")
    counts = _counts(with_videos)
    assert counts["label_import"] == n_files
    assert counts["va_label"] + counts["au_label"] + counts["expr_label"] == imported_rows > 0
    assert import_labels(with_videos, [annotations], source="aff").count("unchanged") == n_files
