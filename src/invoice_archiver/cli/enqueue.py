"""A backfill's listing: the lister's own planning, paging, ledger comparison and messages, run with the
caller's credentials.

It decides as `logic.listing.run_listing` does (plan under the API's rules; page through
ListInvoiceSummaries; compare each summary with the ledger, one Query per account and period; enqueue
only what is new, changed, not archived or due, or everything with `recheck`; ten messages to a
SendMessageBatch), and keeps the identity of every invoice it listed and enqueued, so the backfill can
follow each one in the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from invoice_archiver.cli.errors import CliError
from invoice_archiver.cli.progress import Tracker
from invoice_archiver.cli.target import Target
from invoice_archiver.config import Settings
from invoice_archiver.dal import clients, ledger, queue
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.logic.changes import fingerprint, why_enqueue
from invoice_archiver.logic.listing import LedgerView, plan, to_message
from invoice_archiver.logic.planning import SummaryQuery
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.requests import ListRequest


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

    @property
    def unchanged(self) -> int:
        return len(self.listed) - len(self.enqueued)


def plan_backfill(
    request: ListRequest, target: Target, default_account: Callable[[], str]
) -> list[SummaryQuery]:
    """The queries, checked against the API's rules before any call (a PlanningError is a usage error)."""
    settings = Settings(account_ids=target.accounts, receiver_roles=target.roles)
    try:
        return plan(request, settings, default_account)
    except ValueError as exc:  # PlanningError, or a range that ends before it starts
        raise CliError(str(exc)) from None


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
    invoicing = clients.invoicing(target.invoicing_region, target.invoicing_max_attempts)
    sqs = clients.sqs()
    view = LedgerView(clients.dynamodb(), target.table)
    result = Listing()
    seen: set[Listed] = set()
    batch: dict[Listed, str] = {}

    def flush() -> None:
        if batch:
            if before_send is not None:
                before_send(list(batch))
            queue.send_batch(sqs, target.queue_url, list(batch.values()))
            batch.clear()

    for query in queries:
        for summary in invoicing_api.iter_summaries(invoicing, query.request()):
            message = to_message(summary, listed_at=now)
            invoice = Listed(message.account_id, message.billing_period, message.invoice_id)
            if invoice in seen:
                continue  # overlapping queries (two roles, window edges) list an invoice twice
            seen.add(invoice)
            result.listed.append(invoice)
            reason = why_enqueue(fingerprint(message.summary), view.item(message), now, recheck=recheck)
            if reason is None:
                continue  # archived, unchanged, nothing due: as the schedule would, leave it
            result.enqueued[invoice] = str(reason)
            batch[invoice] = message.model_copy(update={"reason": str(reason)}).model_dump_json()
            if len(batch) == queue.BATCH_SIZE:
                flush()
        tracker.advance()
        tracker.note(f"{len(result.listed)} invoices, {len(result.enqueued)} to archive")
    flush()
    return result


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
