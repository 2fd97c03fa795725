"""The demo pipeline through the CLI: generate, ingest videos, boxes and labels, split, stats."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.affdata_app import app

runner = CliRunner()


def invoke(*args: str) -> dict | list | str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    out = result.stdout
    return json.loads(out) if "--json" in args else out


def test_pipeline(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    data = tmp_path / "data"
    gen = invoke("demo", "generate", str(data), "--subjects", "3", "--seconds", "6", "--seed", "2", "--json")
    assert gen["videos"] >= 3 and (data / "boxes.csv").is_file()
    videos = invoke("ingest", "videos", str(data / "videos"), "--subject-pattern", r"^(subj\d+)_", "--db", db, "--json")
    assert videos["summary"]["added"] == gen["videos"] and videos["summary"]["failed"] == 0
    boxes = invoke("ingest", "boxes", str(data / "boxes.csv"), "--subjects", str(data / "subjects.csv"), "--db", db, "--json")
    assert boxes["tracks"] == gen["tracks"]
    labels = invoke("ingest", "labels", str(data / "annotations"), "--source", "demo", "--as-split", "official",
                    "--db", db, "--json")
    assert labels["summary"]["failed"] == 0 and labels["split"]["created"]
    again = invoke("ingest", "labels", str(data / "annotations"), "--source", "demo", "--db", db, "--json")
    assert again["summary"]["unchanged"] == labels["summary"]["imported"]
    split = invoke("split", "create", "mine", "--by", "video", "--ratios", "0.5,0.5", "--seed", "3", "--db", db, "--json")
    assert split["version"] == 1
    shown = invoke("split", "show", "mine", "--db", db, "--json")
    assert sum(p["videos"] for p in shown["parts"]) == gen["videos"]
    stats = invoke("stats", "--db", db, "--json")
    assert stats["videos"] == gen["videos"] and stats["labelled"]["va"] > 0
    assert {r["split"] for r in stats["per_split"]} == {"official", "mine"}
    rows = invoke("sql", "SELECT COUNT(*) AS n FROM frame_labels WHERE has_expr = 1", "--db", db, "-f", "json")
    assert json.loads(rows)[0]["n"] == stats["labelled"]["expr"]
    consensus = invoke("labels", "consensus", "--db", db, "--json")
    assert consensus["frames"]["va"] == stats["labelled"]["va"]


def test_bad_ratios_are_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["split", "create", "x", "--ratios", "a,b", "--db", str(tmp_path / "s.db")])
    assert result.exit_code == 2 and "ratios" in result.output
