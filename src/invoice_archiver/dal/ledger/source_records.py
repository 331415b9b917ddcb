"""A source's own record in the ledger: whether the archive could read it, and if not, why.

One item per source account (pk = account id, sk = SOURCE_SORT_KEY, beside that account's invoices;
no period prefix starts with it). The lister records a source FAILED when its role cannot be assumed or
the API denies it, the fetcher when an invoice of it cannot be read for that reason; the lister clears
it after the source lists cleanly again. `status` shows FAILED sources; `SourcesFailed` counts them.

A source that never failed has no item: an unchanged daily run writes nothing (one read per source).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY, SOURCE_SORT_KEY
from invoice_archiver.dal.ledger.records import (
    MAX_ERROR_LENGTH,
    SourceRecord,
    conditional,
    from_dynamo,
    source_record,
    to_dynamo,
)
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.models.source import Source

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RECORDING = (
    Needs("dynamodb", "UpdateItem", request=("UpdateExpression", "ConditionExpression")),
    Needs("dynamodb", "GetItem", request=("Key", "ConsistentRead"), response=("Item",)),
    Needs("dynamodb", "DeleteItem", request=("ConditionExpression",)),
)


def _key(account_id: str) -> dict[str, Any]:
    return to_dynamo({LEDGER_PARTITION_KEY: account_id, LEDGER_SORT_KEY: SOURCE_SORT_KEY})


def record_failure(
    client: DynamoDBClient, table: str, source: Source, *, reason: str, stage: str, now: datetime
) -> None:
    """The source could not be read (`stage`: listing or fetching), and why; `failed_since` keeps the
    first failure of the current run of failures."""
    client.update_item(
        TableName=table,
        Key=_key(source.account_id),
        UpdateExpression=(
            "SET #status = :failed, role_arn = :role, reason = :reason, stage = :stage, "
            "checked_at = :now, failed_since = if_not_exists(failed_since, :now)"
        ),
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=to_dynamo(
            {
                ":failed": Status.FAILED.value,
                ":role": source.role_arn or "",
                ":reason": reason[:MAX_ERROR_LENGTH],
                ":stage": stage,
                ":now": now.isoformat(),
            }
        ),
    )


def clear_failure(client: DynamoDBClient, table: str, source: Source) -> bool:
    """The source listed cleanly: forget its failure, if it had one (True if it had)."""
    item = client.get_item(TableName=table, Key=_key(source.account_id), ConsistentRead=False).get("Item")
    if not item:
        return False
    return conditional(
        client.delete_item,
        TableName=table,
        Key=_key(source.account_id),
        ConditionExpression="#status = :failed",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues=to_dynamo({":failed": Status.FAILED.value}),
    ).done


def failed_sources(client: DynamoDBClient, table: str, accounts: Iterable[str]) -> list[SourceRecord]:
    """The FAILED records of these accounts, by account (strongly consistent)."""
    found: list[SourceRecord] = []
    for account in dict.fromkeys(accounts):
        item = client.get_item(TableName=table, Key=_key(account), ConsistentRead=True).get("Item")
        record = source_record(from_dynamo(item)) if item else None
        if record is not None and record.status is Status.FAILED:
            found.append(record)
    return found
