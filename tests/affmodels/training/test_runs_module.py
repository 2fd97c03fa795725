"""Runs have one home (affmodels.runs); using a trained model imports no trainer."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from affmodels.errors import RunFolderError
from affmodels.runs import append_record, check_run_folder


def test_evaluate_predict_and_generate_import_no_trainer() -> None:
    code = ("import sys, affmodels.evaluate, affmodels.predict, affmodels.gan.evaluate, affmodels.gan.generate; "
            "print(sorted(m for m in ('affmodels.train', 'affmodels.gan.train') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_run_folder_rules_and_strict_records(tmp_path: Path) -> None:
    check_run_folder(tmp_path / "new", resume=False)
    with pytest.raises(RunFolderError, match="nothing to resume"):
        check_run_folder(tmp_path / "new", resume=True)
    (tmp_path / "last.pt").write_bytes(b"x")
    with pytest.raises(RunFolderError, match="already holds a run"):
        check_run_folder(tmp_path, resume=False)
    append_record(tmp_path / "run" / "metrics.jsonl", {"epoch": 1, "val": {"ccc": math.nan, "f1": 0.5}})
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text()) == {"epoch": 1, "val": {"ccc": None, "f1": 0.5}}
