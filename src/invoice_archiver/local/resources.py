"""Create what the pipeline needs on a sandbox or any endpoint, if it is missing (mirrors the stack)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from invoice_archiver.constants import (
    LEDGER_PARTITION_KEY,
    LEDGER_SORT_KEY,
    MAX_RECEIVE_COUNT,
    UNSETTLED_INDEX,
    UNSETTLED_PROJECTED,
    UNSETTLED_SINCE,
)
from invoice_archiver.dal import clients

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeDefinitionTypeDef, GlobalSecondaryIndexTypeDef
    from mypy_boto3_sqs.literals import QueueAttributeNameType


@dataclass(frozen=True)
class LocalResources:
    bucket: str
    table: str
    queue_url: str
    dead_letter_queue_url: str
    listing_queue_url: str


def ensure_bucket(name: str) -> None:
    s3 = clients.s3()
    try:
        s3.head_bucket(Bucket=name)
        return
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") != 404:
            raise
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


_ATTRIBUTES: list[AttributeDefinitionTypeDef] = [
    {"AttributeName": LEDGER_PARTITION_KEY, "AttributeType": "S"},
    {"AttributeName": LEDGER_SORT_KEY, "AttributeType": "S"},
    {"AttributeName": UNSETTLED_SINCE, "AttributeType": "S"},
]
# The stack's index of unsettled invoices (infra/storage.py), which the lister reads.
_UNSETTLED: GlobalSecondaryIndexTypeDef = {
    "IndexName": UNSETTLED_INDEX,
    "KeySchema": [
        {"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": UNSETTLED_SINCE, "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(UNSETTLED_PROJECTED)},
}


def ensure_table(name: str) -> None:
    """The ledger and its index of unsettled invoices (added to a table made before it existed)."""
    dynamodb = clients.dynamodb()
    try:
        table = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    else:
        if not any(i["IndexName"] == UNSETTLED_INDEX for i in table.get("GlobalSecondaryIndexes", [])):
            dynamodb.update_table(
                TableName=name,
                AttributeDefinitions=_ATTRIBUTES,
                GlobalSecondaryIndexUpdates=[{"Create": _UNSETTLED}],
            )
        return
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=_ATTRIBUTES,
        KeySchema=[
            {"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": LEDGER_SORT_KEY, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[_UNSETTLED],
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def ensure_queues(name: str, visibility_timeout: int = 60) -> tuple[str, str]:
    """The invoice queue and its DLQ (redrive after MAX_RECEIVE_COUNT receives). Returns both URLs."""
    sqs = clients.sqs()
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def ensure_listing_queue(name: str, dead_letter_queue_url: str, visibility_timeout: int = 960) -> str:
    """The listing queue (continuations of listings that outgrow an invocation), redriven to the DLQ."""
    sqs = clients.sqs()
    attributes: dict[QueueAttributeNameType, str] = {"VisibilityTimeout": str(visibility_timeout)}
    if dead_letter_queue_url:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dead_letter_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
        )
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def ensure_all(bucket: str, table: str, queue_name: str) -> LocalResources:
    ensure_bucket(bucket)
    ensure_table(table)
    queue_url, dlq_url = ensure_queues(queue_name)
    return LocalResources(
        bucket=bucket,
        table=table,
        queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
        listing_queue_url=ensure_listing_queue(f"{queue_name}-listing", dlq_url),
    )
