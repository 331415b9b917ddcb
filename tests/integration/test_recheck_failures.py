"""A re-check of an ARCHIVED invoice that fails (logic/rechecking.py), on the sandbox, real handler.

What the re-check promises when it fails: the invoice stays ARCHIVED and its archive is not touched;
the lease is given back; the reason is kept in the ledger's `last_error`. A permanent failure (here
the API denying the source it is now configured with) returns FAILED, counts InvoicesFailed and moves
the revisit schedule on; any other (here a download that keeps failing) counts InvoicesRetried and is
retried by SQS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import source_records
from invoice_archiver.dal.ledger.records import LedgerKey
from invoice_archiver.logic.changes import Reason
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.sandbox.dataset import Dataset
from invoice_archiver.sandbox.faults import Faults
from invoice_archiver.sandbox.identity import Identity
from invoice_archiver.sandbox.invoice import Invoice
from invoice_archiver.sandbox.timeline import SandboxClock
from tests.integration.conftest import Pipeline, _reset_caches, message_for
from tests.integration.test_fetch_through_role import (
    EXTERNAL_ID,
    OTHER_PAYER,
    OTHER_ROLE,
    PAYER,
    RECEIVER,
    ROLE,
    message_through,
)

SCENARIO = Dataset.load(Path(__file__).parent / "scenarios" / "month_over_time.json")
DAY_1 = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
LATE_DOCUMENT_DAY = datetime(2026, 11, 5, 6, 0, tzinfo=UTC)  # IN-EINV-1's tax e-invoice is attached


def ledger_item(pipeline: Pipeline, invoice: Invoice) -> dict[str, Any]:
    key = LedgerKey(invoice.account_id, BillingPeriod(*invoice.billing_period), invoice.invoice_id)
    item = pipeline.stored_item(key)
    assert item is not None
    return item


def with_fields(body: str, **fields: Any) -> str:
    message = json.loads(body)
    message.update(fields)
    return json.dumps(message)


def archive_versions(pipeline: Pipeline) -> list[tuple[str, str]]:
    """Every object version in the archive bucket (key, version id): what "untouched" compares."""
    listed = clients.s3().list_object_versions(Bucket=pipeline.settings.archive_bucket)
    return sorted((v["Key"], v["VersionId"]) for v in listed.get("Versions", []))


def emitted_metrics(capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """Sum of every metric flushed (EMF lines on stdout) since the last read."""
    totals: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                name = metric["Name"]
                totals[name] = totals.get(name, 0.0) + sum(blob[name])
    return totals


UNCHANGED_FIELDS = ("status", "documents", "summary_key", "summary_fingerprint", "revision", "total_bytes")


# --- GetInvoicePDF denied -------------------------------------------------------------------------


@pytest.fixture
def payers(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline(
        identity=Identity.payers(),
        env={
            "ACCOUNT_IDS": RECEIVER,
            "SOURCE_ROLE_ARNS": f"{ROLE},{OTHER_ROLE}",
            "SOURCE_EXTERNAL_ID": EXTERNAL_ID,
        },
    )


def reconfigure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """A new deployment's configuration (the functions read it at their next cold start)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _reset_caches()


# A configuration that reads PAYER through a role or credentials the API denies it to (a mistake).
MISCONFIGURED = {
    OTHER_ROLE: {"ACCOUNT_IDS": RECEIVER, "SOURCE_ROLE_ARNS": f"{PAYER}={OTHER_ROLE},{OTHER_ROLE}"},
    None: {"ACCOUNT_IDS": f"{RECEIVER},{PAYER}", "SOURCE_ROLE_ARNS": OTHER_ROLE},
}
CONFIGURED = {"ACCOUNT_IDS": RECEIVER, "SOURCE_ROLE_ARNS": f"{ROLE},{OTHER_ROLE}"}


