"""The finance manifest: one row per complete invoice, taken from its summary.json, and totals per currency.

Amounts are copied exactly as the API's decimal strings; totals are Decimal sums of those strings, so they
add up to the cent (credit memos are negative and subtract).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

SECTIONS = {"base": "BaseCurrencyAmount", "tax": "TaxCurrencyAmount", "payment": "PaymentCurrencyAmount"}
AMOUNTS = ("total", "total_before_tax", "subtotal", "taxes", "discounts", "fees")
IDENTITY = (
    "account_id",
    "invoice_id",
    "billing_period",
    "invoice_type",
    "original_invoice_id",
    "commercial_invoice_id",
    "billing_entity",
    "invoicing_entity",
    "receiver_role",
    "bill_type",
    "invoice_frequency",
    "issued_date",
    "due_date",
    "purchase_order_number",
)
COLUMNS = (
    "record",
    *IDENTITY,
    *(
        f"{section}_{name}"
        for section in SECTIONS
        for name in ("currency", *AMOUNTS, "exchange_source_currency", "exchange_rate")
    ),
    "einvoice_delivery_status",
    "tax_authority_status",
    "document_count",
    "document_keys",
    "summary_key",
)


def row(summary_key: str, document: dict[str, Any]) -> dict[str, str]:
    """One invoice's row from its summary.json (every value a string; absent values empty)."""
    summary: dict[str, Any] = document.get("invoice_summary", {})
    entity = summary.get("Entity") or {}
    values: dict[str, Any] = {
        "record": "invoice",
        "account_id": document.get("account_id"),
        "invoice_id": document.get("invoice_id"),
        "billing_period": document.get("billing_period"),
        "invoice_type": summary.get("InvoiceType"),
        "original_invoice_id": summary.get("OriginalInvoiceId"),
        "commercial_invoice_id": summary.get("CommercialInvoiceId"),
        "billing_entity": entity.get("BillingEntity"),
        "invoicing_entity": entity.get("InvoicingEntity"),
        "receiver_role": summary.get("ReceiverRole"),
        "bill_type": summary.get("BillType"),
        "invoice_frequency": summary.get("InvoiceFrequency"),
        "issued_date": summary.get("IssuedDate"),
        "due_date": summary.get("DueDate"),
        "purchase_order_number": summary.get("PurchaseOrderNumber"),
        "einvoice_delivery_status": summary.get("EinvoiceDeliveryStatus"),
        "tax_authority_status": summary.get("TaxAuthorityStatus"),
        "document_count": len(document.get("documents", [])),
        "document_keys": " ".join(str(d.get("key", "")) for d in document.get("documents", [])),
        "summary_key": summary_key,
    }
    for section, member in SECTIONS.items():
        values.update(_amounts(section, summary.get(member) or {}))
    return {column: "" if values.get(column) is None else str(values[column]) for column in COLUMNS}


def _amounts(section: str, amount: dict[str, Any]) -> dict[str, Any]:
    breakdown = amount.get("AmountBreakdown") or {}
    exchange = amount.get("CurrencyExchangeDetails") or {}
    return {
        f"{section}_currency": amount.get("CurrencyCode"),
        f"{section}_total": amount.get("TotalAmount"),
        f"{section}_total_before_tax": amount.get("TotalAmountBeforeTax"),
        f"{section}_subtotal": breakdown.get("SubTotalAmount"),
        f"{section}_taxes": (breakdown.get("Taxes") or {}).get("TotalAmount"),
        f"{section}_discounts": (breakdown.get("Discounts") or {}).get("TotalAmount"),
        f"{section}_fees": (breakdown.get("Fees") or {}).get("TotalAmount"),
        f"{section}_exchange_source_currency": exchange.get("SourceCurrencyCode"),
        f"{section}_exchange_rate": exchange.get("Rate"),
    }


@dataclass
class SectionTotal:
    invoices: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class Totals:
    """totals[currency][section]: how many invoices, and the Decimal sum of each amount."""

    by_currency: dict[str, dict[str, SectionTotal]] = field(default_factory=dict)

    def add(self, invoice: dict[str, str]) -> None:
        for section in SECTIONS:
            currency = invoice[f"{section}_currency"]
            if not currency:
                continue
            total = self.by_currency.setdefault(currency, {}).setdefault(section, SectionTotal())
            total.invoices += 1
            for name in AMOUNTS:
                text = invoice[f"{section}_{name}"]
                if text:
                    total.sums[name] = total.sums.get(name, Decimal(0)) + Decimal(text)

    def rows(self) -> list[dict[str, str]]:
        """One `total` row per currency: each section holds the sums of the invoices in that currency."""
        rows = []
        for currency, sections in sorted(self.by_currency.items()):
            values = dict.fromkeys(COLUMNS, "")
            values.update(record="total", billing_period="")
            for section, total in sections.items():
                values[f"{section}_currency"] = currency
                values.update({f"{section}_{name}": str(value) for name, value in total.sums.items()})
            rows.append(values)
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            currency: {
                section: {"invoices": total.invoices, **{name: str(v) for name, v in total.sums.items()}}
                for section, total in sections.items()
            }
            for currency, sections in sorted(self.by_currency.items())
        }
