"""Archive a new invoice, once the dispatcher (logic.fetch_invoice) has claimed it in the ledger.

1. Confirm it with the Invoicing API (logic.evidence): ListInvoiceSummaries for its id, through its
   source. That summary, never the message, is what the archive holds. Not listed: FAILED, nothing
   written to S3.
2. Fetch every document through the invoice's source and create it in S3, never overwriting
   (logic.documents).
3. Write summary.json last (its arrival means the invoice is complete), then mark ARCHIVED, with the
   summary's fingerprint and its next revisit, then announce it on EventBridge (at least once).

A failure gives the claim back as FAILED (permanent) or RETRYING (logic.failures.settle).
"""

from __future__ import annotations

from invoice_archiver.constants import DetailType, Metric
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.records import LedgerKey, Tracking
from invoice_archiver.dal.ledger.states import Event
from invoice_archiver.logic import announcements, changes, documents, failures
from invoice_archiver.logic.fetch_context import FetchContext, Outcome
from invoice_archiver.models.documents import ArchivedDocument
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.observability import logger, metrics


def archive_new(
    context: FetchContext, message: InvoiceMessage, key: LedgerKey, owner: str, deadline: float | None
) -> Outcome:
    """The claimed invoice, archived and announced; FAILED when it never can be (raises to retry)."""
    try:
        invoice = context.confirm(message)
        archived = documents.archive_documents(context, invoice, deadline=deadline)
        summary_key = documents.write_summary(context, invoice, archived)
    except Exception as exc:
        heals = failures.retryable(exc, message)  # a source failure: re-queued whatever its period

        def release(reason: str, permanent: bool) -> None:
            invoices.record_error(
                context.dynamodb,
                context.settings.ledger_table,
                key,
                owner=owner,
                now=context.clock(),
                event=Event.FAIL if permanent else Event.RETRY,
                error=reason,
                retryable=not permanent or heals,
            )

        failures.settle(exc, message, release, context.source_failed, what="invoice cannot be archived")
        return Outcome.FAILED
    _mark_archived(context, message, key, owner, invoice, archived, summary_key)
    return Outcome.ARCHIVED


def _mark_archived(
    context: FetchContext,
    message: InvoiceMessage,
    key: LedgerKey,
    owner: str,
    invoice: VerifiedInvoice,
    archived: list[ArchivedDocument],
    summary_key: str,
) -> None:
    """ARCHIVED in the ledger, with what the next runs compare and the event to send; then sent."""
    total = sum(d.size for d in archived)
    records = [d.to_record() for d in archived]
    now = context.clock()
    settings = context.settings
    pending = announcements.pending_event(
        DetailType.ARCHIVED,
        announcements.event_detail(
            settings.archive_bucket, invoice, summary_key, records, revision=0, at=now
        ),
    )
    summary = invoice.summary
    invoices.mark_archived(
        context.dynamodb,
        settings.ledger_table,
        key,
        owner=owner,
        now=now,
        documents=records,
        summary_key=summary_key,
        total_bytes=total,
        tracking=Tracking(
            fingerprint=changes.fingerprint(summary),
            issued_date=_text(summary.get("IssuedDate")),
            next_check_at=context.next_check(summary.get("IssuedDate"), context.listed_at(message)),
            pending_event=pending,
            invoice_type=_text(summary.get("InvoiceType")),
            receiver_role=_text(summary.get("ReceiverRole")),
        ),
    )
    metrics.add_metric(name=Metric.INVOICES_ARCHIVED, unit="Count", value=1)
    metrics.add_metric(name=Metric.DOCUMENTS_ARCHIVED, unit="Count", value=len(archived))
    metrics.add_metric(name=Metric.BYTES_ARCHIVED, unit="Bytes", value=total)
    logger.info("archived", extra={"documents": len(archived), "bytes": total})
    context.announcer().announce(key, pending)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
