"""`invoice-archiver reconcile` through the console script, on a sandbox whose archive the real pipeline
filled (backfill), against cost data the sandbox writes for the same dataset (real Parquet and gzip CSV
written by pyarrow, in Data Exports' layout, in a folder and in moto's S3)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from invoice_archiver.models.cost import ExportFormat
from invoice_archiver.sandbox import cost_files
from invoice_archiver.sandbox.cost_data import AMOUNT_OFF, CREDIT_OFF, Discrepancies
from invoice_archiver.sandbox.dataset import generate
from tests.cli.conftest import Local

# Two periods, credit memos in both, three payers; the oldest period is long over (final by the calendar).
DATASET = generate(seed=31, periods=((2026, 1), (2026, 2)), invoices_per_account_period=6, supplemental=(0, 1))
PERIOD = "2026-02"
CREDIT_MEMOS = [
    i for i in DATASET.invoices if i.billing_period == (2026, 2) and i.summary["InvoiceType"] == "CREDIT_MEMO"
]


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reconcile")


@pytest.fixture
def archived(make_local: Any) -> Local:
    local: Local = make_local(DATASET)
    result = local.cli("backfill", "--from", "2026-01", "--to", "2026-02")
    assert result.returncode == 0, result.stdout + result.stderr
    return local


def export(local: Local, name: str, **kwargs: Any) -> tuple[str, cost_files.Written]:
    destination = str(local.cwd / name)
    return destination, cost_files.write(DATASET, destination, **kwargs)


def reconcile(local: Local, cost_data: str, *extra: str) -> Any:
    return local.cli("reconcile", "--period", PERIOD, "--cost-data", cost_data, *extra)


def test_cost_data_that_matches_every_archived_invoice_reconciles(archived: Local) -> None:
    # Given the archive of February and both exports of the same invoices, in a local folder
    assert CREDIT_MEMOS, "the dataset has a credit memo in February"
    folder, written = export(archived, "exports")

    for form in ExportFormat:
        # When each export is reconciled (the format told by its columns), with the whole result as JSON
        location = cost_files.export_location(folder, form)
        result = reconcile(archived, location, "--output", f"{form}.json")

        # Then every invoice matches, exactly, and the command exits 0
        assert result.returncode == 0, result.stdout + result.stderr
        body = json.loads((archived.cwd / f"{form}.json").read_text())
        assert body["reconciled"] is True
        assert body["cost_data"]["format"] == str(form)
        february = {i.invoice_id for i in DATASET.invoices if i.billing_period == (2026, 2)}
        assert {r["invoice_id"] for r in body["invoices"]} == february
        assert {r["kind"] for r in body["invoices"]} == {"matched"}
        assert all(Decimal(r["difference"]["total"]) == 0 for r in body["invoices"])
        # And the lines without an invoice id are listed apart, not as a problem
        assert body["lines_without_invoice"]
        assert {g["kind"] for g in body["lines_without_invoice"]} == {"no_invoice"}
        assert "Result: reconciled" in result.stdout
