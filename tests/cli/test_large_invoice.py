"""Nothing loops forever (issue 17): an invoice with 500 supplemental documents archives, is announced and
settles. Its event stays within 64 KB (the lists are in its summary.json), its ledger item far below
DynamoDB's 400 KB, and a later revision of it (a document added, one withdrawn) is re-checked from the
archive's summary. Long ids make every key long: without these bounds the event would exceed
EventBridge's 256 KB and the ledger item DynamoDB's 400 KB."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from invoice_archiver.cli.main import main
from invoice_archiver.dal.ledger.item_size import json_size
from invoice_archiver.local.pipeline import scheduled_event
from invoice_archiver.logic.announcements import MAX_DETAIL_BYTES
from invoice_archiver.sandbox.dataset import Dataset, generate
from invoice_archiver.sandbox.documents import Document
from invoice_archiver.sandbox.timeline import Change, SandboxClock
from tests.integration.conftest import Pipeline, assert_archived
from tests.integration.test_over_time import consumed, read_json, subscribe_consumer_queue

SUPPLEMENTS = 500
LONG_ID = "IN-2026-10-" + "0123456789" * 18  # 191 characters: the API allows 1,024
DAY_1 = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def _large_dataset() -> Dataset:
    [base] = generate(
        seed=21,
        accounts=("123456789012",),
        periods=((2026, 10),),
        invoices_per_account_period=1,
        supplemental=(SUPPLEMENTS, SUPPLEMENTS),
        document_size=4096,  # (a PDF must hold its long ids)
        xml_e_invoice_rate=0.0,
    ).invoices
    summary = {**base.summary, "InvoiceId": LONG_ID, "IssuedDate": DAY_1 - timedelta(days=1)}
    supplemental = tuple(
        replace(doc, invoice_id=LONG_ID, document_id=f"{doc.document_id}-{n:04d}-" + "d" * 60)
        for n, doc in enumerate(base.supplemental)
    )
    invoice = replace(
        base,
        summary=summary,
        document=replace(base.document, invoice_id=LONG_ID, document_id=LONG_ID),
        supplemental=supplemental,
    )
    # Half a day after its first archive, one supplement is withdrawn and a late one attached.
    change = Change(
        at=DAY_1 + timedelta(hours=12),
        invoice_id=LONG_ID,
        add_documents=(Document(LONG_ID, "late-" + "e" * 70, "TAX_E_INVOICE", 4096),),
        remove_documents=(supplemental[0].document_id,),
    )
    return Dataset([invoice], (change,))


LARGE = _large_dataset()


def test_an_invoice_with_500_supplemental_documents_archives_announces_and_settles(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one invoice with 500 supplemental documents, and a consumer subscribed to the events
    clock = SandboxClock(DAY_1)
    pipeline = make_pipeline(LARGE, clock=clock)
    consumer = subscribe_consumer_queue()

    # When the daily run archives it
    report = pipeline.run(scheduled_event(DAY_1))

    # Then every document is archived, byte for byte, and summary.json lists them all ...
    assert (report.archived, report.failed, report.unresolved) == (1, 0, 0)
    [invoice] = LARGE.invoices
    assert_archived(pipeline, [invoice])
    item = pipeline.ledger()[LONG_ID]
    summary = read_json(pipeline, str(item["summary_key"]))
    assert len(summary["documents"]) == int(item["document_count"]) == SUPPLEMENTS + 1
    # ... it is settled: its event sent, nothing left to re-queue, and its ledger item stays small
    assert "pending_event" not in item
    assert "unsettled_since" not in item
    assert item["documents_omitted"] is True
    assert "documents" not in item
    assert json_size(item) < 8 * 1024
    # ... and it is announced once, within 64 KB: the counts and summary.json's key, not the lists
    [event] = consumed(consumer)
    detail = event["detail"]
    assert json_size(detail) <= MAX_DETAIL_BYTES
    assert (detail["document_count"], detail["documents_omitted"]) == (SUPPLEMENTS + 1, True)
    assert "documents" not in detail
    assert detail["summary_key"] == item["summary_key"]

    # When its revisit (issue date + 3 days) finds one supplement withdrawn and a tax e-invoice attached
    box = pipeline.sandbox
    assert box.emulator is not None
    wire = box.emulator.record_wire()
    day_2 = DAY_1 + timedelta(days=2)
    clock.set(day_2)
    box.emulator.reset_stats()
    pipeline.run(scheduled_event(day_2))

    # Then it is re-checked from the archive's summary: only the new document is downloaded ...
    assert Counter(op for op, _, _ in wire)["GetInvoicePDF"] == 1
    assert box.emulator.stats.snapshot()["downloads"] == 1
    # ... a revision lists all 502 documents and names the change; the ledger stays small and settled
    item = pipeline.ledger()[LONG_ID]
    assert item["revision"] == 1
    revision = read_json(pipeline, str(item["latest_summary_key"]))
    assert len(revision["documents"]) == int(item["document_count"]) == SUPPLEMENTS + 2
    assert len(revision["changes"]["new_documents"]) == 1
    assert len(revision["changes"]["documents_no_longer_listed"]) == 1
    assert "pending_event" not in item
    assert "unsettled_since" not in item
    assert json_size(item) < 8 * 1024
    # ... announced with the counts, the lists left to the revision at summary_key
    [revised] = consumed(consumer)
    changes = revised["detail"]["changes"]
    assert (revised["detail-type"], revised["detail"]["summary_key"]) == (
        "Invoice Revised",
        item["latest_summary_key"],
    )
    assert (changes["new_document_count"], changes["no_longer_listed_count"]) == (1, 1)
    assert "new_documents" not in changes
    assert json_size(revised["detail"]) <= MAX_DETAIL_BYTES

    # And `verify` reads every document back against the latest summary (the ledger holds no list)
    capsys.readouterr()
    assert main(["verify"]) == 0, capsys.readouterr().out
    assert "No problems" in capsys.readouterr().out

    # And the run after that is quiet: nothing to re-check, re-queue or announce
    box.emulator.reset_stats()
    quiet = pipeline.run(scheduled_event(day_2 + timedelta(hours=1)))
    assert quiet.archived == 0
    assert box.emulator.stats.snapshot()["calls"].get("GetInvoicePDF", 0) == 0
    assert consumed(consumer) == []
    assert json.loads(json.dumps(detail))["schema_version"] == 1
