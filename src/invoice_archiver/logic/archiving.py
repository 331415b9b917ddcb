"""The fetcher's work for one invoice: claim it, fetch every document, archive, record. Exactly once.

1. Claim the invoice in the ledger (conditional write + lease). ARCHIVED: skip, no other call.
2. GetInvoicePDF for fresh URLs; download each document to a spool file, hashing and checking its
   length; an expired URL or a broken download gets fresh URLs and another bounded attempt.
3. Create each object with IfNoneMatch: * (never overwrite). A key that already holds the same
   bytes (a crashed earlier attempt) is accepted; different bytes are a conflict, never replaced.
4. Write summary.json last (its arrival means the invoice is complete), then mark ARCHIVED, with the
   summary's fingerprint and its next revisit, then announce it on EventBridge (at least once).

An ARCHIVED invoice whose summary changed, or whose revisit is due, is re-checked instead
(invoice_archiver.logic.rechecking); any other delivery of it is skipped.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from invoice_archiver.config import Settings
from invoice_archiver.constants import DetailType, Metric, Status
from invoice_archiver.dal import archive, downloads, ledger
from invoice_archiver.dal import events as events_api
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.dal.downloads import DownloadFailed, UnsafeUrl
from invoice_archiver.dal.invoicing import InvoiceUnavailable
from invoice_archiver.logic import announcements, changes, layout, summaries
from invoice_archiver.logic.notices import redact as redact  # re-exported: tests and callers use it here
from invoice_archiver.logic.notices import report_undescribed
from invoice_archiver.models.documents import ArchivedDocument, DocumentRef
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_invoicing import InvoicingClient
    from mypy_boto3_s3 import S3Client

SUMMARY_SCHEMA_VERSION = summaries.SUMMARY_SCHEMA_VERSION
Identity = tuple[str | None, str | None]
# Backoff between download attempts: a few seconds at most, so a delivery stays far inside its timeout.
MAX_BACKOFF_SECONDS = 5.0


class Outcome(StrEnum):
    ARCHIVED = "ARCHIVED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    REVISED = "REVISED"  # re-checked: a revision (changed summary, new or withdrawn documents) archived
    UNCHANGED = "UNCHANGED"  # re-checked: nothing new


class InvoiceBusy(Exception):
    """Another worker holds a live lease on this invoice; the message is retried later."""


class ArchiveConflict(Exception):
    """A key already holds different bytes: the archive is never overwritten, a person must look."""


class DocumentsIncomplete(Exception):
    """Downloads kept failing within this delivery's budget; the next delivery tries again."""


