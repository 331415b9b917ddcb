"""One summary that cannot become a message never blocks the listing: it is quarantined, with its
reason, to the DLQ and counted; every other invoice is enqueued and archived."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.handlers import lister
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.local.pipeline import scheduled_event
from invoice_archiver.sandbox.dataset import Dataset, generate
from tests.integration.conftest import Pipeline

BAD_ID = "INV\x07BELL"  # a control character: the message model refuses it


def test_a_bad_summary_is_quarantined_and_every_other_invoice_is_enqueued(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a month of invoices, one of which the API returns with an invoice id no message may carry
    base = generate(seed=5, periods=((2026, 9),), invoices_per_account_period=4)
    bad = base.invoices[1]
    invoices = list(base.invoices)
    invoices[1] = replace(bad, summary={**bad.summary, "InvoiceId": BAD_ID})
    data = Dataset(invoices)
    pipeline = make_pipeline(data)

    # When the schedule fires
    result = lister.handler(scheduled_event(datetime(2026, 10, 5, 6, tzinfo=UTC)), LocalContext("lister"))

    # Then every other invoice is enqueued, and the bad one is counted as quarantined
    good = sorted(i.invoice_id for i in invoices if i.invoice_id != BAD_ID)
    queued = [json.loads(m["body"]) for m in pipeline.queue_bodies(pipeline.settings.invoice_queue_url)]
    assert sorted(m["invoice_id"] for m in queued) == good
    assert result["quarantined"] == 1
    assert result["invoices_listed"] == len(invoices)

    # And the DLQ holds it with its reason, as a person would read it
    messages = clients.sqs().receive_message(
        QueueUrl=pipeline.settings.dead_letter_queue_url,
        MessageAttributeNames=["All"],
        MaxNumberOfMessages=10,
    )["Messages"]
    [quarantined] = messages
    attributes = {k: v["StringValue"] for k, v in quarantined["MessageAttributes"].items()}
    assert attributes["ErrorType"] == "BadSummary"
    assert "control characters" in attributes["ErrorReason"]
    assert json.loads(quarantined["Body"])["summary"]["InvoiceId"] == BAD_ID
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m.get("SummariesQuarantined") for m in metrics if "SummariesQuarantined" in m] == [[1.0]]

    # And the pipeline archives all the others
    pipeline.drain()
    archived = {item["invoice_id"] for item in pipeline.ledger().values() if item["status"] == "ARCHIVED"}
    assert sorted(archived) == good
