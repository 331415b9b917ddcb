"""The cost data AWS would export for a sandbox dataset: CUR 2.0 and FOCUS 1.2 lines of each invoice.

Each invoice's amount before tax (its BaseCurrencyAmount, the currency Data Exports reports in) is split
into usage lines by service and account, unrounded as CUR's are (up to 8 decimals), that add up to it
exactly in Decimal; a discount line when the invoice has one, a credit on some invoices, a support fee
that arrived late on others, and one tax line of the invoice's taxes. A credit memo's lines are refunds.
Each payer also has lines that never get an invoice id (free-tier usage, a rounding line).

Discrepancies, injected on request (`Discrepancies`), per billing period:
  missing_invoice  an invoice the export bills and the Invoicing API never lists (so never archived)
  amount_off       the first invoice's usage is AMOUNT_OFF more than the invoice states
  credit_memo      the first credit memo's refunds are CREDIT_OFF more than the credit memo states
  not_final        no line carries an invoice id yet (the export before the month is final)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from invoice_archiver.sandbox.dataset import Dataset
from invoice_archiver.sandbox.invoice import Invoice

AMOUNT_OFF = Decimal("1.00")
CREDIT_OFF = Decimal("-2.50")
QUANTUM = Decimal("0.00000001")
# (product code, usage type, description): data transfer is folded into the service, as CUR does.
SERVICES = (
    ("AmazonEC2", "BoxUsage:m7g.large", "EC2 instance hours"),
    ("AmazonEC2", "DataTransfer-Out-Bytes", "EC2 data transfer out to the internet"),
    ("AmazonS3", "TimedStorage-ByteHrs", "S3 standard storage"),
    ("AmazonS3", "DataTransfer-Regional-Bytes", "S3 regional data transfer"),
    ("AmazonRDS", "InstanceUsage:db.r7g.large", "RDS instance hours"),
    ("AWSLambda", "Request", "Lambda requests"),
    ("AmazonCloudWatch", "MetricMonitorUsage", "CloudWatch metrics"),
)
SUPPORT = ("AWSSupportBusiness", "Dollar", "AWS Support (Business), billed after the month closed")
BILL_TYPES = {"ANNIVERSARY": "Anniversary", "PURCHASE": "Purchase", "REFUND": "Refund"}
BILLING_ENTITIES = {"AWS": "AWS", "AWS_MARKETPLACE": "AWS Marketplace"}


@dataclass(frozen=True)
class Discrepancies:
    missing_invoice: bool = False
    amount_off: bool = False
    credit_memo: bool = False
    not_final: bool = False

    @classmethod
    def of(cls, names: list[str]) -> Discrepancies:
        return cls(**{name.replace("-", "_"): True for name in names})


@dataclass
class Injected:
    """What each period's export has that the dataset does not (tests and the sandbox print these)."""

    missing_invoice: dict[str, str] = field(default_factory=dict)  # period -> invoice id
    amount_off: dict[str, str] = field(default_factory=dict)  # period -> invoice id
    credit_memo: dict[str, str] = field(default_factory=dict)  # period -> credit memo id
    not_final: list[str] = field(default_factory=list)  # periods


@dataclass(frozen=True)
class Line:
    """One line, in CUR 2.0's terms (sandbox.cost_files writes it as either format)."""

    invoice_id: str
    payer: str
    period: tuple[int, int]
    invoicing_entity: str
    billing_entity: str
    bill_type: str
    line_type: str
    cost: Decimal
    usage_account: str
    product: str
    usage_type: str
    description: str

    @property
    def period_start(self) -> datetime:
        return datetime(self.period[0], self.period[1], 1, tzinfo=UTC)


def lines(
    dataset: Dataset,
    period: tuple[int, int],
    discrepancies: Discrepancies,
    injected: Injected,
    *,
    seed: int = 0,
    lines_per_invoice: tuple[int, int] = (3, 8),
) -> Iterator[Line]:
    """Every line of one billing period's export, in a deterministic order, one at a time (a million-line
    export is written in chunks); `injected` is complete once every line has been taken."""
    rng = random.Random(f"{seed}-{period}")
    key = f"{period[0]:04d}-{period[1]:02d}"
    invoices = sorted((i for i in dataset.invoices if i.billing_period == period), key=_order)
    off = _first(invoices, "INVOICE") if discrepancies.amount_off else None
    credit = _first(invoices, "CREDIT_MEMO") if discrepancies.credit_memo else None
    if off is not None:
        injected.amount_off[key] = off.invoice_id
    if credit is not None:
        injected.credit_memo[key] = credit.invoice_id
    if discrepancies.not_final:
        injected.not_final.append(key)
    blank = discrepancies.not_final  # before the month is final, no line carries an invoice id

    def emit(found: list[Line]) -> Iterator[Line]:
        yield from (replace(line, invoice_id="") for line in found) if blank else found

    for invoice in invoices:
        extra = AMOUNT_OFF if invoice is off else CREDIT_OFF if invoice is credit else Decimal(0)
        yield from emit(_invoice_lines(rng, invoice, extra, lines_per_invoice))
    if discrepancies.missing_invoice and invoices:
        phantom = _phantom(invoices[0], rng, {i.invoice_id for i in dataset.invoices})
        injected.missing_invoice[key] = phantom.invoice_id
        yield from emit(_invoice_lines(rng, phantom, Decimal(0), lines_per_invoice))
    for payer in sorted({i.account_id for i in invoices}):
        yield from emit(_uninvoiced(payer, period, invoices))


