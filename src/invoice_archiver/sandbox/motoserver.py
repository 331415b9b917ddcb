"""moto in server mode on loopback, in a thread or its own process, wrapped in the middleware that
records every request (request_log.py), with moto's SQS made fast (moto_patches.py).

moto's STS lets anyone assume any role. ``refuse_assume_role(arn, message)`` makes it answer AssumeRole of
that role ARN as STS does when the trust policy or the caller's policy says no: HTTP 403, error code
``AccessDenied`` (botocore raises a ClientError with that code); ``allow_assume_role`` undoes it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from werkzeug.serving import make_server

from invoice_archiver.sandbox.faults import Latency
from invoice_archiver.sandbox.moto_patches import speed_up_moto
from invoice_archiver.sandbox.request_log import RecordingMiddleware, RequestLog
from invoice_archiver.sandbox.serving import ServerThread


class MotoServer:
    """moto's WSGI app on ``host:port`` (0 = a free port) in a background thread, quietly."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: Latency | None = None,
        refused_roles: Mapping[str, str] | None = None,
    ) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        class QuietHandler(MotoRequestHandler):
            def log(self, *args: Any) -> None:  # never print request lines (pre-signed URLs)
                return

        speed_up_moto()
        self.requests = RequestLog()
        self.middleware = RecordingMiddleware(
            DomainDispatcherApplication(create_backend_app), self.requests, latency, refused_roles
        )
        server = make_server(host, port, self.middleware, threaded=True, request_handler=QuietHandler)
        self.port = int(server.server_port)
        self.url = f"http://{host}:{self.port}"
        self._serving = ServerThread(server, "moto-server")

    def start(self) -> MotoServer:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop()

    def refuse_assume_role(self, role_arn: str, message: str | None = None) -> None:
        """From now on, STS AssumeRole of `role_arn` fails with AccessDenied (and `message`)."""
        self.middleware.refuse_assume_role(role_arn, message)

    def allow_assume_role(self, role_arn: str | None = None) -> None:
        self.middleware.allow_assume_role(role_arn)

    def reset_state(self) -> None:
        """Forget every bucket, queue and table (moto's state is per process, shared by servers)."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class MotoProcess:
    """The same server in a child process: it does not share this process's GIL with the code under
    test, which roughly doubles local throughput on two cores. Its request log stays in the child."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: Latency | None = None,
        refused_roles: Mapping[str, str] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.latency = latency or Latency()
        self.refused_roles = dict(refused_roles or {})  # fixed at start: the child has its own copy
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> MotoProcess:
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "invoice_archiver.sandbox.motoserver",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--latency",
                self.latency.as_option(),
                "--refused-roles",
                json.dumps(self.refused_roles),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"moto server process did not start: {line!r}")
        self.url = line
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None


def main() -> None:
    """`python -m invoice_archiver.sandbox.motoserver`: print the URL, serve until SIGTERM or SIGINT."""
    import argparse

    parser = argparse.ArgumentParser(description="moto's server with the sandbox's request serialization")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", default="", help="milliseconds per request by service: s3=25,sqs=10")
    parser.add_argument("--refused-roles", default="{}", help="JSON: role ARN -> AccessDenied message")
    args = parser.parse_args()
    latency = Latency(services_ms=Latency.parse_services(args.latency))
    server = MotoServer(args.host, args.port, latency, json.loads(args.refused_roles)).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(server.url, flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
