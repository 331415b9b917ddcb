"""What the sandbox's moto server was asked: a WSGI middleware that records every request (service,
operation, target), can refuse AssumeRole of a role as STS would, and adds the sandbox's latency.

Tests count what the code under test did, e.g. ``moto.requests.count(service="s3", operation="PutObject")``.
"""

from __future__ import annotations

import io
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from invoice_archiver.sandbox.faults import Latency

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
# (DynamoDB ConditionExpression, S3 If-None-Match) can both succeed, which AWS never allows. And an
# UpdateItem that creates an item puts its key in the table before it applies the SETs, so a concurrent
# Query could see an item with nothing but its key. Serializing S3's writes and every DynamoDB request
# gives the sandbox the atomicity the real services have; S3's reads stay concurrent.
def is_atomic(record: RequestRecord) -> bool:
    """Whether the request must not overlap another of its service's serialized requests."""
    if record.service == "s3":
        return record.method not in {"GET", "HEAD"}
    return record.service == "dynamodb"


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
            if delay:  # before the lock: a slow service is slow for each caller, not all in turn
                time.sleep(delay)
        if refusal is not None:
            body = access_denied_xml(refusal)
            start_response(
                "403 Forbidden",
                [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if is_atomic(record):
            with self._atomic:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)
