"""Re-check an ARCHIVED invoice: its summary changed, or a scheduled revisit is due.

1. Lease the invoice (it stays ARCHIVED: its archive is complete throughout).
2. Confirm it with the Invoicing API (logic.evidence): the summary compared and archived is the one
   the API lists now, through the invoice's source. A message that says it changed when it did not
   (a duplicate, or a forged one) ends here: the lease is given back, nothing else is asked or written.
3. GetInvoicePDF; documents already archived are not downloaded again, any new one is archived
   create-only; one the API no longer lists stays in the archive and is noted.
4. If the summary changed, or documents appeared or disappeared: write a revision, create-only, at
   `revisions/<UTC timestamp>-summary.json`, listing every archived document; summary.json and earlier
   revisions are never touched.
5. Record it in the ledger (revision count, fingerprint, latest summary key, next revisit), then
   announce `Invoice Revised`.

The invoice is read through the message's source, as when it was first archived. A failure leaves it
ARCHIVED and its archive as it was: the lease is given back with the reason in `last_error`. A
permanent one (logic.failures.PERMANENT, including an unavailable source, which is also recorded against
the source) moves the revisit schedule on and counts InvoicesFailed; any other is retried by the next
delivery and counts InvoicesRetried.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invoice_archiver.constants import DetailType, Metric
from invoice_archiver.dal import archive
from invoice_archiver.dal.ledger import rechecks
from invoice_archiver.dal.ledger.records import InvoiceRecord, LedgerKey
from invoice_archiver.logic import announcements, changes, failures, layout, summaries
from invoice_archiver.logic.archived_documents import ArchivedDocuments, archived_documents
from invoice_archiver.logic.changes import Reason
from invoice_archiver.logic.documents import Identity, archive_documents
from invoice_archiver.logic.failures import InvoiceBusy
from invoice_archiver.logic.fetch_context import FetchContext, Outcome
from invoice_archiver.models.documents import ArchivedDocument
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from datetime import datetime


def recheck(
    context: FetchContext, message: InvoiceMessage, key: LedgerKey, deadline: float | None = None
) -> Outcome:
    settings = context.settings
    owner = uuid.uuid4().hex
    claim = rechecks.claim_recheck(
        context.dynamodb,
        settings.ledger_table,
        key,
        owner=owner,
        now=context.clock(),
        lease_seconds=settings.lease_seconds,
    )
    if not claim.claimed:
        raise InvoiceBusy(f"invoice {message.invoice_id} is being re-checked by another worker")
    item = claim.record
    if item is None:  # a claim that succeeded returns the record it wrote
        raise InvoiceBusy(f"invoice {message.invoice_id} is no longer in the ledger")
    listed_at = context.listed_at(message)
    try:
        invoice = context.confirm(message)
        if not _documents_wanted(invoice, message, item, listed_at):
            rechecks.release_lease(context.dynamodb, settings.ledger_table, key, owner=owner)
            metrics.add_metric(name=Metric.INVOICES_SKIPPED, unit="Count", value=1)
            logger.info("the API lists the summary as archived; nothing to re-check")
            return Outcome.UNCHANGED
        archived = archived_documents(
            item, lambda object_key: archive.get_json(context.s3, settings.archive_bucket, object_key)
        )
        listed = archive_documents(context, invoice, known=_known(archived), deadline=deadline)
        outcome, pending = _record(context, invoice, key, owner, item, archived, listed, listed_at)
    except Exception as exc:

        def release(reason: str, permanent: bool) -> None:
            # The invoice stays ARCHIVED as it was; a permanent failure moves the revisit schedule on
            # (from the archived issue date: the API's summary may be what could not be read).
            rechecks.release_recheck(
                context.dynamodb,
                settings.ledger_table,
                key,
                owner=owner,
                now=context.clock(),
                error=reason,
                move_schedule=permanent,
                next_check_at=context.next_check(item.issued_date, listed_at) if permanent else None,
            )

        failures.settle(exc, message, release, context.source_failed, what="archived invoice re-check")
        return Outcome.FAILED
    metrics.add_metric(name=Metric.INVOICES_RECHECKED, unit="Count", value=1)
    if pending is not None:
        context.announcer().announce(key, pending)
    return outcome


def _documents_wanted(
    invoice: VerifiedInvoice, message: InvoiceMessage, item: InvoiceRecord, listed_at: datetime
) -> bool:
    """GetInvoicePDF is asked only when the API's summary differs from the archived one, a revisit is
    due, or someone asked for a re-check; what a message claims changes nothing by itself."""
    if message.reason == Reason.RECHECK:
        return True
    if item.summary_fingerprint != changes.fingerprint(invoice.summary):
        return True
    due = item.next_check_at
    return due is not None and due <= listed_at


def _known(archived: ArchivedDocuments) -> dict[Identity, ArchivedDocument]:
    """The archived documents the API described in full: not downloaded again."""
    known: dict[Identity, ArchivedDocument] = {}
    for record in [*archived.documents, *archived.no_longer_listed]:
        document = _document(record)
        if not document.omitted_by_api:
            named = layout.parse_document_name(document.key.rsplit("/", 1)[-1])
            primary = named is not None and named.primary
            known.setdefault((primary, document.document_type, document.document_id), document)
    return known


def _document(record: dict[str, Any]) -> ArchivedDocument:
    return ArchivedDocument(
        document_type=record.get("document_type"),
        document_id=record.get("document_id"),
        key=str(record["key"]),
        content_type=str(record.get("content_type", "")),
        size=int(record.get("size", 0)),
        sha256=str(record.get("sha256", "")),
        omitted_by_api=tuple(record.get("omitted_by_api") or ()),
        type_recognized=bool(record.get("type_recognized", True)),
    )


@dataclass(frozen=True)
class _Comparison:
    """The archive's record of an invoice against what the API lists now."""

    everything: list[dict[str, Any]]  # every document ever archived for it, the new ones last
    new: list[dict[str, Any]]
    gone: list[dict[str, Any]]  # archived documents the API no longer lists
    newly_gone: list[str]  # keys of those it stopped listing since the last check
    changed_fields: list[str]
    fingerprint: str

    @property
    def what(self) -> dict[str, Any]:
        return {
            "summary_changed": bool(self.changed_fields),
            "changed_fields": self.changed_fields,
            "new_documents": [r["key"] for r in self.new],
            "documents_no_longer_listed": self.newly_gone,
        }

    @property
    def changed(self) -> bool:
        return bool(self.changed_fields or self.new or self.newly_gone)


