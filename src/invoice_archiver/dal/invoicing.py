"""The AWS Invoicing API: paging through summaries and asking for fresh document URLs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from invoice_archiver.constants import Metric
from invoice_archiver.dal import wire
from invoice_archiver.dal.sdk import Needs
from invoice_archiver.models.documents import INVOICE_DOCUMENT, DocumentRef, SecretUrl
from invoice_archiver.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_invoicing import InvoicingClient

PAGE_SIZE = 100
# Where a summary keeps, raw and by dotted path, the members the loaded SDK does not model.
UNMODELED_KEY = "_unmodeled"

# Every member of a summary (API update of 2026-05-07): the whole summary goes into the archive.
_AMOUNT = (
    "TotalAmount",
    "TotalAmountBeforeTax",
    "CurrencyCode",
    "AmountBreakdown.SubTotalAmount",
    *(
        f"AmountBreakdown.{part}.{member}"
        for part in ("Discounts", "Taxes", "Fees")
        for member in ("TotalAmount", "Breakdown.Description", "Breakdown.Amount", "Breakdown.Rate")
    ),
    "CurrencyExchangeDetails.SourceCurrencyCode",
    "CurrencyExchangeDetails.TargetCurrencyCode",
    "CurrencyExchangeDetails.Rate",
)
SUMMARY_MEMBERS = (
    "AccountId",
    "InvoiceId",
    "IssuedDate",
    "DueDate",
    "BillSourceAccounts",
    "BillSourceAccountsTotalCount",
    "ReceiverRole",
    "Entity.InvoicingEntity",
    "Entity.BillingEntity",
    "BillingPeriod.Month",
    "BillingPeriod.Year",
    "InvoiceFrequency",
    "BillType",
    "InvoiceType",
    "CommercialInvoiceId",
    "OriginalInvoiceId",
    "PurchaseOrderNumber",
    "EinvoiceDeliveryStatus",
    "TaxAuthorityStatus",
    *(f"{kind}CurrencyAmount.{member}" for kind in ("Base", "Tax", "Payment") for member in _AMOUNT),
)
LISTING = Needs(
    "invoicing",
    "ListInvoiceSummaries",
    request=(
        "Selector.ResourceType",
        "Selector.Value",
        "Filter.BillingPeriod.Month",
        "Filter.BillingPeriod.Year",
        "Filter.TimeInterval.StartDate",
        "Filter.TimeInterval.EndDate",
        "Filter.ReceiverRole",
        "MaxResults",
        "NextToken",
    ),
    response=("NextToken", *(f"InvoiceSummaries.{member}" for member in SUMMARY_MEMBERS)),
)
DOCUMENTS = Needs(
    "invoicing",
    "GetInvoicePDF",
    request=("InvoiceId",),
    response=(
        "InvoicePDF.InvoiceId",
        "InvoicePDF.DocumentUrl",
        "InvoicePDF.DocumentUrlExpirationDate",
        "InvoicePDF.SupplementalDocuments.DocumentType",
        "InvoicePDF.SupplementalDocuments.DocumentId",
        "InvoicePDF.SupplementalDocuments.DocumentUrl",
        "InvoicePDF.SupplementalDocuments.DocumentUrlExpirationDate",
    ),
)
UNITS = Needs(
    "invoicing",
    "ListInvoiceUnits",
    request=("MaxResults", "NextToken"),
    response=("NextToken", "InvoiceUnits.InvoiceReceiver", "InvoiceUnits.Name"),
)
# The fetcher's re-read: one invoice by id, no filter (the summary it archives comes from here).
CONFIRMING = Needs(
    "invoicing",
    "ListInvoiceSummaries",
    request=("Selector.ResourceType", "Selector.Value", "MaxResults", "NextToken"),
    response=LISTING.response,
)
PERMANENT_ERRORS = frozenset({"ResourceNotFoundException", "AccessDeniedException", "ValidationException"})


class InvoiceUnavailable(Exception):
    """The API says this invoice cannot be fetched (not found, access denied): retrying will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def iter_summaries(client: InvoicingClient, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every invoice summary the query matches, page by page (see `iter_pages`)."""
    for summaries, _ in iter_pages(client, request):
        yield from summaries


def iter_pages(
    client: InvoicingClient, request: dict[str, Any], next_token: str | None = None
) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """Each page of summaries the query matches (MaxResults 100), with the NextToken that continues
    after it (None after the last page); `next_token` resumes a query where an earlier page left off.

    A member the API sent that the loaded SDK does not model (one AWS added after this botocore) is not
    dropped: the summary keeps its raw JSON under UNMODELED_KEY, by dotted path, and it is logged and
    counted (metric UnmodeledFields).
    """
    wire.keep_raw_bodies(client, "before-parse.invoicing.ListInvoiceSummaries")
    params = {**request, "MaxResults": PAGE_SIZE}
    if next_token:
        params["NextToken"] = next_token
    while True:
        page = client.list_invoice_summaries(**params)
        raw = wire.last_raw_json().get("InvoiceSummaries") or []
        summaries = [
            _with_unmodeled(dict(parsed), raw[index] if index < len(raw) else None)
            for index, parsed in enumerate(page.get("InvoiceSummaries", []))
        ]
        token = page.get("NextToken") or None
        yield summaries, token
        if token is None:
            return
        params["NextToken"] = token


def summaries_of_invoice(client: InvoicingClient, invoice_id: str) -> list[dict[str, Any]]:
    """Every summary ListInvoiceSummaries returns for this invoice id (Selector INVOICE_ID), as the API
    sent it (unmodeled members kept, see `iter_pages`). A refusal the caller cannot fix by retrying
    (not found, access denied, a rejected id) raises InvoiceUnavailable; throttling and server errors
    propagate after the SDK's retries."""
    request = {"Selector": {"ResourceType": "INVOICE_ID", "Value": invoice_id}}
    with _unavailable_when_refused():
        return list(iter_summaries(client, request))


def _with_unmodeled(summary: dict[str, Any], raw: dict[str, Any] | None) -> dict[str, Any]:
    extra = wire.unmodeled(raw, summary) if raw is not None else {}
    if extra:
        summary[UNMODELED_KEY] = extra
        logger.warning(
            "the API sent summary members this SDK does not model; kept raw",
            extra={"invoice_id": summary.get("InvoiceId"), "members": sorted(extra)},
        )
        metrics.add_metric(name=Metric.UNMODELED_FIELDS, unit="Count", value=len(extra))
    return summary


def invoice_unit_receivers(client: InvoicingClient) -> list[str]:
    """The receiver account of every invoice unit the caller manages (ListInvoiceUnits, all pages)."""
    receivers: list[str] = []
    params: dict[str, Any] = {"MaxResults": 500}
    while True:
        page = client.list_invoice_units(**params)
        receivers += [
            unit["InvoiceReceiver"] for unit in page.get("InvoiceUnits", []) if "InvoiceReceiver" in unit
        ]
        token = page.get("NextToken")
        if not token:
            return list(dict.fromkeys(receivers))
        params["NextToken"] = token


def get_documents(client: InvoicingClient, invoice_id: str) -> list[DocumentRef]:
    """Fresh pre-signed URLs for the invoice document and every supplemental document."""
    with _unavailable_when_refused():
        pdf = client.get_invoice_pdf(InvoiceId=invoice_id)["InvoicePDF"]
    documents: list[DocumentRef] = []
    if pdf.get("DocumentUrl"):
        documents.append(
            DocumentRef(
                document_type=INVOICE_DOCUMENT,
                document_id=pdf.get("InvoiceId") or invoice_id,
                url=SecretUrl(pdf["DocumentUrl"]),
                expires_at=pdf.get("DocumentUrlExpirationDate"),
                primary=True,
            )
        )
    for supplemental in pdf.get("SupplementalDocuments", []):
        if not supplemental.get("DocumentUrl"):
            continue
        documents.append(
            DocumentRef(
                # Exactly what the API sent: a missing type or id stays missing (see layout.document_key).
                document_type=supplemental.get("DocumentType") or None,
                document_id=supplemental.get("DocumentId") or None,
                url=SecretUrl(supplemental["DocumentUrl"]),
                expires_at=supplemental.get("DocumentUrlExpirationDate"),
            )
        )
    return documents


@contextmanager
def _unavailable_when_refused() -> Iterator[None]:
    """A refusal no retry can fix (PERMANENT_ERRORS) becomes InvoiceUnavailable; anything else propagates."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in PERMANENT_ERRORS:
            raise InvoiceUnavailable(code, str(error.get("Message", ""))) from None
        raise
