"""The DynamoDB ledger: one item per invoice, the idempotency record and the archive's index.

Key: pk = account id, sk = "<YYYY-MM>#<invoice id>", so one Query lists an account's period.
A fetcher claims an invoice with a conditional write that holds a lease; a crashed worker's lease
expires and the next delivery takes over.

An item is *unsettled* from its claim until it is ARCHIVED with its event sent, or FAILED for good:
meanwhile it holds `unsettled_since`, the sort key of the sparse index the lister reads (dal/unsettled.py),
set and removed by the same conditional writes that change its status.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, Status
from invoice_archiver.dal import item_size
from invoice_archiver.dal.ledger_items import MAX_ERROR_LENGTH as MAX_ERROR_LENGTH
from invoice_archiver.dal.ledger_items import Claim as Claim
from invoice_archiver.dal.ledger_items import LeaseLost as LeaseLost
from invoice_archiver.dal.ledger_items import LedgerKey as LedgerKey
from invoice_archiver.dal.ledger_items import Tracking as Tracking
from invoice_archiver.dal.ledger_items import _conditional_failure as _conditional_failure
from invoice_archiver.dal.ledger_items import _plain as _plain
from invoice_archiver.dal.ledger_items import _values as _values
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.models.period import BillingPeriod

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_STILL_UNSETTLED = ", unsettled_since = if_not_exists(unsettled_since, :now)"

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


def get(client: DynamoDBClient, table: str, key: LedgerKey) -> dict[str, Any] | None:
    item = client.get_item(TableName=table, Key=key.item_key(), ConsistentRead=True).get("Item")
    return _plain(item) if item else None


def conditional_claim(client: DynamoDBClient, table: str, key: LedgerKey, **update: Any) -> Claim:
    """One conditional UpdateItem that takes an invoice: claimed with the new item, or not claimed
    with the item that stopped it (returned by the failed condition, else read)."""
    try:
        response = client.update_item(
            TableName=table,
            Key=key.item_key(),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **update,
        )
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise
        old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
        return Claim(claimed=False, item=_plain(old) if old else (get(client, table, key) or {}))
    return Claim(claimed=True, item=_plain(response["Attributes"]))


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
    """Take the invoice unless it is ARCHIVED or another worker's lease is still live.

    `reopen_archived_before` (a re-archive, Reason.REARCHIVE: the time it was asked for): also take an
    ARCHIVED invoice that was archived before then, in the same conditional write, so the fetcher
    archives it again; a second delivery of the same request finds it archived since, and skips it.
    """
    epoch = int(now.timestamp())
    archived = "#status <> :archived"
    reopen: dict[str, Any] = {}
    if reopen_archived_before is not None:
        archived = "(#status <> :archived OR archived_at < :reopen_before)"
        reopen[":reopen_before"] = reopen_archived_before.astimezone(now.tzinfo).isoformat()
    return conditional_claim(
        client,
        table,
        key,
        UpdateExpression=(
            "SET #status = :working, lease_owner = :owner, lease_expires_at = :expires, "
            "updated_at = :now, created_at = if_not_exists(created_at, :now), "
            "account_id = :account, invoice_id = :invoice, billing_period = :period, "
            "invoice_type = if_not_exists(invoice_type, :invoice_type), "
            "receiver_role = if_not_exists(receiver_role, :role), source_role_arn = :source_role, "
            "unsettled_since = if_not_exists(unsettled_since, :now) "
            "ADD attempts :one"
        ),
        ConditionExpression=(
            f"attribute_not_exists(#pk) OR ({archived} AND "
            "(attribute_not_exists(lease_expires_at) OR lease_expires_at < :epoch))"
        ),
        ExpressionAttributeNames={"#status": "status", "#pk": LEDGER_PARTITION_KEY},
        ExpressionAttributeValues=_values(
            {
                ":working": Status.IN_PROGRESS,
                ":archived": Status.ARCHIVED,
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
                **reopen,
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
    """ARCHIVED, with what incremental runs compare next time (`tracking`) and the event to send.

    With an event to send, the invoice stays unsettled until `tracking.confirm_announced`; without one it
    is settled here. `documents` are held in the ledger only while they are few (dal/item_size.py)."""
    tracking = tracking or Tracking()
    lists = item_size.document_lists(documents)
    values: dict[str, Any] = {
        ":archived": Status.ARCHIVED,
        **lists.values,
        ":summary": summary_key,
        ":bytes": total_bytes,
        ":now": now.isoformat(),
        ":owner": owner,
        ":zero": 0,
        **tracking.values(),
    }
    try:
        client.update_item(
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
                + ("" if tracking.pending_event else ", unsettled_since")
            ),
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(values),
        )
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise
        current = get(client, table, key) or {}
        if current.get("status") != Status.ARCHIVED:
            raise LeaseLost(f"lease on {key.invoice_id} was taken over") from None


def record_error(
    client: DynamoDBClient,
    table: str,
    key: LedgerKey,
    *,
    owner: str,
    now: datetime,
    status: str,
    error: str,
    retryable: bool = True,
) -> None:
    """FAILED or RETRYING (released for the next delivery), with the reason.

    `retryable` FAILED (the invoice's source could not be read: it heals once the source is fixed) stays
    unsettled, so the lister re-queues it whatever its period; a FAILED that is not retryable (the API
    refuses the invoice, an archive conflict, ...) is settled: a person must act, `status` shows it.
    """
    settled = status == Status.FAILED and not retryable
    sets = "#status = :status, last_error = :error, updated_at = :now, retryable = :retryable"
    removes = "lease_owner, lease_expires_at"
    if settled:
        removes += ", unsettled_since"
    else:
        sets += ", unsettled_since = if_not_exists(unsettled_since, :now)"
    try:
        client.update_item(
            TableName=table,
            Key=key.item_key(),
            UpdateExpression=f"SET {sets} REMOVE {removes}",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_values(
                {
                    ":status": status,
                    ":error": error[:MAX_ERROR_LENGTH],
                    ":now": now.isoformat(),
                    ":owner": owner,
                    ":retryable": not settled,
                }
            ),
        )
    except ClientError as exc:
        if not _conditional_failure(exc):
            raise
        raise LeaseLost(f"lease on {key.invoice_id} was taken over") from None


def query_period(
    client: DynamoDBClient, table: str, account_id: str, period: BillingPeriod | None = None
) -> Iterator[dict[str, Any]]:
    """Every ledger item of an account, or of one of its billing periods."""
    condition = "#pk = :pk"
    values: dict[str, Any] = {":pk": account_id}
    if period is not None:
        condition += " AND begins_with(#sk, :prefix)"
        values[":prefix"] = f"{period}#"
    paginator = client.get_paginator("query")
    names = {"#pk": LEDGER_PARTITION_KEY}
    if period is not None:
        names["#sk"] = LEDGER_SORT_KEY
    for page in paginator.paginate(
        TableName=table,
        KeyConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=_values(values),
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            yield _plain(item)
