"""The comparison: the cost data's invoices against the archived summaries of the same billing period.

Pure: it reads nothing. Each (invoice id, currency) of the export is compared with the invoice's latest
archived summary, in the summary's amounts whose currency is the export's (base first, then tax, then
payment currency): the total, the tax (Tax lines against AmountBreakdown.Taxes.TotalAmount) and the
amount before tax (TotalAmountBeforeTax). A difference within the tolerance is a match; by default the
tolerance is one unit of the last decimal place the invoice states (0.01 for 123.45 USD, 1 for 1235 JPY),
the rounding of a total AWS rounds to its currency's minor unit while the export's lines are not rounded.

Known gaps are classified, not flagged: the export's data transfer (shown apart on the Bills page, folded
into each service in CUR) changes no invoice's total; rounding is within the tolerance; lines that never
get an invoice id are listed apart; an archived invoice of an account or an invoicing entity the export
does not cover, or of nothing to bill, is explained as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from invoice_archiver.dal.ledger.records import InvoiceRecord
from invoice_archiver.logic.reconciliation_summary import ordered, summarize
from invoice_archiver.models.cost import EXACT, CostData, InvoiceCost
from invoice_archiver.models.period import BillingPeriod
from invoice_archiver.models.reconciliation import (
    Amounts,
    Finality,
    InvoiceResult,
    Kind,
    LinesResult,
    Reason,
    Reconciliation,
)

SECTIONS = (
    ("base", "BaseCurrencyAmount"),
    ("tax", "TaxCurrencyAmount"),
    ("payment", "PaymentCurrencyAmount"),
)
DEFAULT_FINAL_DAY = 10
DEFAULT_TOLERANCE_TEXT = "one unit of each invoice's last decimal place"


@dataclass(frozen=True)
class Archived:
    key: str
    account_id: str
    summary: dict[str, Any]

    @property
    def invoice_id(self) -> str:
        return str(self.summary.get("InvoiceId", ""))

    @property
    def entity(self) -> dict[str, Any]:
        return self.summary.get("Entity") or {}


def archived_from(documents: list[tuple[str, dict[str, Any]]]) -> list[Archived]:
    return [
        Archived(key, str(doc.get("account_id", "")), doc.get("invoice_summary") or {})
        for key, doc in documents
    ]


def finality(
    period: BillingPeriod, now: datetime, cost: CostData, final_day: int = DEFAULT_FINAL_DAY
) -> Finality:
    """Whether the period's export is final, and how that is told."""
    current = BillingPeriod.of(now)
    if period >= current:
        return Finality(False, f"{period} is not over (today is {now.date().isoformat()})")
    if cost.lines and not cost.invoiced_lines:
        return Finality(
            False, "no line carries an invoice id: AWS leaves them blank until the report is final"
        )
    if period == current.shift(-1) and now.day < final_day:
        return Finality(
            False,
            f"before day {final_day} of {current}, AWS may still change {period}'s export (refunds, credits "
            "and support fees land around the 6th-7th)",
        )
    return Finality(True, "the period is over and its lines carry invoice ids")


def compare(
    period: BillingPeriod,
    cost: CostData,
    archived: list[Archived],
    *,
    state: Finality,
    tolerance: Decimal | None,
    archive_accounts: set[str],
    ledger: dict[str, InvoiceRecord],
    generated_at: str,
) -> Reconciliation:
    """Every invoice of either side with its verdict, the lines without an invoice id, and the summary."""
    by_id: dict[str, list[Archived]] = {}
    for item in archived:
        by_id.setdefault(item.invoice_id, []).append(item)
    results, seen = [], set()
    for (invoice_id, _currency), lines in cost.invoices().items():
        match = _pick(by_id.get(invoice_id, []), lines)
        if match is None:
            results.append(_not_archived(lines, state, archive_accounts, ledger))
            continue
        seen.add(match.key)
        results.append(_compared(lines, match, tolerance))
    for item in archived:
        if item.key not in seen:
            results.append(_not_in_cost_data(item, cost, state))
    uninvoiced = [
        LinesResult(
            payer, entity, currency, total.amount, total.lines,
            Kind.NO_INVOICE if state.final else Kind.NOT_FINAL,
            problem=not state.final,
            detail="charges that get no invoice" if state.final else f"not final: {state.reason}",
        )
        for (payer, entity, currency), total in cost.uninvoiced().items()
    ]  # fmt: skip
    outcome = Reconciliation(
        period=str(period),
        location=cost.location,
        export_format=str(cost.form),
        files=cost.files,
        lines=cost.lines,
        other_period_lines=cost.other_period_lines,
        finality=state,
        tolerance=DEFAULT_TOLERANCE_TEXT if tolerance is None else str(tolerance),
        generated_at=generated_at,
        invoices=ordered(results),
        uninvoiced=uninvoiced,
        archived_invoices=len(archived),
    )
    outcome.summary = summarize(outcome)
    return outcome


def _pick(candidates: list[Archived], lines: InvoiceCost) -> Archived | None:
    """The archived invoice with this id, preferring the export's payer's copy."""
    for item in candidates:
        if item.account_id in lines.payer_accounts:
            return item
    return candidates[0] if candidates else None


