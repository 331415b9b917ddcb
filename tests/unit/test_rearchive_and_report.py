"""A re-archive asked of the lister (`"rearchive": true`, Reason.REARCHIVE), and a response that names
what was enqueued (`"report_enqueued": true`, for the CLI's backfill to follow). Pure: fake clients."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from invoice_archiver.logic.changes import Reason, fingerprint, why_enqueue
from invoice_archiver.logic.invoice_messages import to_message
from invoice_archiver.logic.listing import run_listing
from invoice_archiver.logic.listing_report import EnqueuedReport
from invoice_archiver.logic.planning import SummaryQuery
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.requests import ListRequest, parse_lister_event
from invoice_archiver.observability import metrics

from .factories import ACCOUNT, QUEUE_URL, SummaryFactory, ledger_record
from .test_listing import FakeInvoicing, FakeLedger, RecordingSqs

NOW = datetime(2026, 11, 6, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (None, Reason.NEW),
        ({"status": "FAILED"}, Reason.NOT_ARCHIVED),
        ({"status": "ARCHIVED", "summary_fingerprint": "f" * 64}, Reason.REARCHIVE),
        ({"status": "ARCHIVED", "summary_fingerprint": "0" * 64}, Reason.REARCHIVE),
    ],
)
def test_a_rearchive_enqueues_every_named_invoice_an_archived_one_as_rearchive(
    item: dict[str, Any] | None, expected: Reason
) -> None:
    assert why_enqueue("f" * 64, ledger_record(item), NOW, rearchive=True) == expected


def test_the_lister_accepts_rearchive_with_invoice_ids_alone() -> None:
    # Given a re-archive of named invoices, Then it parses
    request = parse_lister_event({"invoice_ids": ["E1", "E2"], "rearchive": True, "report_enqueued": True})
    assert isinstance(request, ListRequest)
    assert (request.rearchive, request.report_enqueued, request.recheck) == (True, True, False)
    # ... and by default neither is asked for
    plain = ListRequest(invoice_ids=("E1",))
    assert (plain.rearchive, plain.report_enqueued) == (False, False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"billing_periods": ["2026-10"], "rearchive": True}, "rearchive names invoices"),
        ({"invoice_ids": ["E1"], "billing_periods": ["2026-10"], "rearchive": True}, "invoice_ids alone"),
        (
            {
                "invoice_ids": ["E1"],
                "issued_from": "2026-10-01",
                "issued_to": "2026-11-01",
                "rearchive": True,
            },
            "invoice_ids alone",
        ),
        ({"invoice_ids": ["E1"], "rearchive": True, "recheck": True}, "rearchive or recheck, not both"),
    ],
)
def test_a_rearchive_of_anything_but_named_invoices_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_lister_event(fields)


def test_a_listing_with_rearchive_sends_archived_invoices_as_rearchive_and_reports_each_one(
    make_summary: SummaryFactory,
) -> None:
    # Given three listed invoices: one archived, one failed, one never seen
    summaries = [make_summary(InvoiceId=f"INV-{n}") for n in range(3)]
    prints = {s["InvoiceId"]: fingerprint(to_message(s).summary) for s in summaries}
    ledger = FakeLedger(
        {
            "INV-0": {"status": "ARCHIVED", "summary_fingerprint": prints["INV-0"]},
            "INV-1": {"status": "FAILED", "summary_fingerprint": prints["INV-1"]},
        }
    )
    sqs = RecordingSqs()
    report = EnqueuedReport()

    # When they are listed for a re-archive, with a report
    try:
        run_listing(
            [SummaryQuery(account_id=ACCOUNT, billing_period=BillingPeriod(2025, 6))],
            invoicing_for=lambda _: FakeInvoicing({"2025-06": [summaries]}),  # type: ignore[arg-type, return-value]
            sqs=sqs,  # type: ignore[arg-type]
            queue_url=QUEUE_URL,
            ledger=ledger,  # type: ignore[arg-type]
            now=NOW,
            rearchive=True,
            observer=report,
        )
    finally:
        metrics.clear_metrics()

    # Then every one is sent, the archived one as a re-archive, listed at the run's time
    messages = [InvoiceMessage.model_validate_json(body) for batch in sqs.batches for body in batch]
    assert {m.invoice_id: m.reason for m in messages} == {
        "INV-0": "rearchive",
        "INV-1": "not-archived",
        "INV-2": "new",
    }
    assert {m.listed_at for m in messages} == {NOW}
    # ... and the report names each, with its period and why
    assert report.response() == {
        "enqueued": [
            {"account_id": ACCOUNT, "billing_period": "2025-06", "invoice_id": f"INV-{n}", "reason": why}
            for n, why in enumerate(("rearchive", "not-archived", "new"))
        ],
        "enqueued_complete": True,
    }


def test_a_report_that_would_outgrow_a_lambda_response_says_it_is_incomplete(
    make_summary: SummaryFactory,
) -> None:
    # Given a report with room for two entries
    messages = [to_message(make_summary(InvoiceId=f"INV-{n}")) for n in range(3)]
    report = EnqueuedReport(budget_bytes=250)

    # When three enqueued invoices and an unchanged one are reported
    for message in messages:
        report.listed(message, "new")
    report.listed(messages[0], None)

    # Then it names the two that fit, and says the list is incomplete
    response = report.response()
    assert [entry["invoice_id"] for entry in response["enqueued"]] == ["INV-0", "INV-1"]
    assert response["enqueued_complete"] is False
