"""The fetcher's work for one message: check its source, claim the invoice, then archive it or re-check it.

0. The message is a pointer: its source (account and role) must be a configured or discovered one
   (logic.sourcing.KnownSources), else it is refused (SourceRefused) before anything else.
1. Claim the invoice in the ledger (one conditional write with a lease). A new, failed or retrying
   invoice is archived (logic.archiving). An ARCHIVED one is re-checked when the lister saw it change, a
   revisit is due or someone asked (logic.rechecking); an unsent event is sent; anything else is a
   duplicate delivery, skipped with no other call. A re-archive (Reason.REARCHIVE) takes an ARCHIVED
   invoice too, in the same conditional write.
"""

from __future__ import annotations

import uuid

from invoice_archiver.constants import Metric
from invoice_archiver.dal.ledger import invoices
from invoice_archiver.dal.ledger.records import InvoiceRecord, LedgerKey
from invoice_archiver.dal.ledger.states import Status
from invoice_archiver.logic import changes, rechecking
from invoice_archiver.logic.archiving import archive_new
from invoice_archiver.logic.failures import InvoiceBusy
from invoice_archiver.logic.fetch_context import FetchContext, Outcome
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.observability import logger, metrics, tracer


@tracer.capture_method(capture_response=False, capture_error=False)
def archive(context: FetchContext, message: InvoiceMessage, deadline: float | None = None) -> Outcome:
    """Archive or re-check the invoice the message points to. Raises SourceRefused for a source that is
    neither configured nor discovered (the handler quarantines the message), InvoiceBusy while another
    worker holds it, DocumentsIncomplete to be retried. `deadline`: the time.monotonic() by which
    downloads must end (the invocation's, less what a release takes)."""
    context.sources.check(message.source)
    key = LedgerKey(message.account_id, message.period, message.invoice_id)
    owner = uuid.uuid4().hex
    rearchive = context.listed_at(message) if message.reason == changes.Reason.REARCHIVE else None
    claim = invoices.claim(
        context.dynamodb,
        context.settings.ledger_table,
        key,
        owner=owner,
        now=context.clock(),
        lease_seconds=context.settings.lease_seconds,
        attributes={"source_role_arn": message.role_arn},
        reopen_archived_before=rearchive,
    )
    if claim.claimed:
        return archive_new(context, message, key, owner, deadline)
    if claim.status == Status.ARCHIVED and not (rearchive and claim.held(context.clock())):
        return _already_archived(context, message, key, claim.record, deadline)
    raise InvoiceBusy(f"invoice {message.invoice_id} is being archived by another worker")


def _already_archived(
    context: FetchContext,
    message: InvoiceMessage,
    key: LedgerKey,
    record: InvoiceRecord | None,
    deadline: float | None,
) -> Outcome:
    """A change the lister saw or a due revisit is re-checked; an unsent event is sent; else skipped."""
    hint = message.legacy_summary
    hinted = changes.fingerprint(hint) if hint is not None else None
    if record is None:  # removed since the claim saw it: the next delivery claims it afresh
        raise InvoiceBusy(f"invoice {message.invoice_id} changed while it was claimed")
    if changes.recheck_wanted(record, message.reason, context.listed_at(message), hinted):
        return rechecking.recheck(context, message, key, deadline)
    pending = record.pending_event
    if pending:
        context.announcer().announce(key, pending)
    metrics.add_metric(name=Metric.INVOICES_SKIPPED, unit="Count", value=1)
    logger.info("already archived, skipped")
    return Outcome.SKIPPED
