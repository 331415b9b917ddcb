"""The invoice's JSON documents in the archive: `summary.json` (first archive) and each revision.

Both are written create-only. A revision lives beside the documents, in
`<invoice folder>/revisions/<UTC timestamp>-summary.json`; the timestamp is fixed-width, so the keys
sort in time order and the last one under `revisions/` is the latest.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from invoice_archiver.dal import archive
from invoice_archiver.logic import layout
from invoice_archiver.models.invoice import VerifiedInvoice

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SUMMARY_SCHEMA_VERSION = 1


def summary_document(
    invoice: VerifiedInvoice, documents: list[dict[str, Any]], archived_at: datetime, **extra: Any
) -> dict[str, Any]:
    """What summary.json (and, with `revision` and its changes in `extra`, a revision) holds: the
    summary the Invoicing API confirmed in this invocation, never a message's."""
    return {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "account_id": invoice.account_id,
        "invoice_id": invoice.invoice_id,
        "billing_period": invoice.billing_period,
        "archived_at": archived_at.isoformat(),
        **extra,
        "documents": documents,
        "invoice_summary": invoice.summary,
    }


def put_summary(
    s3: S3Client, *, bucket: str, key: str, document: dict[str, Any], invoice: VerifiedInvoice
) -> None:
    """Create the JSON object (If-None-Match: *); raises archive.AlreadyExists if the key is taken."""
    archive.put_json_new(
        s3,
        bucket=bucket,
        key=key,
        document=document,
        metadata={
            "account-id": invoice.account_id,
            "invoice-id": layout.metadata_value(invoice.invoice_id)[:1024],
            "billing-period": invoice.billing_period,
            "document-count": str(len(document.get("documents", []))),
            "revision": str(document.get("revision", 0)),
        },
        tagging=layout.tagging_header(layout.object_tags(invoice.summary, "SUMMARY")),
    )


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Top-level summary members that differ (added, removed or changed), sorted."""
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
