"""The sandbox is as atomic as the services: moto applies an UpdateItem in steps, and puts a new item's key
in the table before its attributes, so without the sandbox's lock a concurrent Query sees an item that holds
nothing but its key (a backfill following the ledger once read such an item and stopped with "account_id:
Field required"). DynamoDB never shows half an item."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.dynamodb.parsing.executors import UpdateExpressionExecutor

from invoice_archiver.sandbox.motoserver import MotoServer

TABLE = "sandbox-atomicity-test"  # moto's state is per process: a name no other test uses


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with MotoServer() as server:
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=server.url)
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client
        client.delete_table(TableName=TABLE)


def test_a_query_never_sees_an_item_half_created(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto halted inside an UpdateItem that creates an item: its key is in the table, its SETs not yet
    halted, resume = threading.Event(), threading.Event()
    execute = UpdateExpressionExecutor.execute

    def halting_execute(self: UpdateExpressionExecutor, node: Any = None) -> None:
        if node is None and not halted.is_set():  # the top of the expression; it recurses into its nodes
            halted.set()
            assert resume.wait(30), "the test never resumed the write"
        execute(self, node)

    monkeypatch.setattr(UpdateExpressionExecutor, "execute", halting_execute)
    writer = threading.Thread(
        target=dynamodb.update_item,
        kwargs={
            "TableName": TABLE,
            "Key": {"pk": {"S": "111111111111"}, "sk": {"S": "2026-10#INV-1"}},
            "UpdateExpression": "SET account_id = :account, #status = :status",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":account": {"S": "111111111111"}, ":status": {"S": "IN_PROGRESS"}},
        },
    )
    writer.start()
    assert halted.wait(30), "moto never reached the update"

    # When a Query of that partition is sent while the write is halted
    seen: list[list[dict[str, Any]]] = []
    reader = threading.Thread(
        target=lambda: seen.append(
            dynamodb.query(
                TableName=TABLE,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "111111111111"}},
                ConsistentRead=True,
            )["Items"]
        )
    )
    reader.start()
    reader.join(0.5)
    waited = reader.is_alive()
    resume.set()
    writer.join(30)
    reader.join(30)

    # Then the Query waited for the write, and saw the whole item
    assert waited, f"the Query was answered during the write: {seen}"
    assert seen == [
        [
            {
                "pk": {"S": "111111111111"},
                "sk": {"S": "2026-10#INV-1"},
                "account_id": {"S": "111111111111"},
                "status": {"S": "IN_PROGRESS"},
            }
        ]
    ]
