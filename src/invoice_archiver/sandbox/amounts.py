"""An invoice's amounts in the sandbox: a USD total turned into the currency's subtotal, discounts, taxes,
fees and exchange rate, rounded as the currency rounds, every amount a decimal string as the API sends."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

# Currency -> (decimal places, USD exchange rate, tax rate, tax description).
CURRENCIES: dict[str, tuple[int, str, str, str]] = {
    "USD": (2, "1", "0.0825", "US Sales Tax"),
    "EUR": (2, "0.9213", "0.17", "VAT"),
    "GBP": (2, "0.7871", "0.20", "VAT"),
    "JPY": (0, "151.42", "0.10", "Japanese Consumption Tax"),
    "INR": (2, "83.37", "0.18", "IGST"),
    "BRL": (2, "5.0612", "0.0925", "PIS/COFINS"),
}


def amounts(usd: Decimal, currency: str, discount: bool, fee: bool) -> dict[str, Any]:
    """An InvoiceCurrencyAmount whose parts add up: SubTotal - discounts + fees (+ taxes = total)."""
    places, rate, tax_rate, tax_name = CURRENCIES[currency]
    quantum = Decimal(1).scaleb(-places)

    def q(value: Decimal) -> Decimal:
        return value.quantize(quantum, rounding=ROUND_HALF_EVEN)

    subtotal = q(usd * Decimal(rate))
    discounts = [("Savings Plans discount", "0.05", q(subtotal * Decimal("0.05")))] if discount else []
    fees = [("Payment processing fee", "0.01", q(subtotal * Decimal("0.01")))] if fee else []
    before_tax = subtotal - sum((d[2] for d in discounts), Decimal(0)) + sum((f[2] for f in fees), Decimal(0))
    taxes = [(tax_name, tax_rate, q(before_tax * Decimal(tax_rate)))]
    total = before_tax + sum((t[2] for t in taxes), Decimal(0))

    def breakdown(items: list[tuple[str, str, Decimal]]) -> dict[str, Any]:
        return {
            "Breakdown": [{"Description": d, "Amount": str(a), "Rate": r} for d, r, a in items],
            "TotalAmount": str(q(sum((a for _, _, a in items), Decimal(0)))),
        }

    return {
        "TotalAmount": str(q(total)),
        "TotalAmountBeforeTax": str(q(before_tax)),
        "CurrencyCode": currency,
        "AmountBreakdown": {
            "SubTotalAmount": str(subtotal),
            "Discounts": breakdown(discounts),
            "Taxes": breakdown(taxes),
            "Fees": breakdown(fees),
        },
        "CurrencyExchangeDetails": {
            "SourceCurrencyCode": "USD",
            "TargetCurrencyCode": currency,
            "Rate": rate,
        },
    }
