"""The ledger's part in keeping the archive true over time (same table as invoice_archiver.dal.ledger).

* `read_period`: what the lister compares, one Query per account and billing period (eventually
  consistent, the attributes it needs only, with the read units it consumed);
* `claim_recheck` / `finish_recheck` / `release_recheck`: a lease on an ARCHIVED invoice while the
  fetcher re-checks it; the invoice stays ARCHIVED throughout (the archive is complete all along);
* `confirm_announced`: the event of a revision was accepted by EventBridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, UNSETTLED_SINCE, Status
from invoice_archiver.dal import item_size
from invoice_archiver.dal.ledger import (
    MAX_ERROR_LENGTH,
    Claim,
    LeaseLost,
    LedgerKey,
    _conditional_failure,
    _plain,
    _values,
    conditional_claim,
)
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# What the lister reads (checked at cold start by invoice_archiver.dal.sdk).
LISTING = Needs(
    "dynamodb",
    "Query",
    request=("KeyConditionExpression", "ProjectionExpression", "ConsistentRead", "ReturnConsumedCapacity"),
    response=("Items", "LastEvaluatedKey", "ConsumedCapacity.CapacityUnits"),
)
# The lister's view of one item: enough to decide, nothing more (documents stay in the table).
_PROJECTED = (
    "invoice_id",
    "status",
    "summary_fingerprint",
    "next_check_at",
    "pending_event",
)


@dataclass
class PeriodView:
    """One account's billing period as the ledger holds it, by invoice id."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    read_units: float = 0.0


def read_period(client: DynamoDBClient, table: str, account_id: str, period: BillingPeriod) -> PeriodView:
    """Every item of an account's period: one Query (paged past 1 MB), eventually consistent.

    Eventually consistent is enough: an item read stale is at worst enqueued once more, and the
    fetcher's conditional claim, not this read, decides what is archived.
    """
    view = PeriodView()
    names = {f"#a{n}": name for n, name in enumerate(_PROJECTED)}
    names.update({"#pk": LEDGER_PARTITION_KEY, "#sk": LEDGER_SORT_KEY})
    paginator = client.get_paginator("query")
    for page in paginator.paginate(
        TableName=table,
        KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
        ProjectionExpression=", ".join(f"#a{n}" for n in range(len(_PROJECTED))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=_values({":pk": account_id, ":prefix": f"{period}#"}),
        ConsistentRead=False,
        ReturnConsumedCapacity="TOTAL",
    ):
        view.read_units += float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        for raw in page.get("Items", []):
            item = _plain(raw)
            view.items[str(item.get("invoice_id"))] = item
    return view


def claim_recheck(
    client: DynamoDBClient, table: str, key: LedgerKey, *, owner: str, now: datetime, lease_seconds: int
) -> Claim:
    """Lease an ARCHIVED invoice for a re-check, unless another worker's lease is live."""
    epoch = int(now.timestamp())
    return conditional_claim(
        client,
        table,
        key,
        UpdateExpression="SET lease_owner = :owner, lease_expires_at = :expires, updated_at = :now",
        ConditionExpression=(
            "#status = :archived AND (attribute_not_exists(lease_expires_at) OR lease_expires_at < :epoch)"
        ),
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=_values(
            {
                ":owner": owner,
                ":expires": epoch + lease_seconds,
                ":epoch": epoch,
                ":now": now.isoformat(),
                ":archived": Status.ARCHIVED,
            }
        ),
    )


@dataclass(frozen=True)
class Recheck:
    """The outcome of a re-check, written in one conditional update."""

    documents: list[dict[str, Any]]
    total_bytes: int
    fingerprint: str
    next_check_at: datetime | None
    revision: int
    latest_summary_key: str
    no_longer_listed: list[dict[str, Any]]
    pending_event: dict[str, str] | None


def finish_recheck(
    client: DynamoDBClient, table: str, key: LedgerKey, *, owner: str, now: datetime, recheck: Recheck
) -> None:
    """Record the re-check; a revision's event to send makes the invoice unsettled until it is sent. The
    document lists are held only while they are small (dal/item_size.py)."""
    lists = item_size.document_lists(recheck.documents, recheck.no_longer_listed)
    values: dict[str, Any] = {
        **lists.values,
        ":bytes": recheck.total_bytes,
        ":fingerprint": recheck.fingerprint,
        ":revision": recheck.revision,
        ":latest": recheck.latest_summary_key,
        ":now": now.isoformat(),
        ":owner": owner,
        ":one": 1,
    }
    sets = [
        *lists.sets(),
        "total_bytes = :bytes",
        "summary_fingerprint = :fingerprint",
        "revision = :revision",
        "latest_summary_key = :latest",
        "last_checked_at = :now",
        "updated_at = :now",
    ]
    removes = ["lease_owner", "lease_expires_at", "last_error", *lists.removes()]
    if recheck.next_check_at is not None:
        values[":next_check"] = recheck.next_check_at.isoformat()
        sets.append("next_check_at = :next_check")
    else:
        removes.append("next_check_at")
    if recheck.pending_event is not None:
        values[":pending"] = recheck.pending_event
        sets.append("pending_event = :pending")
        sets.append(f"{UNSETTLED_SINCE} = if_not_exists({UNSETTLED_SINCE}, :now)")
    try:
        client.update_item(
            TableName=table,
            Key=key.item_key(),
            UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)} ADD checks :one",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues=_values(values),
        )
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise
        raise LeaseLost(f"lease on {key.invoice_id} was taken over") from None


