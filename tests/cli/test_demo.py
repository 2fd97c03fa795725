"""The demo's data: its split is by subject and every expression class is in both parts.

Reads the generate and split commands from scripts/demo.sh itself, so that changing the demo
without keeping this true fails here."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cli import affdata_app

from .helpers import call

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"


def demo_command(prefix: str) -> list[str]:
    [line] = [line for line in DEMO.read_text().splitlines() if line.startswith(prefix)]
    return shlex.split(line)[1:]


@pytest.mark.slow
def test_the_demo_split_is_by_subject_with_every_class_in_both_parts(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    def affdata(*args: str) -> str:
        code, out, err = call(affdata_app.main, "affdata", list(args), capsys, monkeypatch)
        assert code == 0, err
        return out

    affdata(*demo_command("affdata demo generate"), "--json")
    affdata(*demo_command("affdata ingest videos"), "--json")
    affdata(*demo_command("affdata ingest boxes"), "--json")
    affdata(*demo_command("affdata ingest labels"), "--json")
    split = demo_command("affdata split create")
    name = split[2]
    affdata(*split, "--json")
    shown = json.loads(affdata("split", "show", name, "--json"))
    assert shown["unit"] == "subject"
    expressions = json.loads(affdata("sql", "SELECT name FROM expression WHERE id < 7", "-f", "json"))
    classes = {row["name"] for row in expressions}
    assert len(classes) == 7
    for part in shown["parts"]:
        assert {c for c, n in part["classes"].items() if n > 0} == classes, part["part"]
    banner = [line for line in DEMO.read_text().splitlines() if line.startswith('step "split')]
    assert "by subject" in banner[0]