@pytest.mark.parametrize(
    ("recheck_role", "source_failure"),
    [
        pytest.param(OTHER_ROLE, True, id="through-a-role-that-cannot-read-it"),
        pytest.param(None, False, id="with-the-functions-own-credentials"),
    ],
)
def test_a_recheck_the_api_denies_keeps_the_invoice_archived_and_says_why(
    payers: Pipeline,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    recheck_role: str | None,
    source_failure: bool,
) -> None:
    # Given an invoice archived through its payer's role, its first revisit scheduled (issue + 1 day)
    invoice = next(i for i in payers.dataset.invoices if i.account_id == PAYER and i.supplemental)
    issued = invoice.issued_date
    archived_body = with_fields(
        message_through(ROLE, invoice), listed_at=(issued + timedelta(hours=12)).isoformat()
    )
    assert payers.fetch([archived_body]) == {"batchItemFailures": []}
    before = ledger_item(payers, invoice)
    assert before["status"] == "ARCHIVED"
    assert before["next_check_at"] == (issued + timedelta(days=1)).isoformat()
    versions = archive_versions(payers)
    assert payers.sandbox.emulator is not None
    payers.sandbox.emulator.reset_stats()
    capsys.readouterr()

    # When the configuration now reads PAYER with credentials the API denies it to, and a re-check comes
    reconfigure(monkeypatch, **MISCONFIGURED[recheck_role])
    recheck = with_fields(
        message_through(recheck_role, invoice),
        reason=Reason.RECHECK.value,
        listed_at=(issued + timedelta(days=2)).isoformat(),
    )
    response = payers.fetch([recheck])

    # Then the API denied it, and the delivery is not retried (it is permanent until a person acts)
    assert payers.sandbox.emulator.stats.snapshot()["denied"] == 1
    assert response == {"batchItemFailures": []}
    # And the invoice is still ARCHIVED as it was, its archive untouched, its lease given back
    after = ledger_item(payers, invoice)
    assert {f: after.get(f) for f in UNCHANGED_FIELDS} == {f: before.get(f) for f in UNCHANGED_FIELDS}
    assert archive_versions(payers) == versions
    assert "lease_owner" not in after
    assert "lease_expires_at" not in after
    # And the failure is visible: the reason in the ledger, the revisit schedule moved on, the metrics
    if source_failure:
        assert str(after["last_error"]).startswith(
            f"source unavailable: {OTHER_ROLE} is denied by the Invoicing API: AccessDeniedException: "
        )
    else:
        assert str(after["last_error"]).startswith("InvoiceUnavailable: AccessDeniedException: ")
    assert after["next_check_at"] == (issued + timedelta(days=3)).isoformat()
    metrics = emitted_metrics(capsys)
    assert metrics.get("InvoicesFailed") == 1
    assert metrics.get("SourcesFailed", 0) == (1 if source_failure else 0)
    assert "InvoicesRechecked" not in metrics
    failed = source_records.failed_sources(
        clients.dynamodb(), payers.settings.ledger_table, [PAYER, OTHER_PAYER, RECEIVER]
    )
    if source_failure:
        assert [(s.account_id, s.role_arn, s.stage, s.reason) for s in failed] == [
            (PAYER, OTHER_ROLE, "fetching", after["last_error"])
        ]
    else:
        assert failed == []

    # And once the configuration is mended, a later re-check succeeds and clears the reason
    reconfigure(monkeypatch, **CONFIGURED)
    again = with_fields(
        message_through(ROLE, invoice),
        reason=Reason.RECHECK.value,
        listed_at=(issued + timedelta(days=4)).isoformat(),
    )
    assert payers.fetch([again]) == {"batchItemFailures": []}
    assert "last_error" not in ledger_item(payers, invoice)


