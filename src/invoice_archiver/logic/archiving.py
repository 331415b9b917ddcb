"""The fetcher's work for one invoice: claim it, confirm it, fetch every document, archive, record.

0. The message is a pointer: its source (account and role) must be a configured or discovered one
   (logic.sourcing.KnownSources), else it is refused (SourceRefused) before anything else.
1. Claim the invoice in the ledger (conditional write + lease). ARCHIVED: skip, no other call.
2. Confirm it with the Invoicing API (logic.evidence): ListInvoiceSummaries for its id, through its
   source. That summary, never the message, is what the archive holds. Not listed: FAILED, nothing
   written to S3.
3. Fetch every document through the invoice's source and create it in S3, never overwriting
   (invoice_archiver.logic.fetching).
4. Write summary.json last (its arrival means the invoice is complete), then mark ARCHIVED, with the
   summary's fingerprint and its next revisit, then announce it on EventBridge (at least once).

A permanent failure records the invoice FAILED with its reason; a source that cannot be read is
recorded against the source too (invoice_archiver.logic.failures). Anything else is retried.

An ARCHIVED invoice the lister saw change, or whose revisit is due, is re-checked instead
(invoice_archiver.logic.rechecking); any other delivery of it is skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from invoice_archiver.config import Settings
from invoice_archiver.constants import DetailType, Metric, Status
from invoice_archiver.dal import events as events_api
from invoice_archiver.dal import ledger
from invoice_archiver.logic import announcements, changes, evidence, failures, fetching, summaries
from invoice_archiver.logic.failures import ArchiveConflict as ArchiveConflict  # re-exported
from invoice_archiver.logic.failures import DocumentsIncomplete as DocumentsIncomplete  # re-exported
from invoice_archiver.logic.failures import InvoiceBusy as InvoiceBusy  # re-exported
from invoice_archiver.logic.fetching import Identity as Identity  # re-exported
from invoice_archiver.logic.notices import redact as redact  # re-exported: tests and callers use it here
from invoice_archiver.logic.sourcing import KnownSources
from invoice_archiver.models.documents import ArchivedDocument
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.models.source import Source
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_s3 import S3Client

SUMMARY_SCHEMA_VERSION = summaries.SUMMARY_SCHEMA_VERSION


class Outcome(StrEnum):
    ARCHIVED = "ARCHIVED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    REVISED = "REVISED"  # re-checked: a revision (changed summary, new or withdrawn documents) archived
    UNCHANGED = "UNCHANGED"  # re-checked: nothing new


@dataclass
class Archiver:
    """The fetcher's collaborators. Tests hand in sandbox clients, a clock or a quick sleep.

    `invoicing_for(source)`: the Invoicing client to read a source's invoices with (the handler's reads
    through the source's role, see dal.sources; a caller with one set of credentials passes
    `lambda source: client`). It raises dal.sources.SourceUnavailable when the role cannot be assumed.
    """

    settings: Settings
    invoicing_for: Callable[[Source], InvoicingClient]
    s3: S3Client
    dynamodb: DynamoDBClient
    # The sources a message may name: configured, or discovered (logic.sourcing).
    sources: KnownSources
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    # EventBridge: created on first use (and per Archiver, so tests that switch endpoints get theirs).
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

    def archive(self, message: InvoiceMessage, deadline: float | None = None) -> Outcome:
        """Archive the invoice the message points to (raises SourceRefused for a source that is neither
        configured nor discovered; the handler quarantines such a message). `deadline`: the
        time.monotonic() by which downloads must end (the invocation's, less what a release takes)."""
        self.sources.check(message.source)
        key = ledger.LedgerKey(message.account_id, message.period, message.invoice_id)
        owner = uuid.uuid4().hex
        # A re-archive (Reason.REARCHIVE) takes an ARCHIVED invoice too, if archived before it was asked.
        rearchive = self.listed_at(message) if message.reason == changes.Reason.REARCHIVE else None
        claim = ledger.claim(
            self.dynamodb,
            self.settings.ledger_table,
            key,
            owner=owner,
            now=self.clock(),
            lease_seconds=self.settings.lease_seconds,
            attributes={"source_role_arn": message.role_arn},
            reopen_archived_before=rearchive,
        )
        if not claim.claimed:
            if claim.status == Status.ARCHIVED and not (rearchive and claim.held(self.clock())):
                return self._already_archived(message, key, claim.item, deadline)
            raise InvoiceBusy(f"invoice {message.invoice_id} is being archived by another worker")

        try:
            invoice = self.confirm(message)
            documents = self.archive_documents(invoice, deadline=deadline)
            summary_key = fetching.write_summary(self, invoice, documents)
        except failures.PERMANENT as exc:
            reason = self._record_error(message, key, owner, Status.FAILED, exc)
            metrics.add_metric(name=Metric.INVOICES_FAILED, unit="Count", value=1)
            logger.error("invoice cannot be archived", extra={"reason": reason})
            if failures.is_source_failure(exc, message):
                self.source_failed(message, reason)
            return Outcome.FAILED
        except Exception as exc:
            reason = self._record_error(message, key, owner, Status.RETRYING, exc)
            metrics.add_metric(name=Metric.INVOICES_RETRIED, unit="Count", value=1)
            logger.warning("invoice will be retried", extra={"reason": reason})
            raise DocumentsIncomplete(reason) from None

        total = sum(d.size for d in documents)
        records = [d.to_record() for d in documents]
        now = self.clock()
        pending = announcements.pending_event(
            DetailType.ARCHIVED,
            announcements.event_detail(
                self.settings.archive_bucket, invoice, summary_key, records, revision=0, at=now
            ),
        )
        ledger.mark_archived(
            self.dynamodb,
            self.settings.ledger_table,
            key,
            owner=owner,
            now=now,
            documents=records,
            summary_key=summary_key,
            total_bytes=total,
            tracking=ledger.Tracking(
                fingerprint=changes.fingerprint(invoice.summary),
                issued_date=_text(invoice.summary.get("IssuedDate")),
                next_check_at=self.next_check(invoice, self.listed_at(message)),
                pending_event=pending,
                invoice_type=_text(invoice.summary.get("InvoiceType")),
                receiver_role=_text(invoice.summary.get("ReceiverRole")),
            ),
        )
        metrics.add_metric(name=Metric.INVOICES_ARCHIVED, unit="Count", value=1)
        metrics.add_metric(name=Metric.DOCUMENTS_ARCHIVED, unit="Count", value=len(documents))
        metrics.add_metric(name=Metric.BYTES_ARCHIVED, unit="Bytes", value=total)
        logger.info("archived", extra={"documents": len(documents), "bytes": total})
        self.announcer().announce(key, pending)
        return Outcome.ARCHIVED

    def confirm(self, message: InvoiceMessage) -> VerifiedInvoice:
        """The invoice as the Invoicing API lists it now, through the message's source (logic.evidence)."""
        return evidence.confirm(self.invoicing_for(message.source), message)

    def listed_at(self, message: InvoiceMessage) -> datetime:
        """When the lister listed it (what revisits are judged by), never later than now: a message's
        claim about time must not push the revisit schedule into the future."""
        now = self.clock()
        return min(message.listed_at, now) if message.listed_at is not None else now

    def next_check(self, invoice: VerifiedInvoice, after: datetime) -> datetime | None:
        issued = changes.parse_time(invoice.summary.get("IssuedDate"))
        return changes.next_check(issued, self.settings.revisit_days, after)

    def _already_archived(
        self, message: InvoiceMessage, key: ledger.LedgerKey, item: dict[str, Any], deadline: float | None
    ) -> Outcome:
        """A change the lister saw or a due revisit is re-checked; an unsent event is sent; else skipped."""
        from invoice_archiver.logic import rechecking  # it builds on this module

        hint = message.legacy_summary
        hinted = changes.fingerprint(hint) if hint is not None else None
        if changes.recheck_wanted(item, message.reason, self.listed_at(message), hinted):
            return rechecking.recheck(self, message, key, deadline)
        pending = item.get("pending_event")
        if pending:
            self.announcer().announce(key, pending)
        metrics.add_metric(name=Metric.INVOICES_SKIPPED, unit="Count", value=1)
        logger.info("already archived, skipped")
        return Outcome.SKIPPED

    def source_failed(self, message: InvoiceMessage, reason: str) -> None:
        """The invoice's source cannot be read: its FAILED record, metric and log (logic.failures)."""
        failures.record_source_failure(
            self.dynamodb, self.settings.ledger_table, message, reason=reason, now=self.clock()
        )

    def _record_error(
        self, message: InvoiceMessage, key: ledger.LedgerKey, owner: str, status: str, exc: Exception
    ) -> str:
        """Release the claim as FAILED or RETRYING with the reason (redacted); return the reason."""
        reason = failures.describe(exc, message)
        ledger.record_error(
            self.dynamodb,
            self.settings.ledger_table,
            key,
            owner=owner,
            now=self.clock(),
            status=status,
            error=reason,
            retryable=status != Status.FAILED or failures.retryable(exc, message),
        )
        return reason

    def folder(self, invoice: VerifiedInvoice) -> str:
        return fetching.folder(self, invoice)

    def archive_documents(
        self,
        invoice: VerifiedInvoice,
        known: dict[Identity, ArchivedDocument] | None = None,
        deadline: float | None = None,
    ) -> list[ArchivedDocument]:
        """Every document of the invoice, in S3 and verified (logic.fetching)."""
        return fetching.archive_documents(self, invoice, known, deadline)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
