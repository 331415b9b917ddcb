"""Why a delivery ends without archiving its invoice, and what is recorded about it.

* Permanent (`PERMANENT`): retrying cannot help until a person acts. The API does not list the invoice
  for its account and source (logic.evidence) or refuses it (not found, access denied), a document
  URL is unsafe, the archive holds different bytes, the summary breaks the layout's contract, or the
  invoice's source is unavailable (its role cannot be assumed, is not configured, or is denied). The
  invoice is recorded FAILED (a re-check keeps it ARCHIVED) and the next scheduled run enqueues it again
  while its period is listed. A source failure is `retryable`: the invoice stays unsettled and is
  re-queued whatever its period; the others are FAILED for good (`retryable` false in the ledger), shown
  by `status` with their reason.
* Anything else is retried by the next delivery of the message (`DocumentsIncomplete`).

A source failure is recorded against the source too (`dal.ledger.source_records`, stage "fetching") and
counted (metric SourcesFailed), with a reason that names the role: one broken role never blocks other sources.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from invoice_archiver.constants import Metric
from invoice_archiver.dal.download_errors import DocumentTooLarge, UnsafeUrl
from invoice_archiver.dal.invoicing import InvoiceUnavailable
from invoice_archiver.dal.ledger import source_records
from invoice_archiver.dal.sources import SourceUnavailable
from invoice_archiver.logic import layout
from invoice_archiver.logic.evidence import NotConfirmed
from invoice_archiver.logic.notices import redact
from invoice_archiver.models.messages import InvoiceMessage
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACCESS_DENIED = "AccessDeniedException"


class InvoiceBusy(Exception):
    """Another worker holds a live lease on this invoice; the message is retried later."""


class ArchiveConflict(Exception):
    """A key already holds different bytes: the archive is never overwritten, a person must look."""


class DocumentsIncomplete(Exception):
    """Downloads kept failing within this delivery's budget; the next delivery tries again."""


PERMANENT: tuple[type[Exception], ...] = (
    NotConfirmed,
    SourceUnavailable,
    InvoiceUnavailable,
    UnsafeUrl,
    DocumentTooLarge,
    ArchiveConflict,
    layout.ContractViolation,
)


def is_source_failure(error: Exception, message: InvoiceMessage) -> bool:
    """The invoice's source cannot be read: its role cannot be assumed (or is not configured), or the
    API denies it (ListInvoiceSummaries or GetInvoicePDF)."""
    if isinstance(error, SourceUnavailable):
        return True
    return (
        isinstance(error, InvoiceUnavailable) and error.code == ACCESS_DENIED and message.role_arn is not None
    )


def retryable(error: Exception, message: InvoiceMessage) -> bool:
    """A PERMANENT failure that heals without anyone touching the invoice: its source could not be read
    (a role or its trust fixed, the source's record cleared). Such a FAILED invoice stays unsettled and
    the lister re-queues it daily, whatever its period; every other one waits for a person."""
    return is_source_failure(error, message)


def describe(error: Exception, message: InvoiceMessage) -> str:
    """The reason recorded and logged (redacted: never a URL or a signature); a source failure names
    the role, e.g. `source unavailable: cannot assume arn:aws:iam::...: AccessDenied: ...`."""
    if isinstance(error, SourceUnavailable):
        text = f"source unavailable: {error}"
    elif is_source_failure(error, message):
        text = f"source unavailable: {message.role_arn} is denied by the Invoicing API: {error}"
    else:
        text = f"{type(error).__name__}: {error}"
    return redact(text)


def record_source_failure(
    dynamodb: DynamoDBClient, table: str, message: InvoiceMessage, *, reason: str, now: datetime
) -> None:
    """The source's FAILED record in the ledger, the SourcesFailed metric and an error log line."""
    source_records.record_failure(dynamodb, table, message.source, reason=reason, stage="fetching", now=now)
    metrics.add_metric(name=Metric.SOURCES_FAILED, unit="Count", value=1)
    logger.error("invoice source unavailable", extra={"role_arn": message.role_arn or "", "reason": reason})


def settle(
    error: Exception,
    message: InvoiceMessage,
    release: Callable[[str, bool], None],
    source_failed: Callable[[InvoiceMessage, str], None],
    *,
    what: str,
) -> None:
    """How every delivery that fails ends, archiving or re-checking alike: `release(reason, permanent)`
    gives the invoice back in the ledger; a permanent failure is counted (InvoicesFailed), logged and, for
    an unreadable source, recorded against the source, and returns; any other is counted
    (InvoicesRetried) and raises DocumentsIncomplete, so SQS delivers the message again."""
    permanent = isinstance(error, PERMANENT)
    reason = describe(error, message)
    release(reason, permanent)
    if permanent:
        metrics.add_metric(name=Metric.INVOICES_FAILED, unit="Count", value=1)
        logger.error(f"{what}: permanent failure", extra={"reason": reason})
        if is_source_failure(error, message):
            source_failed(message, reason)
        return
    metrics.add_metric(name=Metric.INVOICES_RETRIED, unit="Count", value=1)
    logger.warning(f"{what}: will be retried", extra={"reason": reason})
    raise DocumentsIncomplete(reason) from None
