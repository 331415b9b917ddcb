"""One sandbox invoice, and its form in a JSON scenario (docs/sandbox.md).

An `Invoice` holds the summary exactly as boto3 returns it from ListInvoiceSummaries (tz-aware UTC
datetimes, amounts as strings) plus the documents GetInvoicePDF hands out. The dataset (dataset.py) and
its changes over time (timeline.py) both read and write invoices in this form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from invoice_archiver.sandbox.documents import Document, MediaType

TIMESTAMP_FIELDS = ("IssuedDate", "DueDate")

Period = tuple[int, int]


@dataclass(frozen=True)
class Invoice:
    """One invoice: its API summary plus the documents the emulator serves for it."""

    summary: dict[str, Any]
    document: Document
    supplemental: tuple[Document, ...] = ()
    access_denied: bool = False

    @property
    def invoice_id(self) -> str:
        return str(self.summary["InvoiceId"])

    @property
    def account_id(self) -> str:
        return str(self.summary["AccountId"])

    @property
    def issued_date(self) -> datetime:
        value: datetime = self.summary["IssuedDate"]
        return value

    @property
    def billing_period(self) -> Period:
        period = self.summary["BillingPeriod"]
        return int(period["Year"]), int(period["Month"])

    @property
    def receiver_role(self) -> str | None:
        role = self.summary.get("ReceiverRole")
        return None if role is None else str(role)

    @property
    def invoicing_entity(self) -> str | None:
        entity = self.summary.get("Entity", {}).get("InvoicingEntity")
        return None if entity is None else str(entity)

    @property
    def documents(self) -> tuple[Document, ...]:
        return (self.document, *self.supplemental)


def invoice_to_json(inv: Invoice) -> dict[str, Any]:
    summary = dict(inv.summary)
    for key in TIMESTAMP_FIELDS:
        if key in summary:
            summary[key] = summary[key].isoformat()
    return {
        "summary": summary,
        "document": doc_to_json(inv.document),
        "supplemental_documents": [doc_to_json(d) for d in inv.supplemental],
        "access_denied": inv.access_denied,
    }


def doc_to_json(doc: Document) -> dict[str, Any]:
    return {
        "DocumentType": doc.document_type,
        "DocumentId": doc.document_id,
        "size": doc.size,
        "format": doc.media_type,
        **({"omit": list(doc.omitted)} if doc.omitted else {}),
    }


def invoice_from_json(item: dict[str, Any]) -> Invoice:
    summary = dict(item["summary"])
    invoice_id = str(summary["InvoiceId"])
    for key in TIMESTAMP_FIELDS:
        if key in summary:
            summary[key] = parse_time(summary[key])
    summary.setdefault("BillSourceAccounts", [summary["AccountId"]])
    summary.setdefault("BillSourceAccountsTotalCount", len(summary["BillSourceAccounts"]))
    main = item.get("document", {})
    document = Document(
        invoice_id, str(main.get("DocumentId", invoice_id)), "INVOICE", int(main.get("size", 8192))
    )
    listed = item.get("supplemental_documents", [])
    supplemental = tuple(supplemental_from_json(invoice_id, doc) for doc in listed)
    return Invoice(summary, document, supplemental, bool(item.get("access_denied", False)))


def supplemental_from_json(invoice_id: str, doc: dict[str, Any]) -> Document:
    """A supplemental document as a dataset or timeline file writes it."""
    return Document(
        invoice_id,
        str(doc["DocumentId"]),
        str(doc["DocumentType"]),
        int(doc.get("size", 8192)),
        media_type(doc.get("format")),
        omitted(doc.get("omit", [])),
    )


def omitted(value: Any) -> tuple[str, ...]:
    """Which of DocumentType and DocumentId GetInvoicePDF leaves out for this document."""
    names = tuple(value) if isinstance(value, list) else ()
    unknown = [name for name in names if name not in ("DocumentType", "DocumentId")]
    if unknown or not isinstance(value, list):
        raise ValueError(f"'omit' may list DocumentType and DocumentId only, not {value!r}")
    return names


def media_type(value: Any) -> MediaType:
    return "xml" if value == "xml" else "pdf"


def parse_time(value: Any) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_period(value: Any) -> Period:
    if isinstance(value, str):
        year, month = value.split("-")
        return int(year), int(month)
    year, month = value
    return int(year), int(month)
