"""`invoice-archiver reconcile` given bad or hostile input: one line naming what to fix, exit 2, no traceback,
nothing on stdout; a hostile export is refused or its hostile part left out, never followed."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from invoice_archiver.models.cost import ExportFormat
from invoice_archiver.sandbox import cost_files
from invoice_archiver.sandbox.cost_data import Discrepancies, Injected, lines
from invoice_archiver.sandbox.dataset import generate
from tests.cli.conftest import Local

DATASET = generate(seed=5, accounts=("123456789012",), periods=((2026, 2),), invoices_per_account_period=3)
DATA = "exports/cur/data/BILLING_PERIOD=2026-02"


def cur_table() -> pa.Table:
    """The sandbox's CUR 2.0 lines of the dataset, as a table a test may then spoil."""
    return cost_files.cur2_table(list(lines(DATASET, (2026, 2), Discrepancies(), Injected())))


def write_parquet(folder: Path, table: pa.Table, name: str = "cur-00001.snappy.parquet") -> Path:
    path = folder / DATA / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def assert_usage_error(result: Any, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("invoice-archiver reconcile: error: "), line
    for fragment in fragments:
        assert fragment in line, line


def reconcile(local: Local, cost_data: str, *extra: str) -> Any:
    return local.cli("reconcile", "--period", "2026-02", "--cost-data", cost_data, *extra)


def test_a_folder_that_does_not_exist(local: Local) -> None:
    assert_usage_error(reconcile(local, "no-such-folder"), "no-such-folder does not exist")


def test_a_folder_without_the_period_names_the_periods_it_has(local: Local) -> None:
    cost_files.write(DATASET, str(local.cwd / "exports"), formats=[ExportFormat.CUR2])
    result = local.cli("reconcile", "--period", "2026-05", "--cost-data", "exports")
    assert_usage_error(result, "no export for 2026-05", "periods there: 2026-02")


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("cur-00001.snappy.parquet", b"PAR1 this is not parquet PAR1", "Parquet"),
        ("cur-00001.snappy.parquet", b"", "Parquet"),
        ("cur-00001.csv.gz", b"plain text, not gzip", "gzip CSV"),
    ],
)
def test_an_unreadable_file_is_named(local: Local, name: str, content: bytes, kind: str) -> None:
    path = local.cwd / DATA / name
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert_usage_error(reconcile(local, "exports"), name, f"not a readable {kind} file")


def test_the_wrong_format_is_named_with_the_one_it_is(local: Local) -> None:
    write_parquet(local.cwd, cur_table())
    assert_usage_error(
        reconcile(local, "exports", "--format", "focus"), "not a FOCUS 1.2 export", "it is a CUR 2.0"
    )


def test_a_file_of_neither_format(local: Local) -> None:
    write_parquet(local.cwd, pa.table({"date": ["2026-02-01"], "amount": [1.5]}))
    assert_usage_error(reconcile(local, "exports"), "neither a CUR 2.0 nor a FOCUS 1.2 export")


def test_a_bucket_that_does_not_exist(local: Local) -> None:
    assert_usage_error(reconcile(local, "s3://no-such-bucket/exports/"), "NoSuchBucket")


@pytest.mark.parametrize(
    "location", ["ftp://host/exports", "s3://", "s3://Bad_Bucket/x", "s3://bucket/a/../b"]
)
def test_a_location_that_is_neither_s3_nor_a_folder(local: Local, location: str) -> None:
    assert_usage_error(reconcile(local, location))


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--tolerance", "-1"], "--tolerance"),
        (["--tolerance", "abc"], "--tolerance"),
        (["--final-day", "40"], "--final-day"),
        (["--format", "cur3"], "--format"),
        (["--output", "result.txt"], "name a .csv or a .json file"),
        (["--force"], "--force replaces an --output file"),
    ],
)
def test_bad_options(local: Local, extra: list[str], fragment: str) -> None:
    result = reconcile(local, "exports", *extra)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_an_existing_output_is_replaced_only_with_force_and_never_through_a_link(local: Local) -> None:
    (local.cwd / "kept.json").write_text("keep me")
    assert_usage_error(reconcile(local, "exports", "--output", "kept.json"), "exists; pass --force")
    assert (local.cwd / "kept.json").read_text() == "keep me"
    os.symlink(local.cwd / "kept.json", local.cwd / "link.json")
    assert_usage_error(reconcile(local, "exports", "--output", "link.json", "--force"), "symbolic link")