def test_a_permanent_recheck_failure_at_the_last_revisit_ends_the_schedule(
    payers: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an invoice archived with only its last revisit (issue + 30 days) left
    invoice = next(i for i in payers.dataset.invoices if i.account_id == PAYER)
    issued = invoice.issued_date
    body = with_fields(message_through(ROLE, invoice), listed_at=(issued + timedelta(days=8)).isoformat())
    assert payers.fetch([body]) == {"batchItemFailures": []}
    assert ledger_item(payers, invoice)["next_check_at"] == (issued + timedelta(days=30)).isoformat()

    # When that revisit is due and the API denies the source PAYER is now configured with
    reconfigure(monkeypatch, **MISCONFIGURED[OTHER_ROLE])
    due = with_fields(
        message_through(OTHER_ROLE, invoice),
        reason=Reason.DUE.value,
        listed_at=(issued + timedelta(days=31)).isoformat(),
    )
    assert payers.fetch([due]) == {"batchItemFailures": []}

    # Then the schedule is over, as after a successful last revisit (finish_recheck removes it)
    item = ledger_item(payers, invoice)
    assert item["status"] == "ARCHIVED"
    assert "last_error" in item
    assert "next_check_at" not in item


# --- a download that keeps failing ----------------------------------------------------------------


def test_a_recheck_whose_new_document_cannot_be_downloaded_is_retried_and_archives_nothing(
    make_pipeline: Callable[..., Pipeline], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given IN-EINV-1 archived on day 1, with one download attempt per delivery
    clock = SandboxClock(DAY_1)
    pipeline = make_pipeline(SCENARIO, clock=clock, env={"DOWNLOAD_ATTEMPTS": "1"})
    invoice = SCENARIO.invoice("IN-EINV-1")
    assert pipeline.fetch([message_for(invoice.invoice_id)]) == {"batchItemFailures": []}
    before = ledger_item(pipeline, invoice)
    assert before["status"] == "ARCHIVED"
    versions = archive_versions(pipeline)
    # ... and, two days later, a tax e-invoice attached to it whose every download breaks off
    clock.set(LATE_DOCUMENT_DAY)
    emulator = pipeline.sandbox.emulator
    assert emulator is not None
    emulator.faults.set(Faults(drop_connection_rate=1.0))
    emulator.reset_stats()
    recheck = with_fields(message_for(invoice.invoice_id), reason=Reason.RECHECK.value)
    capsys.readouterr()

    # When the re-check is delivered
    response = pipeline.fetch([recheck])

    # Then the new document was asked for, and its download failed
    stats = emulator.stats.snapshot()
    assert stats["calls"].get("GetInvoicePDF") == 1
    assert (stats["downloads"], stats["dropped"]) == (1, 1)  # the archived documents are not fetched again
    # And the message is handed back to SQS to retry
    assert response == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    # And the invoice is still ARCHIVED as it was, nothing was written, the lease is given back
    after = ledger_item(pipeline, invoice)
    assert {f: after.get(f) for f in UNCHANGED_FIELDS} == {f: before.get(f) for f in UNCHANGED_FIELDS}
    assert archive_versions(pipeline) == versions
    assert "lease_owner" not in after
    assert after.get("next_check_at") == before.get("next_check_at")  # a retry keeps the schedule
    # And the failure is visible: the reason (with no URL in it) and the retry counted
    assert str(after["last_error"]).startswith("DocumentsIncomplete: documents incomplete after 1 attempts")
    assert "http" not in str(after["last_error"])
    metrics = emitted_metrics(capsys)
    assert metrics.get("InvoicesRetried") == 1
    assert "InvoicesFailed" not in metrics
    assert "SourcesFailed" not in metrics

    # And when the download works again, the redelivery archives the revision and clears the reason
    emulator.faults.set(Faults())
    assert pipeline.fetch([recheck]) == {"batchItemFailures": []}
    revised = ledger_item(pipeline, invoice)
    assert revised["status"] == "ARCHIVED"
    assert int(revised["revision"]) == int(before.get("revision", 0)) + 1
    assert len(revised["documents"]) == len(before["documents"]) + 1
    assert "last_error" not in revised
