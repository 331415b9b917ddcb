"""The archive is evidence (issue 15): only what the Invoicing API says, through the invoice's own source,
in the same invocation, reaches S3. A queue message is a pointer; here it is forged, replayed and aimed
at the wrong account, on the sandbox, through the real handlers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger.records import LedgerKey
from invoice_archiver.handlers import lister
from invoice_archiver.local.lambda_context import LocalContext
from invoice_archiver.logic.invoice_messages import jsonable
from invoice_archiver.models.continuation import ListingContinuation, ListingTotals
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import SourceRefused
from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.invoice import Invoice
from tests.conftest import SMALL_DATASET
from tests.integration.conftest import Pipeline, assert_archived, message_for

PO_WITH_A_URL = "see https://procure.example.com/po/4711"
OUTSIDER = "999988887777"  # an account no configuration names


def archive_state(pipeline: Pipeline) -> list[tuple[str, str, str]]:
    """Every object version in the bucket with its ETag: what "byte for byte unchanged" compares."""
    listed = clients.s3().list_object_versions(Bucket=pipeline.settings.archive_bucket)
    return sorted((v["Key"], v["VersionId"], v["ETag"]) for v in listed.get("Versions", []))


def send(pipeline: Pipeline, *bodies: str) -> None:
    """Straight onto the invoice queue, as any principal allowed sqs:SendMessage could."""
    for body in bodies:
        clients.sqs().send_message(QueueUrl=pipeline.settings.invoice_queue_url, MessageBody=body)


def item_of(pipeline: Pipeline, account: str, period: str, invoice_id: str) -> dict[str, Any] | None:
    key = LedgerKey(account, BillingPeriod.parse(period), invoice_id)
    return pipeline.stored_item(key)


def pointer(invoice: Invoice, **fields: Any) -> dict[str, Any]:
    return {
        "version": 2,
        "account_id": invoice.account_id,
        "invoice_id": invoice.invoice_id,
        "billing_period": str(BillingPeriod(*invoice.billing_period)),
        **fields,
    }


def test_a_tampered_summary_leaves_the_archive_byte_for_byte_unchanged(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given an invoice archived from the lister's message
    pipeline = make_pipeline()
    invoice = next(i for i in pipeline.dataset.invoices if i.supplemental)
    pipeline.fetch([message_for(invoice.invoice_id)])
    assert_archived(pipeline, [invoice])
    before, ledger_before = archive_state(pipeline), pipeline.ledger()[invoice.invoice_id]
    real = jsonable(invoice.summary)
    # ... and messages re-sending it with a made-up total and purchase order: in the old form, with the
    # forged summary inside, and as pointers claiming a change
    forged_summary = {
        **real,
        "PurchaseOrderNumber": "PO-FORGED-1",
        "BaseCurrencyAmount": {**real["BaseCurrencyAmount"], "TotalAmount": "0.01"},
    }
    forged = [
        json.dumps({**pointer(invoice, reason="changed"), "version": 1, "summary": forged_summary}),
        json.dumps({**pointer(invoice, reason="changed"), "version": 1, "summary": forged_summary}),
        json.dumps(pointer(invoice, reason="changed")),
        json.dumps({**pointer(invoice), "version": 1, "summary": forged_summary}),
    ]
    assert pipeline.sandbox.emulator is not None
    pipeline.sandbox.emulator.reset_stats()

    # When they are sent straight to the invoice queue and the fetchers drain it
    send(pipeline, *forged)
    pipeline.drain()

    # Then the archive is byte for byte what it was: no revision, no new object, no new version
    assert archive_state(pipeline) == before
    assert not [key for key, _, _ in before if "/revisions/" in key]
    summary = json.loads(
        clients.s3()
        .get_object(Bucket=pipeline.settings.archive_bucket, Key=str(ledger_before["summary_key"]))["Body"]
        .read()
    )
    assert (
        summary["invoice_summary"]["BaseCurrencyAmount"]["TotalAmount"]
        == (real["BaseCurrencyAmount"]["TotalAmount"])
    )
    assert "PO-FORGED-1" not in json.dumps(summary)
    # And the ledger kept its fingerprint and revision; the API was asked, never GetInvoicePDF
    after = pipeline.ledger()[invoice.invoice_id]
    assert (after["summary_fingerprint"], after.get("revision")) == (
        ledger_before["summary_fingerprint"],
        ledger_before.get("revision"),
    )
    calls = pipeline.sandbox.emulator.stats.snapshot()["calls"]
    assert calls.get("GetInvoicePDF", 0) == 0
    assert calls.get("ListInvoiceSummaries", 0) == 4  # one confirmation per message hinting at a change
    assert pipeline.queue_bodies(pipeline.settings.dead_letter_queue_url) == []


def test_an_invented_invoice_writes_nothing_and_is_failed_with_its_reason(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given messages for an invoice the API never issued, a real invoice under the wrong billing
    # period, and a real invoice under another configured account
    pipeline = make_pipeline()
    first, second = (
        pipeline.dataset.invoices[0],
        next(i for i in pipeline.dataset.invoices if i.account_id != pipeline.dataset.invoices[0].account_id),
    )
    period = str(BillingPeriod(*first.billing_period))
    wrong_period = "2025-01" if period != "2025-01" else "2025-02"
    invented = pointer(first, invoice_id="INV-NEVER-ISSUED-1")
    misdated = pointer(first, billing_period=wrong_period)
    misfiled = pointer(first, account_id=second.account_id, billing_period=period)

    # When the fetcher gets them (with a summary the old way, for the invented one: still ignored)
    summary = {**jsonable(first.summary), "InvoiceId": "INV-NEVER-ISSUED-1"}
    bodies = [
        json.dumps({**invented, "version": 1, "summary": summary}),
        json.dumps(misdated),
        json.dumps(misfiled),
    ]
    response = pipeline.fetch(bodies)

    # Then none is retried, nothing at all was written to S3, and each is FAILED with the API's word
    assert response == {"batchItemFailures": []}
    assert pipeline.object_keys() == []
    failed = item_of(pipeline, first.account_id, period, "INV-NEVER-ISSUED-1")
    assert failed is not None
    assert failed["status"] == "FAILED"
    assert failed["last_error"] == (
        f"NotConfirmed: the Invoicing API lists no invoice INV-NEVER-ISSUED-1 for account "
        f"{first.account_id} through the function's own credentials; nothing archived"
    )
    misdated_item = item_of(pipeline, first.account_id, wrong_period, first.invoice_id)
    assert misdated_item is not None
    assert misdated_item["status"] == "FAILED"
    assert f"for billing period {period}, not {wrong_period}" in str(misdated_item["last_error"])
    misfiled_item = item_of(pipeline, second.account_id, period, first.invoice_id)
    assert misfiled_item is not None
    assert misfiled_item["status"] == "FAILED"
    assert f"(it lists it for account {first.account_id})" in str(misfiled_item["last_error"])


def test_an_invoice_whose_purchase_order_holds_a_url_is_archived_with_it(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a month of invoices, one with a purchase-order note that holds an ordinary URL
    base = generate(seed=12, periods=((2026, 9),), invoices_per_account_period=2)
    invoices = list(base.invoices)
    invoices[0] = replace(invoices[0], summary={**invoices[0].summary, "PurchaseOrderNumber": PO_WITH_A_URL})
    pipeline = make_pipeline(Dataset(invoices))

    # When the pipeline runs (the real lister, then the fetchers)
    report = pipeline.run()

    # Then every invoice is archived, none quarantined, and summary.json holds the purchase order as is
    assert report.clean, report.failures
    assert report.archived == len(invoices)
    item = pipeline.ledger()[invoices[0].invoice_id]
    summary = json.loads(
        clients.s3()
        .get_object(Bucket=pipeline.settings.archive_bucket, Key=str(item["summary_key"]))["Body"]
        .read()
    )
    assert summary["invoice_summary"]["PurchaseOrderNumber"] == PO_WITH_A_URL
    assert pipeline.queue_bodies(pipeline.settings.dead_letter_queue_url) == []


def test_a_lister_request_naming_an_account_outside_the_configuration_is_refused(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a lister configured for the sandbox's accounts
    pipeline = make_pipeline()
    capsys.readouterr()

    # When an explicit event asks it to list a configured account and one outside the configuration
    event = {"billing_periods": ["2026-09"], "accounts": [pipeline.dataset.accounts[0], OUTSIDER]}
    with pytest.raises(SourceRefused, match=f"account {OUTSIDER} is not a source of this archive"):
        lister.handler(event, LocalContext("lister"))

    # Then nothing was listed or enqueued, and the refusal is counted
    assert pipeline.sandbox.emulator is not None
    assert pipeline.sandbox.emulator.stats.snapshot()["calls"] == {}
    assert pipeline.queue_bodies(pipeline.settings.invoice_queue_url) == []
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(sum(m.get("SourcesRefused", [])) for m in emitted) == 1


def test_a_forged_listing_continuation_naming_another_source_is_quarantined_unread(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a continuation, as the lister sends itself, whose sources add an outside account
    pipeline = make_pipeline()
    continuation = ListingContinuation(
        request={"billing_periods": ["2026-09"]},
        now=datetime(2026, 11, 5, 6, tzinfo=UTC),
        sources=((pipeline.dataset.accounts[0], None), (OUTSIDER, None)),
        plan="0" * 64,
        query_index=0,
        piece=2,
        totals=ListingTotals(),
    )
    body = continuation.model_dump_json()
    record = {"messageId": "forged-1", "body": body, "attributes": {}, "messageAttributes": {}}

    # When the lister consumes it from the listing queue
    lister.handler({"Records": [record]}, LocalContext("lister"))

    # Then nothing was listed or enqueued, and the continuation sits in the DLQ with its reason
    assert pipeline.sandbox.emulator is not None
    assert pipeline.sandbox.emulator.stats.snapshot()["calls"] == {}
    assert pipeline.queue_bodies(pipeline.settings.invoice_queue_url) == []
    [refused] = pipeline.queue_bodies(pipeline.settings.dead_letter_queue_url)
    assert refused["body"] == body
    assert refused["attributes"]["ErrorType"]["StringValue"] == "SourceRefused"
    assert OUTSIDER in refused["attributes"]["ErrorReason"]["StringValue"]


def test_an_old_message_already_queued_when_this_ships_is_archived_from_the_api(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a version 1 message, as the lister sent them before (the summary inside), still queued
    pipeline = make_pipeline()
    invoice = SMALL_DATASET.invoices[1]
    old = InvoiceMessage(
        version=1,
        account_id=invoice.account_id,
        invoice_id=invoice.invoice_id,
        billing_period=str(BillingPeriod(*invoice.billing_period)),
        summary=jsonable(invoice.summary),
        reason="new",
    ).model_dump_json()

    # When the fetchers drain the queue, Then it is archived, complete, as a pointer would be
    send(pipeline, old)
    pipeline.drain()
    assert_archived(pipeline, [invoice])
