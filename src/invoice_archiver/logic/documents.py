"""An invoice's documents into the archive: GetInvoicePDF through the invoice's source, then each
document downloaded to a spool file (hashed, length checked) and created in S3, never overwritten.

* Every attempt asks GetInvoicePDF for fresh URLs, with the Invoicing client of the invoice's source
  (`FetchContext.invoicing_for(invoice.source)`: the function's own credentials, or the payer role's);
  an expired URL or a broken download gets fresh URLs and another bounded attempt, with a short backoff.
* Each object is created with IfNoneMatch: * . A key that already holds the same bytes (a crashed
  earlier attempt) is accepted; different bytes are an `ArchiveConflict`, never replaced.
* summary.json is written last by the caller (`write_summary`): its arrival means the invoice is complete.

Everything written (keys, tags, metadata, summary.json) comes from the `VerifiedInvoice` the API
confirmed in this invocation (logic.evidence), never from the message.
"""

from __future__ import annotations

import random
import time
from typing import Any

from invoice_archiver.dal import archive, downloads, url_safety
from invoice_archiver.dal import invoicing as invoicing_api
from invoice_archiver.dal.download_errors import DownloadFailed
from invoice_archiver.logic import layout, summaries
from invoice_archiver.logic.failures import ArchiveConflict, DocumentsIncomplete
from invoice_archiver.logic.fetch_context import FetchContext
from invoice_archiver.logic.notices import redact, report_undescribed
from invoice_archiver.models.documents import ArchivedDocument, DocumentRef
from invoice_archiver.models.invoice import VerifiedInvoice
from invoice_archiver.observability import logger, tracer

# A document the API described in full: (is it the invoice document, its type, its id).
Identity = tuple[bool, str | None, str | None]
# Backoff between download attempts: a few seconds at most, so a delivery stays far inside its timeout.
MAX_BACKOFF_SECONDS = 5.0


@tracer.capture_method(capture_response=False, capture_error=False)
def archive_documents(
    context: FetchContext,
    invoice: VerifiedInvoice,
    known: dict[Identity, ArchivedDocument] | None = None,
    deadline: float | None = None,
) -> list[ArchivedDocument]:
    """Every document of the invoice, in S3 and verified; fresh URLs for every attempt.

    `known`: documents the API described in full that are archived already (a re-check); they are
    not downloaded again. `deadline` (time.monotonic()): every download must end by then; no attempt
    starts after it. Raises `SourceUnavailable` if the source's role cannot be assumed.
    """
    settings = context.settings
    # Documents the API described in full, archived by an earlier attempt of this delivery. One
    # it did not describe has no identity until it is downloaded: it is simply archived again
    # (same bytes, same key, accepted as already there).
    done: dict[Identity, ArchivedDocument] = dict(known or {})
    last_error = "no attempt made"
    attempts = 0
    for attempt in range(settings.download_attempts):
        if attempt:
            context.sleep(min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt) * random.uniform(0.5, 1.0))
        if deadline is not None and time.monotonic() >= deadline:
            last_error = f"no time left in this invocation; {last_error}"
            break
        attempts += 1
        client = context.invoicing_for(invoice.source)
        refs = invoicing_api.get_documents(client, invoice.invoice_id)
        if not refs:
            last_error = "GetInvoicePDF returned no document URL"
            continue
        try:
            archived = [_document_once(context, invoice, ref, done, deadline) for ref in refs]
        except DownloadFailed as exc:
            last_error = str(exc)
            logger.warning(
                "download failed, fetching fresh URLs",
                extra={"attempt": attempt + 1, "reason": redact(last_error), "expired": exc.expired},
            )
            continue
        report_undescribed(archived)
        return archived
    raise DocumentsIncomplete(f"documents incomplete after {attempts} attempts: {last_error}")


def write_summary(context: FetchContext, invoice: VerifiedInvoice, documents: list[ArchivedDocument]) -> str:
    """summary.json, create-only; one already there listing fewer of these documents is accepted."""
    bucket = context.settings.archive_bucket
    key = layout.summary_key(context.folder(invoice))
    listed = [d.to_record() for d in documents]
    document = summaries.summary_document(invoice, listed, context.clock())
    try:
        summaries.put_summary(context.s3, bucket=bucket, key=key, document=document, invoice=invoice)
    except archive.AlreadyExists:
        existing = archive.get_json(context.s3, bucket, key)
        # Fewer documents than now is an invoice re-archived after documents came late (revisions
        # list those); anything else it lists that is not here now is a conflict.
        if not _fingerprint(existing.get("documents", [])) <= _fingerprint(listed):
            raise ArchiveConflict(f"{key} already lists different documents") from None
    return key


def _document_once(
    context: FetchContext,
    invoice: VerifiedInvoice,
    ref: DocumentRef,
    done: dict[Identity, ArchivedDocument],
    deadline: float | None,
) -> ArchivedDocument:
    identity = None if ref.omitted_by_api else (ref.primary, ref.document_type, ref.document_id)
    if identity in done:
        return done[identity]
    document = _archive_document(context, invoice, ref, deadline)
    if identity is not None:
        done[identity] = document
    return document


def _archive_document(
    context: FetchContext, invoice: VerifiedInvoice, ref: DocumentRef, deadline: float | None
) -> ArchivedDocument:
    settings = context.settings
    endpoint = url_safety.check_url(
        ref.url, settings.document_host_suffixes, settings.allow_loopback_document_urls
    )
    spooled = downloads.download(
        ref.url,
        endpoint,
        address=url_safety.resolve_public(endpoint),
        max_bytes=settings.max_document_bytes,
        deadline=deadline,
        spool_dir=settings.spool_directory or None,
    )
    try:
        key = layout.document_key(
            context.folder(invoice),
            ref.document_type,
            ref.document_id,
            downloads.extension_for(spooled.content_type),
            spooled.sha256,
            primary=ref.primary,
        )
        summary = invoice.summary
        try:
            archive.put_new(
                context.s3,
                bucket=settings.archive_bucket,
                key=key,
                body=spooled.file,
                size=spooled.size,
                sha256=spooled.sha256,
                content_type=spooled.content_type,
                metadata=layout.object_metadata(
                    summary, ref.document_type, ref.document_id, spooled.size, spooled.sha256
                ),
                tagging=layout.tagging_header(layout.object_tags(summary, ref.document_type)),
                multipart_threshold=settings.multipart_threshold_bytes,
                sleep=context.sleep,
            )
        except archive.AlreadyExists:
            _accept_existing(context, key, spooled.sha256, spooled.size)
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


def _accept_existing(context: FetchContext, key: str, sha256: str, size: int) -> None:
    """A key we were about to create exists: fine if it holds these very bytes, else a conflict."""
    existing = archive.head(context.s3, context.settings.archive_bucket, key) or {}
    stored = existing.get("Metadata", {}).get("sha256")
    if stored != sha256 or existing.get("ContentLength") != size:
        raise ArchiveConflict(f"{key} already holds different content; it is never overwritten")
    logger.info("document was archived by an earlier attempt", extra={"key": key})


def _fingerprint(documents: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(str(d.get("key")), str(d.get("sha256"))) for d in documents}
