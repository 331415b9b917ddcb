"""The emulator's HTTP side: the server, and the handler that answers the Invoicing API's JSON protocol
(POST) and the documents' pre-signed URLs (GET, HEAD, ranges), with the faults the emulator draws; plus
the counters of what was served. It knows the emulator only through `Served`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from invoice_archiver.sandbox.documents import Document, document_etag, document_length, document_stream
from invoice_archiver.sandbox.faults import FaultInjector, Latency

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"


class Stats:
    """Thread-safe counters: ``calls[operation]``, ``downloads``, ``throttled``, ``errors_5xx`` and more."""

    FIELDS = (
        "downloads",
        "download_bytes",
        "throttled",
        "tps_throttled",
        "errors_4xx",
        "errors_5xx",
        "expired_urls",
        "rejected_urls",
        "dropped",
        "truncated",
        "denied",  # AccessDeniedException answers (identity rules, access_denied invoices)
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls: Counter[str] = Counter()
            self.throttled_calls: Counter[str] = Counter()  # per operation, either kind of throttling
            for name in self.FIELDS:
                setattr(self, name, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def call(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1

    def throttle(self, operation: str) -> None:
        with self._lock:
            self.throttled_calls[operation] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "throttled_calls": dict(self.throttled_calls),
                **{name: getattr(self, name) for name in self.FIELDS},
            }


class Served(Protocol):
    """What the handler asks of the emulator."""

    latency: Latency
    faults: FaultInjector
    stats: Stats

    def handle_api(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any], str | None]: ...

    def resolve_download(self, target: str) -> tuple[Document | None, tuple[int, str, str] | None]: ...


def s3_error_xml(code: str, message: str) -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>sandbox</HostId></Error>"
    ).encode()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Served

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()

    def track(self, sock: socket.socket, active: bool) -> None:
        with self._conn_lock:
            (self._connections.add if active else self._connections.discard)(sock)

    def close_connections(self) -> None:
        with self._conn_lock:
            for sock in list(self._connections):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def version_string(self) -> str:
        return "AmazonS3"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: never log URLs or signatures
        return

    @property
    def emulator(self) -> Served:
        return self.server.emulator

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if urlsplit(self.path).path != "/":
            self._send(404, b"", "text/plain")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload, error_type = self.emulator.handle_api(headers, raw)
        if self.emulator.latency.invoicing_ms:
            time.sleep(self.emulator.latency.invoicing_ms / 1000.0)
        extra = {"x-amzn-RequestId": str(uuid.uuid4())}
        if error_type:
            extra["x-amzn-ErrorType"] = error_type
        self._send(status, json.dumps(payload).encode(), JSON_CONTENT_TYPE, extra)

    def do_GET(self) -> None:
        self._download(head=False)

    def do_HEAD(self) -> None:
        self._download(head=True)

    def _download(self, head: bool) -> None:
        emulator = self.emulator
        doc, error = emulator.resolve_download(self.path)
        if error is not None or doc is None:
            status, code, message = error or (404, "NoSuchKey", "The specified key does not exist.")
            self._send(status, b"" if head else s3_error_xml(code, message), "application/xml")
            return
        total = document_length(doc)
        start, stop, status = _byte_range(self.headers.get("Range"), total)
        headers = {
            "ETag": document_etag(doc),
            "Accept-Ranges": "bytes",
            "Last-Modified": "Mon, 02 Nov 2026 00:00:00 GMT",
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
        latency = emulator.latency
        if latency.document_ms and not head:
            time.sleep(latency.document_ms / 1000.0)
        self._send_headers(status, stop - start, doc.content_type, headers)
        if head:
            return
        emulator.stats.add("downloads")
        fault = emulator.faults.download_fault()
        limit = (stop - start) // 2 if fault else stop - start
        sent = 0
        began = time.monotonic()
        for chunk in document_stream(doc, start, start + limit):
            self.wfile.write(chunk)
            sent += len(chunk)
            if latency.document_mb_per_s:  # a bandwidth cap: never ahead of `sent` at that rate
                ahead = sent / (latency.document_mb_per_s * 1e6) - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
        emulator.stats.add("download_bytes", sent)
        if fault == "drop":
            emulator.stats.add("dropped")
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # the last file object to close sends a TCP reset
            self.close_connection = True
        elif fault == "truncate":
            emulator.stats.add("truncated")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            self.close_connection = True

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self._send_headers(status, len(body), content_type, extra or {})
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_headers(self, status: int, length: int, content_type: str, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()


def _byte_range(header: str | None, total: int) -> tuple[int, int, int]:
    """(start, stop, status) for an optional single ``Range: bytes=a-b`` header."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header or "")
    if not match or not any(match.groups()):
        return 0, total, 200
    first, last = match.groups()
    if not first:
        return max(0, total - int(last)), total, 206
    start = int(first)
    stop = min(total, int(last) + 1) if last else total
    if start >= stop:
        return 0, total, 200
    return start, stop, 206
