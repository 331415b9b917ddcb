"""The archive pipeline on the sandbox: every invoice once, byte for byte, and never twice."""

from __future__ import annotations

import threading
from collections.abc import Callable

from invoice_archiver.dal import clients
from invoice_archiver.sandbox.dataset import generate
from tests.integration.conftest import Pipeline, assert_archived, message_for

MONTH = generate(
    seed=11,
    accounts=("123456789012", "210987654321", "345678901234"),
    periods=((2026, 10),),
    invoices_per_account_period=70,
    receiver_roles=("BUYER", "SELLER"),
    document_size=(1024, 4096),
)


def test_a_month_over_three_accounts_and_two_roles_is_archived_exactly_once(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    # Given a month of 210 invoices over 3 accounts and 2 receiver roles
    pipeline = make_pipeline(MONTH, env={"RECEIVER_ROLES": "BUYER,SELLER"})
    assert MONTH.invoice_count >= 200

    # When a scheduled-style run for that month goes through lister, queue and fetchers
    report = pipeline.run({"billing_periods": ["2026-10"]})

    # Then each invoice was listed once and archived once, nothing failed
    assert report.listed == MONTH.invoice_count
    assert (report.archived, report.failed, report.unresolved, report.quarantined) == (
        MONTH.invoice_count,
        0,
        0,
        0,
    )
    assert report.documents == MONTH.document_count
    # ... one ListInvoiceSummaries query per account x role, one GetInvoicePDF per invoice
    stats = pipeline.sandbox.emulator.stats.snapshot()
    assert stats["calls"]["GetInvoicePDF"] == MONTH.invoice_count
    # ... one PutObject per document plus one summary.json per invoice, and nothing else written
    moto = pipeline.sandbox.moto
    assert (
        moto.requests.count(service="s3", operation="PutObject") == MONTH.document_count + MONTH.invoice_count
    )
    assert len(pipeline.object_keys()) == MONTH.document_count + MONTH.invoice_count
    # ... and every document is byte-identical, with checksums, tags, metadata and summary right
    assert_archived(pipeline, MONTH.invoices)


def test_a_rerun_makes_no_invoicing_call_and_no_s3_write(make_pipeline: Callable[..., Pipeline]) -> None:
    # Given a period that has been archived
    pipeline = make_pipeline()
    first = pipeline.run()
    assert first.archived == pipeline.dataset.invoice_count
    pipeline.sandbox.emulator.reset_stats()
    pipeline.sandbox.moto.requests.reset()

    # When the same period is run again
    second = pipeline.run()

    # Then everything is skipped: zero GetInvoicePDF calls, zero downloads, zero S3 writes
    assert (second.listed, second.archived, second.skipped) == (first.listed, 0, first.listed)
    stats = pipeline.sandbox.emulator.stats.snapshot()
    assert stats["calls"].get("GetInvoicePDF", 0) == 0
    assert stats["downloads"] == 0
    writes = [r for r in pipeline.sandbox.moto.requests.filter(service="s3") if r.method in {"PUT", "POST"}]
    assert writes == []


def test_duplicate_deliveries_in_one_batch_give_one_archive(make_pipeline: Callable[..., Pipeline]) -> None:
    # Given one invoice's message delivered three times in the same batch
    pipeline = make_pipeline()
    invoice = pipeline.dataset.invoices[0]
    body = message_for(invoice.invoice_id)

    # When the fetcher processes the batch
    response = pipeline.fetch([body, body, body])

    # Then no record failed, the invoice is archived once and its objects written once
    assert response == {"batchItemFailures": []}
    assert_archived(pipeline, [invoice])
    puts = pipeline.sandbox.moto.requests.count(service="s3", operation="PutObject")
    assert puts == len(invoice.documents) + 1
    assert pipeline.sandbox.emulator.stats.snapshot()["calls"]["GetInvoicePDF"] == 1


def test_two_fetchers_racing_on_one_invoice_give_one_archive(make_pipeline: Callable[..., Pipeline]) -> None:
    # Given two fetchers that receive the same invoice at the same moment
    pipeline = make_pipeline()
    invoice = pipeline.dataset.invoices[1]
    body = message_for(invoice.invoice_id)
    start = threading.Barrier(2)
    responses: list[dict[str, object]] = []

    def worker() -> None:
        start.wait()
        responses.append(pipeline.fetch([body]))

    # When both run concurrently
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly one did the work; the other either saw it ARCHIVED or backed off for a retry
    failures = sum(len(r["batchItemFailures"]) for r in responses)  # type: ignore[arg-type]
    assert failures in (0, 1)
    if failures:
        # the loser's message is redelivered later and is skipped then
        assert pipeline.fetch([body]) == {"batchItemFailures": []}
    assert_archived(pipeline, [invoice])
    assert (
        pipeline.sandbox.moto.requests.count(service="s3", operation="PutObject")
        == len(invoice.documents) + 1
    )
    assert pipeline.sandbox.emulator.stats.snapshot()["calls"]["GetInvoicePDF"] == 1
    versions = clients.s3().list_object_versions(Bucket=pipeline.settings.archive_bucket).get("Versions", [])
    assert len(versions) == len(invoice.documents) + 1
