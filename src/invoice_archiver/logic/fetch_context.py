"""What the fetcher's work runs with: its settings, clients, clock and sleep, and the few facts every
step derives from them. Tests hand in sandbox clients, a clock or a quick sleep.

`invoicing_for(source)`: the Invoicing client to read a source's invoices with (the handler's reads through
the source's role, see dal.sources; a caller with one set of credentials passes `lambda source: client`).
It raises dal.sources.SourceUnavailable when the role cannot be assumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from invoice_archiver.config import Settings
from invoice_archiver.dal import events as events_api
from invoice_archiver.logic import announcements, changes, evidence, failures, layout
from invoice_archiver.logic.sourcing import KnownSources
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.source import Source

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_s3 import S3Client


class Outcome(StrEnum):
    ARCHIVED = "ARCHIVED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    REVISED = "REVISED"  # re-checked: a revision (changed summary, new or withdrawn documents) archived
    UNCHANGED = "UNCHANGED"  # re-checked: nothing new


@dataclass
class FetchContext:
    settings: Settings
    invoicing_for: Callable[[Source], InvoicingClient]
    s3: S3Client
    dynamodb: DynamoDBClient
    # The sources a message may name: configured, or discovered (logic.sourcing).
    sources: KnownSources
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    # EventBridge: created on first use (and per context, so tests that switch endpoints get theirs).
    events: EventBridgeClient | None = None

    def announcer(self) -> announcements.Announcer:
        if self.events is None:
            self.events = events_api.client()
        return announcements.Announcer(
            events=self.events,
            dynamodb=self.dynamodb,
            table=self.settings.ledger_table,
            bus=self.settings.event_bus_name,
        )

    def confirm(self, message: InvoiceMessage) -> VerifiedInvoice:
        """The invoice as the Invoicing API lists it now, through the message's source (logic.evidence)."""
        return evidence.confirm(self.invoicing_for(message.source), message)

    def listed_at(self, message: InvoiceMessage) -> datetime:
        """When the lister listed it (what revisits are judged by), never later than now: a message's
        claim about time must not push the revisit schedule into the future."""
        now = self.clock()
        return min(message.listed_at, now) if message.listed_at is not None else now

    def next_check(self, issued_date: object, after: datetime) -> datetime | None:
        """The next revisit of an invoice issued then, strictly after `after` (None: no more)."""
        return changes.next_check(changes.parse_time(issued_date), self.settings.revisit_days, after)

    def folder(self, invoice: VerifiedInvoice) -> str:
        return layout.invoice_prefix(
            self.settings.archive_prefix, invoice.account_id, invoice.period, invoice.invoice_id
        )

    def source_failed(self, message: InvoiceMessage, reason: str) -> None:
        """The invoice's source cannot be read: its FAILED record, metric and log (logic.failures)."""
        failures.record_source_failure(
            self.dynamodb, self.settings.ledger_table, message, reason=reason, now=self.clock()
        )
