"""Running a CLI entry point in this process, exactly as the console script does (through
``cli.common.run``), and reading its exit status, stdout and stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest


def call(main: Callable[[], None], prog: str, args: list[str], capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", [prog, *args])
    monkeypatch.delenv("AFFDATA_DEBUG", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main()
    captured = capsys.readouterr()
    code = stopped.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity, as strict parsers (and other languages) do."""
    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)
