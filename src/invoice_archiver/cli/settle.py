"""Where each invoice of a backfill stands, read back from the ledger (the source of truth).

An invoice is settled once it is ARCHIVED (now, or already before the run: the fetcher skips it
without writing), or FAILED after the run started; anything else is still on its way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from invoice_archiver.cli.enqueue import Listed
from invoice_archiver.constants import Status
from invoice_archiver.dal import clients, ledger
from invoice_archiver.models.period import BillingPeriod

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Settlement:
    archived: list[Listed] = field(default_factory=list)
    already: list[Listed] = field(default_factory=list)
    failed: list[tuple[Listed, str]] = field(default_factory=list)
    pending: list[tuple[Listed, str]] = field(default_factory=list)
    documents: int = 0
    bytes: int = 0

    @property
    def settled(self) -> int:
        return len(self.archived) + len(self.already) + len(self.failed)

    @property
    def clean(self) -> bool:
        return not self.failed and not self.pending


def settle(listed: Iterable[Listed], table: str, since: datetime) -> Settlement:
    """Classify every listed invoice by its ledger item (one Query per account and period)."""
    by_group: dict[tuple[str, str], list[Listed]] = {}
    for invoice in listed:
        by_group.setdefault((invoice.account_id, invoice.period), []).append(invoice)
    result = Settlement()
    for (account, period), invoices in sorted(by_group.items()):
        items = {
            str(item.get("invoice_id")): item
            for item in ledger.query_period(clients.dynamodb(), table, account, BillingPeriod.parse(period))
        }
        for invoice in sorted(invoices):
            _classify(result, invoice, items.get(invoice.invoice_id), since)
    return result


def _classify(result: Settlement, invoice: Listed, item: dict[str, Any] | None, since: datetime) -> None:
    if item is None:
        result.pending.append((invoice, "not claimed by a fetcher yet"))
        return
    status = str(item.get("status", ""))
    if status == Status.ARCHIVED:
        if _at(item, "archived_at") >= since:
            result.archived.append(invoice)
            result.documents += int(item.get("document_count", 0))
            result.bytes += int(item.get("total_bytes", 0))
        else:
            result.already.append(invoice)
    elif status == Status.FAILED and _at(item, "updated_at") >= since:
        result.failed.append((invoice, str(item.get("last_error", ""))))
    else:
        reason = str(item.get("last_error") or status)
        result.pending.append((invoice, f"{status}: {reason}" if reason != status else status))


def _at(item: dict[str, Any], name: str) -> datetime:
    value = item.get(name)
    return datetime.fromisoformat(str(value)) if value else NEVER
