"""Nothing unsettled is forgotten, nothing loops forever: which unsettled invoices a scheduled run re-queues,
how a ledger item and an event stay bounded, and which items written before the index are unsettled. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from invoice_archiver.dal.ledger.item_size import MAX_LIST_BYTES, document_lists, json_size
from invoice_archiver.dal.ledger.unsettled import UnsettledInvoice, is_unsettled
from invoice_archiver.logic.announcements import MAX_DETAIL_BYTES, bounded, event_detail
from invoice_archiver.logic.archived_documents import archived_documents
from invoice_archiver.logic.changes import Reason
from invoice_archiver.logic.planning import scheduled_periods
from invoice_archiver.logic.unsettled import queries, select
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import Source

from .factories import ledger_record

NOW = datetime(2027, 2, 5, 6, 0, tzinfo=UTC)
WINDOW = scheduled_periods(NOW, 2)  # 2026-11 .. 2027-01
ROLE = "arn:aws:iam::210987654321:role/invoice-archiver-reader"
SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).parents[2] / "docs" / "events.schema.json").read_text(encoding="utf-8"))
)


def unsettled(invoice_id: str, *, days: float, period: str = "2026-09", **fields: Any) -> UnsettledInvoice:
    values: dict[str, Any] = {
        "account_id": "123456789012",
        "invoice_id": invoice_id,
        "period": BillingPeriod.parse(period),
        "status": "RETRYING",
        "since": NOW - timedelta(days=days),
        **fields,
    }
    return UnsettledInvoice(**values)


def test_a_run_requeues_the_unsettled_invoices_its_window_misses_oldest_first_and_counts_the_stale() -> None:
    # Given unsettled invoices: old ones, a recent one, one inside the window, one being archived right now,
    # and one of a source that failed in this run
    found = [
        unsettled("RECENT", days=1),
        unsettled("OLD", days=40),
        unsettled("IN-WINDOW", days=10, period="2026-12"),
        unsettled("LEASED", days=5, status="IN_PROGRESS", lease_expires_at=int(NOW.timestamp()) + 60),
        unsettled("CRASHED", days=5, status="IN_PROGRESS", lease_expires_at=int(NOW.timestamp()) - 60),
        unsettled("OTHER-SOURCE", days=9, account_id="210987654321", status="FAILED"),
    ]

    # When the run selects
    chosen, report = select(
        found, now=NOW, listed_periods=WINDOW, failed_accounts=["210987654321"], stale_after=timedelta(days=3)
    )

    # Then it re-queues what nothing else reaches, oldest first, and counts everything unsettled > 3 days
    assert [i.invoice_id for i in chosen] == ["OLD", "CRASHED", "RECENT"]
    assert report.as_dict() == {
        "found": 6,
        "stale": 5,
        "in_window": 1,
        "in_flight": 1,
        "source_failed": 1,
        "requeued": 0,
        "oldest_since": (NOW - timedelta(days=40)).isoformat(),
    }


def test_each_requeued_invoice_is_looked_up_by_id_through_its_sources_role_with_reason_unsettled() -> None:
    invoices = [unsettled("A", days=4), unsettled("B", days=4, account_id="210987654321")]
    sources = [Source("123456789012"), Source("210987654321", ROLE)]

    [first, second] = queries(invoices, sources)

    assert first.request() == {"Selector": {"ResourceType": "INVOICE_ID", "Value": "A"}}
    assert (first.account_id, first.role_arn, first.reason) == ("123456789012", None, Reason.UNSETTLED)
    assert (second.account_id, second.role_arn) == ("210987654321", ROLE)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"status": "IN_PROGRESS"}, True),
        ({"status": "RETRYING"}, True),
        ({"status": "FAILED", "last_error": "source unavailable: cannot assume ..."}, True),
        ({"status": "FAILED", "last_error": "InvoiceUnavailable: ResourceNotFoundException: ..."}, False),
        ({"status": "ARCHIVED", "pending_event": {"event_key": "0:x"}}, True),
        ({"status": "ARCHIVED"}, False),
    ],
)
def test_which_items_from_before_the_index_are_unsettled(item: dict[str, Any], expected: bool) -> None:
    assert is_unsettled(item) is expected


def record(n: int) -> dict[str, Any]:
    return {
        "document_type": "SUPPLEMENT",
        "document_id": f"doc-{n:04d}",
        "key": f"invoices/account=123456789012/period=2026-10/E1/supplement-doc-{n:04d}.pdf",
        "content_type": "application/pdf",
        "size": 2048,
        "sha256": "a" * 64,
    }


def test_the_ledger_holds_small_document_lists_and_omits_large_ones() -> None:
    # Given a few documents, and many
    few = document_lists([record(n) for n in range(3)], [record(0)])
    many = document_lists([record(n) for n in range(500)], [])

    # Then the few are written with their count; the many are not, only the count and the flag
    assert few.held
    assert few.sets() == [
        "document_count = :count",
        "documents = :documents",
        "documents_no_longer_listed = :gone",
    ]
    assert few.removes() == ["documents_omitted"]
    assert not many.held
    assert many.values == {":count": 500, ":omitted": True}
    assert many.removes() == ["documents", "documents_no_longer_listed"]
    assert json_size([record(n) for n in range(500)]) > MAX_LIST_BYTES
    # (a first archive does not know which documents are no longer listed: it leaves that list alone)
    assert "documents_no_longer_listed = :gone" not in document_lists([record(0)]).sets()


def test_omitted_lists_are_read_from_the_latest_summary() -> None:
    summary = {"documents": [record(0), record(1)], "documents_no_longer_listed": [record(1)["key"]]}
    read: list[str] = []

    def read_json(key: str) -> dict[str, Any]:
        read.append(key)
        return summary

    item = ledger_record(
        {"documents_omitted": True, "summary_key": "s.json", "latest_summary_key": "revisions/r.json"}
    )
    assert item is not None
    archived = archived_documents(item, read_json)
    assert (archived.documents, archived.no_longer_listed, read) == (
        [record(0), record(1)],
        [record(1)],
        ["revisions/r.json"],
    )
    # A ledger that holds them is read without a GET
    holding = ledger_record({"documents": [record(2)], "documents_no_longer_listed": []})
    assert holding is not None
    held = archived_documents(holding, read_json)
    assert (held.documents, read) == ([record(2)], ["revisions/r.json"])


def message() -> VerifiedInvoice:
    """An invoice as the API confirmed it (what events are built from)."""
    summary = {"InvoiceId": "E1", "AccountId": "123456789012", "InvoiceType": "INVOICE"}
    return VerifiedInvoice(
        source=Source("123456789012"), invoice_id="E1", billing_period="2026-10", summary=summary
    )


def test_an_event_too_large_for_one_64_kb_chunk_carries_counts_and_the_summary_key() -> None:
    # Given an invoice with 2,000 documents, whose full detail would pass EventBridge's 256 KB
    documents = [record(n) for n in range(2000)]
    changes = {
        "summary_changed": False,
        "changed_fields": [],
        "new_documents": [d["key"] for d in documents[:1500]],
        "documents_no_longer_listed": [documents[0]["key"]],
    }
    full = json_size({"documents": documents, "changes": changes})
    assert full > 256 * 1024

    # When its revision's event is built
    detail = event_detail(
        "bucket", message(), "revisions/r.json", documents, revision=3, at=NOW, changes=changes
    )

    # Then it fits in 64 KB, with the counts and the flag instead of the lists, as the schema says
    assert json_size(detail) <= MAX_DETAIL_BYTES
    assert (detail["document_count"], detail["documents_omitted"]) == (2000, True)
    assert "documents" not in detail
    assert detail["changes"] == {
        "summary_changed": False,
        "changed_fields": [],
        "new_document_count": 1500,
        "no_longer_listed_count": 1,
    }
    assert detail["summary_key"] == "revisions/r.json"
    SCHEMA.validate(detail)


def test_a_small_event_keeps_its_lists_and_gains_the_counts() -> None:
    detail = event_detail("bucket", message(), "summary.json", [record(0)], revision=0, at=NOW)
    assert detail["document_count"] == 1
    assert [d["key"] for d in detail["documents"]] == [record(0)["key"]]
    assert "documents_omitted" not in detail
    SCHEMA.validate(detail)


def test_a_pending_event_recorded_before_the_rule_is_bounded_when_sent() -> None:
    # Given a detail recorded in the ledger by the previous version: every document, no counts, 400 KB
    old = {
        "schema_version": 1,
        "bucket": "b",
        "account_id": "123456789012",
        "invoice_id": "E1",
        "billing_period": "2026-10",
        "invoice_type": "INVOICE",
        "receiver_role": None,
        "summary_key": "s.json",
        "revision": 0,
        "at": NOW.isoformat(),
        "documents": [
            {k: record(n)[k] for k in ("key", "document_type", "document_id", "size", "sha256")}
            for n in range(2000)
        ],
    }
    # Then what is sent fits, and a small one is sent as it was, plus its count
    sent = bounded(old)
    assert json_size(sent) <= MAX_DETAIL_BYTES
    SCHEMA.validate(sent)
    small = {**old, "documents": old["documents"][:2]}
    assert bounded(small) == {**small, "document_count": 2}
