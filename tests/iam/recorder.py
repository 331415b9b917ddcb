"""Record every AWS request the functions send, through botocore's own event hooks. Stdlib and botocore only.

The shipped tier loads this file by path in the Lambda-like interpreter (tests/shipped/lambda_bootstrap.py),
before the handler is imported, so it patches the botocore the function itself imports; the in-process
tiers install it from a fixture. `install()` wraps `botocore.session.Session.create_client`: every client
created afterwards (the shared session's in dal/clients.py, each payer role's session in dal/sources.py,
boto3's) gets three handlers on its own event emitter:

* `before-parameter-build`: who is calling (a frame of `invoice_archiver/handlers/lister.py` or
  `fetcher.py` on the stack names the function; no such frame: a test's own call, not recorded) and from
  where (the innermost frame in `invoice_archiver`), and the parameters that decide authorization;
* `before-call` (once per API call, not per retry): the record is kept, with the access key the client
  signs with; a key that an `sts:AssumeRole` answer handed out names that role;
* `after-call` / `after-call-error`: the HTTP status (a refused or failed request needed its permission
  all the same), and for AssumeRole which role the new access key belongs to.

The first two are registered first, so a handler that answers a call itself (a rate limiter, botocore's
Stubber) cannot keep it from the record.

A record holds no credential, no body and no URL query: `service`, `operation`, `params` (see `_KEPT`),
`function`, `origin` ("invoice_archiver/dal/archive.py:107 in _put_once"), `principal` (None: the
function's own role; else the assumed role's ARN) and `status`.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl

import botocore.session

# The parameters that decide which IAM actions a request needs, on which resource, under which conditions.
_KEPT = frozenset(
    {
        # S3
        "Bucket",
        "Key",
        "VersionId",
        "IfNoneMatch",
        "IfMatch",
        "ServerSideEncryption",
        "SSEKMSKeyId",
        "BucketKeyEnabled",
        "ACL",
        "ObjectLockMode",
        "ObjectLockLegalHoldStatus",
        "ChecksumMode",
        "ChecksumAlgorithm",
        "PartNumber",
        # SQS
        "QueueUrl",
        "QueueName",
        # DynamoDB
        "TableName",
        "IndexName",
        "ConsistentRead",
        "ReturnValues",
        "Select",
        # STS
        "RoleArn",
        "RoleSessionName",
        "DurationSeconds",
        "ExternalId",
        "SourceIdentity",
        "Policy",
        "PolicyArns",
        "TransitiveTagKeys",
        # Invoicing
        "InvoiceId",
        "Selector",
        # EventBridge
        "EventBusName",
    }
)
_HANDLERS = {
    "invoice_archiver/handlers/lister.py": "lister",
    "invoice_archiver/handlers/fetcher.py": "fetcher",
}
_PACKAGE = "invoice_archiver/"
_CONTEXT_KEY = "iam_replay_record"

_LOCK = threading.Lock()
_RECORDERS: list[Recorder] = []
_ROLE_KEYS: dict[str, str] = {}  # access key id -> the role ARN whose AssumeRole answer handed it out
_ORIGINAL: Any = None


class Recorder:
    """Collects the records of every function call made while it is installed (thread-safe)."""

    def __init__(self) -> None:
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # Set while a function runs (tests/iam/scenarios.py): a request sent then from no handler's stack
        # (a thread the function started without its handler frame, such as s3transfer's) is kept in
        # `unattributed` rather than lost; the sandbox's own requests (invoice_archiver/sandbox) are not.
        self.expecting: str | None = None
        self.unattributed: list[dict[str, Any]] = []

    def install(self) -> Recorder:
        """Start recording; clients created from now on are hooked (reset cached clients after this)."""
        global _ORIGINAL
        with _LOCK:
            if _ORIGINAL is None:
                _ORIGINAL = botocore.session.Session.create_client
                botocore.session.Session.create_client = _create_client  # type: ignore[method-assign]
            if self not in _RECORDERS:
                _RECORDERS.append(self)
        return self

    def uninstall(self) -> None:
        global _ORIGINAL
        with _LOCK:
            if self in _RECORDERS:
                _RECORDERS.remove(self)
            if not _RECORDERS and _ORIGINAL is not None:
                botocore.session.Session.create_client = _ORIGINAL  # type: ignore[method-assign]
                _ORIGINAL = None

    def __enter__(self) -> Recorder:
        return self.install()

    def __exit__(self, *_exc: object) -> None:
        self.uninstall()

    @property
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)

    def take(self) -> list[dict[str, Any]]:
        """The records so far, forgotten here."""
        with self._lock:
            calls, self._calls = self._calls, []
        return calls

    def _add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(record)


def _create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
    client = _ORIGINAL(session, *args, **kwargs)
    explicit = kwargs.get("aws_access_key_id")
    credentials = None if explicit else session.get_credentials()
    events = client.meta.events
    events.register_first("before-parameter-build.*.*", _on_parameters)
    events.register_first("before-call.*.*", lambda **kw: _on_call(explicit, credentials, **kw))
    events.register("after-call", _on_answer)
    events.register("after-call-error", _on_error)
    return client


def _on_parameters(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if not _RECORDERS:
        return
    function, origin = _caller(sys._getframe(1))
    if function is None:
        _unattributed(model, origin)
        return
    context[_CONTEXT_KEY] = {
        "function": function,
        "service": model.service_model.service_name,
        "operation": model.name,
        "params": _authorization_params(params),
        "origin": origin,
    }


def _unattributed(model: Any, origin: str | None) -> None:
    if origin is not None and origin.startswith("invoice_archiver/sandbox/"):
        return
    for recorder in list(_RECORDERS):
        if recorder.expecting is not None:
            seen = {"service": model.service_model.service_name, "operation": model.name, "origin": origin}
            with recorder._lock:
                recorder.unattributed.append({**seen, "while": recorder.expecting})


def _on_call(explicit: str | None, credentials: Any, context: dict[str, Any], **_: Any) -> None:
    record = context.get(_CONTEXT_KEY)
    if record is None or "principal" in record:
        return
    access_key = explicit or (credentials.access_key if credentials is not None else None)
    record["principal"] = _ROLE_KEYS.get(access_key or "")
    record["status"] = None
    for recorder in list(_RECORDERS):
        recorder._add(record)


def _on_answer(
    http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
) -> None:
    record = context.get(_CONTEXT_KEY)
    if record is None:
        return
    record["status"] = getattr(http_response, "status_code", None)
    if model.name == "AssumeRole" and isinstance(parsed.get("Credentials"), dict):
        _ROLE_KEYS[parsed["Credentials"]["AccessKeyId"]] = record["params"]["RoleArn"]


def _on_error(exception: Exception, context: dict[str, Any], **_: Any) -> None:
    record = context.get(_CONTEXT_KEY)
    if record is not None:
        record["status"] = f"error: {type(exception).__name__}"


def _caller(frame: FrameType | None) -> tuple[str | None, str | None]:
    """(the function whose handler is on the stack, the innermost frame of our package)."""
    function = origin = None
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        at = path.rfind(_PACKAGE)
        if at >= 0:
            relative = path[at:]
            if origin is None:
                origin = f"{relative}:{frame.f_lineno} in {frame.f_code.co_name}"
            function = _HANDLERS.get(relative, function)
        frame = frame.f_back
    return function, origin


def _authorization_params(params: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {name: _plain(value) for name, value in params.items() if name in _KEPT}
    if "Tagging" in params:  # S3's URL-encoded tag set: its keys and values are condition keys
        kept["Tagging"] = dict(parse_qsl(str(params["Tagging"]), keep_blank_values=True))
    if "Tags" in params:
        kept["Tags"] = [tag.get("Key") for tag in params["Tags"]]
    if "Entries" in params:  # PutEvents: each entry's bus; SQS batches: how many
        entries = params["Entries"]
        kept["Entries"] = [
            {k: entry[k] for k in ("EventBusName", "Source", "DetailType") if k in entry} for entry in entries
        ]
    return kept


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
