"""moto in server mode on loopback, wrapped in a WSGI middleware that records every request.

Tests count what the code under test did, e.g. ``moto.requests.count(service="s3", operation="PutObject")``.

moto's STS lets anyone assume any role. ``refuse_assume_role(arn, message)`` makes it answer AssumeRole of
that role ARN as STS does when the trust policy or the caller's policy says no: HTTP 403, error code
``AccessDenied`` (botocore raises a ClientError with that code); ``allow_assume_role`` undoes it.
"""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from werkzeug.serving import make_server

from invoice_archiver.sandbox.faults import Latency
from invoice_archiver.sandbox.serving import ServerThread

CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class RequestRecord:
    """One request moto received. ``operation`` is the X-Amz-Target / Action, or derived for S3."""

    method: str
    service: str
    operation: str
    path: str
    query: tuple[str, ...]
    bucket: str | None = None
    key: str | None = None


class RequestLog:
    """A thread-safe list of `RequestRecord`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def __iter__(self) -> Any:
        return iter(self.records())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def filter(
        self, service: str | None = None, method: str | None = None, operation: str | None = None
    ) -> list[RequestRecord]:
        return [
            r
            for r in self.records()
            if (service is None or r.service == service)
            and (method is None or r.method == method)
            and (operation is None or r.operation == operation)
        ]

    def count(
        self, service: str | None = None, method: str | None = None, operation: str | None = None
    ) -> int:
        return len(self.filter(service, method, operation))


def describe_request(environ: Environ) -> RequestRecord:
    """Classify one WSGI request by service (SigV4 credential scope) and operation."""
    method = str(environ.get("REQUEST_METHOD", "GET"))
    path = str(environ.get("PATH_INFO", "/"))
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    auth = str(environ.get("HTTP_AUTHORIZATION", "")) or " ".join(query.get("X-Amz-Credential", []))
    match = CREDENTIAL.search(auth) or re.search(r"^[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    service = match.group(1) if match else "unknown"
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        operation = target.rsplit(".", 1)[-1]
    elif "Action" in query:
        operation = query["Action"][0]
    else:
        operation = ""
    bucket = key = None
    if service == "s3":
        parts = path.lstrip("/").split("/", 1)
        bucket = unquote(parts[0]) or None
        key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        operation = operation or s3_operation(method, key is not None, set(query), environ)
    return RequestRecord(method, service, operation, path, tuple(sorted(query)), bucket, key)


def s3_operation(method: str, has_key: bool, query: set[str], environ: Environ) -> str:
    """The S3 API operation name for the common object and bucket calls."""
    if has_key:
        if "uploadId" in query:
            return {
                "PUT": "UploadPart",
                "POST": "CompleteMultipartUpload",
                "DELETE": "AbortMultipartUpload",
                "GET": "ListParts",
            }.get(method, method)
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "tagging" in query:
            return {"PUT": "PutObjectTagging", "GET": "GetObjectTagging"}.get(method, "DeleteObjectTagging")
        if method == "PUT" and "HTTP_X_AMZ_COPY_SOURCE" in environ:
            return "CopyObject"
        return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
            method, method
        )
    if environ.get("PATH_INFO", "/") == "/":
        return "ListBuckets" if method == "GET" else method
    if method == "GET":
        return "ListObjectsV2" if "list-type" in query else "ListObjects" if not query else "GetBucket"
    if method == "POST" and "delete" in query:
        return "DeleteObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(method, method)


# moto checks a condition and then writes, without a lock: two concurrent conditional writes
# (DynamoDB ConditionExpression, S3 If-None-Match) can both succeed, which AWS never allows.
# Serializing the writes of these services gives the sandbox the atomicity the real services have;
# reads stay concurrent.
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement"}
)


def is_atomic_write(record: RequestRecord) -> bool:
    if record.service == "s3":
        return record.method not in {"GET", "HEAD"}
    return record.service == "dynamodb" and record.operation in DYNAMODB_WRITES


def declare_checksum_algorithm(environ: Environ) -> None:
    """S3 stores the checksum a PutObject sends in `x-amz-checksum-<algorithm>`; moto stores it only
    when `x-amz-sdk-checksum-algorithm` names the algorithm too, which botocore omits when the caller
    supplies the value. Name it, so HeadObject/GetObject with ChecksumMode return it as S3 does."""
    if environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"):
        return
    for name in ("SHA256", "SHA1", "CRC32", "CRC32C", "CRC64NVME"):
        if environ.get(f"HTTP_X_AMZ_CHECKSUM_{name}"):
            environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = name
            return


def read_form(environ: Environ) -> dict[str, str]:
    """A query-protocol request's parameters (query string, then a form-encoded body, which is put back
    so moto reads it as sent)."""
    params = {k: v[0] for k, v in parse_qs(str(environ.get("QUERY_STRING", ""))).items()}
    if environ.get("REQUEST_METHOD") == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        params.update({k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
    return params


def access_denied_xml(message: str) -> bytes:
    """STS's (query protocol) error body; botocore parses it into ClientError code `AccessDenied`."""
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def refusal_message(role_arn: str) -> str:
    return f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"


