"""Running the ``affdata`` command in-process, as a user would, and reading a store's state."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest
import sqlalchemy as sa


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def one_line_error(self) -> str:
        """The error line, after checking the command failed with exactly one line, exit 1."""
        lines = self.err.strip().splitlines()
        assert self.code == 1, (self.code, self.out, self.err)
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        assert "Traceback" not in self.err
        return lines[0]


def affdata(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> Outcome:
    """``affdata ARGS`` through its real entry point (error mapping, exit status)."""
    from cli.affdata_app import main

    monkeypatch.setattr(sys, "argv", ["affdata", *args])
    monkeypatch.delenv("AFFDATA_DB", raising=False)
    monkeypatch.delenv("AFFDATA_DEBUG", raising=False)
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def row_counts(url: str) -> dict[str, int]:
    """Every table's row count, read with a plain engine (not through the code under test)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {n: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar() for n in names}
    finally:
        engine.dispose()