def _compare(
    context: FetchContext,
    invoice: VerifiedInvoice,
    item: InvoiceRecord,
    archived: ArchivedDocuments,
    listed: list[ArchivedDocument],
) -> _Comparison:
    before = [_plain_record(r) for r in archived.documents]
    archived_keys = {r["key"] for r in before}
    new: list[dict[str, Any]] = [d.to_record() for d in listed if d.key not in archived_keys]
    listed_keys = {d.key for d in listed}
    everything = before + new
    gone = [r for r in everything if r["key"] not in listed_keys]
    was_gone = {r["key"] for r in archived.no_longer_listed}
    fingerprint = changes.fingerprint(invoice.summary)
    changed_fields: list[str] = []
    if item.summary_fingerprint != fingerprint:
        previous = archive.get_json(context.s3, context.settings.archive_bucket, item.latest_summary)
        changed_fields = summaries.changed_fields(previous.get("invoice_summary", {}), invoice.summary)
    newly_gone = [r["key"] for r in gone if r["key"] not in was_gone]
    return _Comparison(everything, new, gone, newly_gone, changed_fields, fingerprint)


def _record(
    context: FetchContext,
    invoice: VerifiedInvoice,
    key: LedgerKey,
    owner: str,
    item: InvoiceRecord,
    archived: ArchivedDocuments,
    listed: list[ArchivedDocument],
    listed_at: datetime,
) -> tuple[Outcome, dict[str, str] | None]:
    """Write a revision if anything changed, then the ledger. Returns the outcome and the event."""
    comparison = _compare(context, invoice, item, archived, listed)
    revision, latest_key, pending, outcome = item.revision, item.latest_summary, None, Outcome.UNCHANGED
    now = context.clock()
    if comparison.changed:
        revision += 1
        latest_key, pending = _write_revision(
            context, invoice, comparison, revision, item.latest_summary, now
        )
        outcome = Outcome.REVISED
    else:
        logger.info("re-checked, unchanged")
    everything = comparison.everything
    rechecks.finish_recheck(
        context.dynamodb,
        context.settings.ledger_table,
        key,
        owner=owner,
        now=now,
        recheck=rechecks.Recheck(
            documents=everything,
            total_bytes=sum(int(r.get("size", 0)) for r in everything),
            fingerprint=comparison.fingerprint,
            next_check_at=context.next_check(invoice.summary.get("IssuedDate"), listed_at),
            revision=revision,
            latest_summary_key=latest_key,
            no_longer_listed=comparison.gone,
            pending_event=pending,
        ),
    )
    return outcome, pending


def _write_revision(
    context: FetchContext,
    invoice: VerifiedInvoice,
    comparison: _Comparison,
    revision: int,
    previous_key: str,
    now: datetime,
) -> tuple[str, dict[str, str]]:
    """The revision, create-only beside the invoice's earlier summaries; its key and the event to send."""
    bucket, what, everything = context.settings.archive_bucket, comparison.what, comparison.everything
    new_key = layout.revision_key(context.folder(invoice), now)
    document = summaries.summary_document(
        invoice,
        everything,
        now,
        revision=revision,
        previous_summary_key=previous_key,
        changes=what,
        documents_no_longer_listed=[r["key"] for r in comparison.gone],
    )
    summaries.put_summary(context.s3, bucket=bucket, key=new_key, document=document, invoice=invoice)
    pending = announcements.pending_event(
        DetailType.REVISED,
        announcements.event_detail(
            bucket, invoice, new_key, everything, revision=revision, at=now, changes=what
        ),
    )
    new, newly_gone = comparison.new, comparison.newly_gone
    metrics.add_metric(name=Metric.INVOICES_REVISED, unit="Count", value=1)
    metrics.add_metric(name=Metric.DOCUMENTS_ARCHIVED, unit="Count", value=len(new))
    metrics.add_metric(name=Metric.BYTES_ARCHIVED, unit="Bytes", value=sum(int(r["size"]) for r in new))
    if newly_gone:
        metrics.add_metric(name=Metric.DOCUMENTS_NO_LONGER_LISTED, unit="Count", value=len(newly_gone))
    logger.info("revision archived", extra={"revision": revision, "key": new_key, **what})
    return new_key, pending


def _plain_record(record: dict[str, Any]) -> dict[str, Any]:
    """A ledger record as JSON-safe values (DynamoDB numbers come back as Decimal)."""
    plain: dict[str, Any] = _document(record).to_record()
    return plain
