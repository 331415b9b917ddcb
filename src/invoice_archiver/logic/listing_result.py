"""What a listing did (ListingResult), and the hooks a caller that follows it may set (ListingObserver)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from invoice_archiver.logic.planning import SummaryQuery
from invoice_archiver.models.messages import InvoiceMessage


@dataclass
class ListingResult:
    queries: int = 0
    invoices_listed: int = 0
    messages_sent: int = 0
    periods: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    # Why each enqueued invoice was enqueued (logic.changes.Reason values); the rest were unchanged.
    reasons: Counter[str] = field(default_factory=Counter)
    ledger_queries: int = 0
    ledger_read_units: float = 0.0
    ledger_seconds: float = 0.0
    # Invoices listed per "<account>#<YYYY-MM>" (the missing-invoice check reads it).
    listed_per_period: Counter[str] = field(default_factory=Counter)
    # Summaries that could not become a message (quarantined to the DLQ with the reason).
    quarantined: int = 0
    # Invoices of accounts that are not sources of the run (not enqueued; SourcesRefused).
    refused: int = 0
    # Sources that could not be read, by account, with why (their queries were skipped).
    failed_sources: dict[str, str] = field(default_factory=dict)
    # Queries finished, or skipped for a source that failed (a continuation resumes at the next one).
    queries_done: int = 0
    # Where to resume when the listing stopped for time: (query index, NextToken); None when done.
    resume_at: tuple[int, str | None] | None = None

    @property
    def unchanged(self) -> int:
        return self.invoices_listed - sum(self.reasons.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "invoices_listed": self.invoices_listed,
            "messages_sent": self.messages_sent,
            "quarantined": self.quarantined,
            "refused": self.refused,
            "unchanged": self.unchanged,
            "reasons": dict(sorted(self.reasons.items())),
            "ledger_queries": self.ledger_queries,
            "ledger_read_units": self.ledger_read_units,
            "ledger_seconds": round(self.ledger_seconds, 3),
            "periods": self.periods,
            "accounts": self.accounts,
            **({"failed_sources": dict(sorted(self.failed_sources.items()))} if self.failed_sources else {}),
        }


class ListingObserver:
    """Hooks for a caller that follows the listing (the CLI's backfill); each does nothing here."""

    def listed(self, message: InvoiceMessage, reason: str | None) -> None:
        """One invoice listed (the first time in this run), with why it is enqueued (None: unchanged)."""

    def before_send(self, messages: list[InvoiceMessage]) -> None:
        """A batch of messages is about to be sent."""

    def query_done(self, query: SummaryQuery) -> None:
        """A query's last page is done."""