class RecordingMiddleware:
    def __init__(
        self,
        app: WsgiApp,
        log: RequestLog,
        latency: Latency | None = None,
        refused_roles: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.log = log
        self.latency = latency or Latency()
        self._atomic = threading.Lock()
        # role ARN -> the message of the AccessDenied an AssumeRole of it gets
        self.refused_roles: dict[str, str] = dict(refused_roles or {})

    def refuse_assume_role(self, role_arn: str, message: str | None = None) -> None:
        self.refused_roles[role_arn] = message or refusal_message(role_arn)

    def allow_assume_role(self, role_arn: str | None = None) -> None:
        """Let this role (None: every role) be assumed again."""
        if role_arn is None:
            self.refused_roles.clear()
        else:
            self.refused_roles.pop(role_arn, None)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        record = describe_request(environ)
        if record.service == "s3" and record.method == "PUT":
            declare_checksum_algorithm(environ)
        refusal = None
        if record.service == "sts":
            form = read_form(environ)
            record = RequestRecord(
                record.method, record.service, form.get("Action", record.operation), record.path, record.query
            )
            if record.operation == "AssumeRole":
                refusal = self.refused_roles.get(form.get("RoleArn", ""))
        if not record.path.startswith("/moto-api"):
            self.log.append(record)
            delay = self.latency.service_seconds(record.service)
            if delay:  # before the write lock: a slow service is slow for each caller, not all in turn
                time.sleep(delay)
        if refusal is not None:
            body = access_denied_xml(refusal)
            start_response(
                "403 Forbidden",
                [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if is_atomic_write(record):
            with self._atomic:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def speed_up_moto() -> None:
    """moto's SQS asks for the current time through datetime arithmetic about a hundred times per queued
    message on every ReceiveMessage, which makes a queue of a few thousand messages crawl. The current
    Unix time is `time.time()`; patching that one helper changes no behaviour, only the cost."""
    import time

    import moto.core.utils
    import moto.sqs.models

    original = moto.core.utils.unix_time

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else original(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    for module in (moto.core.utils, moto.sqs.models):
        module.unix_time = unix_time  # type: ignore[attr-defined]
        module.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]
    _send_without_counting()


_SENDING = threading.local()


def _send_without_counting() -> None:
    """moto's SendMessage reads `queue.attributes` for one flag, and ReceiveMessage reads the retention
    period through GetQueueAttributes for every message it considers; that property counts every message
    in the queue (visible, delayed, in flight) each time, so N messages cost O(N^2). While a thread
    sends, the property answers with the flag alone, and the retention check reads the period itself;
    everywhere else the property is moto's own."""
    from moto.sqs.models import Queue, SQSBackend

    if getattr(SQSBackend.send_message, "_invoice_archiver_patched", False):
        return
    full: Callable[[Any], dict[str, Any]] = vars(Queue)["attributes"].fget
    original_send = SQSBackend.send_message

    def attributes(queue: Any) -> dict[str, Any]:
        if getattr(_SENDING, "active", False):
            return {"ContentBasedDeduplication": str(bool(queue.content_based_deduplication)).lower()}
        return full(queue)

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _SENDING.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _SENDING.active = False

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        # moto's own reads the period through GetQueueAttributes (three full counts) per message received
        period = int(self.get_queue(queue_name).message_retention_period)
        return bool(period + message.sent_timestamp / 1000 > time.time())

    send_message._invoice_archiver_patched = True  # type: ignore[attr-defined]
    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]


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
