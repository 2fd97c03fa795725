"""``OUT.lock``: one export at a time into one output folder.

Two exports into one ``--out`` would write the same staging folder and leave a manifest that
names shards that are not there. So an export takes ``OUT.lock`` before it touches
``OUT.partial/`` and keeps it until it ends, however it ends.

What excludes is an ``flock`` on the file, held for the export's lifetime: the kernel drops it
when the holder dies, even by kill -9, so a crash never leaves a lock that blocks. The file's
content (pid, host, start time, as JSON) is what a refused export reports, and what tells
a file left behind by a dead export on this host (taken over, with a warning) from one written
on another host that shares the folder (refused: this host cannot see whether that export
still runs; the message says how to remove the file).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from affdata.errors import BusyError

log = logging.getLogger(__name__)


def lock_path(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


def _holder(info: dict[str, Any]) -> str:
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} "
            f"since {info.get('since', '?')}")


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = b""
    while chunk := os.read(fd, 4096):
        raw += chunk
    try:
        info = json.loads(raw)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _refused(out: Path, path: Path, fd: int) -> BusyError:
    """The holder of a lock this process could not take. Its details may still be being written
    (the file is empty, or still names the dead process it took over from): wait up to a second."""
    host = socket.gethostname()
    for _ in range(20):
        info = _read(fd)
        if info and (info.get("host") != host or _alive(info.get("pid"))):
            break
        time.sleep(0.05)
    who = _holder(info) if info else "another process (it has not written its details yet)"
    return BusyError(f"{out}: another export into this folder is running "
                     f"({who}; lock file {path}); wait for it to finish or choose another --out")


@contextmanager
def export_lock(out: Path) -> Iterator[Path]:
    """Hold ``OUT.lock`` for the block; :class:`BusyError` at once when another export holds it."""
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = _refused(out, path, fd)
            os.close(fd)
            raise error from None
        try:  # the holder before us may have removed the file on release: lock the file at path
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        left = _read(fd)
        if left and left.get("host") != host:
            raise BusyError(
                f"{path}: written by an export on host {left.get('host')} ({_holder(left)}), which "
                f"this host cannot check; if no export into {out} runs there any more, remove {path} "
                "and run again")
        if left:
            why = "is not running" if not _alive(left.get("pid")) else "no longer holds it"
            log.warning("%s: taking over a stale lock (%s; that process %s)", path, _holder(left), why)
        mine = {"pid": os.getpid(), "host": host,
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(mine) + "\n").encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield path
    finally:
        try:
            path.unlink()  # while still holding it: a waiter that opened this file retries
        except FileNotFoundError:
            pass
        os.close(fd)
