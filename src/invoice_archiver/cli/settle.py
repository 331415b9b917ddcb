"""Where each invoice of a backfill stands, read back from the ledger (the source of truth).

An invoice is settled once it is ARCHIVED in this run (or re-checked in it, when it was enqueued for a
re-check), or was already ARCHIVED and left alone, or is FAILED since the run started; anything else is
still on its way.

Two ways to know which invoices a backfill is about: the lister named each one it enqueued (`settle`), or
it could not (a listing too large for one response, or one that continued through the listing queue on a
stack) and the backfill follows every ledger item of the listing's accounts and periods that changed since
it started (`settle_touched`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from invoice_archiver.dal import clients
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.models.period import BillingPeriod

NEVER = datetime(1970, 1, 1, tzinfo=UTC)
RECHECK = "recheck"
REARCHIVE = "rearchive"


@dataclass(frozen=True, order=True)
class Listed:
    """One invoice a backfill listed: its ledger identity."""

    account_id: str
    period: str
    invoice_id: str


@dataclass
class Settlement:
    archived: list[Listed] = field(default_factory=list)
    rechecked: list[Listed] = field(default_factory=list)
    already: list[Listed] = field(default_factory=list)
    failed: list[tuple[Listed, str]] = field(default_factory=list)
    pending: list[tuple[Listed, str]] = field(default_factory=list)
    documents: int = 0
    bytes: int = 0

    @property
    def settled(self) -> int:
        return len(self.archived) + len(self.rechecked) + len(self.already) + len(self.failed)

    @property
    def clean(self) -> bool:
        return not self.failed and not self.pending


def settle(
    listed: Iterable[Listed],
    table: str,
    since: datetime,
    rechecks: Collection[Listed] = (),
    rearchives: Collection[Listed] = (),
) -> Settlement:
    """Classify every listed invoice by its ledger item (one Query per account and period).

    `rechecks`: invoices enqueued as a re-check of an archived invoice: settled once re-checked.
    `rearchives`: invoices enqueued to be archived again: settled once archived since `since` (or FAILED).
    """
    by_group: dict[tuple[str, str], list[Listed]] = {}
    for invoice in listed:
        by_group.setdefault((invoice.account_id, invoice.period), []).append(invoice)
    result = Settlement()
    for (account, period), group in sorted(by_group.items()):
        records = {
            record.invoice_id: record
            for record in invoices.query_period(
                clients.dynamodb(), table, account, BillingPeriod.parse(period)
            )
        }
        for invoice in sorted(group):
            expect = RECHECK if invoice in rechecks else REARCHIVE if invoice in rearchives else None
            _classify(result, invoice, records.get(invoice.invoice_id), since, expect)
    return result


def settle_touched(
    accounts: Iterable[str], periods: Iterable[str], table: str, since: datetime
) -> Settlement:
    """Classify every ledger item of the accounts (and periods; none: all of them) written since `since`."""
    result = Settlement()
    wanted: list[BillingPeriod | None] = [BillingPeriod.parse(p) for p in sorted(set(periods))] or [None]
    for account in sorted(set(accounts)):
        for period in wanted:
            for record in invoices.query_period(clients.dynamodb(), table, account, period):
                if _touched(record) < since:
                    continue
                invoice = Listed(account, record.billing_period, record.invoice_id)
                _classify(result, invoice, record, since, None)
    return result


def _touched(record: InvoiceRecord) -> datetime:
    return max(_at(record.updated_at), _at(record.archived_at), _at(record.last_checked_at))


def _classify(
    result: Settlement, invoice: Listed, item: InvoiceRecord | None, since: datetime, expect: str | None
) -> None:
    """`expect`: what an ARCHIVED invoice was enqueued for (RECHECK, REARCHIVE), None if nothing."""
    if item is None:
        result.pending.append((invoice, "not claimed by a fetcher yet"))
        return
    status, error = item.status, item.last_error
    if status is Status.ARCHIVED:
        if _at(item.archived_at) >= since:
            result.archived.append(invoice)
            result.documents += item.document_count
            result.bytes += item.total_bytes
        elif expect == REARCHIVE:
            result.pending.append((invoice, "ARCHIVED, waiting to be archived again"))
        elif _at(item.last_checked_at) >= since:
            result.rechecked.append(invoice)
        elif expect == RECHECK and error and _at(item.updated_at) >= since:
            result.failed.append((invoice, f"re-check failed: {error}"))
        elif expect == RECHECK:
            result.pending.append((invoice, "ARCHIVED, waiting for its re-check"))
        else:
            result.already.append(invoice)
    elif status is Status.FAILED and _at(item.updated_at) >= since:
        result.failed.append((invoice, error))
    else:
        result.pending.append((invoice, f"{status}: {error}" if error else status))


def _at(value: datetime | None) -> datetime:
    return value if value is not None else NEVER
