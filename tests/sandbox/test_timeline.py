"""The emulator learns time: a scenario's timeline, applied by the tests' clock, seen through boto3."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sandbox_testkit import ACCOUNT, by_period, invoicing, utc

from invoice_archiver.sandbox.dataset import Dataset
from invoice_archiver.sandbox.runner import Sandbox
from invoice_archiver.sandbox.timeline import SandboxClock


def summary(invoice_id: str, **extra: object) -> dict[str, object]:
    return {
        "AccountId": ACCOUNT,
        "InvoiceId": invoice_id,
        "IssuedDate": "2026-11-02T08:00:00Z",
        "BillingPeriod": {"Year": 2026, "Month": 10},
        "InvoiceType": "INVOICE",
        "Entity": {"InvoicingEntity": "Amazon Web Services, Inc.", "BillingEntity": "AWS"},
        **extra,
    }


SCENARIO = {
    "format": "invoice-archiver-sandbox/1",
    "invoices": [
        {
            "summary": summary("A-1", TaxAuthorityStatus="ISSUED", PurchaseOrderNumber="PO-1"),
            "supplemental_documents": [{"DocumentType": "SUPPLEMENT", "DocumentId": "s-1", "size": 1024}],
        }
    ],
    "timeline": [
        {
            "at": "2026-11-04T00:00:00Z",
            "invoice_id": "A-1",
            "set": {"TaxAuthorityStatus": "CANCELLED"},
            "unset": ["PurchaseOrderNumber"],
            "add_documents": [{"DocumentType": "TAX_E_INVOICE", "DocumentId": "e-1", "format": "xml"}],
            "remove_documents": ["s-1"],
        },
        {
            "at": "2026-11-05T00:00:00Z",
            "issue": {"summary": summary("CM-1", InvoiceType="CREDIT_MEMO", OriginalInvoiceId="A-1")},
        },
    ],
}


def test_changes_appear_when_the_clock_reaches_them(make_sandbox: Callable[..., Sandbox]) -> None:
    # Given the scenario on a sandbox whose clock stands before every change
    clock = SandboxClock(utc(2026, 11, 3, 6))
    make_sandbox(Dataset.from_json(json.dumps(SCENARIO)), clock=clock)
    client = invoicing()

    def listed() -> dict[str, dict[str, object]]:
        page = client.list_invoice_summaries(**by_period(2026, 10))
        return {s["InvoiceId"]: s for s in page["InvoiceSummaries"]}

    def documents(invoice_id: str) -> list[tuple[str, str]]:
        pdf = client.get_invoice_pdf(InvoiceId=invoice_id)["InvoicePDF"]
        return [(d["DocumentType"], d["DocumentId"]) for d in pdf["SupplementalDocuments"]]

    # Then before: the invoice as issued, no credit memo
    before = listed()
    assert set(before) == {"A-1"}
    assert (before["A-1"]["TaxAuthorityStatus"], before["A-1"]["PurchaseOrderNumber"]) == ("ISSUED", "PO-1")
    assert documents("A-1") == [("SUPPLEMENT", "s-1")]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_invoice_pdf(InvoiceId="CM-1")

    # When the clock passes the first change: the field changed, one unset, a document swapped
    clock.advance(days=1)
    after = listed()["A-1"]
    assert after["TaxAuthorityStatus"] == "CANCELLED"
    assert "PurchaseOrderNumber" not in after
    assert documents("A-1") == [("TAX_E_INVOICE", "e-1")]
    assert "CM-1" not in listed()

    # When it passes the second: the credit memo is issued into the same period
    clock.set(clock.now() + timedelta(days=1))
    memo = listed()["CM-1"]
    assert (memo["InvoiceType"], memo["OriginalInvoiceId"]) == ("CREDIT_MEMO", "A-1")


def test_the_timeline_round_trips_through_json() -> None:
    dataset = Dataset.from_json(json.dumps(SCENARIO))
    again = Dataset.from_json(dataset.to_json())
    assert again.timeline == dataset.timeline
    assert [i.invoice_id for i in again.at(utc(2026, 11, 6)).invoices] == ["A-1", "CM-1"]
    assert again.at(utc(2026, 11, 1)).invoices == dataset.invoices


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"invoice_id": "A-1"}, "needs 'at'"),
        ({"at": "2026-11-04T00:00:00Z", "invoice_id": "NOPE"}, "unknown invoice_id"),
        ({"at": "2026-11-04T00:00:00Z", "invoice_id": "A-1", "sets": {}}, "unknown keys"),
        ({"at": "2026-11-04T00:00:00Z", "issue": {"summary": summary("A-1")}}, "already exists"),
    ],
)
def test_a_bad_change_is_refused_naming_it(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Dataset.from_json(json.dumps({**SCENARIO, "timeline": [change]}))
