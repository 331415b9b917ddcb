"""Serve an HTTP server (anything with ``serve_forever``/``shutdown``/``server_close``) in a background
thread: what moto's server and the Invoicing emulator both need."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

POLL_SECONDS = 0.05  # how soon shutdown() is noticed


class Server(Protocol):
    def serve_forever(self, poll_interval: float = ...) -> None: ...
    def shutdown(self) -> None: ...
    def server_close(self) -> None: ...


class ServerThread:
    """`server` in a daemon thread named `name`. `stop()` shuts it down, runs `before_close` (e.g. to cut
    kept-alive connections) and closes the listening socket; it may be called whether started or not."""

    def __init__(self, server: Server, name: str, before_close: Callable[[], None] | None = None) -> None:
        self.server = server
        self.name = name
        self._before_close = before_close
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(POLL_SECONDS,), name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        if self._before_close is not None:
            self._before_close()
        self.server.server_close()
