"""EventBridge: announce an archived or revised invoice to downstream consumers (PutEvents).

One event per call (an invoice's detail can approach the 256 KB entry limit with many documents), its
failed entry retried with backoff; an entry still failing raises, so the SQS record fails and is
redelivered, and the ledger's `pending_event` makes the next delivery send it again (at least once).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from invoice_archiver.constants import EVENT_SOURCE
from invoice_archiver.dal import clients
from invoice_archiver.dal.sdk import Needs

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

PUT_ATTEMPTS = 4
MAX_DETAIL_BYTES = 250_000  # PutEvents accepts 256 KB per entry, including source and detail type

# What this module sends and reads (checked at cold start by invoice_archiver.dal.sdk).
PUBLISHING = Needs(
    "events",
    "PutEvents",
    request=("Entries.Source", "Entries.DetailType", "Entries.Detail", "Entries.EventBusName"),
    response=("FailedEntryCount", "Entries.EventId", "Entries.ErrorCode", "Entries.ErrorMessage"),
)

_LOCK = threading.Lock()


class PublishFailed(Exception):
    """EventBridge did not accept the event after every attempt; the delivery is retried later."""


def client() -> EventBridgeClient:
    """A new EventBridge client on the process's shared session (endpoint from AWS_ENDPOINT_URL*)."""
    with _LOCK:
        return clients.session().client("events", config=Config(retries={"mode": "standard"}))


def publish(
    events: EventBridgeClient,
    *,
    bus: str,
    detail_type: str,
    detail: Mapping[str, Any],
    attempts: int = PUT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Put one event on `bus` (source invoice-archiver); return its event id."""
    body = json.dumps(detail, separators=(",", ":"), sort_keys=True)
    if len(body.encode()) > MAX_DETAIL_BYTES:
        raise PublishFailed(f"event detail of {len(body.encode())} bytes exceeds {MAX_DETAIL_BYTES}")
    reason = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            sleep(min(5.0, 0.2 * 2**attempt) * random.uniform(0.5, 1.0))
        response = events.put_events(
            Entries=[{"Source": EVENT_SOURCE, "DetailType": detail_type, "Detail": body, "EventBusName": bus}]
        )
        [entry] = response.get("Entries", [{}]) or [{}]
        if not response.get("FailedEntryCount") and entry.get("EventId"):
            return str(entry["EventId"])
        reason = f"{entry.get('ErrorCode', 'unknown')}: {entry.get('ErrorMessage', '')}"
    raise PublishFailed(f"EventBridge rejected {detail_type!r} on bus {bus!r}: {reason}")
