"""Nothing unsettled is forgotten: a scheduled run re-queues each unsettled invoice, whatever its period.

A scheduled run lists only the last complete billing period and LOOKBACK_PERIODS before it. An invoice
left IN_PROGRESS by a fetcher that died, RETRYING after SQS gave up on its message, FAILED for a source that
could not be read, or ARCHIVED with its event unsent, would fall out of that window unsettled and stay so.
So each scheduled run also reads the ledger's sparse index of unsettled invoices (dal/ledger/unsettled.py),
one Query per source, and:

* counts those unsettled for longer than UNSETTLED_AFTER_DAYS (metric InvoicesUnsettled, alarmed);
* re-queues, reason `unsettled`, each one whose period this run does not list (the listing enqueues the
  others itself), that no fetcher holds a live lease on, of a source that has not failed in this run.

It re-queues through the listing's own path (`run_listing`): each invoice is looked up by id
(ListInvoiceSummaries, Selector INVOICE_ID) through its source's credentials, compared with the ledger
(settled meanwhile: not sent), and sent as the listing sends it. An invoice the API no longer lists is
named in a warning and stays unsettled (and counted). Oldest first; a run that runs out of time leaves
the rest to the next day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from invoice_archiver.config import Settings
from invoice_archiver.constants import Metric
from invoice_archiver.dal.ledger import unsettled as unsettled_index
from invoice_archiver.dal.ledger.unsettled import UnsettledInvoice
from invoice_archiver.logic.changes import Reason
from invoice_archiver.logic.ledger_view import LedgerView
from invoice_archiver.logic.listing import InvoicingFor, run_listing
from invoice_archiver.logic.listing_result import ListingObserver, ListingResult
from invoice_archiver.logic.planning import SummaryQuery, scheduled_periods
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.source import Source
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# At most this many invoice ids in a log line (the counts are always whole).
LOGGED_IDS = 20


@dataclass
class UnsettledReport:
    """What one scheduled run found in the index and did with it."""

    found: int = 0  # unsettled invoices of the run's sources
    stale: int = 0  # unsettled for longer than UNSETTLED_AFTER_DAYS (metric InvoicesUnsettled)
    in_window: int = 0  # their period is listed by this run: the listing enqueues them
    in_flight: int = 0  # a fetcher holds a live lease on them
    source_failed: int = 0  # their source failed in this run
    requeued: int = 0  # sent to the invoice queue, reason `unsettled`
    not_listed: list[str] = field(default_factory=list)  # the API listed them no more: still unsettled
    oldest_since: str | None = None

    def as_dict(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "found": self.found,
            "stale": self.stale,
            "in_window": self.in_window,
            "in_flight": self.in_flight,
            "source_failed": self.source_failed,
            "requeued": self.requeued,
        }
        if self.not_listed:
            view["not_listed"] = self.not_listed[:LOGGED_IDS]
        if self.oldest_since:
            view["oldest_since"] = self.oldest_since
        return view


def select(
    invoices: Iterable[UnsettledInvoice],
    *,
    now: datetime,
    listed_periods: Sequence[BillingPeriod],
    failed_accounts: Iterable[str],
    stale_after: timedelta,
) -> tuple[list[UnsettledInvoice], UnsettledReport]:
    """Which unsettled invoices to re-queue (oldest first), and the counts. Pure: no I/O."""
    report = UnsettledReport()
    failed = set(failed_accounts)
    chosen: list[UnsettledInvoice] = []
    for invoice in sorted(invoices, key=lambda i: i.since):
        report.found += 1
        report.oldest_since = report.oldest_since or invoice.since.isoformat()
        if invoice.since <= now - stale_after:
            report.stale += 1
        if invoice.period in listed_periods:
            report.in_window += 1
        elif invoice.in_flight(now):
            report.in_flight += 1
        elif invoice.account_id in failed:
            report.source_failed += 1
        else:
            chosen.append(invoice)
    return chosen, report


def queries(invoices: Sequence[UnsettledInvoice], sources: Sequence[Source]) -> list[SummaryQuery]:
    """One lookup by invoice id per invoice, through its source's configured credentials."""
    roles = {source.account_id: source.role_arn for source in sources}
    return [
        SummaryQuery(
            account_id=invoice.account_id,
            invoice_id=invoice.invoice_id,
            role_arn=roles.get(invoice.account_id),
            reason=Reason.UNSETTLED.value,
        )
        for invoice in invoices
    ]


class _Listed(ListingObserver):
    def __init__(self) -> None:
        self.ids: set[tuple[str, str]] = set()

    def listed(self, message: InvoiceMessage, reason: str | None) -> None:
        self.ids.add((message.account_id, message.invoice_id))


def requeue_unsettled(
    sources: Sequence[Source],
    *,
    settings: Settings,
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    invoicing_for: InvoicingFor,
    now: datetime,
    failed_accounts: Iterable[str] = (),
    time_left: Callable[[], float] | None = None,
) -> tuple[UnsettledReport, ListingResult]:
    """Count the run's unsettled invoices and re-queue those the scheduled listing does not reach."""
    found = [
        invoice
        for account in dict.fromkeys(source.account_id for source in sources)
        for invoice in unsettled_index.unsettled(dynamodb, settings.ledger_table, account)
    ]
    chosen, report = select(
        found,
        now=now,
        listed_periods=scheduled_periods(now, settings.lookback_periods),
        failed_accounts=failed_accounts,
        stale_after=timedelta(days=settings.unsettled_after_days),
    )
    metrics.add_metric(name=Metric.INVOICES_UNSETTLED, unit="Count", value=report.stale)
    listed = _Listed()
    result = ListingResult()
    if chosen:
        result = run_listing(
            queries(chosen, sources),
            invoicing_for=invoicing_for,
            sqs=sqs,
            queue_url=settings.invoice_queue_url,
            ledger=LedgerView(dynamodb, settings.ledger_table),
            now=now,
            dead_letter_queue_url=settings.dead_letter_queue_url,
            time_left=time_left,
            reserve_seconds=settings.listing_reserve_seconds,
            observer=listed,
        )
    report.requeued = result.messages_sent
    done = chosen[: result.resume_at[0]] if result.resume_at is not None else chosen
    report.not_listed = [
        i.invoice_id
        for i in done
        if (i.account_id, i.invoice_id) not in listed.ids and i.account_id not in result.failed_sources
    ]
    _log(report, settings, left=len(chosen) - len(done))
    return report, result


def _log(report: UnsettledReport, settings: Settings, *, left: int) -> None:
    extra = report.as_dict()
    if report.stale:
        logger.warning(f"invoices unsettled for more than {settings.unsettled_after_days} days", extra=extra)
    else:
        logger.info("unsettled invoices", extra=extra)
    if report.not_listed:
        logger.warning(
            "unsettled invoices the API no longer lists; they stay unsettled (a person must look)",
            extra={"invoice_ids": report.not_listed[:LOGGED_IDS], "count": len(report.not_listed)},
        )
    if left:
        logger.warning(
            "out of time: unsettled invoices left for the next scheduled run", extra={"left": left}
        )
