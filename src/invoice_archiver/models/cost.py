"""The cost data's side of a reconciliation: the two export formats, and their lines summed per invoice.

A Data Exports line becomes one of the CANONICAL columns below, whatever the format, so the grouping and
the comparison never look at a format's own column names. Amounts are Decimal, never float.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Context, Decimal, InvalidOperation, Overflow
from enum import StrEnum

# Every sum of money here is exact: 100 digits, and an operation that would round raises instead.
EXACT = Context(prec=100, traps=[InvalidOperation, Overflow])


def plain(amount: Decimal) -> str:
    """An amount as a person writes it: 0.00000034, never 3.4E-7."""
    return format(amount, "f")


class ExportFormat(StrEnum):
    CUR2 = "cur2"
    FOCUS = "focus"

    @property
    def label(self) -> str:
        return "CUR 2.0" if self is ExportFormat.CUR2 else "FOCUS 1.2"


# Canonical column -> (CUR 2.0 column, FOCUS 1.2 column); None: the format has no such column.
CANONICAL: dict[str, tuple[str | None, str | None]] = {
    "invoice_id": ("bill_invoice_id", "InvoiceId"),
    "payer_account": ("bill_payer_account_id", "BillingAccountId"),
    "period_start": ("bill_billing_period_start_date", "BillingPeriodStart"),
    "invoicing_entity": ("bill_invoicing_entity", "InvoiceIssuerName"),
    "billing_entity": ("bill_billing_entity", None),
    "bill_type": ("bill_bill_type", None),
    "charge_type": ("line_item_line_item_type", "ChargeCategory"),
    "cost": ("line_item_unblended_cost", "BilledCost"),
    "currency": ("line_item_currency_code", "BillingCurrency"),
    "usage_account": ("line_item_usage_account_id", "SubAccountId"),
}
# The columns a file must have to be read as the format (the others are optional).
REQUIRED = ("invoice_id", "payer_account", "period_start", "charge_type", "cost", "currency")
# Lines of this charge type are the invoice's tax (CUR line_item_line_item_type, FOCUS ChargeCategory).
TAX = "Tax"


def source_columns(form: ExportFormat) -> dict[str, str]:
    """canonical name -> the format's column name, for the columns the format has."""
    index = 0 if form is ExportFormat.CUR2 else 1
    return {name: pair[index] for name, pair in CANONICAL.items() if pair[index] is not None}  # type: ignore[misc]


def required_columns(form: ExportFormat) -> list[str]:
    columns = source_columns(form)
    return [columns[name] for name in REQUIRED]


@dataclass(frozen=True)
class GroupKey:
    """What the lines of one sum share. invoice_id None: lines without an invoice id."""

    invoice_id: str | None
    payer_account: str
    currency: str
    invoicing_entity: str
    billing_entity: str
    bill_type: str
    tax: bool

    def order(self) -> tuple[str, str, str, str, str, str, bool]:
        return (
            self.invoice_id or "",
            self.payer_account,
            self.currency,
            self.invoicing_entity,
            self.billing_entity,
            self.bill_type,
            self.tax,
        )


@dataclass
class Sum:
    amount: Decimal = Decimal(0)
    lines: int = 0

    def add(self, amount: Decimal, lines: int) -> None:
        self.amount = EXACT.add(self.amount, amount)
        self.lines += lines


@dataclass
class InvoiceCost:
    """One invoice's lines in one currency, summed: before tax, tax, and what they share."""

    invoice_id: str
    currency: str
    pre_tax: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    lines: int = 0
    payer_accounts: set[str] = field(default_factory=set)
    invoicing_entities: set[str] = field(default_factory=set)
    billing_entities: set[str] = field(default_factory=set)
    bill_types: set[str] = field(default_factory=set)

    @property
    def total(self) -> Decimal:
        return EXACT.add(self.pre_tax, self.tax)


@dataclass
class CostData:
    """Everything read from one export for one billing period."""

    location: str
    form: ExportFormat
    files: list[str]
    lines: int = 0
    other_period_lines: int = 0  # lines whose billing period is not the one asked for: left out
    groups: dict[GroupKey, Sum] = field(default_factory=dict)
    usage_accounts: set[str] = field(default_factory=set)

    def add(self, key: GroupKey, amount: Decimal, lines: int) -> None:
        self.groups.setdefault(key, Sum()).add(amount, lines)

    def invoices(self) -> dict[tuple[str, str], InvoiceCost]:
        """(invoice id, currency) -> its summed lines."""
        found: dict[tuple[str, str], InvoiceCost] = {}
        for key, total in sorted(self.groups.items(), key=lambda item: item[0].order()):
            if key.invoice_id is None:
                continue
            cost = found.setdefault((key.invoice_id, key.currency), InvoiceCost(key.invoice_id, key.currency))
            if key.tax:
                cost.tax = EXACT.add(cost.tax, total.amount)
            else:
                cost.pre_tax = EXACT.add(cost.pre_tax, total.amount)
            cost.lines += total.lines
            cost.payer_accounts.add(key.payer_account)
            for values, value in (
                (cost.invoicing_entities, key.invoicing_entity),
                (cost.billing_entities, key.billing_entity),
                (cost.bill_types, key.bill_type),
            ):
                if value:
                    values.add(value)
        return found

    def uninvoiced(self) -> dict[tuple[str, str, str], Sum]:
        """(payer account, invoicing entity, currency) -> the lines without an invoice id."""
        found: dict[tuple[str, str, str], Sum] = {}
        for key, total in sorted(self.groups.items(), key=lambda item: item[0].order()):
            if key.invoice_id is None:
                found.setdefault((key.payer_account, key.invoicing_entity, key.currency), Sum()).add(
                    total.amount, total.lines
                )
        return found

    @property
    def invoiced_lines(self) -> int:
        return sum(total.lines for key, total in self.groups.items() if key.invoice_id is not None)

    @property
    def payer_accounts(self) -> set[str]:
        return {key.payer_account for key in self.groups if key.payer_account}

    @property
    def accounts(self) -> set[str]:
        """Every account the export has a line of: payers and usage accounts."""
        return self.payer_accounts | self.usage_accounts

    @property
    def invoicing_entities(self) -> set[str]:
        return {key.invoicing_entity for key in self.groups if key.invoicing_entity}
