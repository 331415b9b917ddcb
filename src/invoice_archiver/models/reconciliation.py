"""A reconciliation's result: one verdict per invoice, the lines without an invoice id, and the totals.

JSON-safe by `as_json`: amounts are decimal strings, never floats. The same document is what
`invoice-archiver reconcile --output x.json` writes and what the reconciler function stores under
`reconciliation/YYYY-MM/`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from invoice_archiver.models.cost import plain

RESULT_FORMAT = "invoice-archiver-reconciliation/1"


class Kind(StrEnum):
    MATCHED = "matched"  # every amount within the tolerance
    AMOUNTS_DIFFER = "amounts_differ"  # a total, tax or pre-tax amount beyond the tolerance
    NOT_ARCHIVED = "not_archived"  # in the cost data, not in the archive: the alarm case
    NOT_IN_COST_DATA = "not_in_cost_data"  # archived, but no line of the export names it
    CURRENCY_DIFFERS = "currency_differs"  # the export's currency is none the invoice states
    NOT_FINAL = "not_final"  # lines without an invoice id: the period's export is not final yet
    NO_INVOICE = "no_invoice"  # lines without an invoice id in a final export: charges never invoiced


class Reason(StrEnum):
    """Why, when it can be told. An explained gap is not a problem (except a period not final)."""

    NONE = ""
    ROUNDING = "rounding"  # matched, with a difference within the tolerance
    NOT_FINAL = "not_final"
    ACCOUNT_NOT_IN_EXPORT = "account_not_in_export"  # the export covers other payers and accounts
    ENTITY_NOT_IN_EXPORT = "entity_not_in_export"  # the export has no line of this invoicing entity
    ZERO_AMOUNT = "zero_amount"  # nothing to bill: no line to expect
    ACCOUNT_NOT_ARCHIVED = "account_not_archived"  # the payer is not an account of this archive


@dataclass(frozen=True)
class Amounts:
    total: Decimal | None
    tax: Decimal | None
    pre_tax: Decimal | None

    def as_json(self) -> dict[str, str | None]:
        return {name: None if value is None else plain(value) for name, value in asdict(self).items()}


@dataclass
class InvoiceResult:
    invoice_id: str
    account_id: str
    kind: Kind
    problem: bool
    reason: Reason = Reason.NONE
    detail: str = ""
    invoice_type: str = ""
    original_invoice_id: str = ""
    invoicing_entity: str = ""
    billing_entity: str = ""
    bill_type: str = ""
    currency: str = ""
    compared_as: str = ""  # which of the summary's amounts: base, tax or payment currency
    cost: Amounts | None = None
    archived: Amounts | None = None
    difference: Amounts | None = None
    tolerance: Decimal | None = None
    lines: int = 0
    summary_key: str = ""

    def as_json(self) -> dict[str, Any]:
        body = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("cost", "archived", "difference"):
            value = body[name]
            body[name] = None if value is None else value.as_json()
        body["tolerance"] = None if self.tolerance is None else plain(self.tolerance)
        body["kind"], body["reason"] = str(self.kind), str(self.reason)
        return body


@dataclass
class LinesResult:
    """Lines without an invoice id, summed per payer, invoicing entity and currency."""

    payer_account: str
    invoicing_entity: str
    currency: str
    amount: Decimal
    lines: int
    kind: Kind
    problem: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["amount"], body["kind"] = plain(self.amount), str(self.kind)
        return body


@dataclass
class SummaryRow:
    """Per period, account, invoicing entity and currency: how many invoices of each kind, and sums."""

    period: str
    account_id: str
    invoicing_entity: str
    currency: str
    counts: dict[str, int] = field(default_factory=dict)
    cost_data_total: Decimal = Decimal(0)  # every line of the export, invoiced or not
    archived_total: Decimal = Decimal(0)  # the compared invoices' totals as archived
    uninvoiced_total: Decimal = Decimal(0)

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "account_id": self.account_id,
            "invoicing_entity": self.invoicing_entity,
            "currency": self.currency,
            "counts": dict(sorted(self.counts.items())),
            "cost_data_total": plain(self.cost_data_total),
            "archived_total": plain(self.archived_total),
            "uninvoiced_total": plain(self.uninvoiced_total),
        }


@dataclass(frozen=True)
class Finality:
    final: bool
    reason: str


@dataclass
class Reconciliation:
    period: str
    location: str
    export_format: str
    files: list[str]
    lines: int
    other_period_lines: int
    finality: Finality
    tolerance: str  # as set, or "one unit of each invoice's last decimal place"
    generated_at: str
    invoices: list[InvoiceResult] = field(default_factory=list)
    uninvoiced: list[LinesResult] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)
    archived_invoices: int = 0
    incomplete_folders: int = 0

    @property
    def problems(self) -> int:
        return sum(r.problem for r in self.invoices) + sum(r.problem for r in self.uninvoiced)

    @property
    def missing_from_archive(self) -> int:
        """Invoices of a final export that the archive does not hold: what the alarm counts."""
        return sum(r.kind is Kind.NOT_ARCHIVED and r.reason is not Reason.NOT_FINAL for r in self.invoices)

    def count(self, kind: Kind) -> int:
        return sum(r.kind is kind for r in self.invoices)

    def as_json(self) -> dict[str, Any]:
        return {
            "format": RESULT_FORMAT,
            "billing_period": self.period,
            "generated_at": self.generated_at,
            "cost_data": {
                "location": self.location,
                "format": self.export_format,
                "files": self.files,
                "lines": self.lines,
                "other_period_lines": self.other_period_lines,
                "final": self.finality.final,
                "final_reason": self.finality.reason,
            },
            "archive": {"invoices": self.archived_invoices, "incomplete_folders": self.incomplete_folders},
            "tolerance": self.tolerance,
            "reconciled": self.problems == 0,
            "problems": self.problems,
            "missing_from_archive": self.missing_from_archive,
            "invoices": [r.as_json() for r in self.invoices],
            "lines_without_invoice": [r.as_json() for r in self.uninvoiced],
            "summary": [r.as_json() for r in self.summary],
        }
