"""What `invoice-archiver reconcile` shows and writes: a text report on stdout, and with --output the whole
result as CSV or JSON (a new regular file, whole or not at all, replaced only with --force, never through
a symbolic link, a FIFO or a device: the same rules as `report --output`)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

from invoice_archiver.cli import output_file
from invoice_archiver.cli.errors import CliError
from invoice_archiver.models.cost import plain
from invoice_archiver.models.reconciliation import Amounts, InvoiceResult, Kind, Reconciliation

FORMATS = {".csv": "csv", ".json": "json"}
COLUMNS = (
    "record",
    "period",
    "account_id",
    "invoice_id",
    "invoice_type",
    "original_invoice_id",
    "invoicing_entity",
    "billing_entity",
    "bill_type",
    "currency",
    "compared_as",
    "kind",
    "reason",
    "problem",
    *(
        f"{side}_{name}"
        for side in ("cost", "archived", "difference")
        for name in ("total", "tax", "pre_tax")
    ),
    "tolerance",
    "lines",
    "counts",
    "uninvoiced_total",
    "detail",
    "summary_key",
)


def check_output(text: str | None, *, force: bool) -> tuple[Path, str] | None:
    """--output: a path whose extension names the format (.csv or .json) and that may be written."""
    path = output_file.checked(text, force=force)
    if path is None:
        return None
    form = FORMATS.get(path.suffix.lower())
    if form is None:
        raise CliError(f"--output {text}: name a .csv or a .json file (the extension sets the format)")
    return path, form


def render(outcome: Reconciliation, form: str) -> str:
    if form == "json":
        return json.dumps(outcome.as_json(), indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in outcome.invoices:
        writer.writerow(_invoice_row(outcome.period, result))
    for lines in outcome.uninvoiced:
        row = dict.fromkeys(COLUMNS, "")
        row.update(
            record="lines", period=outcome.period, account_id=lines.payer_account, kind=str(lines.kind)
        )
        row.update(invoicing_entity=lines.invoicing_entity, currency=lines.currency, detail=lines.detail)
        row.update(problem=str(lines.problem).lower(), lines=str(lines.lines), cost_total=plain(lines.amount))
        writer.writerow(row)
    for summary in outcome.summary:
        row = dict.fromkeys(COLUMNS, "")
        row.update(record="summary", period=summary.period, account_id=summary.account_id)
        row.update(invoicing_entity=summary.invoicing_entity, currency=summary.currency)
        row.update(counts=";".join(f"{kind}={n}" for kind, n in sorted(summary.counts.items())))
        row.update(cost_total=plain(summary.cost_data_total), archived_total=plain(summary.archived_total))
        row.update(uninvoiced_total=plain(summary.uninvoiced_total))
        writer.writerow(row)
    return buffer.getvalue()


def _invoice_row(period: str, result: InvoiceResult) -> dict[str, str]:
    row = dict.fromkeys(COLUMNS, "")
    for name in COLUMNS:
        value = getattr(result, name, None)
        if isinstance(value, str):
            row[name] = value
    row.update(record="invoice", period=period, kind=str(result.kind), reason=str(result.reason))
    row.update(problem=str(result.problem).lower(), lines=str(result.lines))
    row["tolerance"] = "" if result.tolerance is None else plain(result.tolerance)
    for side, amounts in (
        ("cost", result.cost),
        ("archived", result.archived),
        ("difference", result.difference),
    ):
        for name, value in _named(amounts):
            row[f"{side}_{name}"] = "" if value is None else plain(value)
    return row


def _named(amounts: Amounts | None) -> list[tuple[str, Decimal | None]]:
    if amounts is None:
        return []
    return [("total", amounts.total), ("tax", amounts.tax), ("pre_tax", amounts.pre_tax)]


def text_report(outcome: Reconciliation, *, archive: str, notes: list[str]) -> str:
    lines = [
        f"Reconciliation of {outcome.period}: {_export(outcome)}",
        f"Archive: {archive} ({outcome.archived_invoices} invoices of {outcome.period})",
        f"Export final: {'yes' if outcome.finality.final else 'NO'} ({outcome.finality.reason})",
        f"Tolerance: {outcome.tolerance}",
        *(f"Note: {note}" for note in notes),
    ]
    problems = [r for r in outcome.invoices if r.problem]
    explained = [r for r in outcome.invoices if not r.problem and r.kind is not Kind.MATCHED]
    for title, results in (
        (f"Problems ({len(problems)})", problems),
        (f"Explained ({len(explained)})", explained),
    ):
        if results:
            lines += ["", f"{title}:", *(f"  {_line(r)}" for r in results)]
    if outcome.uninvoiced:
        lines += ["", "Lines without an invoice id:"]
        for group in outcome.uninvoiced:
            lines.append(
                _shown(
                    f"  {group.kind:<16}  payer {group.payer_account}  {group.invoicing_entity or '-'}  "
                    f"{plain(group.amount)} {group.currency} in {group.lines} line(s): {group.detail}"
                )
            )
    rounding = sum(1 for r in outcome.invoices if r.kind is Kind.MATCHED and r.reason)
    lines += ["", f"Matched: {outcome.count(Kind.MATCHED)} invoice(s), {rounding} within the tolerance"]
    lines += ["", "Summary (period, account, invoicing entity, currency):"]
    for row in outcome.summary:
        counts = ", ".join(f"{kind} {n}" for kind, n in sorted(row.counts.items()))
        lines.append(
            _shown(
                f"  {row.period}  {row.account_id or '-'}  {row.invoicing_entity or '-'}  "
                f"{row.currency or '-'}: "
                f"{counts}; cost data {plain(row.cost_data_total)}, archived {plain(row.archived_total)}, "
                f"without invoice {plain(row.uninvoiced_total)}"
            )
        )
    verdict = "reconciled" if not outcome.problems else f"{outcome.problems} problem(s)"
    missing = (
        f", {outcome.missing_from_archive} invoice(s) missing from the archive"
        if outcome.missing_from_archive
        else ""
    )
    return "\n".join([*lines, "", f"Result: {verdict}{missing}"]) + "\n"


def _export(outcome: Reconciliation) -> str:
    title = {"cur2": "CUR 2.0", "focus": "FOCUS 1.2"}.get(outcome.export_format, outcome.export_format)
    other = (
        f", {outcome.other_period_lines:,} of another period left out" if outcome.other_period_lines else ""
    )
    return (
        f"{title} export at {outcome.location} ({len(outcome.files)} file(s), {outcome.lines:,} lines{other})"
    )


def _line(result: InvoiceResult) -> str:
    what = result.invoice_type.lower().replace("_", " ") or "invoice"
    credit = f" of {result.original_invoice_id}" if result.original_invoice_id else ""
    figures = ""
    if result.cost is not None and result.archived is not None and result.difference is not None:
        figures = (
            f" cost data {_money(result.cost.total)} / archived {_money(result.archived.total)} / difference "
            f"{_money(result.difference.total)} {result.currency} (tax {_money(result.difference.tax)}, "
            f"pre-tax {_money(result.difference.pre_tax)});"
        )
    elif result.cost is not None:
        figures = f" {_money(result.cost.total)} {result.currency} in the cost data;"
    elif result.archived is not None:
        figures = f" {_money(result.archived.total)} {result.currency} archived;"
    reason = f" [{result.reason}]" if result.reason else ""
    return _shown(
        f"{result.kind:<16}  {what} {result.invoice_id}{credit}  account {result.account_id or '-'}  "
        f"{result.invoicing_entity or '-'}:{figures} {result.detail}{reason}"
    )


def _money(amount: Decimal | None) -> str:
    return "-" if amount is None else plain(amount)


def _shown(text: str) -> str:
    """Text from an export or a summary, safe on a terminal: control characters are escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
