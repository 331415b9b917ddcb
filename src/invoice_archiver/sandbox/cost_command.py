"""`invoice-archiver sandbox --cost-data DEST`: the dataset's cost data, as AWS Data Exports would write it.

CUR 2.0 and FOCUS 1.2 exports (Parquet, or gzip CSV) of every billing period of the dataset, in Data
Exports' layout, into a local folder or the sandbox's own S3 (s3://bucket/prefix/, the bucket created in
moto), with the discrepancies asked for (`--cost-discrepancy`, repeatable). See sandbox/cost_data.py.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from invoice_archiver.cli.errors import CliError

if TYPE_CHECKING:
    from invoice_archiver.sandbox.runner import Sandbox

DISCREPANCIES = ("missing-invoice", "amount-off", "credit-memo", "not-final")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "cost data (for `invoice-archiver reconcile`; needs the [reconcile] extra)"
    )
    group.add_argument(
        "--cost-data",
        metavar="DEST",
        help="write the dataset's CUR 2.0 and FOCUS 1.2 exports here: a folder, or s3://bucket/prefix/ "
        "in the sandbox's S3",
    )
    group.add_argument(
        "--cost-format", choices=("cur2", "focus", "both"), default="both", help="default both"
    )
    group.add_argument("--cost-compression", choices=("parquet", "csv.gz"), default="parquet")
    group.add_argument(
        "--cost-discrepancy",
        action="append",
        choices=DISCREPANCIES,
        default=[],
        help="inject into every period's export: an invoice not archived, an amount off, a credit memo "
        "off, or a period not final (repeatable)",
    )


def check(args: argparse.Namespace) -> None:
    """Before the sandbox starts: options that need --cost-data."""
    if not args.cost_data and args.cost_discrepancy:
        raise CliError("--cost-discrepancy needs --cost-data (where to write the exports)")


def write(args: argparse.Namespace, box: Sandbox) -> list[str]:
    """Write the exports when --cost-data is given; the lines the sandbox prints about them."""
    if not args.cost_data:
        return []
    try:
        from invoice_archiver.models.cost import ExportFormat
        from invoice_archiver.sandbox import cost_files
        from invoice_archiver.sandbox.cost_data import Discrepancies
    except ImportError as exc:
        raise CliError(f"--cost-data needs the 'reconcile' extra (no module {exc.name!r})") from None
    forms = list(ExportFormat) if args.cost_format == "both" else [ExportFormat(args.cost_format)]
    s3: Any = None
    if args.cost_data.startswith("s3://"):
        import boto3

        s3 = boto3.client("s3", endpoint_url=box.moto_url, region_name="us-east-1")
    try:
        written = cost_files.write(
            box.dataset,
            args.cost_data,
            formats=forms,
            discrepancies=Discrepancies.of(args.cost_discrepancy),
            compression=args.cost_compression,
            s3=s3,
        )
    except OSError as exc:
        raise CliError(f"--cost-data {args.cost_data}: cannot write there ({exc.strerror or exc})") from None
    lines = [
        f"# cost data: {len(written.files)} file(s), {written.lines} lines per format: "
        + ", ".join(cost_files.export_location(args.cost_data, form) for form in forms)
    ]
    injected = written.injected
    for label, found in (
        ("missing invoice", injected.missing_invoice),
        ("amount off", injected.amount_off),
        ("credit memo off", injected.credit_memo),
    ):
        lines += [
            f"# cost data discrepancy: {label} {invoice} ({period})" for period, invoice in found.items()
        ]
    lines += [f"# cost data discrepancy: {period} not final" for period in injected.not_final]
    return lines
