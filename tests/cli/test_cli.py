"""CLI conventions: every command teaches with an example; errors are one line, exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli.affdata_app import app as affdata_app
from cli.affmodels_app import app as affmodels_app

runner = CliRunner()


def _commands(group, prefix: tuple[str, ...] = ()) -> list:
    found = []
    for name, cmd in group.commands.items():
        path = prefix + (name,)
        if hasattr(cmd, "commands"):
            found += _commands(cmd, path)
        else:
            found.append((path, cmd))
    return found


ALL = [("affdata", p, c) for p, c in _commands(typer.main.get_command(affdata_app))] + [
    ("affmodels", p, c) for p, c in _commands(typer.main.get_command(affmodels_app))
]


@pytest.mark.parametrize("tool,path,cmd", ALL, ids=[" ".join((t,) + p) for t, p, _ in ALL])
def test_every_command_has_help_with_an_example(tool: str, path: tuple[str, ...], cmd) -> None:
    assert cmd.help and len(cmd.help.split()) >= 5, f"{tool} {' '.join(path)} has no real help"
    assert f"Example: {tool} {' '.join(path)}" in cmd.help
    app = affdata_app if tool == "affdata" else affmodels_app
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_command_list_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for tool, path, _ in ALL:
        assert f"{tool} {' '.join(path)}" in readme, f"README does not show `{tool} {' '.join(path)}`"


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("AFFDATA_DB", None)
    return subprocess.run([sys.executable, "-m", "cli.affdata_app", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=120)


def test_library_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    assert _run("db", "upgrade", cwd=tmp_path).returncode == 0
    result = _run("sql", "DELETE FROM video", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: affdata sql is read-only")
    assert "Traceback" not in result.stderr


def test_debug_variable_shows_the_traceback(tmp_path: Path) -> None:
    assert _run("db", "upgrade", cwd=tmp_path).returncode == 0
    result = _run("sql", "DELETE FROM video", cwd=tmp_path, env={"AFFDATA_DEBUG": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ReadOnlyError" in result.stderr


def test_stats_json_and_sql_formats(tmp_path: Path) -> None:
    result = _run("stats", "--json", cwd=tmp_path)  # a read command never creates the store
    assert result.returncode == 1 and "there is no affdata store" in result.stderr
    assert not (tmp_path / "affdata.db").exists()
    (tmp_path / "videos").mkdir()
    result = _run("ingest", "videos", "videos", cwd=tmp_path)  # a write command does, and says so
    assert "created a new affdata store" in result.stderr
    assert (tmp_path / "affdata.db").is_file()  # zero set-up: created in the working directory
    result = _run("stats", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["videos"] == 0 and set(stats["labelled"]) == {"va", "au", "expr"}
    result = _run("sql", "SELECT id, name FROM expression ORDER BY id", "-f", "csv", cwd=tmp_path)
    assert result.stdout.splitlines()[:3] == ["id,name", "0,Neutral", "1,Anger"]
    result = _run("sql", "SELECT name FROM expression WHERE id = 4", "-f", "json", cwd=tmp_path)
    assert json.loads(result.stdout) == [{"name": "Happiness"}]


def test_db_current_reports_head(tmp_path: Path) -> None:
    result = _run("db", "current", "--json", "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    assert result.returncode == 1 and "there is no affdata store" in result.stderr
    assert not (tmp_path / "x.db").exists()
    _run("db", "upgrade", "--db", str(tmp_path / "x.db"), cwd=tmp_path)
    info = json.loads(_run("db", "current", "--json", "--db", str(tmp_path / "x.db"), cwd=tmp_path).stdout)
    assert info["up_to_date"] and info["current"] == info["head"]


def test_sql_limit_reports_the_rows_left_out(tmp_path: Path) -> None:
    assert _run("db", "upgrade", cwd=tmp_path).returncode == 0  # sql reads a store, never creates one
    result = _run("sql", "SELECT id FROM expression ORDER BY id", "-f", "csv", "--limit", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["id", "0", "1"]
    assert "7 more rows left out by --limit 2" in result.stderr
