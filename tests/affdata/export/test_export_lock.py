"""One export at a time into one --out: OUT.lock names its holder; a stale one is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affdata.db import Store
from affdata.errors import BusyError
from affdata.export import export_part
from affdata.hashing import file_sha256
from tests.affdata.export.conftest import tree_digest
from tests.affdata.export.helpers import manifest

SMALL = {"split": "official", "part": "train", "shard_size": 40, "row_group_size": 16}
ROOT = Path(__file__).resolve().parents[3]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AFFDATA_DB", None)
    return env


def _cli_export(store: Store, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.affdata_app", "export", "--db", store.url, "--split", "official",
         "--part", "train", "--out", str(out), "--shard-size", "40", "--row-group-size", "16", "--json"],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _holder(out: Path) -> subprocess.Popen[str]:
    """A real process that takes OUT.lock, says so, and holds it until killed."""
    script = ("import sys, time\nfrom pathlib import Path\nfrom affdata.export.lock import export_lock\n"
              f"with export_lock(Path({str(out)!r})):\n    print('locked', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def assert_whole(out: Path) -> None:
    """Every shard the manifest names is there with its size and sha256, and nothing else is."""
    shards = manifest(out)["shards"]
    assert sorted(p.relative_to(out).as_posix() for p in (out / "data").iterdir()) == sorted(s["path"] for s in shards)
    for s in shards:
        path = out / s["path"]
        assert path.stat().st_size == s["bytes"] and file_sha256(path) == s["sha256"], s["path"]


def test_two_exports_racing_into_one_out_leave_one_whole_export(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    procs = [_cli_export(loaded, out) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 1]), results  # the loser (if they overlapped) fails at once
    for code, _, err in results:
        if code == 1:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "another export into this folder is running (pid " in lines[0], err
            assert f"on host {socket.gethostname()} since " in lines[0] and "Traceback" not in err
    assert_whole(out)
    assert not (tmp_path / "out.lock").exists() and not (tmp_path / "out.partial").exists()


def test_a_second_export_fails_at_once_naming_the_holder_and_touches_nothing(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = tmp_path / "out.partial"
    staging.mkdir()
    (staging / "staging.json").write_text("{}\n")  # the holder's work in progress
    before = tree_digest(staging)
    holder = _holder(out)
    try:
        started = time.monotonic()
        with pytest.raises(BusyError) as caught:
            export_part(loaded, out=out, **SMALL)
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert f"pid {holder.pid} on host {socket.gethostname()} since " in message and str(out) in message
        assert tree_digest(staging) == before and not out.exists()
        cli = _cli_export(loaded, out)
        code, stdout, err = cli.wait(timeout=120), *cli.communicate()
        assert code == 1 and stdout == ""
        assert len(err.strip().splitlines()) == 1 and f"pid {holder.pid}" in err and "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()
    # killed with -9 while holding it: the file stays, the kernel's lock does not
    assert json.loads((tmp_path / "out.lock").read_text())["pid"] == holder.pid
    result = export_part(loaded, out=out, **SMALL)
    assert result.rows > 0 and not (tmp_path / "out.lock").exists()
    assert_whole(out)


def test_a_stale_lock_from_a_dead_process_is_taken_over_and_said_so(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pid = _dead_pid()
    (tmp_path / "out.lock").write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+00:00"}) + "\n")
    cli = _cli_export(loaded, out)
    code, stdout, err = cli.wait(timeout=300), *cli.communicate()
    assert code == 0, err
    assert f"taking over a stale lock (pid {pid} on host {socket.gethostname()} since 2026-01-01" in err
    assert "is not running" in err
    assert json.loads(stdout)["rows"] > 0 and not (tmp_path / "out.lock").exists()
    assert_whole(out)


def test_a_lock_written_on_another_host_is_not_taken_over(loaded: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    lock = tmp_path / "out.lock"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere.example", "since": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(BusyError, match=f"written by an export on host elsewhere.example .*remove {lock}"):
        export_part(loaded, out=out, **SMALL)
    assert lock.is_file() and not out.exists() and not (tmp_path / "out.partial").exists()
    lock.unlink()
    assert export_part(loaded, out=out, **SMALL).rows > 0


def test_a_failed_export_releases_the_lock(loaded: Store, tmp_path: Path) -> None:
    from affdata.errors import NotFoundError

    with pytest.raises(NotFoundError):
        export_part(loaded, out=tmp_path / "out", split="official", part="nope")
    assert not (tmp_path / "out.lock").exists()
    assert export_part(loaded, out=tmp_path / "out", **SMALL).rows > 0


def test_the_lock_excludes_within_one_process_too_and_is_gone_after(tmp_path: Path) -> None:
    from affdata.export.lock import export_lock

    out = tmp_path / "out"
    with export_lock(out) as path:
        held = json.loads(path.read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname() and held["since"]
        with pytest.raises(BusyError, match=f"pid {os.getpid()} on host "):
            with export_lock(out):
                pass
        assert path.is_file()
    assert not path.exists()
    with export_lock(out):  # free again
        pass
