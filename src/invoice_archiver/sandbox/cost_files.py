"""Write a sandbox dataset's cost data as Data Exports do: CUR 2.0 and FOCUS 1.2, Parquet (or gzip CSV),
in `<destination>/<export>/data/BILLING_PERIOD=YYYY-MM/<export>-00001.snappy.parquet`, into a local
folder or an S3 bucket (the sandbox's own, created if missing).

Costs are DOUBLE, as AWS stores `line_item_unblended_cost` and `BilledCost` (so the reader's exact
double-to-Decimal path is what the tests run); billing periods are UTC timestamps.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from invoice_archiver.models.cost import ExportFormat
from invoice_archiver.sandbox.cost_data import Discrepancies, Injected, Line, lines
from invoice_archiver.sandbox.dataset import Dataset

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EXPORT_NAMES = {ExportFormat.CUR2: "invoice-archiver-cur2", ExportFormat.FOCUS: "invoice-archiver-focus"}
FOCUS_CATEGORIES = {"Usage": "Usage", "Tax": "Tax", "Fee": "Purchase", "Credit": "Credit", "Refund": "Credit",
                    "Discount": "Credit"}  # fmt: skip
_TIMESTAMP = pa.timestamp("ms", tz="UTC")


@dataclass
class Written:
    files: list[str] = field(default_factory=list)
    injected: Injected = field(default_factory=Injected)
    lines: int = 0


def export_location(destination: str, form: ExportFormat) -> str:
    """Where one format's export lands under `destination` (what `reconcile --cost-data` may name)."""
    return f"{destination.rstrip('/')}/{EXPORT_NAMES[form]}/"


def write(
    dataset: Dataset,
    destination: str,
    *,
    formats: Iterable[ExportFormat] = (ExportFormat.CUR2, ExportFormat.FOCUS),
    periods: Iterable[tuple[int, int]] | None = None,
    discrepancies: Discrepancies | None = None,
    compression: str = "parquet",
    s3: S3Client | None = None,
    seed: int = 0,
    lines_per_invoice: tuple[int, int] = (3, 8),
) -> Written:
    """Write each period's export in each format; returns the files and what was injected."""
    written = Written()
    wanted = discrepancies or Discrepancies()
    for period in sorted(periods if periods is not None else dataset.periods):
        injected = Injected()
        rows = list(lines(dataset, period, wanted, injected, seed=seed, lines_per_invoice=lines_per_invoice))
        _merge(written.injected, injected)
        written.lines += len(rows)
        for form in formats:
            table = cur2_table(rows) if form is ExportFormat.CUR2 else focus_table(rows)
            name = f"{EXPORT_NAMES[form]}-00001." + (
                "snappy.parquet" if compression == "parquet" else "csv.gz"
            )
            where = f"{export_location(destination, form)}data/BILLING_PERIOD={period[0]:04d}-{period[1]:02d}"
            written.files.append(_store(table, f"{where}/{name}", compression, s3))
    return written


def cur2_table(rows: list[Line]) -> pa.Table:
    return pa.table(
        {
            "identity_line_item_id": [f"line-{n}" for n in range(len(rows))],
            "bill_invoice_id": [r.invoice_id for r in rows],
            "bill_invoicing_entity": [r.invoicing_entity for r in rows],
            "bill_billing_entity": [r.billing_entity for r in rows],
            "bill_bill_type": [r.bill_type for r in rows],
            "bill_payer_account_id": [r.payer for r in rows],
            "bill_billing_period_start_date": pa.array([r.period_start for r in rows], _TIMESTAMP),
            "line_item_usage_account_id": [r.usage_account for r in rows],
            "line_item_line_item_type": [r.line_type for r in rows],
            "line_item_product_code": [r.product for r in rows],
            "line_item_usage_type": [r.usage_type for r in rows],
            "line_item_line_item_description": [r.description for r in rows],
            "line_item_unblended_cost": pa.array([float(r.cost) for r in rows], pa.float64()),
            "line_item_currency_code": ["USD"] * len(rows),
        }
    )


def focus_table(rows: list[Line]) -> pa.Table:
    return pa.table(
        {
            "InvoiceId": pa.array([r.invoice_id or None for r in rows], pa.string()),
            "InvoiceIssuerName": [r.invoicing_entity for r in rows],
            "ProviderName": ["AWS"] * len(rows),
            "PublisherName": [r.billing_entity for r in rows],
            "BillingAccountId": [r.payer for r in rows],
            "SubAccountId": [r.usage_account for r in rows],
            "BillingPeriodStart": pa.array([r.period_start for r in rows], _TIMESTAMP),
            "ChargeCategory": [FOCUS_CATEGORIES.get(r.line_type, "Adjustment") for r in rows],
            "ServiceName": [r.product for r in rows],
            "ChargeDescription": [r.description for r in rows],
            "BilledCost": pa.array([float(r.cost) for r in rows], pa.float64()),
            "BillingCurrency": ["USD"] * len(rows),
        }
    )


def _store(table: pa.Table, target: str, compression: str, s3: S3Client | None) -> str:
    buffer = io.BytesIO()
    if compression == "parquet":
        pq.write_table(table, buffer, compression="snappy", row_group_size=128 * 1024)
    else:
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as stream:
            pa_csv.write_csv(table, stream)
    data = buffer.getvalue()
    if target.startswith("s3://"):
        assert s3 is not None
        bucket, _, key = target.removeprefix("s3://").partition("/")
        _ensure_bucket(s3, bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    else:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return target


def _ensure_bucket(s3: S3Client, bucket: str) -> None:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)


def _merge(into: Injected, more: Injected) -> None:
    into.missing_invoice.update(more.missing_invoice)
    into.amount_off.update(more.amount_off)
    into.credit_memo.update(more.credit_memo)
    into.not_final.extend(more.not_final)


def describe(written: Written) -> dict[str, Any]:
    injected = written.injected
    return {
        "files": len(written.files),
        "lines": written.lines,
        "missing_invoice": injected.missing_invoice,
        "amount_off": injected.amount_off,
        "credit_memo": injected.credit_memo,
        "not_final": injected.not_final,
    }
