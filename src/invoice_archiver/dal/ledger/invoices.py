"""An invoice's record: claimed with a lease, then ARCHIVED, RETRYING or FAILED (states.TRANSITIONS).

Key: pk = account id, sk = "<YYYY-MM>#<invoice id>", so one Query lists an account's period.
A fetcher claims an invoice with a conditional write that holds a lease; a crashed worker's lease
expires and the next delivery takes over.

An item is *unsettled* from its claim until it is ARCHIVED with its event sent, or FAILED for good:
meanwhile it holds `unsettled_since`, the sort key of the sparse index the lister reads (unsettled.py),
set and removed by the same conditional writes that change its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, UNSETTLED_SINCE
from invoice_archiver.dal.ledger import item_size
from invoice_archiver.dal.ledger.records import (
    MAX_ERROR_LENGTH,
    Claim,
    InvoiceRecord,
    LeaseLost,
    LedgerKey,
    Tracking,
    conditional,
    from_dynamo,
    invoice_record,
    is_source_item,
    status_condition,
    to_dynamo,
)
from invoice_archiver.dal.ledger.states import Event, Status, sources, target
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_STILL_UNSETTLED = f", {UNSETTLED_SINCE} = if_not_exists({UNSETTLED_SINCE}, :now)"

# What this module sends and reads (checked at cold start by invoice_archiver.dal.sdk).
RECORDING = (
    Needs(
        "dynamodb",
        "UpdateItem",
        request=("ConditionExpression", "ReturnValues", "ReturnValuesOnConditionCheckFailure"),
        response=("Attributes",),
    ),
    Needs("dynamodb", "GetItem", request=("ConsistentRead",), response=("Item",)),
    Needs("dynamodb", "Query", request=("KeyConditionExpression", "ConsistentRead"), response=("Items",)),
)


def get(client: DynamoDBClient, table: str, key: LedgerKey) -> InvoiceRecord | None:
    item = client.get_item(TableName=table, Key=key.item_key(), ConsistentRead=True).get("Item")
    return invoice_record(from_dynamo(item)) if item else None


def take(client: DynamoDBClient, table: str, key: LedgerKey, **update: Any) -> Claim:
    """One conditional UpdateItem that takes an invoice: claimed with the new record, or not claimed
    with the record that stopped it (returned by the failed condition, else read)."""
    written = conditional(
        client.update_item,
        TableName=table,
        Key=key.item_key(),
        ReturnValues="ALL_NEW",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
        **update,
    )
    if written.done:
        return Claim(claimed=True, record=invoice_record(written.item or {}))
    return Claim(
        claimed=False, record=invoice_record(written.item) if written.item else get(client, table, key)
    )


def claim(
    client: DynamoDBClient,
    table: str,
    key: LedgerKey,
    *,
    owner: str,
    now: datetime,
    lease_seconds: int,
    attributes: dict[str, Any],
    reopen_archived_before: datetime | None = None,
) -> Claim:
    """CLAIM the invoice unless another worker's lease is still live; with `reopen_archived_before` (a
    re-archive, Reason.REARCHIVE: the time it was asked for), REOPEN an invoice archived before then, in
    the same conditional write, so the fetcher archives it again; a second delivery of the same request
    finds it archived since, and skips it."""
    epoch = int(now.timestamp())
    allowed = status_condition("from", sources(Event.CLAIM))
    condition = f"({allowed.expression})"
    values: dict[str, Any] = dict(allowed.values)
    if reopen_archived_before is not None:
        reopen = status_condition("reopen", sources(Event.REOPEN))
        condition = f"({condition} OR (({reopen.expression}) AND archived_at < :reopen_before))"
        values.update(reopen.values)
        values[":reopen_before"] = reopen_archived_before.astimezone(now.tzinfo).isoformat()
    return take(
        client,
        table,
        key,
        UpdateExpression=(
            "SET #status = :working, lease_owner = :owner, lease_expires_at = :expires, "
            "updated_at = :now, created_at = if_not_exists(created_at, :now), "
            "account_id = :account, invoice_id = :invoice, billing_period = :period, "
            "invoice_type = if_not_exists(invoice_type, :invoice_type), "
            "receiver_role = if_not_exists(receiver_role, :role), source_role_arn = :source_role, "
            f"{UNSETTLED_SINCE} = if_not_exists({UNSETTLED_SINCE}, :now) "
            "ADD attempts :one"
        ),
        ConditionExpression=(
            f"{condition} AND (attribute_not_exists(lease_expires_at) OR lease_expires_at < :epoch)"
        ),
        ExpressionAttributeNames={"#status": "status", "#pk": LEDGER_PARTITION_KEY},
        ExpressionAttributeValues=to_dynamo(
            {
                **values,
                ":working": target(Event.CLAIM).value,
                ":owner": owner,
                ":expires": epoch + lease_seconds,
                ":epoch": epoch,
                ":now": now.isoformat(),
                ":one": 1,
                ":account": key.account_id,
                ":invoice": key.invoice_id,
                ":period": str(key.period),
                ":invoice_type": attributes.get("invoice_type") or "",
                ":role": attributes.get("receiver_role") or "",
                # The role the invoice is read through ("" for the function's own credentials).
                ":source_role": attributes.get("source_role_arn") or "",
            }
        ),
    )


def mark_archived(
    client: DynamoDBClient,
    table: str,
    key: LedgerKey,
    *,
    owner: str,
    now: datetime,
    documents: list[dict[str, Any]],
    summary_key: str,
    total_bytes: int,
    tracking: Tracking | None = None,
) -> None:
    """ARCHIVE: with what incremental runs compare next time (`tracking`) and the event to send.

    With an event to send, the invoice stays unsettled until `rechecks.confirm_announced`; without one it
    is settled here. `documents` are held in the ledger only while they are few (item_size.py)."""
    tracking = tracking or Tracking()
    lists = item_size.document_lists(documents)
    allowed = status_condition("from", sources(Event.ARCHIVE))
    written = conditional(
        client.update_item,
        TableName=table,
        Key=key.item_key(),
        UpdateExpression=(
            "SET #status = :archived, summary_key = :summary, "
            "latest_summary_key = if_not_exists(latest_summary_key, :summary), "
            "revision = if_not_exists(revision, :zero), "
            "total_bytes = :bytes, archived_at = :now, updated_at = :now"
            + lists.set_clause()
            + tracking.set_clause()
            + (_STILL_UNSETTLED if tracking.pending_event else "")
            + " REMOVE lease_owner, lease_expires_at, last_error, retryable"
            + lists.remove_clause()
            + tracking.remove_clause()
            + ("" if tracking.pending_event else f", {UNSETTLED_SINCE}")
        ),
        ConditionExpression=f"lease_owner = :owner AND ({allowed.expression})",
        ExpressionAttributeNames={"#status": "status", **allowed.names},
        ExpressionAttributeValues=to_dynamo(
            {
                **allowed.values,
                ":archived": target(Event.ARCHIVE).value,
                **lists.values,
                ":summary": summary_key,
                ":bytes": total_bytes,
                ":now": now.isoformat(),
                ":owner": owner,
                ":zero": 0,
                **tracking.values(),
            }
        ),
    )
    if not written.done:
        current = get(client, table, key)
        if current is None or current.status is not Status.ARCHIVED:
            raise LeaseLost(f"lease on {key.invoice_id} was taken over")


def record_error(
    client: DynamoDBClient,
    table: str,
    key: LedgerKey,
    *,
    owner: str,
    now: datetime,
    event: Event,
    error: str,
    retryable: bool = True,
) -> None:
    """RETRY (released for the next delivery) or FAIL, with the reason.

    A `retryable` FAIL (the invoice's source could not be read: it heals once the source is fixed) stays
    unsettled, so the lister re-queues it whatever its period; a FAIL that is not retryable (the API
    refuses the invoice, an archive conflict, ...) is settled: a person must act, `status` shows it.
    """
    settled = event is Event.FAIL and not retryable
    sets = "#status = :status, last_error = :error, updated_at = :now, retryable = :retryable"
    removes = "lease_owner, lease_expires_at"
    if settled:
        removes += f", {UNSETTLED_SINCE}"
    else:
        sets += _STILL_UNSETTLED
    allowed = status_condition("from", sources(event))
    written = conditional(
        client.update_item,
        TableName=table,
        Key=key.item_key(),
        UpdateExpression=f"SET {sets} REMOVE {removes}",
        ConditionExpression=f"lease_owner = :owner AND ({allowed.expression})",
        ExpressionAttributeNames={"#status": "status", **allowed.names},
        ExpressionAttributeValues=to_dynamo(
            {
                **allowed.values,
                ":status": target(event).value,
                ":error": error[:MAX_ERROR_LENGTH],
                ":now": now.isoformat(),
                ":owner": owner,
                ":retryable": not settled,
            }
        ),
    )
    if not written.done:
        raise LeaseLost(f"lease on {key.invoice_id} was taken over")


def query_period(
    client: DynamoDBClient, table: str, account_id: str, period: BillingPeriod | None = None
) -> Iterator[InvoiceRecord]:
    """Every invoice of an account, or of one of its billing periods (never the source's own record)."""
    condition = "#pk = :pk"
    values: dict[str, Any] = {":pk": account_id}
    names = {"#pk": LEDGER_PARTITION_KEY}
    if period is not None:
        condition += " AND begins_with(#sk, :prefix)"
        values[":prefix"] = f"{period}#"
        names["#sk"] = LEDGER_SORT_KEY
    paginator = client.get_paginator("query")
    for page in paginator.paginate(
        TableName=table,
        KeyConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=to_dynamo(values),
        ConsistentRead=True,
    ):
        for raw in page.get("Items", []):
            item = from_dynamo(raw)
            if not is_source_item(item):
                yield invoice_record(item)
