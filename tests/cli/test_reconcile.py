"""`invoice-archiver reconcile` through the console script, on a sandbox whose archive the real pipeline
filled (backfill), against cost data the sandbox writes for the same dataset (real Parquet and gzip CSV
written by pyarrow, in Data Exports' layout, in a folder and in moto's S3)."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from invoice_archiver.models.cost import ExportFormat
from invoice_archiver.sandbox import cost_files
from invoice_archiver.sandbox.cost_data import AMOUNT_OFF, CREDIT_OFF, Discrepancies
from invoice_archiver.sandbox.dataset import generate
from tests.cli.conftest import CLI, Local, clean_env, run_cli
from tests.sandbox_banner import read_banner

# Two periods, credit memos in both, three payers; the oldest period is long over (final by the calendar).
DATASET = generate(
    seed=31, periods=((2026, 1), (2026, 2)), invoices_per_account_period=6, supplemental=(0, 1)
)
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
    folder, _ = export(archived, "exports")

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


@pytest.mark.parametrize(
    ("discrepancy", "kind"),
    [
        ("missing_invoice", "not_archived"),
        ("amount_off", "amounts_differ"),
        ("credit_memo", "amounts_differ"),
    ],
)
def test_each_injected_discrepancy_exits_1_naming_the_invoice_and_the_kind(
    archived: Local, discrepancy: str, kind: str
) -> None:
    # Given February's CUR 2.0 export with one discrepancy injected
    folder, written = export(
        archived, discrepancy, formats=[ExportFormat.CUR2], discrepancies=Discrepancies(**{discrepancy: True})
    )
    invoice_id = getattr(written.injected, discrepancy)[PERIOD]

    # When it is reconciled, with the result as CSV
    result = reconcile(archived, folder, "--output", "result.csv")

    # Then the command exits 1, and the report names the invoice and the kind of discrepancy
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if invoice_id in line and kind in line]
    rows = list(csv.DictReader((archived.cwd / "result.csv").open(encoding="utf-8")))
    problems = [r for r in rows if r["problem"] == "true"]
    assert [(r["invoice_id"], r["kind"]) for r in problems] == [(invoice_id, kind)]
    [row] = problems
    if discrepancy == "amount_off":
        # both figures and the difference, exactly
        assert Decimal(row["difference_total"]) == AMOUNT_OFF
        assert Decimal(row["cost_total"]) - Decimal(row["archived_total"]) == AMOUNT_OFF
        assert Decimal(row["difference_tax"]) == 0
    if discrepancy == "credit_memo":
        # shown against the invoice it credits
        memo = next(i for i in CREDIT_MEMOS if i.invoice_id == invoice_id)
        assert row["invoice_type"] == "CREDIT_MEMO"
        assert row["original_invoice_id"] == memo.summary["OriginalInvoiceId"]
        assert f"credit memo {invoice_id} of {memo.summary['OriginalInvoiceId']}" in line
        assert Decimal(row["difference_total"]) == CREDIT_OFF
    if discrepancy == "missing_invoice":
        assert "not in the ledger" in row["detail"]
        assert "1 invoice(s) missing from the archive" in result.stdout


def test_a_period_not_final_exits_1_and_says_why(archived: Local) -> None:
    # Given February's FOCUS export before the month is final: no line carries an invoice id
    folder, _ = export(
        archived, "early", formats=[ExportFormat.FOCUS], discrepancies=Discrepancies(not_final=True)
    )

    # When it is reconciled
    result = reconcile(archived, folder, "--output", "early.json")

    # Then it exits 1: the lines are not final yet, and each archived invoice waits for them
    assert result.returncode == 1, result.stderr
    assert "Export final: NO (no line carries an invoice id" in result.stdout
    body = json.loads((archived.cwd / "early.json").read_text())
    assert {g["kind"] for g in body["lines_without_invoice"]} == {"not_final"}
    assert {(r["kind"], r["reason"]) for r in body["invoices"]} == {("not_in_cost_data", "not_final")}
    assert body["missing_from_archive"] == 0


def test_the_tolerance_decides_what_matches(archived: Local) -> None:
    # Given an export whose first invoice is 1.00 more than archived and a credit memo 2.50 off
    folder, written = export(
        archived, "tolerance", formats=[ExportFormat.CUR2],
        discrepancies=Discrepancies(amount_off=True, credit_memo=True),
    )  # fmt: skip

    # When the tolerance is 1.00
    result = reconcile(archived, folder, "--tolerance", "1.00", "--output", "tolerance.json")

    # Then the 1.00 difference is matched (within the tolerance, shown as such) and the 2.50 one is not
    assert result.returncode == 1
    verdicts = {
        r["invoice_id"]: r for r in json.loads((archived.cwd / "tolerance.json").read_text())["invoices"]
    }
    off = verdicts[written.injected.amount_off[PERIOD]]
    assert (off["kind"], off["reason"], off["difference"]["total"]) == ("matched", "rounding", "1.00")
    assert verdicts[written.injected.credit_memo[PERIOD]]["kind"] == "amounts_differ"


def test_an_s3_prefix_above_the_exports_and_gzip_csv_work(archived: Local) -> None:
    # Given both exports as gzip CSV in moto's S3, under one prefix
    s3 = archived.client("s3")
    cost_files.write(DATASET, "s3://cost-exports/billing", compression="csv.gz", s3=s3)

    # When the prefix above them is named, without --format: it is ambiguous
    ambiguous = reconcile(archived, "s3://cost-exports/billing/")
    assert ambiguous.returncode == 2
    assert "several exports" in ambiguous.stderr
    assert "Traceback" not in ambiguous.stderr

    # When the format is named
    for form in ("cur2", "focus"):
        result = reconcile(archived, "s3://cost-exports/billing/", "--format", form)

        # Then the export of that format is found beneath the prefix and reconciles
        assert result.returncode == 0, result.stdout + result.stderr
        assert "at s3://cost-exports/billing/ (1 file(s)" in result.stdout
        assert "Result: reconciled" in result.stdout


def test_an_export_for_another_payer_is_not_archived_with_the_reason(archived: Local) -> None:
    # Given a CUR export of another payer's invoices (an organization this archive does not archive)
    other = generate(seed=99, accounts=("999999999999",), periods=((2026, 2),), invoices_per_account_period=2)
    folder = str(archived.cwd / "other")
    cost_files.write(other, folder, formats=[ExportFormat.CUR2])

    # When it is reconciled with this archive
    result = reconcile(archived, folder, "--output", "other.json")

    # Then its invoices are not archived, because the payer is not an account of this archive, and the
    # archive's own invoices are explained as accounts the export does not cover (not problems)
    assert result.returncode == 1
    body = json.loads((archived.cwd / "other.json").read_text())
    theirs = [r for r in body["invoices"] if r["account_id"] == "999999999999"]
    assert {(r["kind"], r["reason"]) for r in theirs} == {("not_archived", "account_not_archived")}
    ours = [r for r in body["invoices"] if r["account_id"] != "999999999999"]
    assert {(r["kind"], r["reason"], r["problem"]) for r in ours} == {
        ("not_in_cost_data", "account_not_in_export", False)
    }


def test_the_sandbox_writes_cost_data_a_person_reconciles(tmp_path: Path) -> None:
    # Given `invoice-archiver sandbox` asked for cost data in its S3, with an invoice the API never lists
    proc = subprocess.Popen(
        [CLI, "sandbox", "--seed", "5", "--accounts", "123456789012", "--periods", "2026-03",
         "--invoices-per-period", "4", "--cost-data", "s3://cost-exports/exports/",
         "--cost-discrepancy", "missing-invoice"],
        env=clean_env(), stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        banner = read_banner(proc.stdout)
        exported = banner.exports
        [missing] = [line.split()[-2] for line in banner.lines if "discrepancy: missing invoice" in line]
        env = clean_env(**exported)
        # When a person archives the period and reconciles it with the CUR export
        assert run_cli(["backfill", "--from", "2026-03", "--to", "2026-03"], env, tmp_path).returncode == 0
        result = run_cli(
            ["reconcile", "--period", "2026-03", "--cost-data", "s3://cost-exports/exports/invoice-archiver-cur2/"],
            env, tmp_path,
        )  # fmt: skip
        # Then the invoice the sandbox injected is the one problem, named as not archived
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Problems (1)" in result.stdout
        [line] = [line for line in result.stdout.splitlines() if line.strip().startswith("not_archived")]
        assert f"invoice {missing} " in line
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
