"""The order a reconciliation is shown in, and its summary per period, account, invoicing entity and
currency. Credit memos follow the invoice they credit (OriginalInvoiceId)."""

from __future__ import annotations

from invoice_archiver.models.cost import EXACT
from invoice_archiver.models.reconciliation import InvoiceResult, Reconciliation, SummaryRow

LINES_WITHOUT_INVOICE = "lines_without_invoice"


def ordered(results: list[InvoiceResult]) -> list[InvoiceResult]:
    """By account, then each invoice followed by its credit memos, then by id."""

    def key(result: InvoiceResult) -> tuple[str, str, int, str]:
        anchor = result.original_invoice_id or result.invoice_id
        return (result.account_id, anchor, 1 if result.original_invoice_id else 0, result.invoice_id)

    return sorted(results, key=key)


def summarize(outcome: Reconciliation) -> list[SummaryRow]:
    rows: dict[tuple[str, str, str], SummaryRow] = {}

    def row(account: str, entity: str, currency: str) -> SummaryRow:
        return rows.setdefault(
            (account, entity, currency), SummaryRow(outcome.period, account, entity, currency)
        )

    for result in outcome.invoices:
        target = row(result.account_id, result.invoicing_entity, result.currency)
        target.counts[str(result.kind)] = target.counts.get(str(result.kind), 0) + 1
        if result.cost is not None and result.cost.total is not None:
            target.cost_data_total = EXACT.add(target.cost_data_total, result.cost.total)
        if result.archived is not None and result.archived.total is not None:
            target.archived_total = EXACT.add(target.archived_total, result.archived.total)
    for lines in outcome.uninvoiced:
        target = row(lines.payer_account, lines.invoicing_entity, lines.currency)
        target.counts[LINES_WITHOUT_INVOICE] = target.counts.get(LINES_WITHOUT_INVOICE, 0) + lines.lines
        target.uninvoiced_total = EXACT.add(target.uninvoiced_total, lines.amount)
        target.cost_data_total = EXACT.add(target.cost_data_total, lines.amount)
    return [rows[key] for key in sorted(rows)]
