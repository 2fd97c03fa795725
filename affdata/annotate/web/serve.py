"""Running the studio on uvicorn, in the foreground (the CLI) or in a thread (tests, benchmark)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from affdata.annotate.web.app import create_app
from affdata.db import Store


def _server(store: Store, sock: socket.socket, proxy_dir: Path | None, secure_cookie: bool) -> uvicorn.Server:
    app = create_app(store, proxy_dir=proxy_dir, secure_cookie=secure_cookie)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: with a socket handed over, uvicorn's connections kept Nagle
    # on, and every response waited ~40 ms for the client's delayed ACK (measured: 44 ms -> 0.5 ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve(store: Store, *, host: str = "127.0.0.1", port: int = 8000, proxy_dir: Path | None = None,
          secure_cookie: bool = False, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; ``port=0`` takes a free port (reported through ``on_ready``)."""
    sock = _bind(host, port)
    server = _server(store, sock, proxy_dir, secure_cookie)
    if on_ready:
        on_ready(f"http://{host}:{sock.getsockname()[1]}/")
    server.run(sockets=[sock])


class BackgroundServer:
    """The studio on a free loopback port in a daemon thread: ``with BackgroundServer(store) as url:``."""

    def __init__(self, store: Store, *, proxy_dir: Path | None = None, host: str = "127.0.0.1") -> None:
        self._sock = _bind(host, 0)
        self.url = f"http://{host}:{self._sock.getsockname()[1]}"
        self._server = _server(store, self._sock, proxy_dir, False)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the studio server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
