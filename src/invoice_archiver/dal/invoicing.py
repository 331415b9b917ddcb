"""The AWS Invoicing API: paging through summaries and asking for fresh document URLs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoice_archiver.models.documents import INVOICE_DOCUMENT, DocumentRef, SecretUrl

if TYPE_CHECKING:
    from mypy_boto3_invoicing import InvoicingClient

PAGE_SIZE = 100
PERMANENT_ERRORS = frozenset({"ResourceNotFoundException", "AccessDeniedException", "ValidationException"})


class InvoiceUnavailable(Exception):
    """The API says this invoice cannot be fetched (not found, access denied): retrying will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def iter_summaries(client: InvoicingClient, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every invoice summary the query matches, page by page (MaxResults 100)."""
    paginator = client.get_paginator("list_invoice_summaries")
    for page in paginator.paginate(**request, PaginationConfig={"PageSize": PAGE_SIZE}):
        for summary in page.get("InvoiceSummaries", []):
            yield dict(summary)


def get_documents(client: InvoicingClient, invoice_id: str) -> list[DocumentRef]:
    """Fresh pre-signed URLs for the invoice document and every supplemental document."""
    try:
        pdf = client.get_invoice_pdf(InvoiceId=invoice_id)["InvoicePDF"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in PERMANENT_ERRORS:
            raise InvoiceUnavailable(code, str(error.get("Message", ""))) from None
        raise
    documents: list[DocumentRef] = []
    if pdf.get("DocumentUrl"):
        documents.append(
            DocumentRef(
                document_type=INVOICE_DOCUMENT,
                document_id=pdf.get("InvoiceId") or invoice_id,
                url=SecretUrl(pdf["DocumentUrl"]),
                expires_at=pdf.get("DocumentUrlExpirationDate"),
            )
        )
    for index, supplemental in enumerate(pdf.get("SupplementalDocuments", []), start=1):
        if not supplemental.get("DocumentUrl"):
            continue
        documents.append(
            DocumentRef(
                document_type=str(supplemental.get("DocumentType") or "SUPPLEMENT"),
                document_id=supplemental.get("DocumentId") or f"{index}",
                url=SecretUrl(supplemental["DocumentUrl"]),
                expires_at=supplemental.get("DocumentUrlExpirationDate"),
            )
        )
    return documents
