"""The AWS Invoicing API emulator: an AWS JSON 1.0 HTTP server on loopback, plus pre-signed downloads.

``POST /`` with ``X-Amz-Target: Invoicing.<Operation>`` serves ListInvoiceSummaries and GetInvoicePDF;
``GET /documents/<invoice>/<document>?X-Amz-...`` serves the documents. Quiet: it logs nothing.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from invoice_archiver.sandbox import shapes
from invoice_archiver.sandbox.dataset import Dataset
from invoice_archiver.sandbox.documents import Document, document_etag, document_length, document_stream
from invoice_archiver.sandbox.faults import FaultInjector, Faults, Latency
from invoice_archiver.sandbox.identity import Identity
from invoice_archiver.sandbox.service import ApiError, InvoicingService, document_path
from invoice_archiver.sandbox.serving import ServerThread
from invoice_archiver.sandbox.signing import UrlSigner, Verdict

TARGET_PREFIX = "Invoicing."
SERVED = ("ListInvoiceSummaries", "GetInvoicePDF", "ListInvoiceUnits")
SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/[^/]+/[^/]+/aws4_request, ?"
    r"SignedHeaders=[^,]+, ?Signature=[0-9a-f]+$"
)
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


class InvoicingEmulator:
    """Serve ``dataset`` over the Invoicing API on ``host``; ``port=0`` picks a free port.

    ``clock`` (default: real UTC now) drives URL expiry and NextToken age, so tests can move time.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        faults: Faults | None = None,
        latency: Latency | None = None,
        url_lifetime_seconds: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
        validate_responses: bool = False,
        identity: Identity | None = None,
    ) -> None:
        self.dataset = dataset
        # Off by default: every caller sees everything (sandbox/identity.py, docs/sandbox.md).
        self.identity = identity or Identity()
        self.url_lifetime_seconds = url_lifetime_seconds
        self.clock = clock or (lambda: datetime.now(UTC))
        self.validate_responses = validate_responses
        self.stats = Stats()
        self.faults = FaultInjector(faults)
        self.latency = latency or Latency()  # added to every answer (see faults.CLOUD)
        self.issued_urls: set[str] = set()
        self.issued_signatures: set[str] = set()
        # (operation, request, response) of every successful API call, once record_wire() is called.
        self.wire: list[tuple[str, dict[str, Any], dict[str, Any]]] | None = None
        self._issued_lock = threading.Lock()
        secret = secrets.token_bytes(32)
        self.service = InvoicingService(dataset, secret, self.clock)
        self._server = _Server((host, port), _Handler)
        self._server.emulator = self
        self.host, self.port = host, int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self.signer = UrlSigner(secret, self.url)
        self._serving = ServerThread(
            self._server, "invoicing-emulator", before_close=self._server.close_connections
        )

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> InvoicingEmulator:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop()

    def __enter__(self) -> InvoicingEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- knobs and bookkeeping -------------------------------------------------------------------

    def set_latency(self, latency: Latency | None) -> None:
        self.latency = latency or Latency()

    def set_faults(self, faults: Faults | None) -> None:
        self.faults.set(faults or Faults())

    def reset_stats(self) -> None:
        self.stats.reset()

    def record_wire(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """From now on keep every successful call's JSON request and response, exactly as sent."""
        self.wire = []
        return self.wire

    def issue_url(self, doc: Document) -> tuple[str, datetime]:
        now = self.clock()
        lifetime = self.url_lifetime_seconds
        issued_at = now - timedelta(seconds=lifetime) if self.faults.url_expired() else now
        url, signature, expiry = self.signer.sign(document_path(doc), issued_at, lifetime)
        with self._issued_lock:
            self.issued_urls.add(url)
            self.issued_signatures.add(signature)
        return url, expiry

    # --- request handling (called by the handler) ------------------------------------------------

    def handle_api(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any], str | None]:
        """Return (status, JSON body, error type) for one API request."""
        target = headers.get("x-amz-target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        try:
            if operation not in SERVED:
                raise ApiError("com.amazon.coral.service#UnknownOperationException", 400, "")
            self.stats.call(operation)
            _check_auth(headers.get("authorization"))
            fault = self.faults.api_fault(operation)
            if fault in ("throttle", "tps"):
                self.stats.throttle(operation)
                self.stats.add("tps_throttled" if fault == "tps" else "throttled")
                if fault == "tps":
                    self.stats.add("throttled")
                raise ApiError("ThrottlingException", 429, "Rate exceeded")
            if fault == "error":
                retry = self.faults.faults.retry_after_seconds
                raise ApiError(
                    "InternalServerException", 500, "Internal server error", {"retryAfterSeconds": retry}
                )
            body = _decode(raw)
            result = self._dispatch(operation, body, headers.get("authorization"))
        except ApiError as error:
            self.stats.add("errors_5xx" if error.status >= 500 else "errors_4xx")
            if error.code == "AccessDeniedException":
                self.stats.add("denied")
            payload: dict[str, Any] = {"__type": error.code, **error.fields}
            if error.message:
                payload["message"] = error.message
            return error.status, payload, error.code.rsplit("#", 1)[-1]
        if self.validate_responses:
            problems = shapes.validate_output(operation, result)
            assert not problems, problems
        if self.wire is not None:
            self.wire.append((operation, body, json.loads(json.dumps(result))))
        return 200, result, None

    def _dispatch(
        self, operation: str, body: dict[str, Any], authorization: str | None = None
    ) -> dict[str, Any]:
        caller = self.identity.caller(authorization)
        if operation == "ListInvoiceUnits":
            return self.identity.list_invoice_units(caller, body)
        if operation == "ListInvoiceSummaries":
            self.identity.check_listing(caller, body, self.service.current()[0].get)
            return self.service.list_invoice_summaries(body)
        inv = self.service.find_invoice(body)
        self.identity.check_invoice(caller, inv)
        return self.service.invoice_pdf(inv, self.signer, self.issue_url)

    def resolve_download(self, target: str) -> tuple[Document | None, tuple[int, str, str] | None]:
        """The document to serve, or an S3-style (status, code, message) error."""
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if "X-Amz-Signature" not in query:
            return None, (403, "AccessDenied", "Query-string authentication requires the Signature parameter")
        verdict = self.signer.verify(parts.path, query, self.clock())
        if verdict is Verdict.EXPIRED:
            self.stats.add("expired_urls")
            return None, (403, "AccessDenied", "Request has expired")
        if verdict is not Verdict.VALID:
            self.stats.add("rejected_urls")
            return None, (
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        doc = self.service.document_at(parts.path)
        if doc is None:
            return None, (404, "NoSuchKey", "The specified key does not exist.")
        return doc, None


def _check_auth(authorization: str | None) -> None:
    if not authorization:
        raise ApiError(
            "com.amazon.coral.service#MissingAuthenticationTokenException",
            400,
            "Missing Authentication Token",
        )
    if not SIGV4.match(authorization):
        raise ApiError(
            "com.amazon.coral.service#IncompleteSignatureException",
            400,
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        )


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            "ValidationException", 400, "Unable to parse request body as JSON", {"reason": "cannotParse"}
        )
    return body


def s3_error_xml(code: str, message: str) -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>sandbox</HostId></Error>"
    ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: InvoicingEmulator

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

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
    def emulator(self) -> InvoicingEmulator:
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