def release_recheck(
    client: DynamoDBClient,
    table: str,
    key: LedgerKey,
    *,
    owner: str,
    now: datetime,
    error: str,
    move_schedule: bool,
    next_check_at: datetime | None,
) -> None:
    """Give the lease back after a failed re-check; the invoice stays ARCHIVED, the reason is kept.

    `move_schedule` (a permanent error) sets the next revisit to `next_check_at`, or ends the schedule
    when it is None (as a successful last revisit does); otherwise the schedule is kept as it is.
    """
    values: dict[str, Any] = {":error": error[:MAX_ERROR_LENGTH], ":now": now.isoformat(), ":owner": owner}
    update = "SET last_error = :error, updated_at = :now"
    remove = "REMOVE lease_owner, lease_expires_at"
    if move_schedule and next_check_at is not None:
        values[":next_check"] = next_check_at.isoformat()
        update += ", next_check_at = :next_check"
    elif move_schedule:
        remove += ", next_check_at"
    try:
        client.update_item(
            TableName=table,
            Key=key.item_key(),
            UpdateExpression=f"{update} {remove}",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues=_values(values),
        )
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise


def release_lease(client: DynamoDBClient, table: str, key: LedgerKey, *, owner: str) -> None:
    """Give a re-check's lease back untouched: nothing was found to re-check (no other attribute moves)."""
    try:
        client.update_item(
            TableName=table,
            Key=key.item_key(),
            UpdateExpression="REMOVE lease_owner, lease_expires_at",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues=_values({":owner": owner}),
        )
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise


def confirm_announced(client: DynamoDBClient, table: str, key: LedgerKey, *, event_key: str) -> None:
    """Forget the pending event once EventBridge accepted it (unless a newer one replaced it). An ARCHIVED
    invoice is settled with it; one reopened since (a re-archive) stays unsettled."""
    if not _confirm(client, table, key, event_key, archived=True):
        _confirm(client, table, key, event_key, archived=False)


def _confirm(client: DynamoDBClient, table: str, key: LedgerKey, event_key: str, *, archived: bool) -> bool:
    try:
        client.update_item(
            TableName=table,
            Key=key.item_key(),
            UpdateExpression="REMOVE pending_event" + (f", {UNSETTLED_SINCE}" if archived else ""),
            ConditionExpression="pending_event.event_key = :event_key AND #status "
            + ("= :archived" if archived else "<> :archived"),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values({":event_key": event_key, ":archived": Status.ARCHIVED}),
        )
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise
        return False
    return True
