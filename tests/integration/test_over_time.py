"""Keeping the archive true over time (issue 8): daily incremental runs on the sandbox, real handlers.

The emulator's clock is the tests' (`SandboxClock`); its scenario changes invoices as days pass: a tax
e-invoice attached later with EinvoiceDeliveryStatus DELIVERED, a TaxAuthorityStatus CANCELLED, a
supplement withdrawn, and a late invoice and a credit memo issued into an archived period.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from invoice_archiver.dal import clients
from invoice_archiver.handlers import lister
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.local.pipeline import scheduled_event
from invoice_archiver.sandbox.dataset import Dataset
from invoice_archiver.sandbox.timeline import SandboxClock
from tests.integration.conftest import Pipeline, message_for

SCENARIO = Dataset.load(Path(__file__).parent / "scenarios" / "month_over_time.json")
FOLDER = "invoices/account=123456789012/period=2026-10"
DAY_1 = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).parents[2] / "docs" / "events.schema.json").read_text(encoding="utf-8"))
)


class Day:
    """One daily scheduled run and what it cost: GetInvoicePDF per invoice, messages, S3 writes."""

    def __init__(self, pipeline: Pipeline, clock: SandboxClock, when: datetime) -> None:
        box = pipeline.sandbox
        assert box.emulator is not None
        assert box.moto is not None
        clock.set(when)
        box.emulator.reset_stats()
        box.moto.requests.reset()
        wire = box.emulator.record_wire()
        self.report = pipeline.run(scheduled_event(when))
        self.pdf_calls = Counter(req["InvoiceId"] for op, req, _ in wire if op == "GetInvoicePDF")
        # SendMessageBatch calls to the invoice queue (EventBridge's deliveries to a consumer are not)
        self.messages = box.moto.requests.count(service="sqs", operation="SendMessageBatch")
        self.s3_writes = box.moto.requests.count(service="s3", method="PUT") + box.moto.requests.count(
            service="s3", method="POST"
        )
        box.emulator.wire = None


@pytest.fixture
def over_time(make_pipeline: Callable[..., Pipeline]) -> tuple[Pipeline, SandboxClock, str]:
    clock = SandboxClock(DAY_1)
    pipeline = make_pipeline(SCENARIO, clock=clock)
    consumer = subscribe_consumer_queue()
    return pipeline, clock, consumer


def subscribe_consumer_queue() -> str:
    """What a downstream consumer sets up: a queue and a rule on the default bus for our source."""
    sqs, events = clients.sqs(), clients.session().client("events")
    url = sqs.create_queue(QueueName="invoice-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="invoice-archiver-to-consumer",
        EventPattern=json.dumps(
            {"source": ["invoice-archiver"], "detail-type": ["Invoice Archived", "Invoice Revised"]}
        ),
    )
    events.put_targets(Rule="invoice-archiver-to-consumer", Targets=[{"Id": "consumer", "Arn": arn}])
    return url


def consumed(url: str) -> list[dict[str, Any]]:
    sqs = clients.sqs()
    found: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in messages]
        for event in found:  # every event's detail is what docs/events.schema.json documents
            SCHEMA.validate(event["detail"])
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
    return found


def read_json(pipeline: Pipeline, key: str) -> dict[str, Any]:
    body = clients.s3().get_object(Bucket=pipeline.settings.archive_bucket, Key=key)["Body"].read()
    loaded: dict[str, Any] = json.loads(body)
    return loaded


def test_an_unchanged_rerun_sends_nothing_fetches_nothing_writes_nothing(
    over_time: tuple[Pipeline, SandboxClock, str],
) -> None:
    # Given the period archived by the first daily run
    pipeline, clock, _ = over_time
    first = Day(pipeline, clock, DAY_1)
    assert first.report.archived == 4

    # When the schedule fires again before anything changed or fell due
    again = Day(pipeline, clock, DAY_1.replace(hour=7))

    # Then the lister listed the invoices, read the ledger once, and enqueued none of them
    assert again.report.listed == 4
    assert again.messages == 0
    assert sum(again.pdf_calls.values()) == 0
    assert again.s3_writes == 0


def test_a_month_over_time_is_archived_true_and_announced(
    over_time: tuple[Pipeline, SandboxClock, str],
) -> None:
    pipeline, clock, consumer = over_time
    bucket = pipeline.settings.archive_bucket
    s3 = clients.s3()

    # Day 1: the four invoices of October are archived, each announced once
    day = Day(pipeline, clock, DAY_1)
    assert day.report.archived == 4
    assert set(day.pdf_calls) == {"IN-EINV-1", "BR-CANCEL-1", "US-PLAIN-1", "US-WITHDRAWN-1"}
    first_summary = s3.get_object(Bucket=bucket, Key=f"{FOLDER}/IN-EINV-1/summary.json")["Body"].read()
    events = consumed(consumer)
    assert sorted(e["detail"]["invoice_id"] for e in events) == [
        "BR-CANCEL-1",
        "IN-EINV-1",
        "US-PLAIN-1",
        "US-WITHDRAWN-1",
    ]
    assert {e["detail-type"] for e in events} == {"Invoice Archived"}
    assert {e["source"] for e in events} == {"invoice-archiver"}
    plain = next(e["detail"] for e in events if e["detail"]["invoice_id"] == "US-PLAIN-1")
    assert plain["revision"] == 0
    assert plain["summary_key"] == f"{FOLDER}/US-PLAIN-1/summary.json"
    assert plain["billing_period"] == "2026-10"
    assert (plain["invoice_type"], plain["receiver_role"]) == ("INVOICE", "BUYER")
    assert [set(d) for d in plain["documents"]] == [{"key", "document_type", "document_id", "size", "sha256"}]

    # Day 2: the first revisit (issue + 1 day) is due for all four: one GetInvoicePDF each, nothing new
    day = Day(pipeline, clock, datetime(2026, 11, 4, 6, 0, tzinfo=UTC))
    assert day.pdf_calls == Counter({"IN-EINV-1": 1, "BR-CANCEL-1": 1, "US-PLAIN-1": 1, "US-WITHDRAWN-1": 1})
    assert day.s3_writes == 0
    assert consumed(consumer) == []

    # Day 3: a tax e-invoice was attached and the e-invoice DELIVERED: only that invoice is fetched
    day = Day(pipeline, clock, datetime(2026, 11, 5, 6, 0, tzinfo=UTC))
    assert day.pdf_calls == Counter({"IN-EINV-1": 1})
    ledger = pipeline.ledger()["IN-EINV-1"]
    assert ledger["revision"] == 1
    revision = read_json(pipeline, str(ledger["latest_summary_key"]))
    assert str(ledger["latest_summary_key"]).startswith(f"{FOLDER}/IN-EINV-1/revisions/")
    assert revision["invoice_summary"]["EinvoiceDeliveryStatus"] == "DELIVERED"
    assert revision["changes"]["changed_fields"] == ["EinvoiceDeliveryStatus"]
    assert [d["document_type"] for d in revision["documents"]] == ["INVOICE", "TAX_E_INVOICE"]
    einvoice = revision["documents"][1]
    assert einvoice["document_id"] == "einv-late-1"
    assert revision["changes"]["new_documents"] == [einvoice["key"]]
    assert s3.get_object(Bucket=bucket, Key=einvoice["key"])["ContentType"] == "application/xml"
    # ... and the first summary.json is untouched
    assert (
        s3.get_object(Bucket=bucket, Key=f"{FOLDER}/IN-EINV-1/summary.json")["Body"].read() == first_summary
    )
    [revised] = consumed(consumer)
    assert revised["detail-type"] == "Invoice Revised"
    assert revised["detail"]["revision"] == 1
    assert revised["detail"]["summary_key"] == ledger["latest_summary_key"]
    assert revised["detail"]["changes"]["new_documents"] == [einvoice["key"]]

    # Day 4: CANCELLED is recorded in a revision; the withdrawn supplement stays and is noted
    day = Day(pipeline, clock, datetime(2026, 11, 6, 6, 0, tzinfo=UTC))
    cancelled = pipeline.ledger()["BR-CANCEL-1"]
    assert cancelled["revision"] == 1
    assert read_json(pipeline, str(cancelled["latest_summary_key"]))["invoice_summary"][
        "TaxAuthorityStatus"
    ] == ("CANCELLED")
    withdrawn = pipeline.ledger()["US-WITHDRAWN-1"]
    assert withdrawn["revision"] == 1
    [gone] = withdrawn["documents_no_longer_listed"]
    assert gone["document_id"] == "supp-gone"
    assert s3.head_object(Bucket=bucket, Key=str(gone["key"]))["ContentLength"] == 1024
    assert len(withdrawn["documents"]) == 2  # the archive still lists it
    revised = {e["detail"]["invoice_id"]: e["detail"] for e in consumed(consumer)}
    assert set(revised) == {"BR-CANCEL-1", "US-WITHDRAWN-1"}
    assert revised["BR-CANCEL-1"]["changes"]["changed_fields"] == ["TaxAuthorityStatus"]
    assert revised["US-WITHDRAWN-1"]["changes"]["documents_no_longer_listed"] == [gone["key"]]

    # Day 5: a late invoice and a credit memo for the archived period are archived whole, and only they
    day = Day(pipeline, clock, datetime(2026, 11, 7, 6, 0, tzinfo=UTC))
    assert day.pdf_calls == Counter({"US-LATE-1": 1, "US-CREDIT-1": 1})
    ledger_now = pipeline.ledger()
    for invoice_id in ("US-LATE-1", "US-CREDIT-1"):
        assert ledger_now[invoice_id]["status"] == "ARCHIVED"
        assert read_json(pipeline, f"{FOLDER}/{invoice_id}/summary.json")["invoice_id"] == invoice_id
    credit = read_json(pipeline, f"{FOLDER}/US-CREDIT-1/summary.json")
    assert credit["invoice_summary"]["OriginalInvoiceId"] == "US-PLAIN-1"
    assert sorted(e["detail"]["invoice_id"] for e in consumed(consumer)) == ["US-CREDIT-1", "US-LATE-1"]

    # Day 6, nothing changed or due: nothing sent, fetched or written
    day = Day(pipeline, clock, datetime(2026, 11, 7, 7, 0, tzinfo=UTC))
    assert (day.messages, sum(day.pdf_calls.values()), day.s3_writes) == (0, 0, 0)

    # Nothing was ever overwritten: every key has exactly one version (versioning is on)
    versions = s3.list_object_versions(Bucket=bucket)
    counts = Counter(v["Key"] for v in versions.get("Versions", []))
    assert counts
    assert set(counts.values()) == {1}
    assert not versions.get("DeleteMarkers")


def test_an_explicit_recheck_of_a_period_fetches_every_invoice_again_and_writes_nothing_new(
    over_time: tuple[Pipeline, SandboxClock, str],
) -> None:
    # Given the period archived
    pipeline, clock, _ = over_time
    Day(pipeline, clock, DAY_1)

    # When a person asks for a re-check of the period (an explicit lister event)
    box = pipeline.sandbox
    assert box.emulator is not None
    assert box.moto is not None
    box.emulator.reset_stats()
    box.moto.requests.reset()
    pipeline.run({"billing_periods": ["2026-10"], "recheck": True})

    # Then every invoice got fresh URLs, and since nothing changed nothing was written
    assert box.emulator.stats.snapshot()["calls"]["GetInvoicePDF"] == 4
    assert box.moto.requests.count(service="s3", method="PUT") == 0
    assert {item["revision"] for item in pipeline.ledger().values()} == {0}


def test_an_event_that_could_not_be_sent_is_sent_by_the_next_delivery(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an event bus that does not exist yet, so PutEvents fails after the ledger write
    clock = SandboxClock(DAY_1)
    pipeline = make_pipeline(SCENARIO, clock=clock, env={"EVENT_BUS_NAME": "invoices"})
    body = message_for("US-PLAIN-1")

    # When the fetcher archives the invoice
    response = pipeline.fetch([body])

    # Then the record fails (SQS will redeliver it), the invoice is ARCHIVED, its event pending
    assert response["batchItemFailures"] == [{"itemIdentifier": "msg-0"}]
    item = pipeline.ledger()["US-PLAIN-1"]
    assert item["status"] == "ARCHIVED"
    assert json.loads(item["pending_event"]["detail"])["invoice_id"] == "US-PLAIN-1"

    # When the bus exists (a consumer subscribed) and the message is delivered again
    events = clients.session().client("events")
    events.create_event_bus(Name="invoices")
    sqs = clients.sqs()
    url = sqs.create_queue(QueueName="bus-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="all", EventBusName="invoices", EventPattern=json.dumps({"source": ["invoice-archiver"]})
    )
    events.put_targets(Rule="all", EventBusName="invoices", Targets=[{"Id": "q", "Arn": arn}])
    assert pipeline.fetch([body]) == {"batchItemFailures": []}

    # Then the event arrives once, the pending mark is gone, and nothing was archived twice
    [event] = consumed(url)
    assert (event["detail-type"], event["detail"]["invoice_id"]) == ("Invoice Archived", "US-PLAIN-1")
    assert "pending_event" not in pipeline.ledger()["US-PLAIN-1"]
    assert pipeline.fetch([body]) == {"batchItemFailures": []}
    assert consumed(url) == []


def test_an_account_without_an_invoice_for_last_month_is_counted_from_the_configured_day(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two configured accounts, one of which AWS issued nothing to for October
    make_pipeline(SCENARIO, env={"ACCOUNT_IDS": "123456789012,999999999999"})

    def tick(when: datetime) -> dict[str, Any]:
        response: dict[str, Any] = lister.handler(scheduled_event(when), LocalContext("lister-test"))
        return response

    # When the schedule runs before the 10th, and on it
    early = tick(datetime(2026, 11, 9, 6, 0, tzinfo=UTC))
    due = tick(datetime(2026, 11, 10, 6, 0, tzinfo=UTC))

    # Then only from the 10th is the account named (and counted in AccountsWithoutInvoice)
    assert "accounts_without_invoice" not in early
    assert due["accounts_without_invoice"] == ["999999999999"]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [m["AccountsWithoutInvoice"] for m in emitted if "AccountsWithoutInvoice" in m] == [[1.0]]


def test_invoices_archived_before_fingerprints_are_rechecked_once_without_a_revision(
    over_time: tuple[Pipeline, SandboxClock, str],
) -> None:
    # Given the period archived by a version that kept no fingerprint and no revisit schedule
    pipeline, clock, consumer = over_time
    Day(pipeline, clock, DAY_1)
    consumed(consumer)
    table = clients.dynamodb()
    for item in pipeline.ledger().values():
        table.update_item(
            TableName=pipeline.settings.ledger_table,
            Key={"pk": {"S": str(item["pk"])}, "sk": {"S": str(item["sk"])}},
            UpdateExpression="REMOVE summary_fingerprint, next_check_at, revision, latest_summary_key",
        )

    # When the next daily run comes
    day = Day(pipeline, clock, DAY_1.replace(hour=7))

    # Then each invoice is re-checked once against its archived summary.json: nothing changed, nothing written
    assert set(day.pdf_calls.values()) == {1}
    assert len(day.pdf_calls) == 4
    assert day.s3_writes == 0
    assert consumed(consumer) == []
    assert all(item["summary_fingerprint"] for item in pipeline.ledger().values())
    # ... and the run after that is quiet again
    again = Day(pipeline, clock, DAY_1.replace(hour=7, minute=30))
    assert (again.messages, sum(again.pdf_calls.values()), again.s3_writes) == (0, 0, 0)


def test_an_invoice_re_archived_after_a_late_document_is_archived_again_without_conflict(
    over_time: tuple[Pipeline, SandboxClock, str],
) -> None:
    # Given an invoice archived, then revised when its tax e-invoice came late
    pipeline, clock, _ = over_time
    Day(pipeline, clock, DAY_1)
    Day(pipeline, clock, datetime(2026, 11, 5, 6, 0, tzinfo=UTC))
    revised = pipeline.ledger()["IN-EINV-1"]
    assert revised["revision"] == 1

    # When an operator asks the lister to re-archive it, and the fetcher takes its message
    clock.set(datetime(2026, 11, 6, 6, 0, tzinfo=UTC))
    report = pipeline.run({"invoice_ids": ["IN-EINV-1"], "rearchive": True})

    # Then the fetcher claimed the ARCHIVED invoice and archived it again (every document fetched, each
    # already there with the same bytes, so kept: no key has a second version): ARCHIVED, with both
    # documents, its revision and latest summary kept, and nothing refused as a conflict
    assert (report.listed, report.failed) == (1, 0)
    item = pipeline.ledger()["IN-EINV-1"]
    assert item["status"] == "ARCHIVED"
    assert item["archived_at"] > revised["archived_at"]
    versions = clients.s3().list_object_versions(Bucket=pipeline.settings.archive_bucket, Prefix=FOLDER)
    keys = [v["Key"] for v in versions.get("Versions", []) if "IN-EINV-1" in v["Key"]]
    assert len(keys) == len(set(keys)) >= 3
    assert len(item["documents"]) == 2
    assert (item["revision"], item["latest_summary_key"]) == (1, revised["latest_summary_key"])
