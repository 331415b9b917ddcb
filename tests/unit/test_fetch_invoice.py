"""The fetcher's decisions, with fakes: which path a message takes, and how every failure ends.

The integration tier runs the same code on the sandbox; here the ledger's claim, the two paths and the
announcer are stand-ins that record what was asked of them, so each decision is checked alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from invoice_archiver.config import Settings
from invoice_archiver.dal.download_errors import UnsafeUrl
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.records import Claim, InvoiceRecord
from invoice_archiver.dal.sources import SourceUnavailable
from invoice_archiver.logic import failures, fetch_invoice
from invoice_archiver.logic.failures import DocumentsIncomplete, InvoiceBusy
from invoice_archiver.logic.fetch_context import FetchContext, Outcome
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.source import Source, SourceRefused

from .factories import ACCOUNT, MessageFactory

NOW = datetime(2026, 11, 5, 6, 0, tzinfo=UTC)
ROLE = "arn:aws:iam::210987654321:role/invoice-archiver-reader"


class Sources:
    """Only ACCOUNT, with the function's own credentials, is a source."""

    def check(self, source: Source) -> None:
        if source != Source(ACCOUNT):
            raise SourceRefused(f"{source} is not a source")


@dataclass
class Recorded:
    claims: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    announced: list[Any] = field(default_factory=list)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    calls = Recorded()
    monkeypatch.setattr(
        fetch_invoice, "archive_new", lambda *a, **k: calls.paths.append("new") or Outcome.ARCHIVED
    )
    monkeypatch.setattr(
        fetch_invoice.rechecking, "recheck", lambda *a, **k: calls.paths.append("recheck") or Outcome.REVISED
    )
    return calls


def context(recorded: Recorded, monkeypatch: pytest.MonkeyPatch, claim: Claim) -> FetchContext:
    def fake_claim(*args: Any, **kwargs: Any) -> Claim:
        recorded.claims.append(kwargs)
        return claim

    monkeypatch.setattr(invoices, "claim", fake_claim)
    built = FetchContext(
        settings=Settings(ledger_table="t", archive_bucket="b"),
        invoicing_for=lambda source: pytest.fail("no API call expected"),
        s3=None,  # type: ignore[arg-type]
        dynamodb=None,  # type: ignore[arg-type]
        sources=Sources(),  # type: ignore[arg-type]
        clock=lambda: NOW,
    )

    class Announcer:
        def announce(self, key: Any, pending: Any) -> None:
            recorded.announced.append(pending)

    monkeypatch.setattr(built, "announcer", Announcer)
    return built


def record(**attributes: Any) -> InvoiceRecord:
    return InvoiceRecord(account_id=ACCOUNT, invoice_id="E-1", billing_period="2026-10", **attributes)


def archived(**attributes: Any) -> Claim:
    return Claim(claimed=False, record=record(status="ARCHIVED", summary_fingerprint="f" * 64, **attributes))


def test_a_new_invoice_is_claimed_then_archived(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, make_message: MessageFactory
) -> None:
    outcome = fetch_invoice.archive(
        context(recorded, monkeypatch, Claim(True, record())), make_message(account_id=ACCOUNT)
    )
    assert (outcome, recorded.paths, len(recorded.claims)) == (Outcome.ARCHIVED, ["new"], 1)
    assert recorded.claims[0]["reopen_archived_before"] is None


def test_a_message_naming_another_source_is_refused_before_the_claim(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, make_message: MessageFactory
) -> None:
    ctx = context(recorded, monkeypatch, Claim(True, record()))
    with pytest.raises(SourceRefused):
        fetch_invoice.archive(ctx, make_message(account_id=ACCOUNT, role_arn=ROLE))
    assert (recorded.claims, recorded.paths) == ([], [])


@pytest.mark.parametrize(
    ("reason", "path"), [("new", []), (None, []), ("changed", ["recheck"]), ("recheck", ["recheck"])]
)
def test_an_archived_invoice_is_rechecked_only_when_asked_or_changed(
    recorded: Recorded,
    monkeypatch: pytest.MonkeyPatch,
    make_message: MessageFactory,
    reason: str | None,
    path: list[str],
) -> None:
    ctx = context(recorded, monkeypatch, archived())
    outcome = fetch_invoice.archive(ctx, make_message(account_id=ACCOUNT, reason=reason))
    assert recorded.paths == path
    assert outcome == (Outcome.REVISED if path else Outcome.SKIPPED)


def test_a_duplicate_delivery_sends_an_event_still_pending(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, make_message: MessageFactory
) -> None:
    ctx = context(recorded, monkeypatch, archived(pending_event={"event_key": "0:x"}))
    assert fetch_invoice.archive(ctx, make_message(account_id=ACCOUNT)) == Outcome.SKIPPED
    assert recorded.announced == [{"event_key": "0:x"}]


def test_a_live_lease_of_another_worker_is_busy(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, make_message: MessageFactory
) -> None:
    ctx = context(recorded, monkeypatch, Claim(False, record(status="IN_PROGRESS")))
    with pytest.raises(InvoiceBusy):
        fetch_invoice.archive(ctx, make_message(account_id=ACCOUNT))


def test_a_rearchive_asks_the_claim_to_take_an_archived_invoice(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch, make_message: MessageFactory
) -> None:
    ctx = context(recorded, monkeypatch, Claim(True, record()))
    fetch_invoice.archive(ctx, make_message(account_id=ACCOUNT, reason="rearchive", listed_at=NOW))
    assert recorded.claims[0]["reopen_archived_before"] == NOW


# --- failures.settle: how every failing delivery ends -----------------------------------------------


def settle(error: Exception, message: InvoiceMessage) -> tuple[list[tuple[str, bool]], list[str], bool]:
    released: list[tuple[str, bool]] = []
    sources: list[str] = []
    raised = False
    try:
        failures.settle(
            error,
            message,
            lambda reason, permanent: released.append((reason, permanent)),
            lambda m, reason: sources.append(reason),
            what="test",
        )
    except DocumentsIncomplete:
        raised = True
    return released, sources, raised


def test_a_permanent_failure_is_released_as_such_and_returns(make_message: MessageFactory) -> None:
    released, sources, raised = settle(UnsafeUrl("refusing host evil.example"), make_message())
    assert released == [("UnsafeUrl: refusing host evil.example", True)]
    assert (sources, raised) == ([], False)


def test_an_unreadable_source_is_also_recorded_against_the_source(make_message: MessageFactory) -> None:
    error = SourceUnavailable(ROLE, "AccessDenied: not trusted", "AccessDenied")
    released, sources, raised = settle(error, make_message(role_arn=ROLE))
    assert released[0][1] is True
    assert sources == [released[0][0]]
    assert sources[0].startswith(f"source unavailable: cannot assume {ROLE}")
    assert not raised


def test_any_other_failure_is_released_for_a_retry_and_raises(make_message: MessageFactory) -> None:
    released, sources, raised = settle(TimeoutError("read timed out"), make_message())
    assert released == [("TimeoutError: read timed out", False)]
    assert (sources, raised) == ([], True)
