"""The lease on an ARCHIVED invoice while the fetcher re-checks it (Event.RECHECK: the invoice stays
ARCHIVED throughout, the archive is complete all along), and the confirmation that an event was sent
(Event.ANNOUNCED), which settles an archived invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from invoice_archiver.constants import UNSETTLED_SINCE
from invoice_archiver.dal.ledger import item_size
from invoice_archiver.dal.ledger.invoices import take
from invoice_archiver.dal.ledger.records import (
    MAX_ERROR_LENGTH,
    Claim,
    LeaseLost,
    LedgerKey,
    conditional,
    status_condition,
    to_dynamo,
)
from invoice_archiver.dal.ledger.states import Event, sources

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def claim_recheck(
    client: DynamoDBClient, table: str, key: LedgerKey, *, owner: str, now: datetime, lease_seconds: int
) -> Claim:
    """RECHECK: lease an ARCHIVED invoice for a re-check, unless another worker's lease is live."""
    epoch = int(now.timestamp())
    allowed = status_condition("from", sources(Event.RECHECK))
    return take(
        client,
        table,
        key,
        UpdateExpression="SET lease_owner = :owner, lease_expires_at = :expires, updated_at = :now",
        ConditionExpression=(
            f"({allowed.expression}) AND "
            "(attribute_not_exists(lease_expires_at) OR lease_expires_at < :epoch)"
        ),
        ExpressionAttributeNames=allowed.names,
        ExpressionAttributeValues=to_dynamo(
            {
                **allowed.values,
                ":owner": owner,
                ":expires": epoch + lease_seconds,
                ":epoch": epoch,
                ":now": now.isoformat(),
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
    document lists are held only while they are small (item_size.py)."""
    lists = item_size.document_lists(recheck.documents, recheck.no_longer_listed)
    values: dict[str, Any] = {
        **lists.values,
        ":bytes": recheck.total_bytes,
        ":fingerprint": recheck.fingerprint,
        ":revision": recheck.revision,
        ":latest": recheck.latest_summary_key,
        ":now": now.isoformat(),
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
    update = f"SET {', '.join(sets)} REMOVE {', '.join(removes)} ADD checks :one"
    if not _while_leased(client, table, key, owner, update, values):
        raise LeaseLost(f"lease on {key.invoice_id} was taken over")


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
    values: dict[str, Any] = {":error": error[:MAX_ERROR_LENGTH], ":now": now.isoformat()}
    update = "SET last_error = :error, updated_at = :now"
    remove = "REMOVE lease_owner, lease_expires_at"
    if move_schedule and next_check_at is not None:
        values[":next_check"] = next_check_at.isoformat()
        update += ", next_check_at = :next_check"
    elif move_schedule:
        remove += ", next_check_at"
    _while_leased(client, table, key, owner, f"{update} {remove}", values)


def release_lease(client: DynamoDBClient, table: str, key: LedgerKey, *, owner: str) -> None:
    """Give a re-check's lease back untouched: nothing was found to re-check (no other attribute moves)."""
    _while_leased(client, table, key, owner, "REMOVE lease_owner, lease_expires_at", {})


def _while_leased(
    client: DynamoDBClient, table: str, key: LedgerKey, owner: str, update: str, values: dict[str, Any]
) -> bool:
    """One write under the re-check's lease (an invoice that stays in RECHECK's statuses); False if the
    lease was taken over."""
    allowed = status_condition("in", sources(Event.RECHECK))
    return conditional(
        client.update_item,
        TableName=table,
        Key=key.item_key(),
        UpdateExpression=update,
        ConditionExpression=f"lease_owner = :owner AND ({allowed.expression})",
        ExpressionAttributeNames=allowed.names,
        ExpressionAttributeValues=to_dynamo({**values, **allowed.values, ":owner": owner}),
    ).done


def confirm_announced(client: DynamoDBClient, table: str, key: LedgerKey, *, event_key: str) -> None:
    """ANNOUNCED: forget the pending event once EventBridge accepted it (unless a newer one replaced it),
    which settles an archived invoice. One reopened since (a re-archive) forgets it too, without a
    transition: it stays unsettled until it is archived again."""
    allowed = status_condition("archived", sources(Event.ANNOUNCED))
    settled = conditional(
        client.update_item,
        TableName=table,
        Key=key.item_key(),
        UpdateExpression=f"REMOVE pending_event, {UNSETTLED_SINCE}",
        ConditionExpression=f"pending_event.event_key = :event_key AND ({allowed.expression})",
        ExpressionAttributeNames=allowed.names,
        ExpressionAttributeValues=to_dynamo({":event_key": event_key, **allowed.values}),
    )
    if not settled.done:
        conditional(
            client.update_item,
            TableName=table,
            Key=key.item_key(),
            UpdateExpression="REMOVE pending_event",
            ConditionExpression=f"pending_event.event_key = :event_key AND NOT ({allowed.expression})",
            ExpressionAttributeNames=allowed.names,
            ExpressionAttributeValues=to_dynamo({":event_key": event_key, **allowed.values}),
        )
