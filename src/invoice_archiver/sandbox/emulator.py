"""The AWS Invoicing API emulator: an AWS JSON 1.0 HTTP server on loopback, plus pre-signed downloads.

``POST /`` with ``X-Amz-Target: Invoicing.<Operation>`` serves ListInvoiceSummaries and GetInvoicePDF;
``GET /documents/<invoice>/<document>?X-Amz-...`` serves the documents. Quiet: it logs nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from invoice_archiver.sandbox import shapes
from invoice_archiver.sandbox.dataset import Dataset
from invoice_archiver.sandbox.documents import Document
from invoice_archiver.sandbox.emulator_http import Handler, Server, Stats
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
        self._server = Server((host, port), Handler)
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
