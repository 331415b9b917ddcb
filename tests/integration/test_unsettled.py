"""Nothing unsettled is forgotten (issue 17): an invoice left unsettled is re-queued by the daily run after
its period has left the look-back window, through the ledger's index, and archived; a FAILED one that needs
a person is not. Real handlers on the sandbox; the emulator's clock is the tests'."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import invoices, unsettled
from invoice_archiver.dal.ledger.records import LedgerKey
from invoice_archiver.handlers import lister
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.local.pipeline import drain_listing, drain_queue, run_pass, scheduled_event
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.dataset import generate
from invoice_archiver.sandbox.faults import Faults
from invoice_archiver.sandbox.timeline import SandboxClock
from tests.integration.conftest import Pipeline, message_for
from tests.integration.test_over_time import consumed

# One account, October 2026: two invoices, and a third the API denies (FAILED for good).
DATASET = generate(
    seed=12,
    accounts=("123456789012",),
    periods=((2026, 10),),
    invoices_per_account_period=3,
    supplemental=(0, 1),
    access_denied_rate=0.3,
    document_size=1024,
)
DAY_1 = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def tick(pipeline: Pipeline, when: datetime) -> dict[str, Any]:
    """One scheduled lister run (every piece of it), as EventBridge's daily rule would start it."""
    first = lister.handler(scheduled_event(when), LocalContext("lister-test"))
    return drain_listing(first, pipeline.settings.listing_queue_url)


