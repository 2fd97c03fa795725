"""Finding the annotation files of an ABAW release: what is taken, and what is said about the rest.

A release folder whose own name starts like a task folder (``va_2020``, ``au_release``,
``expr_abaw``) used to be taken for a task folder, and nothing in it was found. A folder named
like an annotation file (``video1.txt/``) used to be passed over without a word.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from affdata.db import Store
from affdata.formats import scan_abaw
from affdata.labels import import_labels
from affdata.sql import run_readonly
from cli.affdata_app import app
from tests.affdata.formats.util import write

RELEASE_NAMES = ["va_2020", "au_release", "expr_abaw", "VA-Set copy"]


@pytest.mark.parametrize("name", RELEASE_NAMES)
def test_a_release_folder_named_like_a_task_folder_is_searched(tmp_path: Path, name: str) -> None:
    release = tmp_path / "data" / name
    for rel in ["VA_Set/Training_Set/a.txt", "AU_Set/Validation_Set/b.txt", "EXPR_Set/Train_Set/c.txt"]:
        write(release / rel, "x\n")
    expected = [("va", "train", "a"), ("au", "val", "b"), ("expr", "train", "c")]
    for root in (release, tmp_path / "data"):  # the release itself, and a folder above it
        assert [(f.task, f.part, f.video) for f in scan_abaw(root)] == expected


def test_a_task_folder_given_itself_is_still_one(tmp_path: Path) -> None:
    write(tmp_path / "va_set" / "Validation_Set" / "a.txt", "x\n")
    assert [(f.task, f.part) for f in scan_abaw(tmp_path / "va_set")] == [("va", "val")]


def test_import_from_a_release_named_like_a_task_folder(with_videos: Store, annotations: Path,
                                                        tmp_path: Path) -> None:
    release = tmp_path / "va_2020"
    shutil.copytree(annotations, release)
    report = import_labels(with_videos, [release])
    n_files = len(list(annotations.rglob("*.txt")))
    assert report.ok and report.count("imported") == n_files
    assert with_videos.scalar("SELECT name FROM label_source") == "va_2020"
    tasks = run_readonly(with_videos, "SELECT DISTINCT tasks FROM label_import").rows
    assert {t for (t,) in tasks} == {"va", "au", "expr"}


def test_what_is_passed_over_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "release"
    write(root / "VA_Set/Training_Set/a.txt", "x\n")
    (root / "VA_Set/Training_Set/b.txt").mkdir()
    (root / "VA_Set/Training_Set/b.txt/inner.txt").write_text("x\n")
    write(root / "VA_Set/Training_Set/readme.md", "x\n")
    write(root / "VA_Set/Training_Set/.hidden.txt", "x\n")
    (root / "VA_Set/Other_Set").mkdir()
    skipped: list[tuple[Path, str]] = []
    assert [f.path.name for f in scan_abaw(root, skipped)] == ["a.txt"]
    assert [(p.relative_to(root).as_posix(), reason) for p, reason in skipped] == [
        ("VA_Set/Other_Set", "not a part folder (Training_Set, Validation_Set, Test_Set)"),
        ("VA_Set/Training_Set/b.txt", "a folder named like an annotation file, not a file"),
        ("VA_Set/Training_Set/readme.md", "not a .txt annotation file"),
    ]


def test_a_folder_named_like_a_label_file_is_reported_by_the_cli(db_url: str, with_videos: Store,
                                                                 annotations: Path) -> None:
    folder = annotations / "VA_Set" / "Training_Set" / "subj_extra.txt"
    folder.mkdir()
    result = CliRunner().invoke(app, ["ingest", "labels", str(annotations), "--db", db_url,
                                      "--source", "aff"])
    assert result.exit_code == 0, result.output
    assert f"skipped {folder}: a folder named like an annotation file, not a file" in result.output
    report = import_labels(with_videos, [annotations], source="aff")
    assert report.skipped == [(str(folder), "a folder named like an annotation file, not a file")]
    assert report.summary()["skipped"] == 1
