"""A listing larger than one lister invocation continues through the listing queue, from the query and
NextToken where it stopped: no page lost, none repeated (beyond a redelivered piece, which the ledger
absorbs), and the last piece reports for the whole run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.handlers import environment, lister
from invoice_archiver.local.event_source import to_record
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.local.pipeline import drain_listing, scheduled_event
from invoice_archiver.models.continuation import ListingContinuation
from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import Pipeline

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
PERIODS = ((2026, 8), (2026, 9))


class TickingContext(LocalContext):
    """A Lambda context whose clock moves one second each time the lister asks how much is left, so
    where a piece stops depends on pages listed, not on this machine's speed."""

    def __init__(self, timeout_seconds: int) -> None:
        super().__init__("invoice-archiver-lister", timeout_seconds=timeout_seconds)
        self.asked = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return max(0, (self.timeout_seconds - self.asked) * 1000)


def invoke(event: dict[str, Any], timeout_seconds: int) -> dict[str, Any]:
    response: dict[str, Any] = lister.handler(event, TickingContext(timeout_seconds))
    return response


def receive_all(queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue, received and deleted (deleting keeps moto's queue short)."""
    sqs = clients.sqs()
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )


def test_thirty_thousand_invoices_list_across_several_invocations_each_enqueued_once(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 30,000 invoices: 3 accounts x 2 periods x 5,000 (6 queries of 50 pages each), and a lister
    # that may list about 40 pages per invocation (100 "seconds", 60 kept in reserve)
    data = generate(seed=3, accounts=ACCOUNTS, periods=PERIODS, invoices_per_account_period=5_000)
    pipeline = make_pipeline(data, env={"LISTING_RESERVE_SECONDS": "60", "LOOKBACK_PERIODS": "1"})
    invoice_queue = pipeline.settings.invoice_queue_url
    listing_queue = pipeline.settings.listing_queue_url

    # When the schedule fires, and each continuation is handed to the lister as the event source would
    event = scheduled_event(datetime(2026, 10, 12, 6, tzinfo=UTC))  # after MISSING_INVOICE_DAY (10)
    first = invoke(event, timeout_seconds=100)
    responses = [first]
    enqueued: list[dict[str, Any]] = receive_all(invoice_queue)
    sqs = clients.sqs()
    arn = sqs.get_queue_attributes(QueueUrl=listing_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    while responses[-1]["continued"]:
        [message] = sqs.receive_message(QueueUrl=listing_queue, MaxNumberOfMessages=10)["Messages"]
        continuation = ListingContinuation.model_validate_json(message["Body"])
        assert continuation.piece == len(responses) + 1
        assert "http" not in message["Body"].lower()  # a cursor and counts, never a URL
        responses.append(invoke({"Records": [to_record(message, arn, "us-east-1")]}, timeout_seconds=100))
        sqs.delete_message(QueueUrl=listing_queue, ReceiptHandle=message["ReceiptHandle"])
        enqueued += receive_all(invoice_queue)

    # Then it took several invocations, resuming inside queries (from a NextToken) and between them
    assert len(responses) >= 5
    listed_so_far = [r["invoices_listed"] for r in responses]
    assert listed_so_far == sorted(listed_so_far)
    assert listed_so_far[-2] < 30_000
    assert any(r["queries_done"] * 5_000 != r["invoices_listed"] for r in responses[:-1])  # mid-query

    # And every invoice was enqueued exactly once
    ids = Counter(m["invoice_id"] for m in enqueued)
    assert len(ids) == 30_000
    assert set(ids) == {i.invoice_id for i in data.invoices}
    assert max(ids.values()) == 1

    # And the last piece reports the whole run; the missing-invoice check saw every account's invoices
    last = responses[-1]
    assert (last["invoices_listed"], last["messages_sent"], last["queries_done"]) == (30_000, 30_000, 6)
    assert last["reasons"] == {"new": 30_000}
    assert last["accounts_without_invoice"] == []
    # And no page was asked for twice: 50 pages per query, one call each
    assert pipeline.sandbox.emulator is not None
    assert pipeline.sandbox.emulator.stats.calls["ListInvoiceSummaries"] == 6 * 50


def test_a_redelivered_piece_repeats_its_pages_and_the_ledger_absorbs_them(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given 300 invoices in one query (3 pages) and a lister that lists one page per invocation
    data = generate(
        seed=4,
        accounts=ACCOUNTS[:1],
        periods=PERIODS[1:],
        invoices_per_account_period=300,
        supplemental=(0, 0),
        document_size=512,
    )
    pipeline = make_pipeline(data, env={"LISTING_RESERVE_SECONDS": "60", "LOOKBACK_PERIODS": "0"})
    event = scheduled_event(datetime(2026, 10, 5, 6, tzinfo=UTC))
    first = invoke(event, timeout_seconds=60)
    assert first["continued"]

    # When the second piece lists its pages but dies before its continuation is sent, and SQS delivers
    # it again
    sqs = clients.sqs()
    listing_queue = pipeline.settings.listing_queue_url
    arn = sqs.get_queue_attributes(QueueUrl=listing_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    [message] = sqs.receive_message(QueueUrl=listing_queue)["Messages"]
    record = to_record(message, arn, "us-east-1")
    invoke({"Records": [record]}, timeout_seconds=60)
    [unsent] = sqs.receive_message(QueueUrl=listing_queue)["Messages"]
    sqs.delete_message(QueueUrl=listing_queue, ReceiptHandle=unsent["ReceiptHandle"])  # as if never sent
    last = drain_listing(invoke({"Records": [record]}, timeout_seconds=60), listing_queue, timeout_seconds=60)

    # Then every invoice was enqueued, the redelivered piece's page (the second) twice
    bodies = pipeline.queue_bodies(pipeline.settings.invoice_queue_url)
    counts = Counter(json.loads(b["body"])["invoice_id"] for b in bodies)
    assert set(counts) == {i.invoice_id for i in data.invoices}
    assert sorted(Counter(counts.values()).items()) == [(1, 200), (2, 100)]
    assert last["continued"] is False

    # And the fetchers archive each invoice once: the ledger absorbs the second message
    sqs.purge_queue(QueueUrl=pipeline.settings.invoice_queue_url)
    for body in bodies:
        sqs.send_message(QueueUrl=pipeline.settings.invoice_queue_url, MessageBody=body["body"])
    pipeline.drain(workers=4)
    ledger = pipeline.ledger()
    archived = [i for i, item in ledger.items() if item.get("status") == "ARCHIVED"]
    assert sorted(archived) == sorted(i.invoice_id for i in data.invoices)
    summaries = [k for k in pipeline.object_keys() if k.endswith("/summary.json")]
    assert len(summaries) == len(data.invoices)


def test_a_continuation_cut_from_another_plan_starts_its_queries_over(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a listing that stopped part-way
    data = generate(seed=5, accounts=ACCOUNTS[:2], periods=PERIODS[1:], invoices_per_account_period=700)
    pipeline = make_pipeline(data, env={"LISTING_RESERVE_SECONDS": "60", "LOOKBACK_PERIODS": "0"})
    first = invoke(scheduled_event(datetime(2026, 10, 5, 6, tzinfo=UTC)), timeout_seconds=66)
    assert first["continued"]

    # When the configuration changes before the next piece (a receiver-role filter: other queries)
    monkeypatch.setenv("RECEIVER_ROLES", "BUYER")
    environment.reset()
    last = drain_listing(first, pipeline.settings.listing_queue_url, timeout_seconds=66)

    # Then the next piece lists the new plan from its first query, and says so
    assert last["continued"] is False
    assert "the configuration changed since this listing started" in pipeline.log_text()
    bodies = pipeline.queue_bodies(pipeline.settings.invoice_queue_url)
    listed = {json.loads(b["body"])["invoice_id"] for b in bodies}
    buyers = {i.invoice_id for i in data.invoices if i.summary.get("ReceiverRole") == "BUYER"}
    assert buyers
    assert buyers <= listed
