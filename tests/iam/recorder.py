"""Every AWS request the functions send, recorded through a botocore event hook.

`Recorder` patches `botocore.session.Session.create_client` (every client of the process goes through
it: the shared session of dal/clients.py and each payer role's session of dal/sources.py) to register a
`before-parameter-build` handler on each new client (it sees the operation and its parameters as our
code passed them). A record is what decides authorization: the service, the
operation, the parameters that name a resource (bucket and key, queue, table and index, role, bus) or a
condition (IfNoneMatch, Tagging), whose credentials sent it (the function's own role, or the payer role
it assumed), which function (the handler module on the stack) and the line of our code that called.
Calls made outside a handler (the test's own set-up and checks) are not recorded.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.session

# The request parameters that decide authorization (the rest are payload).
AUTHORIZING = (
    "Bucket",
    "Key",
    "IfNoneMatch",
    "Tagging",
    "QueueUrl",
    "TableName",
    "IndexName",
    "RoleArn",
    "ExternalId",
    "EventBusName",
    "Entries",
    "Selector",
)
HANDLERS = {"handlers/lister.py": "lister", "handlers/fetcher.py": "fetcher"}
SOURCE_ROLE_METHOD = "invoice-archiver-source-role"


@dataclass(frozen=True)
class Call:
    function: str  # lister | fetcher
    principal: str  # "own" (the function's role) or the payer role ARN it assumed
    service: str  # botocore's service name: s3, sqs, dynamodb, events, sts, invoicing
    operation: str
    params: tuple[tuple[str, Any], ...]
    where: str  # file:line of our code that sent it

    def param(self, name: str) -> Any:
        return dict(self.params).get(name)

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params if k not in ("Entries", "Selector"))
        who = "its own role" if self.principal == "own" else self.principal
        return f"{self.function} {self.service}:{self.operation}({shown}) as {who}, from {self.where}"


def _where_and_function() -> tuple[str, str] | None:
    frames = traceback.extract_stack()
    function = next(
        (name for frame in frames for path, name in HANDLERS.items() if frame.filename.endswith(path)), None
    )
    if function is None:
        return None
    ours = [f for f in frames if "/invoice_archiver/" in f.filename and "/tests/" not in f.filename]
    caller = ours[-1]
    return f"{caller.filename.split('/src/')[-1]}:{caller.lineno}", function


def _simplify(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        kept = ("EventBusName", "ResourceType")
        return tuple(sorted((k, _simplify(v)) for k, v in value.items() if k in kept))
    if isinstance(value, (list, tuple)):
        return tuple(_simplify(v) for v in value)
    return type(value).__name__


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._roles: dict[str, str] = {}  # access key id -> the role it was issued for

    def principal_of(self, session: botocore.session.Session) -> str:
        credentials = session.get_credentials()
        if credentials is None or getattr(credentials, "method", "") != SOURCE_ROLE_METHOD:
            return "own"
        key = credentials.get_frozen_credentials().access_key
        return self._roles.get(key) or _assumed_role(key)

    @contextmanager
    def installed(self) -> Iterator[Recorder]:
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            service = client.meta.service_model.service_name
            principal: list[str] = []  # resolved at the first call (credentials may be lazy)

            def before_parameter_build(model: Any, params: dict[str, Any], **_: Any) -> None:
                found = _where_and_function()
                if found is None:
                    return
                if not principal:
                    principal.append(recorder.principal_of(session))
                where, function = found
                kept = tuple((k, _simplify(v)) for k, v in sorted(params.items()) if k in AUTHORIZING)
                call = Call(function, principal[0], service, model.name, kept, where)
                with recorder._lock:
                    recorder.calls.append(call)

            event = f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}"
            client.meta.events.register(event, before_parameter_build)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]


def _assumed_role(access_key: str) -> str:
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        for backend in sts_backends[account].values():
            for role in backend.assumed_roles:
                if role.access_key_id == access_key:
                    return str(role.role_arn)
    return "unknown-assumed-role"