def emitted(capsys: pytest.CaptureFixture[str], name: str) -> list[list[float]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return [m[name] for m in lines if name in m]


def test_an_unsettled_invoice_is_requeued_and_archived_after_its_period_left_the_window(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given every document download breaks on day 1 (one attempt per delivery), so SQS gives up on the
    # two readable invoices (RETRYING, their messages in the DLQ) and the denied one is FAILED for good
    clock = SandboxClock(DAY_1)
    pipeline = make_pipeline(
        DATASET, clock=clock, faults=Faults(every={"truncate": 1}), env={"DOWNLOAD_ATTEMPTS": "1"}
    )
    denied = next(i.invoice_id for i in DATASET.invoices if i.access_denied)
    readable = sorted(i.invoice_id for i in DATASET.invoices if not i.access_denied)
    run_pass(scheduled_event(DAY_1), pipeline.settings, retry_delay=0)
    ledger = pipeline.ledger()
    assert {ledger[i]["status"] for i in readable} == {"RETRYING"}
    assert all("unsettled_since" in ledger[i] and ledger[i]["retryable"] is True for i in readable)
    assert ledger[denied]["status"] == "FAILED"
    assert "unsettled_since" not in ledger[denied]
    assert ledger[denied]["retryable"] is False

    # When the next day's run comes while October is still listed (downloads still broken)
    day_2 = tick(pipeline, DAY_1 + timedelta(days=1))

    # Then the listing itself enqueues the three again, and the index adds nothing twice
    assert day_2["unsettled"] == {
        "found": 2,
        "stale": 0,
        "in_window": 2,
        "in_flight": 0,
        "source_failed": 0,
        "requeued": 0,
        "oldest_since": min(str(ledger[i]["unsettled_since"]) for i in readable),
    }
    assert (day_2["reasons"], day_2["messages_sent"]) == ({"not-archived": 3}, 3)
    drain_queue(pipeline.settings.invoice_queue_url, 4, None, 3, retry_delay=0)  # until SQS gives up again

    # When the downloads heal and the schedule runs after October has left the look-back window
    pipeline.sandbox.emulator.set_faults(Faults())  # type: ignore[union-attr]
    later = max(datetime(2027, 2, 5, 6, 0, tzinfo=UTC), datetime.now(UTC) + timedelta(days=4))
    clock.set(later)
    capsys.readouterr()
    response = tick(pipeline, later)

    # Then the two unsettled invoices, and only they, are re-queued from the index (unsettled for more than
    # three days: counted in InvoicesUnsettled) ...
    assert response["periods"] == ["2026-11", "2026-12", "2027-01"]
    assert response["unsettled"]["found"] == 2
    assert (response["unsettled"]["stale"], response["unsettled"]["requeued"]) == (2, 2)
    assert (response["reasons"], response["messages_sent"]) == ({"unsettled": 2}, 2)
    assert emitted(capsys, "InvoicesUnsettled") == [[2.0]]
    # ... and the fetcher archives them: settled, gone from the index
    pipeline.drain()
    ledger = pipeline.ledger()
    for invoice_id in readable:
        assert ledger[invoice_id]["status"] == "ARCHIVED", ledger[invoice_id].get("last_error")
        assert "unsettled_since" not in ledger[invoice_id]
        assert "pending_event" not in ledger[invoice_id]
    # ... while the invoice a person must look at stays FAILED with its reason, not re-queued
    assert ledger[denied]["status"] == "FAILED"
    assert "AccessDeniedException" in str(ledger[denied]["last_error"])

    # When the schedule runs the day after, nothing is unsettled any more
    capsys.readouterr()
    after = tick(pipeline, later + timedelta(days=1))
    assert after["unsettled"]["found"] == 0
    assert after["messages_sent"] == 0
    assert emitted(capsys, "InvoicesUnsettled") == [[0.0]]


def test_an_archived_invoice_whose_event_was_never_sent_is_announced_after_its_period_left_the_window(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an invoice archived while its event bus did not exist: ARCHIVED, its event pending, unsettled
    clock = SandboxClock(DAY_1)
    pipeline = make_pipeline(DATASET, clock=clock, env={"EVENT_BUS_NAME": "invoices"})
    invoice_id = next(i.invoice_id for i in DATASET.invoices if not i.access_denied)
    assert pipeline.fetch([message_for(invoice_id)])["batchItemFailures"]
    item = pipeline.ledger()[invoice_id]
    assert (item["status"], "pending_event" in item, "unsettled_since" in item) == ("ARCHIVED", True, True)

    # When the bus exists (a consumer subscribed) and the schedule runs after October left the window
    events = clients.session().client("events")
    events.create_event_bus(Name="invoices")
    sqs = clients.sqs()
    url = sqs.create_queue(QueueName="late-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName="invoices", EventPattern='{"source": ["invoice-archiver"]}')
    events.put_targets(Rule="all", EventBusName="invoices", Targets=[{"Id": "q", "Arn": arn}])
    later = max(datetime(2027, 2, 5, 6, 0, tzinfo=UTC), datetime.now(UTC) + timedelta(days=4))
    clock.set(later)
    response = tick(pipeline, later)
    pipeline.drain()

    # Then it was re-queued from the index, announced once, and is settled: nothing was archived again
    assert (response["reasons"], response["unsettled"]["requeued"]) == ({"unsettled": 1}, 1)
    [event] = consumed(url)
    assert (event["detail-type"], event["detail"]["invoice_id"]) == ("Invoice Archived", invoice_id)
    item = pipeline.ledger()[invoice_id]
    assert "pending_event" not in item
    assert "unsettled_since" not in item
    assert int(item["attempts"]) == 1


def test_items_written_before_the_index_are_marked_once_by_mark_unsettled(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ledger written before the index existed: a RETRYING invoice, one FAILED for its source, one
    # FAILED for good, one ARCHIVED (and settled), none with `unsettled_since`
    pipeline = make_pipeline(DATASET)
    dynamodb, table = clients.dynamodb(), pipeline.settings.ledger_table
    now = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
    states = {
        "OLD-RETRYING": ("RETRYING", "DocumentsIncomplete: documents incomplete after 4 attempts"),
        "OLD-SOURCE": ("FAILED", "source unavailable: cannot assume arn:aws:iam::123456789012:role/r: ..."),
        "OLD-DENIED": ("FAILED", "InvoiceUnavailable: AccessDeniedException: not yours"),
        "OLD-ARCHIVED": ("ARCHIVED", ""),
    }
    for invoice_id, (status, error) in states.items():
        key = LedgerKey("123456789012", BillingPeriod(2026, 6), invoice_id)
        invoices.claim(dynamodb, table, key, owner="old", now=now, lease_seconds=60, attributes={})
        dynamodb.update_item(
            TableName=table,
            Key=key.item_key(),
            UpdateExpression="SET #s = :s, last_error = :e REMOVE unsettled_since, lease_owner",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}, ":e": {"S": error}},
        )
    assert list(unsettled.unsettled(dynamodb, table, "123456789012")) == []

    # When an operator runs mark-unsettled (its core: one Scan, conditional updates), twice
    first = unsettled.mark_old_items(dynamodb, table, datetime.now(UTC))
    second = unsettled.mark_old_items(dynamodb, table, datetime.now(UTC))

    # Then the two unsettled ones are in the index, unsettled since their last update, and only they
    found = {i.invoice_id: i for i in unsettled.unsettled(dynamodb, table, "123456789012")}
    assert set(found) == {"OLD-RETRYING", "OLD-SOURCE"}
    assert {i.since for i in found.values()} == {now}
    assert pipeline.ledger()["OLD-SOURCE"]["retryable"] is True
    assert first == (4, 2)
    assert second == (4, 0)


def test_a_rearchived_invoice_is_unsettled_until_it_is_archived_again(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an archived (and announced) invoice, and downloads that break off for now
    pipeline = make_pipeline(DATASET, env={"DOWNLOAD_ATTEMPTS": "1"})
    invoice_id = next(i.invoice_id for i in DATASET.invoices if not i.access_denied)
    assert pipeline.fetch([message_for(invoice_id)]) == {"batchItemFailures": []}
    dynamodb, table = clients.dynamodb(), pipeline.settings.ledger_table
    assert list(unsettled.unsettled(dynamodb, table, "123456789012")) == []
    emulator = pipeline.sandbox.emulator
    assert emulator is not None
    emulator.faults.set(Faults(drop_connection_rate=1.0))

    # When an operator's re-archive is delivered and cannot finish (its message may still be lost)
    rearchive = json.loads(message_for(invoice_id))
    rearchive.update(reason="rearchive", listed_at=datetime.now(UTC).isoformat())
    assert pipeline.fetch([json.dumps(rearchive)])["batchItemFailures"] != []

    # Then it is unsettled (the daily run would re-queue it), until the fetcher archives it again
    assert [i.invoice_id for i in unsettled.unsettled(dynamodb, table, "123456789012")] == [invoice_id]
    emulator.faults.set(Faults())
    assert pipeline.fetch([json.dumps(rearchive)]) == {"batchItemFailures": []}
    assert list(unsettled.unsettled(dynamodb, table, "123456789012")) == []
