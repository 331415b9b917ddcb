"""The ledger's sparse index of unsettled invoices (GSI `Unsettled`: partition key `pk`, sort key
`unsettled_since`).

An invoice is unsettled from its first claim until it is ARCHIVED with its event confirmed sent, or FAILED
for good. Only then does its item lack `unsettled_since`, and an item without the attribute is not in the
index: the index holds exactly the invoices still to settle, whatever their period, and a Query per
account reads them without touching the rest of the ledger. The attribute is set and removed by the same
conditional writes that change the status (invoices.py: claim, mark_archived, record_error; rechecks.py:
finish_recheck, confirm_announced).

Items written before the index existed have no attribute. `mark_old_items` (`invoice-archiver
mark-unsettled`) gives it, once, to those that are unsettled: IN_PROGRESS, RETRYING, ARCHIVED with an
event still pending, and FAILED for a source that could not be read (their reason starts with "source
unavailable"); their `updated_at` becomes their `unsettled_since`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, UNSETTLED_INDEX, UNSETTLED_SINCE
from invoice_archiver.dal.ledger.records import LedgerKey, conditional, from_dynamo, to_dynamo
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# What the lister reads (checked at cold start by invoice_archiver.dal.sdk).
READING = Needs(
    "dynamodb",
    "Query",
    request=("IndexName", "KeyConditionExpression", "ExpressionAttributeNames"),
    response=("Items", "LastEvaluatedKey"),
)
# The reason logic.failures.describe gives a source failure: the one FAILED that heals by itself.
SOURCE_FAILURE_PREFIX = "source unavailable"


@dataclass(frozen=True)
class UnsettledInvoice:
    """One invoice of the index, as it projects it."""

    account_id: str
    invoice_id: str
    period: BillingPeriod
    status: Status
    since: datetime
    lease_expires_at: int | None = None
    # The role it was read through (None: the function's own credentials, or an item from before).
    source_role_arn: str | None = None

    def in_flight(self, now: datetime) -> bool:
        """A fetcher holds a live lease on it: it is being archived right now."""
        return (
            self.status == Status.IN_PROGRESS
            and self.lease_expires_at is not None
            and self.lease_expires_at >= int(now.timestamp())
        )

    @property
    def key(self) -> LedgerKey:
        return LedgerKey(self.account_id, self.period, self.invoice_id)


def unsettled(client: DynamoDBClient, table: str, account_id: str) -> Iterator[UnsettledInvoice]:
    """Every unsettled invoice of an account, oldest first (a GSI: eventually consistent)."""
    paginator = client.get_paginator("query")
    for page in paginator.paginate(
        TableName=table,
        IndexName=UNSETTLED_INDEX,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": LEDGER_PARTITION_KEY},
        ExpressionAttributeValues=to_dynamo({":pk": account_id}),
    ):
        for raw in page.get("Items", []):
            item = from_dynamo(raw)
            parsed = _parse(account_id, item)
            if parsed is not None:
                yield parsed


def _parse(account_id: str, item: dict[str, Any]) -> UnsettledInvoice | None:
    try:
        since = datetime.fromisoformat(str(item.get(UNSETTLED_SINCE)))
    except ValueError:
        return None
    if since.tzinfo is None or not item.get("invoice_id") or not item.get("billing_period"):
        return None
    lease = item.get("lease_expires_at")
    return UnsettledInvoice(
        account_id=account_id,
        invoice_id=str(item["invoice_id"]),
        period=BillingPeriod.parse(str(item["billing_period"])),
        status=Status(str(item.get("status") or Status.NEW)),
        since=since,
        lease_expires_at=None if lease is None else int(lease),
        source_role_arn=str(item.get("source_role_arn") or "") or None,
    )


def is_unsettled(item: dict[str, Any]) -> bool:
    """Whether an item written before the index existed is unsettled (see the module's docstring)."""
    status = item.get("status")
    if status in (Status.IN_PROGRESS, Status.RETRYING):
        return True
    if status == Status.ARCHIVED:
        return bool(item.get("pending_event"))
    if status == Status.FAILED:
        return str(item.get("last_error", "")).startswith(SOURCE_FAILURE_PREFIX)
    return False


def mark_old_items(client: DynamoDBClient, table: str, now: datetime) -> tuple[int, int]:
    """Give `unsettled_since` to every unsettled item that lacks it (one Scan of the table, then one
    conditional update per such item). Returns (items scanned, items marked). Safe to run again."""
    scanned = marked = 0
    paginator = client.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        FilterExpression=f"attribute_not_exists({UNSETTLED_SINCE}) AND attribute_exists(invoice_id)",
        ProjectionExpression="#pk, #sk, #status, last_error, pending_event, updated_at",
        ExpressionAttributeNames={"#pk": LEDGER_PARTITION_KEY, "#sk": LEDGER_SORT_KEY, "#status": "status"},
    ):
        scanned += int(page.get("ScannedCount", 0))
        for raw in page.get("Items", []):
            item = from_dynamo(raw)
            if is_unsettled(item) and _mark(client, table, raw, item, now):
                marked += 1
    return scanned, marked


def _mark(
    client: DynamoDBClient, table: str, raw: dict[str, Any], item: dict[str, Any], now: datetime
) -> bool:
    sets = [f"{UNSETTLED_SINCE} = :since"]
    since = str(item.get("updated_at") or now.isoformat())
    values: dict[str, Any] = {":since": since, ":status": item["status"]}
    if item["status"] == Status.FAILED:  # a source failure: retryable, as the fetcher records it now
        sets.append("retryable = :retryable")
        values[":retryable"] = True
    # False when it changed meanwhile: the write that changed it decided.
    return conditional(
        client.update_item,
        TableName=table,
        Key={name: raw[name] for name in (LEDGER_PARTITION_KEY, LEDGER_SORT_KEY)},
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression=f"attribute_not_exists({UNSETTLED_SINCE}) AND #status = :status",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=to_dynamo(values),
    ).done
