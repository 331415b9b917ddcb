"""What the lister compares: one Query per account and billing period, the attributes it needs only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from invoice_archiver.constants import LEDGER_PARTITION_KEY, LEDGER_SORT_KEY
from invoice_archiver.dal.ledger.records import InvoiceRecord, from_dynamo, invoice_record, to_dynamo
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
    "account_id",
    "billing_period",
    "invoice_id",
    "status",
    "summary_fingerprint",
    "next_check_at",
    "pending_event",
)


@dataclass
class PeriodView:
    """One account's billing period as the ledger holds it, by invoice id."""

    records: dict[str, InvoiceRecord] = field(default_factory=dict)
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
        ExpressionAttributeValues=to_dynamo({":pk": account_id, ":prefix": f"{period}#"}),
        ConsistentRead=False,
        ReturnConsumedCapacity="TOTAL",
    ):
        view.read_units += float(page.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        for raw in page.get("Items", []):
            record = invoice_record(from_dynamo(raw))
            view.records[record.invoice_id] = record
    return view
