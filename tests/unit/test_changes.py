"""Incremental runs: fingerprints, the lister's enqueue decision, the fetcher's re-check decision, the
bounded revisit schedule and the missing-invoice check. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.logic.changes import Reason, fingerprint, next_check, recheck_wanted, why_enqueue
from invoice_archiver.logic.missing import accounts_without_invoice

from .factories import ledger_record

NOW = datetime(2026, 11, 6, 6, 0, tzinfo=UTC)
SUMMARY = {"InvoiceId": "E1", "AccountId": "123456789012", "TaxAuthorityStatus": "ISSUED"}
PRINT = fingerprint(SUMMARY)


def archived(**fields: Any) -> dict[str, Any]:
    return {"status": "ARCHIVED", "summary_fingerprint": PRINT, **fields}


def archived_record(**fields: Any) -> InvoiceRecord:
    record = ledger_record(archived(**fields))
    assert record is not None
    return record


def test_fingerprint_ignores_key_order_and_sees_every_change() -> None:
    assert fingerprint({"b": 1, "a": [1, {"y": 2, "x": 1}]}) == fingerprint(
        {"a": [1, {"x": 1, "y": 2}], "b": 1}
    )
    assert fingerprint({**SUMMARY, "TaxAuthorityStatus": "CANCELLED"}) != PRINT
    assert len(PRINT) == 64


@pytest.mark.parametrize(
    ("item", "recheck", "expected"),
    [
        (None, False, Reason.NEW),
        ({"status": "FAILED", "summary_fingerprint": PRINT}, False, Reason.NOT_ARCHIVED),
        ({"status": "RETRYING"}, False, Reason.NOT_ARCHIVED),
        (archived(), False, None),
        (archived(), True, Reason.RECHECK),
        (archived(summary_fingerprint="0" * 64), False, Reason.CHANGED),
        (archived(summary_fingerprint=None), False, Reason.CHANGED),  # archived before fingerprints
        (archived(next_check_at=(NOW - timedelta(seconds=1)).isoformat()), False, Reason.DUE),
        (archived(next_check_at=NOW.isoformat()), False, Reason.DUE),
        (archived(next_check_at=(NOW + timedelta(hours=1)).isoformat()), False, None),
        (archived(pending_event={"event_key": "0:x"}), False, Reason.UNANNOUNCED),
    ],
)
def test_the_lister_enqueues_only_what_needs_the_fetcher(
    item: dict[str, Any] | None, recheck: bool, expected: Reason | None
) -> None:
    assert why_enqueue(PRINT, ledger_record(item), NOW, recheck=recheck) == expected


def test_the_fetcher_rechecks_a_change_or_a_revisit_still_due_and_skips_duplicates() -> None:
    due = archived_record(next_check_at=(NOW - timedelta(hours=1)).isoformat())
    moved_on = archived_record(next_check_at=(NOW + timedelta(days=2)).isoformat())
    assert recheck_wanted(due, "due", NOW)
    assert not recheck_wanted(moved_on, "due", NOW)  # a duplicate delivery after the revisit
    assert not recheck_wanted(archived_record(), "new", NOW)  # a duplicate of the first delivery
    assert not recheck_wanted(archived_record(), None, None)  # a hand-made message: a duplicate
    assert recheck_wanted(archived_record(), "changed", NOW)  # the lister saw a change: the API is asked
    assert recheck_wanted(archived_record(), "recheck", NOW)
    # A version 1 message's summary is a hint, like "changed": the re-check asks the API.
    assert not recheck_wanted(archived_record(), None, None, PRINT)
    assert recheck_wanted(archived_record(), None, None, "f" * 64)


def test_the_revisit_schedule_is_bounded_by_its_length() -> None:
    # Given an invoice issued on 2 November and the default schedule
    issued = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    days = (1, 3, 7, 30)
    # When a daily run re-checks it whenever it is due, for 60 days
    checks = []
    due = next_check(issued, days, issued)
    for day in range(60):
        run = datetime(2026, 11, 2, 6, 0, tzinfo=UTC) + timedelta(days=day)
        if due is not None and due <= run:
            checks.append(run.date().isoformat())
            due = next_check(issued, days, run)
    # Then it is re-checked exactly once per entry, on the first run after each, and never again
    assert checks == ["2026-11-04", "2026-11-06", "2026-11-10", "2026-12-03"]
    assert next_check(issued, days, datetime(2026, 12, 3, tzinfo=UTC)) is None
    assert next_check(None, days, NOW) is None
    assert next_check(issued, (), issued) is None


def test_an_invoice_archived_long_after_issue_gets_no_revisits() -> None:
    assert next_check(datetime(2025, 1, 2, tzinfo=UTC), (1, 3, 7, 30), NOW) is None


def test_missing_invoices_are_counted_from_the_configured_day() -> None:
    listed = {"111111111111#2026-10": 3, "222222222222#2026-09": 1}
    accounts = ["111111111111", "222222222222"]
    assert accounts_without_invoice(listed, accounts, datetime(2026, 11, 9, tzinfo=UTC), 10) is None
    assert accounts_without_invoice(listed, accounts, datetime(2026, 11, 10, tzinfo=UTC), 10) == [
        "222222222222"
    ]
    assert accounts_without_invoice(listed, accounts[:1], datetime(2026, 11, 28, tzinfo=UTC), 10) == []
