"""A backfill's listing: the lister's own planning, paging, ledger comparison and messages
(`logic.listing.run_listing`), run with the caller's credentials (and the configured source roles),
following the identity of every invoice it lists and enqueues so the backfill can follow each one in
the ledger. A CLI process has no invocation timeout: the listing runs to its end in one go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from invoice_archiver.cli.errors import CliError
from invoice_archiver.cli.progress import Tracker
from invoice_archiver.cli.target import Target
from invoice_archiver.dal import clients, ledger, sources
from invoice_archiver.logic.ledger_view import LedgerView
from invoice_archiver.logic.listing import InvoicingFor, ListingObserver, run_listing
from invoice_archiver.logic.listing_job import plan_queries
from invoice_archiver.logic.planning import SummaryQuery
from invoice_archiver.logic.sourcing import combine_sources, discover_units
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.requests import ListRequest
from invoice_archiver.models.source import role_arns


@dataclass(frozen=True, order=True)
class Listed:
    """One invoice a backfill listed: its ledger identity."""

    account_id: str
    period: str
    invoice_id: str

    def key(self) -> ledger.LedgerKey:
        return ledger.LedgerKey(self.account_id, BillingPeriod.parse(self.period), self.invoice_id)


@dataclass
class Listing:
    listed: list[Listed] = field(default_factory=list)
    enqueued: dict[Listed, str] = field(default_factory=dict)  # invoice -> why (logic.changes.Reason)
    failed_sources: dict[str, str] = field(default_factory=dict)  # account -> why it cannot be read
    quarantined: int = 0  # summaries that cannot become a message (to the DLQ, with the reason)

    @property
    def unchanged(self) -> int:
        return len(self.listed) - len(self.enqueued)


def invoicing_for(target: Target) -> InvoicingFor:
    return sources.invoicing_for_role(
        external_id=target.external_id,
        allowed_roles=role_arns(target.sources),
        region=target.invoicing_region,
        max_attempts=target.invoicing_max_attempts,
    )


def plan_backfill(
    request: ListRequest, target: Target, default_account: Callable[[], str]
) -> list[SummaryQuery]:
    """The queries, checked against the API's rules before any call (a PlanningError is a usage error).
    With DISCOVER_INVOICE_UNITS, each source's invoice-unit receivers are found first, as the lister does."""
    planned = combine_sources(target.accounts, target.sources, default_account)
    if target.discover_invoice_units:
        planned, failed = discover_units(planned, invoicing_for(target))
        for account, reason in failed.items():
            print(f"Source {account} cannot be read: {reason}")
    try:
        return plan_queries(request, planned, _Roles(target.roles))
    except ValueError as exc:  # PlanningError, or a range that ends before it starts
        raise CliError(str(exc)) from None


@dataclass(frozen=True)
class _Roles:
    """What planning reads of the settings (a backfill has no schedule: no look-back)."""

    receiver_roles: tuple[str, ...]
    lookback_periods: int = 0


class _Follow(ListingObserver):
    def __init__(self, tracker: Tracker, before_send: Callable[[list[Listed]], object] | None) -> None:
        self.listing = Listing()
        self._tracker = tracker
        self._before_send = before_send

    def listed(self, message: InvoiceMessage, reason: str | None) -> None:
        invoice = _listed(message)
        self.listing.listed.append(invoice)
        if reason is not None:
            self.listing.enqueued[invoice] = reason

    def before_send(self, messages: list[InvoiceMessage]) -> None:
        if self._before_send is not None:
            self._before_send([_listed(m) for m in messages])

    def query_done(self, query: SummaryQuery) -> None:
        self._tracker.advance()
        self._tracker.note(f"{len(self.listing.listed)} invoices, {len(self.listing.enqueued)} to archive")


def _listed(message: InvoiceMessage) -> Listed:
    return Listed(message.account_id, message.billing_period, message.invoice_id)


def list_and_enqueue(
    queries: list[SummaryQuery],
    target: Target,
    tracker: Tracker,
    *,
    now: datetime,
    recheck: bool,
    before_send: Callable[[list[Listed]], object] | None = None,
) -> Listing:
    """Run every query and send one message per invoice that needs the fetcher to the target's queue.

    `before_send` sees each batch's invoices just before the batch is sent (a re-archive reopens them
    there, so no fetcher can see the message first and skip the invoice as archived).
    """
    if not target.queue_url:
        raise CliError("no invoice queue: pass --stack NAME or set INVOICE_QUEUE_URL")
    follow = _Follow(tracker, before_send)
    result = run_listing(
        queries,
        invoicing_for=invoicing_for(target),
        sqs=clients.sqs(),
        queue_url=target.queue_url,
        ledger=LedgerView(clients.dynamodb(), target.table),
        now=now,
        recheck=recheck,
        dead_letter_queue_url=target.dead_letter_queue_url,
        observer=follow,
    )
    follow.listing.failed_sources = dict(result.failed_sources)
    follow.listing.quarantined = result.quarantined
    return follow.listing


def reopen_archived(invoices: list[Listed], target: Target, now: datetime) -> int:
    """Re-archive: make each ARCHIVED invoice claimable again, so the fetcher re-checks every object."""
    reopened = 0
    for invoice in invoices:
        reopened += ledger.reopen(
            clients.dynamodb(),
            target.table,
            invoice.key(),
            now=now,
            reason="re-archive requested by invoice-archiver backfill --invoice-id",
        )
    return reopened