@dataclass
class Archiver:
    """The fetcher's collaborators. Tests hand in sandbox clients, a clock or a quick sleep."""

    settings: Settings
    invoicing: InvoicingClient
    s3: S3Client
    dynamodb: DynamoDBClient
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

    def archive(self, message: InvoiceMessage) -> Outcome:
        key = ledger.LedgerKey(message.account_id, message.period, message.invoice_id)
        owner = uuid.uuid4().hex
        claim = ledger.claim(
            self.dynamodb,
            self.settings.ledger_table,
            key,
            owner=owner,
            now=self.clock(),
            lease_seconds=self.settings.lease_seconds,
            attributes={
                "invoice_type": message.summary.get("InvoiceType"),
                "receiver_role": message.summary.get("ReceiverRole"),
            },
        )
        if not claim.claimed:
            if claim.status == Status.ARCHIVED:
                return self._already_archived(message, key, claim.item)
            raise InvoiceBusy(f"invoice {message.invoice_id} is being archived by another worker")

        try:
            documents = self.archive_documents(message)
            summary_key = self._write_summary(message, documents)
        except (InvoiceUnavailable, UnsafeUrl, ArchiveConflict, layout.ContractViolation) as exc:
            reason = self._record_error(key, owner, Status.FAILED, exc)
            metrics.add_metric(name=Metric.INVOICES_FAILED, unit="Count", value=1)
            logger.error("invoice cannot be archived", extra={"reason": reason})
            return Outcome.FAILED
        except Exception as exc:
            reason = self._record_error(key, owner, Status.RETRYING, exc)
            metrics.add_metric(name=Metric.INVOICES_RETRIED, unit="Count", value=1)
            logger.warning("invoice will be retried", extra={"reason": reason})
            raise DocumentsIncomplete(reason) from None

        total = sum(d.size for d in documents)
        records = [d.to_record() for d in documents]
        now = self.clock()
        pending = announcements.pending_event(
            DetailType.ARCHIVED,
            announcements.event_detail(
                self.settings.archive_bucket, message, summary_key, records, revision=0, at=now
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
                fingerprint=changes.fingerprint(message.summary),
                issued_date=_text(message.summary.get("IssuedDate")),
                next_check_at=self.next_check(message, message.listed_at or now),
                pending_event=pending,
            ),
        )
        metrics.add_metric(name=Metric.INVOICES_ARCHIVED, unit="Count", value=1)
        metrics.add_metric(name=Metric.DOCUMENTS_ARCHIVED, unit="Count", value=len(documents))
        metrics.add_metric(name=Metric.BYTES_ARCHIVED, unit="Bytes", value=total)
        logger.info("archived", extra={"documents": len(documents), "bytes": total})
        self.announcer().announce(key, pending)
        return Outcome.ARCHIVED

    def next_check(self, message: InvoiceMessage, after: datetime) -> datetime | None:
        issued = changes.parse_time(message.summary.get("IssuedDate"))
        return changes.next_check(issued, self.settings.revisit_days, after)

    def _already_archived(
        self, message: InvoiceMessage, key: ledger.LedgerKey, item: dict[str, Any]
    ) -> Outcome:
        """A changed summary or a due revisit is re-checked; an unsent event is sent; else skipped."""
        from invoice_archiver.logic import rechecking  # it builds on this module

        fingerprint = changes.fingerprint(message.summary)
        if changes.recheck_wanted(fingerprint, item, message.reason, message.listed_at):
            return rechecking.recheck(self, message, key)
        pending = item.get("pending_event")
        if pending:
            self.announcer().announce(key, pending)
        metrics.add_metric(name=Metric.INVOICES_SKIPPED, unit="Count", value=1)
        logger.info("already archived, skipped")
        return Outcome.SKIPPED

    def _record_error(self, key: ledger.LedgerKey, owner: str, status: str, exc: Exception) -> str:
        """Release the claim as FAILED or RETRYING with the reason (redacted); return the reason."""
        reason = redact(f"{type(exc).__name__}: {exc}")
        ledger.record_error(
            self.dynamodb,
            self.settings.ledger_table,
            key,
            owner=owner,
            now=self.clock(),
            status=status,
            error=reason,
        )
        return reason

    def folder(self, message: InvoiceMessage) -> str:
        return layout.invoice_prefix(
            self.settings.archive_prefix, message.account_id, message.period, message.invoice_id
        )

    def archive_documents(
        self, message: InvoiceMessage, known: dict[Identity, ArchivedDocument] | None = None
    ) -> list[ArchivedDocument]:
        """Every document of the invoice, in S3 and verified; fresh URLs for every attempt.

        `known`: documents the API described in full that are archived already (a re-check); they are
        not downloaded again.
        """
        # Documents the API described in full, archived by an earlier attempt of this delivery. One
        # it did not describe has no identity until it is downloaded: it is simply archived again
        # (same bytes, same key, accepted as already there).
        done: dict[Identity, ArchivedDocument] = dict(known or {})
        last_error = "no attempt made"
        for attempt in range(self.settings.download_attempts):
            if attempt:
                self.sleep(min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt) * random.uniform(0.5, 1.0))
            refs = invoicing_api.get_documents(self.invoicing, message.invoice_id)
            if not refs:
                last_error = "GetInvoicePDF returned no document URL"
                continue
            try:
                archived = [self._document_once(message, ref, done) for ref in refs]
            except DownloadFailed as exc:
                last_error = str(exc)
                logger.warning(
                    "download failed, fetching fresh URLs",
                    extra={"attempt": attempt + 1, "reason": redact(last_error), "expired": exc.expired},
                )
                continue
            report_undescribed(archived)
            return archived
        raise DocumentsIncomplete(
            f"documents incomplete after {self.settings.download_attempts} attempts: {last_error}"
        )

    def _document_once(
        self,
        message: InvoiceMessage,
        ref: DocumentRef,
        done: dict[Identity, ArchivedDocument],
    ) -> ArchivedDocument:
        identity = None if ref.omitted_by_api else (ref.document_type, ref.document_id)
        if identity in done:
            return done[identity]
        document = self._archive_document(message, ref)
        if identity is not None:
            done[identity] = document
        return document

    def _archive_document(self, message: InvoiceMessage, ref: DocumentRef) -> ArchivedDocument:
        downloads.check_url(
            ref.url, self.settings.document_host_suffixes, self.settings.allow_loopback_document_urls
        )
        spooled = downloads.download(ref.url, spool_dir=self.settings.spool_directory or None)
        try:
            key = layout.document_key(
                self.folder(message),
                ref.document_type,
                ref.document_id,
                downloads.extension_for(spooled.content_type),
                spooled.sha256,
            )
            summary = message.summary
            try:
                archive.put_new(
                    self.s3,
                    bucket=self.settings.archive_bucket,
                    key=key,
                    body=spooled.file,
                    size=spooled.size,
                    sha256=spooled.sha256,
                    content_type=spooled.content_type,
                    metadata=layout.object_metadata(
                        summary, ref.document_type, ref.document_id, spooled.size, spooled.sha256
                    ),
                    tagging=layout.tagging_header(layout.object_tags(summary, ref.document_type)),
                    multipart_threshold=self.settings.multipart_threshold_bytes,
                )
            except archive.AlreadyExists:
                self._accept_existing(key, spooled.sha256, spooled.size)
            return ArchivedDocument(
                document_type=ref.document_type,
                document_id=ref.document_id,
                key=key,
                content_type=spooled.content_type,
                size=spooled.size,
                sha256=spooled.sha256,
                omitted_by_api=ref.omitted_by_api,
                type_recognized=ref.type_recognized,
            )
        finally:
            spooled.close()

    def _accept_existing(self, key: str, sha256: str, size: int) -> None:
        """A key we were about to create exists: fine if it holds these very bytes, else a conflict."""
        existing = archive.head(self.s3, self.settings.archive_bucket, key) or {}
        stored = existing.get("Metadata", {}).get("sha256")
        if stored != sha256 or existing.get("ContentLength") != size:
            raise ArchiveConflict(f"{key} already holds different content; it is never overwritten")
        logger.info("document was archived by an earlier attempt", extra={"key": key})

    def _write_summary(self, message: InvoiceMessage, documents: list[ArchivedDocument]) -> str:
        key = layout.summary_key(self.folder(message))
        listed = [d.to_record() for d in documents]
        document = summaries.summary_document(message, listed, self.clock())
        try:
            summaries.put_summary(
                self.s3, bucket=self.settings.archive_bucket, key=key, document=document, message=message
            )
        except archive.AlreadyExists:
            existing = archive.get_json(self.s3, self.settings.archive_bucket, key)
            # Fewer documents than now is an invoice re-archived after documents came late (revisions
            # list those); anything else it lists that is not here now is a conflict.
            if not _fingerprint(existing.get("documents", [])) <= _fingerprint(listed):
                raise ArchiveConflict(f"{key} already lists different documents") from None
        return key


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _fingerprint(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(str(d.get("key")), str(d.get("sha256"))) for d in documents}