def _order(invoice: Invoice) -> tuple[str, str]:
    return invoice.account_id, invoice.invoice_id


def _first(invoices: list[Invoice], kind: str) -> Invoice | None:
    return next((i for i in invoices if i.summary.get("InvoiceType") == kind), None)


def _phantom(model: Invoice, rng: random.Random, taken: set[str]) -> Invoice:
    """An invoice the export bills that the Invoicing API does not list."""
    while (invoice_id := f"9{rng.randrange(10**9):09d}") in taken:
        pass
    summary = {
        **model.summary,
        "InvoiceId": invoice_id,
        "InvoiceType": "INVOICE",
        "BillType": "ANNIVERSARY",
        "BaseCurrencyAmount": {
            "TotalAmount": "133.64",
            "TotalAmountBeforeTax": "123.45",
            "CurrencyCode": "USD",
            "AmountBreakdown": {"Taxes": {"TotalAmount": "10.19"}},
        },
    }
    summary.pop("OriginalInvoiceId", None)
    return Invoice(summary, model.document)


def _invoice_lines(
    rng: random.Random, invoice: Invoice, extra: Decimal, per_invoice: tuple[int, int]
) -> list[Line]:
    summary = invoice.summary
    base = summary["BaseCurrencyAmount"]
    breakdown = base.get("AmountBreakdown") or {}
    pre_tax = Decimal(str(base["TotalAmountBeforeTax"]))
    tax = Decimal(str((breakdown.get("Taxes") or {}).get("TotalAmount", "0")))
    discount = Decimal(str((breakdown.get("Discounts") or {}).get("TotalAmount", "0") or "0"))
    entity = summary.get("Entity") or {}
    bill_type = BILL_TYPES.get(str(summary.get("BillType", "")), "Anniversary")
    refund = summary.get("InvoiceType") == "CREDIT_MEMO"

    def line(line_type: str, cost: Decimal, account: str, service: tuple[str, str, str]) -> Line:
        return Line(
            invoice.invoice_id,
            invoice.account_id,
            invoice.billing_period,
            str(entity.get("InvoicingEntity", "")),
            BILLING_ENTITIES.get(str(entity.get("BillingEntity", "")), "AWS"),
            bill_type,
            line_type,
            cost,
            account,
            *service,
        )

    accounts = _member_accounts(invoice.account_id)
    fixed: list[Line] = []
    if discount and not refund:
        fixed.append(line("Discount", -discount, invoice.account_id, ("AmazonEC2", "Discount", "Discount")))
    if not refund and pre_tax > 100 and rng.random() < 0.3:
        credit = -min(Decimal("5.00"), (pre_tax / 100).quantize(Decimal("0.01")))
        fixed.append(
            line("Credit", credit, invoice.account_id, ("AmazonEC2", "Credit", "Promotional credit"))
        )
    if not refund and pre_tax > 100 and rng.random() < 0.3:
        fee = (pre_tax * Decimal("0.03")).quantize(Decimal("0.01"))
        fixed.append(line("Fee", fee, invoice.account_id, SUPPORT))
    rest = pre_tax + extra - sum((item.cost for item in fixed), Decimal(0))
    parts = _split(rng, rest, rng.randint(*per_invoice))
    usage = [
        line("Refund" if refund else "Usage", part, rng.choice(accounts), rng.choice(SERVICES))
        for part in parts
    ]
    taxes = [line("Tax", tax, invoice.account_id, ("AWSTax", "Tax", "Tax"))] if tax else []
    return usage + fixed + taxes


def _split(rng: random.Random, amount: Decimal, count: int) -> list[Decimal]:
    """`count` unrounded parts (8 decimals) that add up to `amount` exactly."""
    weights = [rng.random() + 0.05 for _ in range(count)]
    total = sum(weights)
    parts = [(amount * Decimal(w / total)).quantize(QUANTUM) for w in weights[:-1]]
    return [*parts, amount - sum(parts, Decimal(0))]


def _member_accounts(payer: str) -> list[str]:
    """The payer and two member accounts of its organization (deterministic, 12 digits)."""
    number = int(payer)
    return [payer, *(f"{(number + step * 7919) % 10**12:012d}" for step in (1, 2))]


def _uninvoiced(payer: str, period: tuple[int, int], invoices: list[Invoice]) -> list[Line]:
    """Charges that never get an invoice: free-tier usage (no cost) and a sub-cent rounding line."""
    entity = next(
        (
            str((i.summary.get("Entity") or {}).get("InvoicingEntity", ""))
            for i in invoices
            if i.account_id == payer
        ),
        "",
    )
    common: dict[str, Any] = {
        "invoice_id": "",
        "payer": payer,
        "period": period,
        "invoicing_entity": entity,
        "billing_entity": "AWS",
        "bill_type": "Anniversary",
        "line_type": "Usage",
        "usage_account": payer,
    }
    return [
        Line(**common, cost=Decimal(0), product="AWSLambda", usage_type="Request", description="Free tier"),
        Line(
            **common,
            cost=Decimal("0.00000034"),
            product="AmazonS3",
            usage_type="Requests-Tier2",
            description="Usage below the smallest billable amount",
        ),
    ]
