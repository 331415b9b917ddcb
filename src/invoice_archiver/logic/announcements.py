"""Events for downstream consumers: `Invoice Archived` and `Invoice Revised` (docs/events.md).

The event is recorded in the ledger as `pending_event` in the same write that marks the invoice
ARCHIVED (or records the revision), then put on EventBridge, then the pending mark is removed. A crash
or a PutEvents failure in between leaves the mark: the next delivery of the invoice (SQS's redelivery,
or the lister's next run, which enqueues every invoice with a pending event) sends it again. So each
event is delivered at least once; consumers de-duplicate on (`invoice_id`, `revision`).

An event is at most `MAX_DETAIL_BYTES` (64 KB: one billed PutEvents chunk, far below EventBridge's 256 KB
entry limit, and small enough for the ledger item that records it). A detail that would be larger, an
invoice with hundreds of documents, carries the summary key and the counts instead of the lists
(`documents_omitted: true`); the consumer reads the lists from the JSON at `summary_key`, which always has
them. So no event is ever refused for its size, and none is retried forever.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from invoice_archiver.constants import Metric
from invoice_archiver.dal import events as events_api
from invoice_archiver.dal.ledger import rechecks
from invoice_archiver.dal.ledger.records import LedgerKey
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient

EVENT_SCHEMA_VERSION = 1
_DOCUMENT_FIELDS = ("key", "document_type", "document_id", "size", "sha256")
MAX_DETAIL_BYTES = 64 * 1024
# The lists a large event leaves to the summary at `summary_key`, each with the count that replaces it.
_CHANGE_LISTS = {
    "new_documents": "new_document_count",
    "documents_no_longer_listed": "no_longer_listed_count",
}


def event_detail(
    bucket: str,
    invoice: VerifiedInvoice,
    summary_key: str,
    documents: list[dict[str, Any]],
    *,
    revision: int,
    at: datetime,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `detail` of an event, as docs/events.schema.json describes it (at most MAX_DETAIL_BYTES)."""
    detail: dict[str, Any] = {
        "schema_version": EVENT_SCHEMA_VERSION,
        "bucket": bucket,
        "account_id": invoice.account_id,
        "invoice_id": invoice.invoice_id,
        "billing_period": invoice.billing_period,
        "invoice_type": invoice.summary.get("InvoiceType"),
        "receiver_role": invoice.summary.get("ReceiverRole"),
        "summary_key": summary_key,
        "revision": revision,
        "at": at.isoformat(),
        "document_count": len(documents),
        "documents": [{name: document.get(name) for name in _DOCUMENT_FIELDS} for document in documents],
    }
    if changes is not None:
        detail["changes"] = changes
    return bounded(detail)


def bounded(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The detail with its counts, and without its lists if it is larger than MAX_DETAIL_BYTES (also for
    one recorded before this rule: a pending event is sent as it is if it fits)."""
    bounded = dict(detail)
    bounded.setdefault("document_count", len(detail.get("documents", [])))
    if "changes" in detail:
        changes = dict(detail["changes"])
        for name, count in _CHANGE_LISTS.items():
            changes.setdefault(count, len(changes.get(name, [])))
        bounded["changes"] = changes
    if _size(bounded) <= MAX_DETAIL_BYTES or bounded.get("documents_omitted"):
        return bounded
    bounded.pop("documents", None)
    bounded["documents_omitted"] = True
    if "changes" in bounded:
        bounded["changes"] = {k: v for k, v in bounded["changes"].items() if k not in _CHANGE_LISTS}
    return bounded


def _size(detail: Mapping[str, Any]) -> int:
    return len(json.dumps(detail, separators=(",", ":"), sort_keys=True).encode())


def pending_event(detail_type: str, detail: Mapping[str, Any]) -> dict[str, str]:
    """The ledger's record of an event still to be confirmed sent (`event_key` tells them apart)."""
    return {
        "event_key": f"{detail.get('revision')}:{uuid.uuid4().hex}",
        "detail_type": detail_type,
        "detail": json.dumps(detail, separators=(",", ":"), sort_keys=True),
    }


@dataclass
class Announcer:
    events: EventBridgeClient
    dynamodb: DynamoDBClient
    table: str
    bus: str

    def announce(self, key: LedgerKey, pending: Mapping[str, Any]) -> None:
        """Put the pending event on the bus, then clear it in the ledger. Raises PublishFailed."""
        detail = bounded(json.loads(str(pending["detail"])))
        event_id = events_api.publish(
            self.events, bus=self.bus, detail_type=str(pending["detail_type"]), detail=detail
        )
        rechecks.confirm_announced(self.dynamodb, self.table, key, event_key=str(pending["event_key"]))
        metrics.add_metric(name=Metric.EVENTS_PUBLISHED, unit="Count", value=1)
        logger.info(
            "event published",
            extra={
                "detail_type": pending["detail_type"],
                "revision": detail.get("revision"),
                "event_id": event_id,
            },
        )
