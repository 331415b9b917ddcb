"""An AWS endpoint for the console script that stands where AWS would: every request goes on to moto's
server unchanged, except what a test decides for itself.

* `invoke`: Lambda's Invoke API (POST /2015-03-31/functions/<name>/invocations) answered by a function of
  this process: the stack's lister is the real handler, run here as Lambda would run it (an exception
  becomes Lambda's `X-Amz-Function-Error: Unhandled` with `errorType` and `errorMessage`).
* `deny`: (service, operation) pairs answered with AccessDenied, as an IAM policy or a queue policy
  would: the operator without lambda:GetFunctionConfiguration, or without sqs:SendMessage on a queue
  whose policy lets only the stack's roles send.
* `seen`: every (service, operation) the command sent, in order.

Nothing of the archiver is replaced: the proxy only decides what AWS would decide.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
LAMBDA_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/(?P<what>invocations|configuration)")
HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]


class AwsProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.invoke: Invoke | None = None
        self.deny: set[tuple[str, str]] = set()
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AwsProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def sent(self, service: str, *operations: str) -> list[str]:
        with self._lock:
            return [op for svc, op in self.seen if svc == service and (not operations or op in operations)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                proxy._serve(self)

            do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

        return Handler

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        service, operation = _classify(request, body)
        with self._lock:
            self.seen.append((service, operation))
        lambda_call = LAMBDA_PATH.match(request.path)
        if (service, operation) in self.deny:
            _deny(request, service, operation)
        elif lambda_call and lambda_call["what"] == "invocations" and self.invoke is not None:
            self._invoke(request, lambda_call["name"], body)
        else:
            self._forward(request, body)

    def _invoke(self, request: BaseHTTPRequestHandler, name: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        assert self.invoke is not None
        try:
            payload: Any = self.invoke(name, json.loads(body or b"{}"))
        except Exception as exc:  # what Lambda answers for a function that raised
            payload = {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}
            headers["X-Amz-Function-Error"] = "Unhandled"
        _answer(request, 200, headers, json.dumps(payload).encode())

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
            _answer(request, response.status, kept, data)
        finally:
            connection.close()


def _classify(request: BaseHTTPRequestHandler, body: bytes) -> tuple[str, str]:
    match = CREDENTIAL.search(request.headers.get("Authorization", ""))
    service = match.group(1) if match else "unknown"
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    action = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
    if action:
        return service, action.group(1).decode()
    lambda_call = LAMBDA_PATH.match(request.path)
    if lambda_call:
        return service, "Invoke" if lambda_call["what"] == "invocations" else "GetFunctionConfiguration"
    return service, f"{request.command} {request.path.split('?')[0]}"


def _deny(request: BaseHTTPRequestHandler, service: str, operation: str) -> None:
    message = (
        f"User: arn:aws:iam::123456789012:user/operator is not authorized to perform: {service}:{operation}"
    )
    if request.headers.get("X-Amz-Target") or service in {"lambda", "dynamodb"}:
        body = json.dumps({"__type": "AccessDeniedException", "Message": message}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": "AccessDeniedException"}
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message>"
            "</Error></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml"}
    _answer(request, 403, headers, body)


def _answer(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)