def test_a_huge_string_is_refused_naming_its_column(local: Local) -> None:
    # Given an export whose invoice id is 5,000 characters long
    table = cur_table()
    column = table.schema.get_field_index("bill_invoice_id")
    ids = table.column(column).to_pylist()
    table = table.set_column(column, "bill_invoice_id", pa.array(["9" * 5000, *ids[1:]]))
    write_parquet(local.cwd, table)
    # Then it is no Data Exports file
    assert_usage_error(reconcile(local, "exports"), "bill_invoice_id", "5,000 characters")


def test_a_cost_that_is_not_a_number_is_refused_naming_its_column(local: Local) -> None:
    table = cur_table()
    column = table.schema.get_field_index("line_item_unblended_cost")
    costs = table.column(column).to_pylist()
    write_parquet(
        local.cwd, table.set_column(column, "line_item_unblended_cost", pa.array([float("nan"), *costs[1:]]))
    )
    assert_usage_error(reconcile(local, "exports"), "line_item_unblended_cost", "not a finite number")


def test_a_csv_amount_that_is_not_a_number_is_refused(local: Local) -> None:
    table = cur_table()
    column = table.schema.get_field_index("line_item_unblended_cost")
    costs = [str(v) for v in table.column(column).to_pylist()]
    table = table.set_column(column, "line_item_unblended_cost", pa.array(["12,50", *costs[1:]]))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as stream:
        pa.csv.write_csv(table, stream)
    path = local.cwd / DATA / "cur-00001.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(buffer.getvalue())
    assert_usage_error(reconcile(local, "exports"), "line_item_unblended_cost", "'12,50' is not a number")


def test_keys_with_dot_dot_segments_and_links_are_never_read(local: Local) -> None:
    # Given an S3 listing whose only files for the period sit behind '..' segments
    s3 = local.client("s3")
    s3.create_bucket(Bucket="hostile")
    body = io.BytesIO()
    pq.write_table(cur_table(), body)
    for key in (
        "exports/cur/data/BILLING_PERIOD=2026-02/../../../evil/data/BILLING_PERIOD=2026-02/x.parquet",
        "exports/../cur/data/BILLING_PERIOD=2026-02/x.parquet",
    ):
        s3.put_object(Bucket="hostile", Key=key, Body=body.getvalue())
    # Then none of them is taken for the export
    assert_usage_error(reconcile(local, "s3://hostile/exports/"), "no export for 2026-02")

    # Given a local export whose only file is a symbolic link (to a file outside the folder)
    outside = write_parquet(local.cwd / "elsewhere", cur_table())
    link = local.cwd / "linked" / DATA / "cur-00001.snappy.parquet"
    link.parent.mkdir(parents=True)
    os.symlink(outside, link)
    # Then the link is not followed
    assert_usage_error(reconcile(local, "linked"), "no export for 2026-02")


def test_the_export_comes_from_cost_data_export_when_not_given(local: Local) -> None:
    # Given no --cost-data and no COST_DATA_EXPORT: one line asking for it
    result = local.cli("reconcile", "--period", "2026-02")
    assert_usage_error(result, "--cost-data is required")
    # Given COST_DATA_EXPORT (the function's setting, always in S3): its value is what is read
    result = local.cli("reconcile", "--period", "2026-02", COST_DATA_EXPORT="s3://no-such-bucket/exports/")
    assert_usage_error(result, "s3://no-such-bucket/exports/", "NoSuchBucket")
    result = local.cli("reconcile", "--period", "2026-02", COST_DATA_EXPORT="a-folder")
    assert_usage_error(result, "COST_DATA_EXPORT", "must be s3://bucket/prefix/")
    # Given a malformed RECONCILIATION_TOLERANCE: named
    result = local.cli(
        "reconcile", "--period", "2026-02", "--cost-data", "x", RECONCILIATION_TOLERANCE="cheap"
    )
    assert_usage_error(result, "RECONCILIATION_TOLERANCE")
