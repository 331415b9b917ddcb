"""`invoice-archiver report` through the console script: the finance manifest of a period, its totals
checked against the summaries the API returned (the sandbox's dataset) with Decimal arithmetic."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from invoice_archiver.sandbox.dataset import generate
from tests.cli.conftest import BUCKET, Local, invoices_of

SECTIONS = {"base": "BaseCurrencyAmount", "tax": "TaxCurrencyAmount", "payment": "PaymentCurrencyAmount"}
# Credit memos (negative amounts), six currencies with 0 and 2 decimals, discounts and fees.
DATASET = generate(
    seed=23, periods=((2026, 9), (2026, 10)), invoices_per_account_period=8, supplemental=(0, 2)
)


@pytest.fixture
def archived(make_local: Any) -> Local:
    local: Local = make_local(DATASET)
    result = local.cli("backfill", "--from", "2026-09", "--to", "2026-10")
    assert result.returncode == 0, result.stdout + result.stderr
    return local


def expected_totals(invoices: list[Any]) -> dict[tuple[str, str], Decimal]:
    """(section, currency) -> sum of TotalAmount, straight from the API's summaries."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        for section, member in SECTIONS.items():
            amount = invoice.summary[member]
            totals[(section, amount["CurrencyCode"])] += Decimal(amount["TotalAmount"])
    return dict(totals)


def test_report_has_one_row_per_invoice_and_totals_that_add_up(archived: Local) -> None:
    # Given October's invoices, as the API returned them
    october = {i.invoice_id: i for i in invoices_of(DATASET, (2026, 10))}
    assert any(i.summary["InvoiceType"] == "CREDIT_MEMO" for i in october.values())

    # When the finance manifest of October is written as CSV
    result = archived.cli("report", "--period", "2026-10", "--output", "october.csv")

    # Then it has one row per invoice with the API's exact decimal strings ...
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    rows = list(csv.DictReader((archived.cwd / "october.csv").open(encoding="utf-8")))
    invoices = [r for r in rows if r["record"] == "invoice"]
    assert sorted(r["invoice_id"] for r in invoices) == sorted(october)
    for row in invoices:
        summary = october[row["invoice_id"]].summary
        assert row["account_id"] == summary["AccountId"]
        assert row["invoice_type"] == summary["InvoiceType"]
        assert row["original_invoice_id"] == summary.get("OriginalInvoiceId", "")
        assert row["billing_entity"] == summary["Entity"]["BillingEntity"]
        assert row["payment_total"] == summary["PaymentCurrencyAmount"]["TotalAmount"]
        assert row["tax_taxes"] == summary["TaxCurrencyAmount"]["AmountBreakdown"]["Taxes"]["TotalAmount"]
        assert (
            row["payment_exchange_rate"]
            == summary["PaymentCurrencyAmount"]["CurrencyExchangeDetails"]["Rate"]
        )
        assert int(row["document_count"]) == len(row["document_keys"].split()) >= 1
    # ... closed by one total row per currency whose sums are the Decimal sums of the summaries
    totals = {
        (section, row[f"{section}_currency"]): Decimal(row[f"{section}_total"])
        for row in rows
        if row["record"] == "total"
        for section in SECTIONS
        if row[f"{section}_currency"]
    }
    assert totals == expected_totals(list(october.values()))
    assert rows[-1]["record"] == "total"
    assert "Report 2026-10: 24 invoices" in result.stderr


def test_report_as_json_says_the_same_as_the_csv(archived: Local) -> None:
    # Given September as CSV and as JSON
    as_csv = archived.cli("report", "--period", "2026-09")
    as_json = archived.cli("report", "--period", "2026-09", "--format", "json")

    # Then both list the same invoices and the JSON totals are the summaries' Decimal sums
    assert as_csv.returncode == as_json.returncode == 0
    report = json.loads(as_json.stdout)
    csv_rows = [r for r in csv.DictReader(io.StringIO(as_csv.stdout)) if r["record"] == "invoice"]
    assert report["invoices"] == csv_rows
    september = invoices_of(DATASET, (2026, 9))
    totals = {
        (section, currency): Decimal(sums["total"])
        for currency, sections in report["totals"].items()
        for section, sums in sections.items()
    }
    assert totals == expected_totals(september)
    counts = {(s, c): v["invoices"] for c, sections in report["totals"].items() for s, v in sections.items()}
    assert sum(v for (section, _), v in counts.items() if section == "payment") == len(september)


def test_report_leaves_out_an_invoice_folder_without_summary(archived: Local) -> None:
    # Given an invoice folder whose summary.json was never written
    archived.client("s3").put_object(
        Bucket=BUCKET, Key="invoices/account=123456789012/period=2026-10/E-HALF/invoice.pdf", Body=b"%PDF"
    )

    # When October is reported
    result = archived.cli("report", "--period", "2026-10", "--format", "json")

    # Then the incomplete invoice is not in it, and stderr says one folder was left out
    assert result.returncode == 0
    ids = {row["invoice_id"] for row in json.loads(result.stdout)["invoices"]}
    assert "E-HALF" not in ids
    assert len(ids) == len(invoices_of(DATASET, (2026, 10)))
    assert "Left out: 1 invoice folder without summary.json" in result.stderr