def _not_archived(
    lines: InvoiceCost, state: Finality, archive_accounts: set[str], ledger: dict[str, InvoiceRecord]
) -> InvoiceResult:
    payer = ",".join(sorted(lines.payer_accounts))
    if not state.final:
        reason, detail = Reason.NOT_FINAL, f"not final: {state.reason}"
    elif archive_accounts and not lines.payer_accounts & archive_accounts:
        reason, detail = Reason.ACCOUNT_NOT_ARCHIVED, f"payer {payer} is not an account of this archive"
    else:
        reason, detail = Reason.NONE, _ledger_state(ledger.get(lines.invoice_id))
    return InvoiceResult(
        lines.invoice_id,
        payer,
        Kind.NOT_ARCHIVED,
        problem=True,
        reason=reason,
        detail=detail,
        invoicing_entity=",".join(sorted(lines.invoicing_entities)),
        billing_entity=",".join(sorted(lines.billing_entities)),
        bill_type=",".join(sorted(lines.bill_types)),
        currency=lines.currency,
        cost=Amounts(lines.total, lines.tax, lines.pre_tax),
        lines=lines.lines,
    )


def _ledger_state(record: InvoiceRecord | None) -> str:
    if record is None:
        return "not in the ledger: the Invoicing API never listed it to this archive"
    error = record.last_error[:300]
    return f"ledger: {record.status}" + (f" ({error})" if error else "")


def _compared(lines: InvoiceCost, match: Archived, tolerance: Decimal | None) -> InvoiceResult:
    result = _identity(match, Kind.MATCHED, problem=False)
    result.cost = Amounts(lines.total, lines.tax, lines.pre_tax)
    result.currency, result.lines = lines.currency, lines.lines
    found = [(label, match.summary.get(name) or {}) for label, name in SECTIONS]
    section = next((pair for pair in found if pair[1].get("CurrencyCode") == lines.currency), None)
    if section is None:
        stated = ", ".join(f"{label} {amount.get('CurrencyCode')}" for label, amount in found if amount)
        result.kind, result.problem = Kind.CURRENCY_DIFFERS, True
        result.detail = f"the export is in {lines.currency}; the invoice states {stated or 'no currency'}"
        return result
    result.compared_as, amount = section
    archived = Amounts(
        _number(amount.get("TotalAmount")),
        _number(((amount.get("AmountBreakdown") or {}).get("Taxes") or {}).get("TotalAmount")),
        _number(amount.get("TotalAmountBeforeTax")),
    )
    difference = Amounts(
        *(_minus(c, a) for c, a in zip(_values(result.cost), _values(archived), strict=True))
    )
    allowed = tolerance if tolerance is not None else _unit(amount.get("TotalAmount"))
    result.archived, result.difference, result.tolerance = archived, difference, allowed
    named = list(zip(("total", "tax", "pre-tax"), _values(difference), _values(archived), strict=True))
    beyond = [name for name, value, _ in named if value is not None and abs(value) > allowed]
    unstated = [name for name, _, stated in named if stated is None]
    if beyond:
        result.kind, result.problem = Kind.AMOUNTS_DIFFER, True
        result.detail = f"{', '.join(beyond)} differ by more than {allowed} {lines.currency}"
    elif any(value for value in _values(difference) if value is not None):
        result.reason, result.detail = Reason.ROUNDING, f"within {allowed} {lines.currency}"
    if unstated:
        note = f"the summary states no {', '.join(unstated)}"
        result.detail = "; ".join(filter(None, [result.detail, note]))
    return result


def _not_in_cost_data(item: Archived, cost: CostData, state: Finality) -> InvoiceResult:
    result = _identity(item, Kind.NOT_IN_COST_DATA, problem=True)
    base = item.summary.get("BaseCurrencyAmount") or {}
    result.currency = str(base.get("CurrencyCode", ""))
    result.archived = Amounts(
        _number(base.get("TotalAmount")), None, _number(base.get("TotalAmountBeforeTax"))
    )
    entity = result.invoicing_entity
    if not state.final:
        result.reason, result.detail = Reason.NOT_FINAL, f"not final: {state.reason}"
    elif result.account_id not in cost.accounts:
        result.reason, result.problem = Reason.ACCOUNT_NOT_IN_EXPORT, False
        result.detail = f"the export has no line of account {result.account_id}"
    elif entity and cost.invoicing_entities and entity not in cost.invoicing_entities:
        result.reason, result.problem = Reason.ENTITY_NOT_IN_EXPORT, False
        result.detail = f"the export has no line of {entity}"
    elif result.archived.total == 0:
        result.reason, result.problem = Reason.ZERO_AMOUNT, False
        result.detail = "nothing to bill: no line to expect"
    else:
        result.detail = "no line of the export names this invoice"
    return result


def _identity(item: Archived, kind: Kind, *, problem: bool) -> InvoiceResult:
    summary = item.summary
    return InvoiceResult(
        item.invoice_id,
        item.account_id,
        kind,
        problem=problem,
        invoice_type=str(summary.get("InvoiceType") or ""),
        original_invoice_id=str(summary.get("OriginalInvoiceId") or ""),
        invoicing_entity=str(item.entity.get("InvoicingEntity") or ""),
        billing_entity=str(item.entity.get("BillingEntity") or ""),
        bill_type=str(summary.get("BillType") or ""),
        summary_key=item.key,
    )


def _values(amounts: Amounts | None) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    assert amounts is not None
    return amounts.total, amounts.tax, amounts.pre_tax


def _minus(cost: Decimal | None, archived: Decimal | None) -> Decimal | None:
    return None if cost is None or archived is None else EXACT.subtract(cost, archived)


def _number(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _unit(value: Any) -> Decimal:
    """One unit of the last decimal place of an amount as stated ("123.45" -> 0.01; "1235" -> 1)."""
    number = _number(value)
    exponent = number.as_tuple().exponent if number is not None else -2
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(min(exponent, 0))
